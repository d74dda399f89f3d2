"""The text API on the load balancer: its own port with target health on the front's /health, TLS with
certificateArn (the tensor ports too unless tlsTensorPorts is off), access logs that the NLB's log
delivery can write, and an API key the task reads from one secret."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from components.text_front.container import HEALTH_COMMAND, health_command
from components.text_front.runtime import front_environment as front_env
from config.settings import SettingsError, load_settings
from contracts import containers, outputs
from tests.conftest import CDK_JSON_CONTEXT, Synthesized
from tests.loopback import serving
from tests.paths import COMPONENTS
from tests.scripts import copy_as_built
from tests.test_images import docker_images
from tests.test_load_balancer import target_groups
from tests.text_front.harness import model_folder

SynthFn = Callable[[str], Synthesized]
CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/0123abcd-4567-89ab-cdef-0123456789ab"


def listeners(synthesized: Synthesized) -> dict[int, dict[str, Any]]:
    return {
        listener["Properties"]["Port"]: listener["Properties"]
        for listener in synthesized.resources("AWS::ElasticLoadBalancingV2::Listener").values()
    }


def front(synthesized: Synthesized) -> dict[str, Any]:
    (task,) = synthesized.serving("AWS::ECS::TaskDefinition").values()
    (container,) = [c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == containers.TEXT_FRONT]
    return dict(container)


# --- the port and its health ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "inf2", "managed", "multi"])
def test_each_models_text_port_forwards_to_its_front_whose_health_is_the_fronts(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    groups = target_groups(synthesized)
    registered = {
        (lb["ContainerName"], lb["ContainerPort"], lb["TargetGroupArn"]["Ref"])
        for service in synthesized.serving("AWS::ECS::Service").values()
        for lb in service["Properties"]["LoadBalancers"]
    }
    for model in synthesized.settings.models:
        group = groups[model.text_port]
        assert (group["HealthCheckProtocol"], group["HealthCheckPath"]) == ("HTTP", front_env.HEALTH_PATH)
        assert model.text_port in listeners(synthesized)
    assert sum(name == containers.TEXT_FRONT for name, _, _ in registered) == len(synthesized.settings.models)
    assert all(port == front_env.CONTAINER_PORT for name, port, _ in registered if name == containers.TEXT_FRONT)


def test_the_rtd_layout_keeps_the_walk_throughs_two_containers(synth: SynthFn) -> None:
    synthesized = synth("rtd")

    assert front_env.HEALTH_PATH not in {group.get("HealthCheckPath") for group in target_groups(synthesized).values()}
    assert outputs.TEXT_URL not in synthesized.json["Outputs"]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_containers_health_check_follows_the_fronts_health(status: int, healthy: bool) -> None:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == front_env.HEALTH_PATH else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    # Docker runs a CMD-SHELL health check as /bin/sh -c COMMAND; exit 0 is healthy. The front's image
    # has python (and no curl); the command uses only the standard library.
    # The image's python is `python`: here, the venv's.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    with serving(Health) as port:
        result = subprocess.run(
            ["/bin/sh", "-c", health_command(port)],
            capture_output=True,
            check=False,
            timeout=30,
            env={**os.environ, "PATH": path},
        )

    assert (result.returncode == 0) is healthy


def test_the_health_check_waits_for_the_model_load(synth: SynthFn) -> None:
    check = front(synth("default"))["HealthCheck"]

    assert check["Command"] == ["CMD-SHELL", HEALTH_COMMAND]
    assert check["StartPeriod"] >= 300


# --- TLS -----------------------------------------------------------------------------------------


def test_without_a_certificate_every_listener_is_plain_tcp(synth: SynthFn) -> None:
    synthesized = synth("default")

    assert {listener["Protocol"] for listener in listeners(synthesized).values()} == {"TCP"}
    assert synthesized.json["Outputs"][outputs.TENSOR_TLS]["Value"] == "false"
    assert synthesized.json["Outputs"][outputs.TEXT_URL]["Value"]["Fn::Join"][1][0] == "http://"
    assert "Rules" not in synthesized.json or all("Certificate" not in rule for rule in synthesized.json["Rules"])


def test_a_certificate_puts_tls_on_every_port_with_alpn_for_grpc(synth: SynthFn) -> None:
    synthesized = synth("split")
    model = synthesized.settings.models[0]
    found = listeners(synthesized)

    for port in (model.grpc_port, model.rest_port, model.text_port):
        assert found[port]["Protocol"] == "TLS"
        assert found[port]["Certificates"] == [{"CertificateArn": CERTIFICATE}]
        assert found[port]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # gRPC needs HTTP/2 negotiated in the handshake; HTTP/1.1 ports must not be offered h2 only.
    assert found[model.grpc_port]["AlpnPolicy"] == ["HTTP2Only"]
    assert "AlpnPolicy" not in found[model.rest_port]
    assert "AlpnPolicy" not in found[model.text_port]
    assert synthesized.json["Outputs"][outputs.TENSOR_TLS]["Value"] == "true"
    assert synthesized.json["Outputs"][outputs.TEXT_URL]["Value"]["Fn::Join"][1][0] == "https://"


def test_tls_tensor_ports_off_keeps_grpc_and_rest_plain(synth: SynthFn) -> None:
    synthesized = synth("managed")
    model = synthesized.settings.models[0]
    found = listeners(synthesized)

    assert (found[model.grpc_port]["Protocol"], found[model.rest_port]["Protocol"]) == ("TCP", "TCP")
    assert found[model.text_port]["Protocol"] == "TLS"
    assert synthesized.json["Outputs"][outputs.TENSOR_TLS]["Value"] == "false"


def test_a_certificate_of_another_region_stops_the_deploy_before_anything_is_made(synth: SynthFn) -> None:
    rules = synth("split").json["Rules"]
    (assertion,) = next(rule["Assertions"] for key, rule in rules.items() if key.startswith("EndpointCertificate"))

    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "certificateArn" in assertion["AssertDescription"]


# --- access logs ---------------------------------------------------------------------------------


def _statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    policy = synthesized.only("AWS::S3::BucketPolicy")
    return list(policy["PolicyDocument"]["Statement"])


def test_access_logs_go_to_a_private_encrypted_bucket_kept_after_the_stack(synth: SynthFn) -> None:
    synthesized = synth("split")
    (key, bucket) = next(iter(synthesized.template.find_resources("AWS::S3::Bucket").items()))
    attributes = {
        item["Key"]: item["Value"]
        for item in synthesized.only("AWS::ElasticLoadBalancingV2::LoadBalancer")["LoadBalancerAttributes"]
    }

    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": key}
    assert bucket["DeletionPolicy"] == "Retain"
    properties = bucket["Properties"]
    sse = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "AES256"}  # NLB log delivery writes SSE-S3 buckets without a key policy
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert properties["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90


def test_only_this_accounts_log_delivery_may_write_the_logs(synth: SynthFn) -> None:
    synthesized = synth("split")
    allowed = [statement for statement in _statements(synthesized) if statement["Effect"] == "Allow"]

    assert {statement["Principal"]["Service"] for statement in allowed} == {"delivery.logs.amazonaws.com"}
    assert sorted(statement["Action"] for statement in allowed) == ["s3:GetBucketAcl", "s3:PutObject"]
    for statement in allowed:
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert "ArnLike" in statement["Condition"]
    (put,) = [statement for statement in allowed if statement["Action"] == "s3:PutObject"]
    assert put["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    denied = [statement for statement in _statements(synthesized) if statement["Effect"] == "Deny"]
    assert denied[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_load_balancer_waits_for_the_bucket_policy(synth: SynthFn) -> None:
    synthesized = synth("split")
    (policy,) = synthesized.template.find_resources("AWS::S3::BucketPolicy")
    (balancer,) = synthesized.template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()

    # ELB test-writes the bucket when the attribute is set: without the policy the create fails.
    assert policy in balancer["DependsOn"]


def test_no_certificate_means_no_log_bucket(synth: SynthFn) -> None:
    synth("default").template.resource_count_is("AWS::S3::Bucket", 0)


# --- the API key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "secret_arn"),
    [
        # by name: the ARN's random suffix is unknown, so the grant ends in -?????? (six characters, no more)
        (
            "split",
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:bert/text-api-key-??????",
        ),
        ("managed", "arn:aws:secretsmanager:us-east-1:111122223333:secret:bert/text-api-key-AbCdEf"),
    ],
)
def test_the_front_reads_the_key_from_the_one_secret_its_execution_role_may_read(
    synth: SynthFn, variant: str, secret_arn: str
) -> None:
    synthesized = synth(variant)
    (secret,) = front(synthesized)["Secrets"]
    assert secret["Name"] == front_env.API_KEY

    reads = [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("secretsmanager:") for action in _list(statement["Action"]))
    ]
    assert len(reads) == 1
    assert sorted(_list(reads[0]["Action"])) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert _flat(reads[0]["Resource"]) == secret_arn


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flat(value: Any) -> str:
    """A resource as text, with Fn::Join and pseudo parameters written as ${…}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_flat(part) for part in parts)


def test_without_a_key_the_front_has_no_secret_and_no_role_reads_one(synth: SynthFn) -> None:
    synthesized = synth("default")

    assert "Secrets" not in front(synthesized)
    assert "secretsmanager:" not in str(synthesized.resources("AWS::IAM::Policy"))


def test_the_batch_limit_reaches_the_front(synth: SynthFn) -> None:
    environment = {item["Name"]: item["Value"] for item in front(synth("managed"))["Environment"]}

    assert environment[front_env.MAX_CLIENT_BATCH_SIZE] == "8"


# --- settings ------------------------------------------------------------------------------------


def test_under_managed_instances_the_servers_ports_leave_the_fronts_free() -> None:
    managed = {**CDK_JSON_CONTEXT, "capacity": "managedInstances", "instanceType": "inf2.xlarge"}

    with pytest.raises(SettingsError) as refused:
        load_settings({**managed, "grpcPort": "8080", "textPort": "9000"}.get)

    assert str(refused.value).startswith("Invalid setting 'grpcPort' = 8080: must not be 8080")
    # in bridge mode each container has its own ports: the same setting is fine there
    assert load_settings({**CDK_JSON_CONTEXT, "grpcPort": "8080", "textPort": "9000"}.get).models[0].grpc_port == 8080


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("certificateArn", "arn:aws:iam::111122223333:server-certificate/x", "an ACM certificate ARN"),
        ("certificateArn", CERTIFICATE + "x", "an ACM certificate ARN"),
        ("apiKeySecret", "arn:aws:secretsmanager:us-east-1:111122223333:secret:key", "its full ARN, ending in -XXXXXX"),
        ("apiKeySecret", "key with spaces", "a Secrets Manager secret's name"),
        ("maxClientBatchSize", "0", "1"),
        ("maxClientBatchSize", "2000", "1024"),
        ("tlsTensorPorts", "maybe", "true"),
        ("textPort", "8500", "must differ from grpcPort and restPort"),
        ("textPort", "51678", "51678"),
    ],
)
def test_bad_endpoint_settings_are_one_line_naming_the_setting(key: str, value: str, allowed: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({**CDK_JSON_CONTEXT, key: value}.get)

    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"Invalid setting '{key}' = ")
    assert allowed in line


# --- the image -----------------------------------------------------------------------------------


def test_the_front_runs_from_what_its_image_holds(synth: SynthFn, tmp_path: Path) -> None:
    (image,) = [image for image in docker_images(synth("default")) if image["dockerFile"].startswith("text_front/")]
    root = tmp_path / "image"
    copy_as_built(COMPONENTS / image["dockerFile"], Path(image["context"]), root, workdir="/app")
    model_folder(tmp_path / "model")
    check = (
        "import components, sys\n"
        "from components.text_front.runtime.front import build\n"
        f"assert components.__file__.startswith({str(root)!r}), components.__file__\n"
        f"build({{'MODEL_NAME': 'bert', 'MODEL_BASE_PATH': {str(tmp_path / 'model')!r}, "
        "'MODEL_SERVER': '127.0.0.1:1', 'SERVER_API': 'tfserving'})\n"
    )

    # Run from the image's /app, not the repository: an import the image lacks fails here.
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=root / "app",
        env={**os.environ, "PYTHONPATH": str(root / "app")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    # The baked model's weights stay in the server's image: the front's context has no model file.
    assert not [name for name in image["files"] if name.endswith((".pb", ".pt", ".neff")) or "/variables/" in name]
