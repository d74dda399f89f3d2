"""Task: the model server and its sidecar, in today's libnrt layout and the walk-through's rtd layout."""

from __future__ import annotations

import http.server
import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from config.engines import TF_SERVING
from tests.conftest import VARIANTS, Synthesized
from tests.loopback import serving

SynthFn = Callable[[str], Synthesized]


def containers(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    definitions = synthesized.only_serving("AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    return {container["Name"]: container for container in definitions}


def environment(container: dict[str, Any]) -> dict[str, Any]:
    return {variable["Name"]: variable["Value"] for variable in container.get("Environment", [])}


def devices(container: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [
        (device["HostPath"], device["ContainerPath"], device["Permissions"])
        for device in container.get("LinuxParameters", {}).get("Devices", [])
    ]


@pytest.mark.parametrize("variant", ["default", "inf2", "large", "split"])
def test_libnrt_server_maps_every_device_and_claims_its_cores_at_start(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    size = settings.instance_size
    server = containers(synthesized)[settings.models[0].name]

    expected = [(f"/dev/neuron{i}", f"/dev/neuron{i}", ["read", "write"]) for i in range(size.chips)]
    assert devices(server) == expected
    assert server["LinuxParameters"]["Capabilities"] == {"Add": ["IPC_LOCK"]}
    expected_environment = {
        "NEURON_CORES_PER_TASK": str(settings.models[0].cores_per_task),
        "NEURON_CORE_SLOTS": str(settings.tasks_per_instance),
        "NEURON_SLOT_DIR": "/run/neuron-slots",
    }
    if settings.batching:
        expected_environment["BATCHING_PARAMETERS"] = settings.batching.parameters_file()
    if settings.models[0].s3:
        expected_environment["MODEL_BASE_PATH"] = "/model"
    if settings.profile.engine.instances_per_core:  # Triton: one model instance per NeuronCore of the task
        expected_environment["TRITON_INSTANCES"] = str(settings.models[0].cores_per_task)
        # and a shared-memory region per instance for its largest batch (tests/test_triton_memory.py)
        expected_environment |= {
            key: environment(server)[key] for key in ("TRITON_SHM_REGION_BYTES", "TRITON_MAX_BATCH")
        }
    assert environment(server) == expected_environment
    slots_mount = {"ContainerPath": "/run/neuron-slots", "ReadOnly": False, "SourceVolume": "neuron-slots"}
    assert slots_mount in server["MountPoints"]
    volumes = synthesized.only_serving("AWS::ECS::TaskDefinition")["Volumes"]
    slots_dir = f"/var/run/neuron-core-slots/{settings.models[0].name}"  # one lock directory per model
    assert {"Host": {"SourcePath": slots_dir}, "Name": "neuron-slots"} in volumes


@pytest.mark.parametrize(
    ("variant", "cores", "tasks", "cpu"),
    [
        ("default", 4, 1, 4 * 1024),  # inf1.xlarge: one chip, one task
        ("inf2", 2, 1, 4 * 1024),  # inf2.xlarge
        ("large", 4, 16, 96 * 1024 // 16),  # inf1.24xlarge: a task per chip
        ("split", 4, 6, 192 * 1024 // 6),  # inf2.48xlarge, coresPerTask=4
    ],
)
def test_cpu_reservation_fits_exactly_one_task_per_core_slot(
    synth: SynthFn, variant: str, cores: int, tasks: int, cpu: int
) -> None:
    synthesized = synth(variant)
    server = containers(synthesized)[synthesized.settings.models[0].name]

    assert (synthesized.settings.models[0].cores_per_task, synthesized.settings.tasks_per_instance) == (cores, tasks)
    assert server["Cpu"] == cpu
    assert server["Cpu"] * tasks <= synthesized.settings.instance_size.vcpus * 1024 < server["Cpu"] * (tasks + 1)


@pytest.mark.parametrize(("variant", "ports"), [("default", (8500, 8501)), ("large", (9000, 9001))])
def test_libnrt_server_publishes_grpc_and_rest_on_dynamic_host_ports(
    synth: SynthFn, variant: str, ports: tuple[int, int]
) -> None:
    synthesized = synth(variant)
    server = containers(synthesized)[synthesized.settings.models[0].name]

    mappings = [(m["Name"], m["ContainerPort"], m["HostPort"], m["Protocol"]) for m in server["PortMappings"]]
    assert mappings == [("grpc", ports[0], 0, "tcp"), ("rest", ports[1], 0, "tcp")]
    assert synthesized.only_serving("AWS::ECS::TaskDefinition")["NetworkMode"] == "bridge"
    assert server["StopTimeout"] == 30


def status_body(state: str) -> dict[str, Any]:
    """TF Serving's GET /v1/models/<name> (REST API reference, model status)."""
    return {"model_version_status": [{"version": "1", "state": state, "status": {"error_code": "OK"}}]}


def metadata_body(inputs: list[str]) -> dict[str, Any]:
    """TF Serving's GET /v1/models/<name>/metadata, trimmed to what matters (REST API reference, model metadata)."""
    tensors = {name: {"dtype": "DT_INT32", "name": f"serving_default_{name}:0"} for name in inputs}
    default = {
        "inputs": tensors,
        "outputs": {"logits": {"dtype": "DT_FLOAT"}},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": "bert", "version": "1"},
        "metadata": {"signature_def": {"signature_def": {"serving_default": default}}},
    }


@pytest.fixture
def tf_serving_rest() -> Iterator[tuple[int, dict[str, Any]]]:
    """A loopback REST endpoint answering status and metadata from ``answers``, as TF Serving would."""
    answers: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body or {"error": "not found"}).encode())

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port:
        yield port, answers


def test_libnrt_health_check_waits_for_the_model_to_be_available(synth: SynthFn) -> None:
    server = containers(synth("large"))["bert-large"]

    check = server["HealthCheck"]
    assert check["Command"] == TF_SERVING.health_command("bert-large", 9001)
    assert "http://localhost:9001/v1/models/bert-large" in check["Command"][1]
    assert check["StartPeriod"] == 300


@pytest.mark.parametrize(
    ("state", "inputs", "healthy"),
    [
        ("AVAILABLE", ["input_ids", "input_mask", "segment_ids"], True),
        ("LOADING", ["input_ids", "input_mask", "segment_ids"], False),
        ("AVAILABLE", ["input_ids", "attention_mask", "token_type_ids"], False),  # a model exported otherwise
        ("AVAILABLE", ["input_ids", "input_mask"], False),
        ("AVAILABLE", None, False),  # no metadata answer
    ],
)
def test_the_health_check_passes_only_for_an_available_model_with_the_clients_signature(
    tf_serving_rest: tuple[int, dict[str, Any]], state: str, inputs: list[str] | None, healthy: bool
) -> None:
    port, answers = tf_serving_rest
    answers["/v1/models/bert"] = status_body(state)
    if inputs is not None:
        answers["/v1/models/bert/metadata"] = metadata_body(inputs)
    kind, command = TF_SERVING.health_command("bert", port)

    # Docker runs a CMD-SHELL health check as /bin/sh -c COMMAND; exit 0 is healthy.
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=False, timeout=30)

    assert kind == "CMD-SHELL"
    assert (result.returncode == 0) is healthy


def test_libnrt_task_has_the_server_a_non_essential_monitor_and_the_text_front(synth: SynthFn) -> None:
    synthesized = synth("default")
    task = containers(synthesized)

    assert sorted(task) == ["bert", "neuron-monitor", "text-front"]
    assert task["bert"]["Essential"] is True
    # A front that stops takes its task out: the text API is part of what the task serves.
    assert task["text-front"]["Essential"] is True
    monitor = task["neuron-monitor"]
    assert monitor["Essential"] is False
    assert monitor["RestartPolicy"] == {"Enabled": True}
    # as Neuron's own neuron-monitor deployment runs it (k8s-neuron-monitor-daemonset.yml)
    assert monitor["Privileged"] is True
    assert "PortMappings" not in monitor
    assert environment(monitor)["METRICS_NAMESPACE"] == "NeuronMonitor"
    assert environment(monitor)["CLUSTER_NAME"] == {"Ref": "ClusterEB0386A7"}
    assert synthesized.only_serving("AWS::ECS::TaskDefinition")["PidMode"] == "task"


@pytest.mark.parametrize("variant", ["default", "inf2", "large"])
def test_libnrt_uses_no_daemon_socket_and_no_sys_admin(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    task = synthesized.only_serving("AWS::ECS::TaskDefinition")

    assert [volume["Name"] for volume in task["Volumes"]] == ["neuron-slots"]
    for container in task["ContainerDefinitions"]:
        assert "SYS_ADMIN" not in container.get("LinuxParameters", {}).get("Capabilities", {}).get("Add", [])
        assert "NEURON_RTD_ADDRESS" not in environment(container)
        assert "AWS_NEURON_VISIBLE_DEVICES" not in environment(container)


def test_rtd_layout_is_the_walkthrough_task_exactly(synth: SynthFn) -> None:
    # GIVEN neuronRuntime=rtd THEN the task matches the brief's table, part by part
    synthesized = synth("rtd")
    task = synthesized.only_serving("AWS::ECS::TaskDefinition")
    bert, rtd = containers(synthesized)["bert"], containers(synthesized)["neuron-rtd"]

    assert task["Volumes"] == [{"Host": {"SourcePath": "/tmp/sock"}, "Name": "sock"}]
    assert "PidMode" not in task
    sock_mount = [{"ContainerPath": "/sock", "ReadOnly": False, "SourceVolume": "sock"}]

    # static host ports, as in the walk-through
    assert [(m["ContainerPort"], m["HostPort"]) for m in bert["PortMappings"]] == [(8500, 8500), (8501, 8501)]
    assert environment(bert) == {"NEURON_RTD_ADDRESS": "unix:/sock/neuron-rtd.sock"}
    assert bert["MountPoints"] == sock_mount
    assert bert["MemoryReservation"] == 1000
    assert bert["Essential"] is True
    assert "LinuxParameters" not in bert

    assert rtd["Command"] == ["neuron-rtd", "-g", "unix:/sock/neuron-rtd.sock"]
    assert environment(rtd) == {"AWS_NEURON_VISIBLE_DEVICES": "ALL"}
    assert rtd["LinuxParameters"]["Capabilities"] == {"Add": ["SYS_ADMIN", "IPC_LOCK"]}
    assert rtd["MountPoints"] == sock_mount
    assert rtd["MemoryReservation"] == 1000
    assert rtd["Essential"] is True
    assert len(task["ContainerDefinitions"]) == 2


@pytest.mark.parametrize("variant", ["default", "rtd"])
def test_every_container_logs_to_the_task_log_group_with_a_retention(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    groups = synthesized.resources("AWS::Logs::LogGroup")
    task_groups = {logical_id for logical_id in groups if "TaskLogs" in logical_id}

    assert len(task_groups) == 1
    for group in groups.values():  # the task's and the VPC flow logs'
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["DeletionPolicy"] == "Delete"
    for name, container in containers(synthesized).items():
        options = container["LogConfiguration"]["Options"]
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
        assert options["awslogs-group"] == {"Ref": next(iter(task_groups))}
        assert options["awslogs-stream-prefix"] == name


@pytest.mark.parametrize("variant", ["default", "rtd"])
def test_execution_role_is_separate_from_an_empty_task_role(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    task = synthesized.only_serving("AWS::ECS::TaskDefinition")
    execution_role = task["ExecutionRoleArn"]["Fn::GetAtt"][0]
    task_role = task["TaskRoleArn"]["Fn::GetAtt"][0]

    assert execution_role != task_role
    attached = {
        role["Ref"]
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        for role in policy["Properties"]["Roles"]
    }
    assert execution_role in attached
    assert task_role not in attached
    assert "ManagedPolicyArns" not in synthesized.resources("AWS::IAM::Role")[task_role]["Properties"]


def test_batching_reaches_the_server_only_when_set(synth: SynthFn) -> None:
    assert "BATCHING_PARAMETERS" not in environment(containers(synth("default"))["bert"])
    batching = environment(containers(synth("split"))["bert"])["BATCHING_PARAMETERS"]
    assert "max_batch_size { value: 16 }" in batching
    assert "batch_timeout_micros { value: 2000 }" in batching


def test_model_from_s3_is_copied_into_the_task_before_the_server_starts(synth: SynthFn) -> None:
    # GIVEN modelS3Uri (the "split" variant)
    synthesized = synth("split")
    task = containers(synthesized)
    sync, server = task["model-sync"], task["bert"]

    assert sync["Image"] == "public.ecr.aws/aws-cli/aws-cli:2.15.0"
    assert sync["Command"] == ["s3", "sync", "--only-show-errors", "s3://bert-models-example/bert-base/", "/model/"]
    assert sync["Essential"] is False
    assert sync["MountPoints"] == [{"ContainerPath": "/model", "ReadOnly": False, "SourceVolume": "model"}]
    assert server["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "model-sync"}]
    assert {"ContainerPath": "/model", "ReadOnly": True, "SourceVolume": "model"} in server["MountPoints"]
    assert environment(server)["MODEL_BASE_PATH"] == "/model"
    assert {"Name": "model"} in synthesized.only_serving("AWS::ECS::TaskDefinition")["Volumes"]


def test_model_from_s3_grants_read_on_its_prefix_only(synth: SynthFn) -> None:
    synthesized = synth("split")
    task_role = synthesized.only_serving("AWS::ECS::TaskDefinition")["TaskRoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": task_role}]
    ]

    partition: dict[str, str] = {"Ref": "AWS::Partition"}
    bucket: list[Any] = ["arn:", partition, ":s3:::bert-models-example"]
    assert policy == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", ["arn:", partition, ":s3:::bert-models-example/bert-base/*"]]},
            "Sid": "ReadTheModel",
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["bert-base", "bert-base/*"]}},
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", bucket]},
            "Sid": "ListTheModel",
        },
    ]


def test_model_in_the_image_needs_no_sync_and_no_grant(synth: SynthFn) -> None:
    assert "model-sync" not in containers(synth("default"))


def test_every_container_that_calls_aws_knows_its_region(synth: SynthFn) -> None:
    # Tasks have no instance metadata (IMDSv2, hop limit 1): the AWS CLI takes credentials from the
    # task role endpoint but finds no region unless the environment names one.
    callers = []
    for variant in VARIANTS:
        for task in synth(variant).resources("AWS::ECS::TaskDefinition").values():
            for container in task["Properties"]["ContainerDefinitions"]:
                image = json.dumps(container["Image"])
                if "aws-cli" in image or "neuron-node-recovery" in image:
                    callers.append((variant, container["Name"]))
                    assert environment(container).get("AWS_REGION") == {"Ref": "AWS::Region"}, callers[-1]

    assert ("split", "model-sync") in callers
    assert ("default", "recovery") in callers


# --- what an instance can schedule ----------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_tasks_an_instance_holds_fit_what_it_can_schedule(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    smallest = min(settings.instance_sizes, key=lambda size: size.vcpus)
    definitions = synthesized.serving("AWS::ECS::TaskDefinition").values()
    # one task of each model per slot row, tasks_per_instance rows an instance
    cpu = memory = 0
    for definition in definitions:
        properties = definition["Properties"]
        containers = properties["ContainerDefinitions"]
        container_cpu = sum(c.get("Cpu", 0) for c in containers)
        container_memory = sum(c.get("MemoryReservation", c.get("Memory", 0)) for c in containers)
        if "Cpu" in properties:  # sized at task level (Managed Instances)
            assert container_cpu <= int(properties["Cpu"])
            assert container_memory <= int(properties["Memory"])
            task_cpu, task_memory = int(properties["Cpu"]), int(properties["Memory"])
        else:
            task_cpu, task_memory = container_cpu, container_memory
        cpu += task_cpu * settings.tasks_per_instance
        memory += task_memory * settings.tasks_per_instance

    assert cpu <= smallest.schedulable_cpu_units
    assert memory <= smallest.schedulable_memory_mib
    assert smallest.schedulable_memory_mib < smallest.memory_gib * 1024  # never the nominal size


def test_managed_instances_size_the_task_as_awss_neuron_example_does(synth: SynthFn) -> None:
    (definition,) = synth("managed").serving("AWS::ECS::TaskDefinition").values()
    properties = definition["Properties"]

    assert (properties["Cpu"], properties["Memory"]) == ("4096", str(16 * 1024 * 9 // 10))
    assert all("Cpu" not in container for container in properties["ContainerDefinitions"])
