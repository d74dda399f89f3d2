"""Names shared across a boundary have one home (contracts/); every copy that cannot import it equals it."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from aws_cdk import aws_logs as logs

from client import endpoint, pricing
from components.log_retention import retention
from config import triton_memory
from config.engines import ENGINES, TRITON
from config.hardware import INSTANCE_SIZES
from config.log_retention import LOG_RETENTION_DAYS
from config.profile import Sidecar
from contracts import containers, metrics, model_signature, outputs
from contracts import task_environment as env
from tests.conftest import ROOT, VARIANTS, Synthesized
from tests.scripts import load_script

SynthFn = Callable[[str], Synthesized]
DOCKER = ROOT / "docker"


def _constants(module: ModuleType) -> dict[str, object]:
    return {name: value for name, value in vars(module).items() if name.isupper()}


CONTRACT_NAMES = set(_constants(env).values())


def test_the_metrics_exporter_writes_the_names_the_stack_reads() -> None:
    exporter = load_script(DOCKER / "neuron-monitor" / "neuron_emf.py")
    triton = load_script(DOCKER / "neuron-monitor" / "triton_emf.py")

    assert exporter.DEFAULT_NAMESPACE == metrics.NAMESPACE
    assert (exporter.CLUSTER, exporter.SERVICE, exporter.TASK, exporter.NEURON_CORE) == (
        metrics.CLUSTER,
        metrics.SERVICE,
        metrics.TASK,
        metrics.NEURON_CORE,
    )
    written = {
        exporter.NEURON_CORE_UTILIZATION,
        exporter.NEURON_CORE_UTILIZATION_AVERAGE,
        exporter.DEVICE_MEMORY_USED,
        exporter.HOST_MEMORY_USED,
        exporter.EXECUTIONS_COMPLETED,
        exporter.EXECUTION_ERRORS,
        *exporter.EXECUTION_LATENCY.values(),
        *triton.COUNTS.values(),
        *triton.DURATIONS.values(),
        *triton.GAUGES.values(),
    }
    declared = {
        value
        for name, value in _constants(metrics).items()
        if isinstance(value, str) and name not in {"NAMESPACE", "CLUSTER", "SERVICE", "TASK", "NEURON_CORE"}
    }
    assert written == declared
    assert {
        exporter.METRICS_NAMESPACE_VARIABLE,
        exporter.CLUSTER_NAME_VARIABLE,
        exporter.METADATA_URI_VARIABLE,
        exporter.TRITON_METRICS_URL_VARIABLE,
    } <= CONTRACT_NAMES
    # each Triton figure's constant is the one the contract declares under the same name
    for name in ("INFERENCE_REQUESTS", "QUEUE_TIME", "PENDING_REQUESTS", "COMPUTE_TIME"):
        assert getattr(triton, name) == getattr(metrics, name)


def test_the_core_slot_script_reads_the_names_the_task_sets() -> None:
    slot_script = load_script(DOCKER / "model-server" / "neuron_slot.py")

    copies = _constants(slot_script)
    names = {value for name, value in copies.items() if name.startswith("NEURON_") and isinstance(value, str)}
    assert names
    for name, value in copies.items():
        if name.startswith("NEURON_"):
            assert getattr(env, name) == value


def _literal_constants(path: Path) -> dict[str, object]:
    """A script's module-level UPPER_CASE literals, read without running it (model.py imports Triton's module)."""
    tree = ast.parse(path.read_text())
    return {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper() and isinstance(node.value, (ast.Constant, ast.Tuple))
    }


@pytest.mark.parametrize("script", ["model.py", "serve_triton.py"])
def test_the_triton_scripts_copies_equal_the_contracts(script: str) -> None:
    copies = _literal_constants(DOCKER / "model-server" / "triton-server" / script)
    expected = {
        "INPUT_NAMES": model_signature.INPUT_NAMES,
        "OUTPUT_NAME": model_signature.OUTPUT_NAME,
        "BUILD_RECORD": model_signature.BUILD_RECORD,
        "MODEL_FILE": TRITON.model_file,
        "NEURON_CORES_PER_TASK": env.NEURON_CORES_PER_TASK,
        "NEURON_RT_VISIBLE_CORES": env.NEURON_RT_VISIBLE_CORES,
        "TRITON_INSTANCES": env.TRITON_INSTANCES,
        "MODEL_FAMILY": env.MODEL_FAMILY,
        "TRITON_SHM_REGION_BYTES": env.TRITON_SHM_REGION_BYTES,
        "TRITON_MAX_BATCH": env.TRITON_MAX_BATCH,
        "MAX_REQUEST_BATCH": triton_memory.MAX_REQUEST_BATCH,
        "METRICS_PORT": TRITON.metrics_port,
    }

    shared = {name: copies[name] for name in expected if name in copies}
    assert len(shared) >= 3
    assert shared == {name: expected[name] for name in shared}


def test_the_record_check_reads_the_record_make_model_writes() -> None:
    script = load_script(DOCKER / "model-server" / "model_record.py")

    assert script.BUILD_RECORD == model_signature.BUILD_RECORD
    assert set(script.MODEL_FILES.values()) == {engine.model_file for engine in ENGINES.values()}


# Variables an image sets for its own programs, not for the task: the loader's and the shell's, and where the
# Triton entrypoint finds tritonserver and its backends.
IMAGE_INTERNAL = {"LD_LIBRARY_PATH", "PATH", "DEBIAN_FRONTEND", "TRITONSERVER", "TRITON_BACKENDS"}


@pytest.mark.parametrize("script", ["serve.sh", "Dockerfile", "Dockerfile.triton"])
def test_every_variable_the_model_server_reads_is_a_contract(script: str) -> None:
    text = (DOCKER / "model-server" / script).read_text()
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    build_args = set(re.findall(r"^ARG ([A-Z0-9_]+)", text, flags=re.MULTILINE))
    environment = set(re.findall(r"^ENV ([A-Z0-9_]+)=|^\s+([A-Z0-9_]+)=", text, flags=re.MULTILINE))

    assert read
    assert read - build_args <= CONTRACT_NAMES | IMAGE_INTERNAL, read - build_args - CONTRACT_NAMES
    assert {name for pair in environment for name in pair if name} - IMAGE_INTERNAL <= CONTRACT_NAMES


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_environment_variable_a_task_sets_is_a_contract(synth: SynthFn, variant: str) -> None:
    for task in synth(variant).resources("AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            for variable in container.get("Environment", []):
                assert variable["Name"] in CONTRACT_NAMES | {"AWS_NEURON_VISIBLE_DEVICES"}, variable["Name"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_name_is_a_sidecar_or_a_model(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    models = {model.name for model in synthesized.settings.models}
    for task in synthesized.resources("AWS::ECS::TaskDefinition").values():
        names = {container["Name"] for container in task["Properties"]["ContainerDefinitions"]}
        if names in (containers.DAEMON, {containers.RELAY}):
            continue
        assert names - models <= containers.SIDECARS
        assert len(names & models) == 1


def test_each_sidecar_has_its_image_folder() -> None:
    for sidecar in Sidecar:
        assert (DOCKER / sidecar.value / "Dockerfile").is_file()
        assert sidecar.value in containers.SIDECARS


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_stack_declares_exactly_the_outputs_the_client_knows(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    stack_wide = {
        outputs.CLUSTER_NAME,
        outputs.SECURITY_GROUP_ID,
        outputs.INSTANCE_TYPE,
        outputs.LOAD_BALANCER_DNS_NAME,
        outputs.NOTIFICATIONS_TOPIC_ARN,
        outputs.SERVER_API,
        outputs.RELAY_TASK_DEFINITION,
        outputs.RELAY_SECURITY_GROUP,
        outputs.RELAY_SUBNETS,
    }
    per_model = {
        outputs.model_output(key, index)
        for index in range(len(synthesized.settings.models))
        for key in outputs.PER_MODEL
    }

    assert set(synthesized.json["Outputs"]) == stack_wide | per_model


def test_the_client_reads_outputs_by_their_contract_names() -> None:
    source = Path(endpoint.__file__).read_text()

    assert not re.findall(r'outputs(?:\.get)?\(?\[?"[A-Z]', source)


def test_the_price_table_covers_exactly_the_instance_sizes() -> None:
    assert set(pricing.ON_DEMAND_USD_PER_HOUR) == set(INSTANCE_SIZES)
    operations = (ROOT / "docs" / "operations.md").read_text()
    for family in ("inf1", "inf2"):
        sizes = [size for name, size in INSTANCE_SIZES.items() if name.startswith(family)]
        row = " / ".join(f"{size.on_demand_usd_per_hour:.3f}" for size in sizes)
        assert row in operations, f"docs/operations.md's price row for {family} should read {row}"


def test_every_retention_period_maps_to_cdks_own() -> None:
    named = {member for member in logs.RetentionDays if member is not logs.RetentionDays.INFINITE}

    assert {retention(days) for days in LOG_RETENTION_DAYS} == named
    assert list(LOG_RETENTION_DAYS) == sorted(LOG_RETENTION_DAYS)
