"""ECS Managed Instances as a capacity mode: AWS runs the Inf2 instances, one task each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config.settings import SettingsError, load_settings
from tests.conftest import CDK_JSON_CONTEXT, Synthesized

SynthFn = Callable[[str], Synthesized]
MANAGED = {**CDK_JSON_CONTEXT, "capacity": "managedInstances", "instanceType": "inf2.xlarge"}


def server(synthesized: Synthesized) -> dict[str, Any]:
    task = synthesized.only_serving("AWS::ECS::TaskDefinition")
    return next(c for c in task["ContainerDefinitions"] if c["Name"] == synthesized.settings.models[0].name)


def test_the_provider_launches_only_the_configured_size_as_spot(synth: SynthFn) -> None:
    synthesized = synth("managed")
    provider = synthesized.only("AWS::ECS::CapacityProvider")["ManagedInstancesProvider"]
    template = provider["InstanceLaunchTemplate"]

    assert template["InstanceRequirements"]["AllowedInstanceTypes"] == ["inf2.xlarge"]
    assert template["InstanceRequirements"]["VCpuCount"] == {"Min": 4, "Max": 4}
    assert template["CapacityOptionType"] == "SPOT"
    assert all("PrivateSubnet" in subnet["Ref"] for subnet in template["NetworkConfiguration"]["Subnets"])
    # no group, launch template, user data, AMI or key pair of this stack's
    for resource_type in ("AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate"):
        synthesized.template.resource_count_is(resource_type, 0)


def test_the_server_asks_for_every_neuron_device_in_a_managed_instances_task(synth: SynthFn) -> None:
    synthesized = synth("managed")
    task = synthesized.only_serving("AWS::ECS::TaskDefinition")
    container = server(synthesized)

    assert task["RequiresCompatibilities"] == ["MANAGED_INSTANCES"]
    assert task["NetworkMode"] == "awsvpc"
    assert container["ResourceRequirements"] == [{"Type": "NeuronDevice", "Value": "ALL"}]
    assert "Devices" not in container.get("LinuxParameters", {})
    # one task per instance: no core slot to claim, every core visible
    assert not [v for v in container.get("Environment", []) if v["Name"].startswith("NEURON_CORE")]
    assert {(p["ContainerPort"], p.get("HostPort")) for p in container["PortMappings"]} == {(8500, 8500), (8501, 8501)}


def test_the_service_runs_on_the_provider_with_its_own_interfaces_behind_ip_targets(synth: SynthFn) -> None:
    synthesized = synth("managed")
    service = synthesized.only_serving("AWS::ECS::Service")

    (strategy,) = service["CapacityProviderStrategy"]
    assert strategy["CapacityProvider"] == {"Ref": next(iter(synthesized.resources("AWS::ECS::CapacityProvider")))}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert "LaunchType" not in service
    assert (
        service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    )  # AWS adds an instance for the replacement
    assert "DesiredCount" not in service
    for group in synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values():
        assert group["Properties"]["TargetType"] == "ip"


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        ({"instanceType": "inf1.xlarge"}, "capacity", "Inf1 runs on the EC2 launch type only"),
        ({"neuronRuntime": "rtd", "amiId": "ami-0123abcd", "instanceType": "inf1.xlarge"}, "capacity", "Inf1"),
        ({"amiId": "ami-0123abcd"}, "amiId", "means nothing with capacity=managedInstances"),
        ({"keyName": "ops"}, "keyName", "means nothing with capacity=managedInstances"),
        ({"fallbackInstanceTypes": "inf2.8xlarge"}, "fallbackInstanceTypes", "means nothing"),
        ({"onDemandBase": 1}, "onDemandBase", "means nothing"),
        ({"maxInstances": 5}, "maxInstances", "means nothing"),
        ({"coresPerTask": 1}, "coresPerTask", "ECS Managed Instances runs one task per instance"),
        ({"capacity": "fargate"}, "capacity", "expected one of asg, managedInstances"),
    ],
)
def test_settings_that_mean_nothing_or_cannot_work_there_are_refused(
    overrides: dict[str, object], key: str, allowed: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**MANAGED, **overrides}.get)

    assert str(raised.value).startswith(f"Invalid setting '{key}' = ")
    assert allowed in str(raised.value)


def test_a_managed_fleet_is_not_bounded_by_max_instances() -> None:
    settings = load_settings({**MANAGED, "maxTasks": 10, "desiredCount": 4}.get)

    assert settings.task_slots is None
    assert settings.max_tasks == 10


def test_a_model_from_s3_works_there_too() -> None:
    settings = load_settings({**MANAGED, "modelS3Uri": "s3://models-1/bert"}.get)

    assert settings.models[0].s3 is not None
