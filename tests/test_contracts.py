"""Names that cross a boundary: the ones a shell script or a Dockerfile reads, which cannot import the
module that holds them, and the ones the stack and the client meet on.

Python on either side imports the one home (``components/model_server/runtime/task_environment.py``,
``components/neuron_monitor/runtime/*``, ``contracts/``), so no copy is left to compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

import pytest
from aws_cdk import aws_logs as logs

from components.log_retention import retention
from components.model_server.images import CONTEXT_DIR, SIDECAR_DOCKERFILES
from components.model_server.runtime import task_environment as env
from components.neuron_monitor.runtime import monitor_environment as monitor_env
from components.text_front.runtime import front_environment as front_env
from config.hardware import INSTANCE_SIZES
from config.log_retention import LOG_RETENTION_DAYS
from config.profile import Sidecar
from contracts import containers, outputs
from tests.conftest import ROOT, VARIANTS, Synthesized
from tests.paths import SERVER_RUNTIME

SynthFn = Callable[[str], Synthesized]


def _names(module: ModuleType) -> set[str]:
    return {value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}


CONTRACT_NAMES = _names(env) | _names(monitor_env) | _names(front_env)
# Variables an image sets for its own programs, not for the task: the loader's and the shell's, and where the
# Triton entrypoint finds tritonserver and its backends.
IMAGE_INTERNAL = {"LD_LIBRARY_PATH", "PATH", "DEBIAN_FRONTEND", "TRITONSERVER", "TRITON_BACKENDS"}


@pytest.mark.parametrize("script", ["serve.sh", "Dockerfile", "Dockerfile.triton"])
def test_every_variable_the_model_server_reads_is_a_contract(script: str) -> None:
    text = (SERVER_RUNTIME / script).read_text()
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    build_args = set(re.findall(r"^ARG ([A-Z0-9_]+)", text, flags=re.MULTILINE))
    environment = set(re.findall(r"^ENV ([A-Z0-9_]+)=|^\s+([A-Z0-9_]+)=", text, flags=re.MULTILINE))

    assert read
    assert read - build_args <= CONTRACT_NAMES | IMAGE_INTERNAL, read - build_args - CONTRACT_NAMES
    assert {name for pair in environment for name in pair if name} - IMAGE_INTERNAL <= CONTRACT_NAMES


def test_the_check_sees_a_variable_no_module_holds() -> None:
    assert "NEURON_CORES_PER_TSK" not in CONTRACT_NAMES | IMAGE_INTERNAL


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


def test_each_sidecar_has_its_image() -> None:
    for sidecar in Sidecar:
        assert (CONTEXT_DIR / SIDECAR_DOCKERFILES[sidecar]).is_file()
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
        outputs.TENSOR_TLS,
        outputs.RELAY_TASK_DEFINITION,
        outputs.RELAY_SECURITY_GROUP,
        outputs.RELAY_SUBNETS,
    }
    per_model = {
        outputs.model_output(key, index)
        for index in range(len(synthesized.settings.models))
        for key in (*outputs.PER_MODEL, *((outputs.TEXT_URL,) if synthesized.settings.profile.text_front else ()))
    }

    assert set(synthesized.json["Outputs"]) == stack_wide | per_model


def test_the_docs_show_each_sizes_price() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    for family in ("inf1", "inf2"):
        sizes = [size for name, size in INSTANCE_SIZES.items() if name.startswith(family)]
        row = " / ".join(f"{size.on_demand_usd_per_hour:.3f}" for size in sizes)
        assert row in operations, f"docs/operations.md's price row for {family} should read {row}"


def test_every_retention_period_maps_to_cdks_own() -> None:
    named = {member for member in logs.RetentionDays if member is not logs.RetentionDays.INFINITE}

    assert {retention(days) for days in LOG_RETENTION_DAYS} == named
    assert list(LOG_RETENTION_DAYS) == sorted(LOG_RETENTION_DAYS)
