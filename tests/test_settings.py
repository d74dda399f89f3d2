"""Settings: cdk.json's defaults, string overrides as `-c` gives them, and one clear line per bad value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.log_retention import retention
from config.hardware import INSTANCE_SIZES, NeuronFamily
from config.log_retention import LOG_RETENTION_DAYS
from config.profile import NeuronRuntime
from config.settings import DeploymentSettings, SettingsError, defaults, load_settings
from tests.conftest import CDK_JSON_CONTEXT, ROOT

# The walk-through's AMI; rtd needs one named (no current ECS AMI runs neuron-rtd).
RTD_AMI = "ami-04450f16e0cd20356"


def settings_with(**overrides: object) -> DeploymentSettings:
    return load_settings({**CDK_JSON_CONTEXT, **overrides}.get)


def test_cdk_json_lists_every_setting_with_the_code_default() -> None:
    # GIVEN the settings block of cdk.json THEN it names each setting with the value the code defaults to
    assert {key: CDK_JSON_CONTEXT[key] for key in defaults()} == dict(defaults())


def test_defaults_reproduce_the_walkthrough_on_todays_runtime() -> None:
    nothing_set: dict[str, object] = {}
    settings = load_settings(nothing_set.get)

    assert settings.instance_size.name == "inf1.xlarge"
    assert settings.spot is True
    assert (settings.min_instances, settings.max_instances, settings.desired_count) == (0, 2, 1)
    assert settings.profile.runtime is NeuronRuntime.LIBNRT
    assert (settings.models[0].name, settings.models[0].grpc_port, settings.models[0].rest_port) == ("bert", 8500, 8501)
    assert settings.key_name is None
    # allowedCidr unset means the VPC's own CIDR, as a literal block
    assert settings.allowed_cidr == settings.vpc_cidr == "10.0.0.0/16"


def test_string_values_from_the_command_line_are_parsed() -> None:
    settings = settings_with(
        spot="FALSE", maxInstances="5", desiredCount="4", maxTasks="5", grpcPort="9000", keyName="my key"
    )

    assert settings.spot is False
    assert settings.max_instances == 5
    assert settings.desired_count == 4
    assert settings.models[0].grpc_port == 9000
    assert settings.key_name == "my key"


@pytest.mark.parametrize("size", sorted(INSTANCE_SIZES))
def test_every_inferentia_size_is_accepted(size: str) -> None:
    settings = settings_with(instanceType=size)

    assert settings.instance_size is INSTANCE_SIZES[size]
    assert len(settings.instance_size.device_paths) == settings.instance_size.chips


def test_instance_table_matches_the_brief() -> None:
    table = {
        name: (size.chips, size.neuron_cores, size.vcpus, size.memory_gib) for name, size in INSTANCE_SIZES.items()
    }
    assert table == {
        "inf1.xlarge": (1, 4, 4, 8),
        "inf1.2xlarge": (1, 4, 8, 16),
        "inf1.6xlarge": (4, 16, 24, 48),
        "inf1.24xlarge": (16, 64, 96, 192),
        "inf2.xlarge": (1, 2, 4, 16),
        "inf2.8xlarge": (1, 2, 32, 128),
        "inf2.24xlarge": (6, 12, 96, 384),
        "inf2.48xlarge": (12, 24, 192, 768),
    }
    assert INSTANCE_SIZES["inf2.48xlarge"].family is NeuronFamily.INF2
    assert INSTANCE_SIZES["inf1.24xlarge"].device_paths[-1] == "/dev/neuron15"


BAD_VALUES = [
    # (key, value, words the one-line message must contain)
    ("instanceType", "m5.large", "inf1.xlarge"),
    ("instanceType", "inf3.xlarge", "expected one of"),
    ("instanceType", "", "expected one of"),
    ("spot", "yes", "true or false"),
    ("spot", 1, "true or false"),
    ("minInstances", "-1", "whole number from 0"),
    ("minInstances", "1.5", "whole number"),
    ("maxInstances", "0", "whole number from 1"),
    ("maxInstances", "abc", "whole number"),
    ("maxInstances", True, "whole number"),
    ("desiredCount", -3, "whole number from 0"),
    ("desiredCount", "", "whole number"),
    ("allowedCidr", "10.0.0.0", "CIDR"),
    ("allowedCidr", "10.0.0.1/16", "CIDR"),
    ("allowedCidr", "300.0.0.0/8", "CIDR"),
    ("allowedCidr", "not-a-cidr", "CIDR"),
    ("allowedCidr", "::/0", "IPv4"),
    ("allowedCidr", "0.0.0.0/0", "must not be the whole internet"),
    ("vpcCidr", "8.8.0.0/16", "private IPv4"),
    ("vpcCidr", "10.0.0.0/8", "/16 to /22"),
    ("neuronRuntime", "neuron-rtd", "libnrt, rtd"),
    ("neuronRuntime", "LIBNRT", "libnrt, rtd"),
    ("modelName", "", "letters, digits"),
    ("modelName", "bert/base", "letters, digits"),
    ("modelName", "-bert", "starting with a letter or digit"),
    ("modelName", "b" * 64, "1-63"),
    ("modelName", "neuron-rtd", "not model-sync or neuron-monitor or neuron-rtd"),
    ("grpcPort", "0", "from 1 to 65535"),
    ("grpcPort", "65536", "from 1 to 65535"),
    ("restPort", "51678", "kept by the ECS agent"),
    ("grpcPort", "22", "kept by the ECS agent"),
    ("keyName", " leading-space", "key pair name"),
    ("keyName", "tab\tkey", "key pair name"),
    ("natGateways", "0", "from 1 to 2"),
    ("rootVolumeGiB", "8", "from 30"),
    ("logRetentionDays", "31", "expected one of 1, 3"),
    ("stackName", "1stack", "starting with a letter"),
    ("stackName", "my_stack", "letters, digits or '-'"),
    ("coresPerTask", "-1", "whole number"),
    ("publicEndpoint", "maybe", "true or false"),
    ("minTasks", "-1", "whole number from 0"),
    ("minTasks", "0", "0 only parks the service, with desiredCount=0"),
    ("amiId", "ami-123", "ami- and 8 or 17 lower-case hex digits"),
    ("amiId", "AMI-0123abcd", "ami- and 8 or 17 lower-case hex digits"),
    ("amiId", "ami-0123456789abcdef", "ami- and 8 or 17 lower-case hex digits"),
    ("amiId", 42, "expected a string"),
    ("amiRelease", "latest", "expected empty (the AMI the release table was checked on), recommended"),
    ("amiRelease", "al2023-ami-ecs-hvm-2023.0.20260820-kernel-6.1-x86_64", "an ECS Neuron AMI name"),
    ("neuronRuntime", "rtd", "'rtd' needs amiId: no current ECS AMI runs neuron-rtd"),
    ("availabilityZones", "1", "a count from 2 to 6"),
    ("availabilityZones", 7, "a count from 2 to 6"),
    ("availabilityZones", "us-east-1a", "2-6 zone names"),
    ("availabilityZones", "us-east-1a,us-east-1a", "each once"),
    ("availabilityZones", "us-east-1a,us-west-2b", "zones of one region"),
    ("availabilityZones", "us-east-1a,useast1b", "2-6 zone names"),
    ("availabilityZones", '["us-east-1a", 3]', "2-6 zone names"),
    ("fallbackInstanceTypes", "inf1.6xlarge", "would change the task layout: inf1.6xlarge has 4 chips"),
    ("fallbackInstanceTypes", "inf2.xlarge", "would change the task layout"),
    ("fallbackInstanceTypes", "inf1.xlarge", "other than instanceType (inf1.xlarge)"),
    ("fallbackInstanceTypes", "m5.large", "expected sizes from inf1.xlarge"),
    ("onDemandBase", "-1", "whole number from 0"),
    ("onDemandBase", "3", "must not exceed maxInstances (2)"),
    ("maxTasks", "3", "must not exceed maxInstances x tasks per instance (2)"),
    ("batching", "yes", "expected {} to turn batching off"),
    ("batching", {"maxBatch": 4}, "maxBatchSize, batchTimeoutMicros"),
    ("batching", [8], "expected {}"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD_VALUES)
def test_bad_value_is_rejected_with_one_line_naming_the_setting(key: str, value: object, allowed: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_with(**{key: value})

    message = str(raised.value)
    assert message.startswith(f"Invalid setting '{key}' = ")
    assert allowed in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        ({"minInstances": 3, "maxInstances": 2}, "minInstances", "must not exceed maxInstances (2)"),
        (
            {"desiredCount": 3, "maxInstances": 2},
            "desiredCount",
            "must not exceed maxInstances x tasks per instance (2 x 1)",
        ),
        (
            {"desiredCount": 13, "maxInstances": 1, "instanceType": "inf2.48xlarge"},
            "desiredCount",
            "(1 x 12): each task holds 2 of the 24 NeuronCores",
        ),
        ({"coresPerTask": 3, "instanceType": "inf1.6xlarge"}, "coresPerTask", "one of 1, 2, 4, 8, 16 on inf1.6xlarge"),
        ({"coresPerTask": 8, "instanceType": "inf1.xlarge"}, "coresPerTask", "from 0 to 4"),
        ({"coresPerTask": 2, "neuronRuntime": "rtd", "amiId": RTD_AMI}, "coresPerTask", "one task per instance"),
        ({"minTasks": 0, "desiredCount": 1}, "minTasks", "autoscaling could never bring it back"),
        ({"maxInstances": 1, "maxTasks": 1}, "maxInstances", "must be at least 2"),
        (
            {"availabilityZones": 3, "vpcCidr": "10.0.0.0/22"},
            "vpcCidr",
            "holds 4 /24 subnets, and 3 availability zones need 6",
        ),
        (
            {"coresPerTask": 1, "fallbackInstanceTypes": ["inf1.2xlarge"]},
            "fallbackInstanceTypes",
            "has 8 vCPUs where inf1.xlarge has 4: with 4 tasks per instance",
        ),
        ({"desiredCount": 2, "maxTasks": 1}, "desiredCount", "between minTasks (1) and maxTasks (1)"),
        ({"desiredCount": 0}, "desiredCount", "between minTasks (1) and maxTasks (2)"),
        ({"batching": {"maxBatchSize": 0}}, "batching.maxBatchSize", "from 1 to 1024"),
        ({"grpcPort": 9000, "restPort": 9000}, "restPort", "must differ from grpcPort"),
        ({"neuronRuntime": "rtd", "instanceType": "inf2.xlarge"}, "neuronRuntime", "only on inf1 sizes"),
        ({"publicEndpoint": True}, "publicEndpoint", "needs allowedCidr too"),
        (
            {"neuronRuntime": "rtd", "amiId": RTD_AMI, "batching": {"maxBatchSize": 8}},
            "batching",
            "not available in the rtd layout",
        ),
    ],
)
def test_conflicting_values_name_the_setting_to_change(overrides: dict[str, object], key: str, allowed: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_with(**overrides)

    assert str(raised.value).startswith(f"Invalid setting '{key}' = ")
    assert allowed in str(raised.value)


@pytest.mark.parametrize(
    ("size", "cores", "tasks"),
    [
        ("inf1.xlarge", 0, 1),  # 0 means one chip: 4 cores
        ("inf1.24xlarge", 0, 16),
        ("inf1.6xlarge", 1, 16),
        ("inf2.xlarge", 0, 1),  # 2 cores per chip
        ("inf2.24xlarge", 4, 3),  # groups of two chips
        ("inf2.48xlarge", 24, 1),  # the whole instance
    ],
)
def test_cores_per_task_decides_tasks_per_instance(size: str, cores: int, tasks: int) -> None:
    settings = settings_with(instanceType=size, coresPerTask=cores)

    assert settings.tasks_per_instance == tasks
    assert settings.models[0].cores_per_task * tasks == INSTANCE_SIZES[size].neuron_cores


def test_batching_is_off_by_default_and_renders_tf_servings_parameters_file() -> None:
    assert settings_with().batching is None
    assert settings_with(batching="").batching is None

    batching = settings_with(batching='{"maxBatchSize": 16, "batchTimeoutMicros": 2000}').batching

    assert batching is not None
    assert batching.parameters_file() == (
        "max_batch_size { value: 16 }\n"
        "batch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 4 }\n"
        "max_enqueued_batches { value: 100 }\n"
    )


def test_rtd_always_takes_the_whole_instance() -> None:
    assert settings_with(neuronRuntime="rtd", instanceType="inf1.6xlarge", amiId=RTD_AMI).tasks_per_instance == 1


@pytest.mark.parametrize("ami", ["ami-0123abcd", "ami-04450f16e0cd20356"])
def test_ami_id_takes_both_image_id_lengths_in_either_layout(ami: str) -> None:
    assert settings_with(amiId=ami).ami_id == ami
    assert settings_with(amiId=ami, neuronRuntime="rtd").ami_id == ami
    assert settings_with().ami_id is None


def test_the_default_ami_is_the_named_release_the_table_was_checked_on() -> None:
    assert settings_with().ami_release == "al2023-ami-ecs-neuron-hvm-2023.0.20260820-kernel-6.1-x86_64"
    assert settings_with(amiRelease="recommended").ami_release == "recommended"
    named = "al2023-ami-ecs-neuron-hvm-2023.0.20261030-kernel-6.1-x86_64"
    assert settings_with(amiRelease=named).ami_release == named


def test_ami_release_and_ami_id_name_one_image_only() -> None:
    with pytest.raises(SettingsError, match="amiId already names the image"):
        settings_with(amiRelease="recommended", amiId="ami-0123abcd")


def test_parking_is_min_tasks_and_desired_count_zero() -> None:
    parked = settings_with(minTasks=0, desiredCount="0")

    assert parked.parked
    assert (parked.min_tasks, parked.desired_count, parked.max_tasks) == (0, 0, 2)
    assert not settings_with().parked


def test_every_retention_period_is_one_cdk_can_express() -> None:
    names = {days: retention(days).name for days in LOG_RETENTION_DAYS}  # KeyError on a gap

    assert (names[1], names[30], names[3653]) == ("ONE_DAY", "ONE_MONTH", "TEN_YEARS")
    assert len(set(names.values())) == len(LOG_RETENTION_DAYS)


def _run_app(context: dict[str, object], outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**CDK_JSON_CONTEXT, **context}),
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_app_exits_with_one_line_and_writes_no_template_on_a_bad_value(tmp_path: Path) -> None:
    # GIVEN an unknown instance type, as `cdk synth -c instanceType=m5.large` would pass it
    result = _run_app({"instanceType": "m5.large"}, tmp_path)

    # THEN the app fails with exactly one line naming the setting, and nothing half-made
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Invalid setting 'instanceType' = 'm5.large': expected one of " + ", ".join(INSTANCE_SIZES)
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_readme_documents_every_setting_with_its_default() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    table = page[page.index("## Settings") : page.index("### Instance sizes")]

    for key, default in defaults().items():
        rows = [line.split("|") for line in table.splitlines() if line.startswith("|")]
        row = next(("|".join(cells[2:]) for cells in rows if f"`{key}`" in cells[1]), None)
        assert row is not None, f"docs/settings.md's table lacks {key}"
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert shown == "" or f"`{shown}`" in row, f"docs/settings.md shows another default for {key}"


@pytest.mark.parametrize("given", ["inf1.2xlarge", ["inf1.2xlarge"], '["inf1.2xlarge"]', " inf1.2xlarge "])
def test_fallback_sizes_arrive_as_a_list_or_a_comma_separated_string(given: object) -> None:
    assert [size.name for size in settings_with(fallbackInstanceTypes=given).instance_sizes] == [
        "inf1.xlarge",
        "inf1.2xlarge",
    ]


@pytest.mark.parametrize(
    ("given", "count", "names"),
    [
        (3, 3, ()),
        ("2", 2, ()),
        ("us-east-1a,us-east-1c", 2, ("us-east-1a", "us-east-1c")),
        (["eu-west-1a", "eu-west-1b", "eu-west-1c"], 3, ("eu-west-1a", "eu-west-1b", "eu-west-1c")),
    ],
)
def test_zones_are_a_count_or_names(given: object, count: int, names: tuple[str, ...]) -> None:
    zones = settings_with(availabilityZones=given).zones

    assert (zones.count, zones.names) == (count, names)
