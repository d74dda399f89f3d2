"""Capacity: Inferentia instances from the Neuron ECS AMI, joined to the cluster by a capacity provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.conftest import ASG_VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]

# A named release, not "recommended", whose Neuron drivers the release table was checked against.
AL2023_NEURON_AMI = (
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/"
    "al2023-ami-ecs-neuron-hvm-2023.0.20260820-kernel-6.1-x86_64/image_id"
)
SPOT_DRAINING = "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true"


def launch_data(synthesized: Synthesized) -> dict[str, Any]:
    return dict(synthesized.only("AWS::EC2::LaunchTemplate")["LaunchTemplateData"])


def user_data(synthesized: Synthesized) -> str:
    """The user data script, with CloudFormation references shown as {Ref}."""
    parts = launch_data(synthesized)["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else "{" + json.dumps(part) + "}" for part in parts)


def ami_parameter(synthesized: Synthesized) -> str:
    image_ref = launch_data(synthesized)["ImageId"]["Ref"]
    return str(synthesized.json["Parameters"][image_ref]["Default"])


@pytest.mark.parametrize("variant", ["default", "rtd", "inf2", "large"])
def test_instances_use_a_hardened_launch_template_never_a_launch_configuration(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)

    synthesized.template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    data = launch_data(synthesized)
    assert data["InstanceType"] == synthesized.settings.instance_size.name
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 60, "VolumeType": "gp3"},
        }
    ]


@pytest.mark.parametrize("variant", ["default", "inf2", "large", "split", "multi"])
def test_ami_comes_from_the_al2023_neuron_ecs_ssm_parameter_without_a_lookup(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)

    assert ami_parameter(synthesized) == AL2023_NEURON_AMI
    # A context lookup would show up as "missing" context and need an AWS account to resolve.
    manifest = json.loads((synthesized.directory / "manifest.json").read_text())
    assert "missing" not in manifest


def test_ami_id_boots_the_named_image_in_every_region_without_a_lookup(synth: SynthFn) -> None:
    synthesized = synth("rtd")

    assert launch_data(synthesized)["ImageId"] == "ami-04450f16e0cd20356"
    assert "Mappings" not in synthesized.json
    assert not [name for name in synthesized.json.get("Parameters", {}) if "SsmParameterValue" in name]


def test_user_data_joins_the_cluster_and_drains_on_spot_notices(synth: SynthFn) -> None:
    script = user_data(synth("default"))

    assert 'echo ECS_CLUSTER={{"Ref": "Cluster' in script
    assert f"echo {SPOT_DRAINING} >> /etc/ecs/ecs.config" in script


def test_on_demand_capacity_does_not_enable_spot_draining(synth: SynthFn) -> None:
    assert SPOT_DRAINING not in user_data(synth("inf2"))


@pytest.mark.parametrize("variant", ["default", "large", "inf2", "split"])
def test_user_data_waits_for_the_sizes_devices_before_the_join_line(synth: SynthFn, variant: str) -> None:
    # The AMI owns the driver (tests/test_host_user_data.py runs the script on a simulated host).
    synthesized = synth(variant)
    script = user_data(synthesized)

    assert f"NEURON_DEVICE_COUNT={synthesized.settings.instance_size.chips}\n" in script
    assert script.index("NEURON_DEVICE_COUNT") < script.index("ECS_CLUSTER=")


@pytest.mark.parametrize(("variant", "on_demand_percent"), [("default", 0), ("inf2", 100)])
def test_spot_setting_chooses_the_purchase_option(synth: SynthFn, variant: str, on_demand_percent: int) -> None:
    group = synth(variant).only("AWS::AutoScaling::AutoScalingGroup")

    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == on_demand_percent
    assert distribution["OnDemandBaseCapacity"] == 0
    assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"


@pytest.mark.parametrize(("variant", "bounds"), [("default", ("0", "2")), ("large", ("1", "4"))])
def test_group_bounds_come_from_settings_and_instances_are_in_private_subnets(
    synth: SynthFn, variant: str, bounds: tuple[str, str]
) -> None:
    group = synth(variant).only("AWS::AutoScaling::AutoScalingGroup")

    assert (group["MinSize"], group["MaxSize"]) == bounds
    assert "DesiredCapacity" not in group  # managed scaling owns it
    assert all("PrivateSubnet" in subnet["Ref"] for subnet in group["VPCZoneIdentifier"])


def test_capacity_provider_scales_the_group_and_protects_busy_instances(synth: SynthFn) -> None:
    synthesized = synth("default")

    synthesized.template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "AutoScalingGroupProvider": {
                "AutoScalingGroupArn": Match.any_value(),
                "ManagedScaling": {"Status": "ENABLED", "TargetCapacity": 100},
                # Scale-in takes only instances that run no task; the protection is lifted at delete.
                "ManagedTerminationProtection": "ENABLED",
                "ManagedDraining": "ENABLED",
            }
        },
    )
    group = synthesized.only("AWS::AutoScaling::AutoScalingGroup")
    assert group["NewInstancesProtectedFromScaleIn"] is True
    synthesized.template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"CapacityProviders": [{"Ref": Match.string_like_regexp("CapacityCapacityProvider")}]},
    )


def test_instance_role_carries_the_ecs_agent_and_ssm_only(synth: SynthFn) -> None:
    synthesized = synth("default")

    synthesized.template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
            ),
            "ManagedPolicyArns": [
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonSSMManagedInstanceCore"]]}
            ],
        },
    )
    policies = [
        resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in synthesized.resources("AWS::IAM::Policy").values()
        if any("InstanceRole" in role["Ref"] for role in resource["Properties"]["Roles"])
    ]
    actions = {action for statements in policies for statement in statements for action in _actions(statement)}
    assert "ecs:RegisterContainerInstance" in actions
    assert all(action.split(":")[0] in {"ecs", "ecr", "logs"} for action in actions)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_scaling_events_go_to_a_topic_that_refuses_plain_http(synth: SynthFn) -> None:
    synthesized = synth("default")

    group = synthesized.only("AWS::AutoScaling::AutoScalingGroup")
    (notification,) = group["NotificationConfigurations"]
    assert notification["TopicARN"]["Ref"] in synthesized.resources("AWS::SNS::Topic")
    assert set(notification["NotificationTypes"]) >= {
        "autoscaling:EC2_INSTANCE_LAUNCH",
        "autoscaling:EC2_INSTANCE_TERMINATE",
        "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
        "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    }
    policy = synthesized.only("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_fallback_sizes_are_offered_in_order_and_tasks_follow_them(synth: SynthFn) -> None:
    synthesized = synth("inf2")
    policy = synthesized.only("AWS::AutoScaling::AutoScalingGroup")["MixedInstancesPolicy"]

    overrides = [override["InstanceType"] for override in policy["LaunchTemplate"]["Overrides"]]
    assert overrides == ["inf2.xlarge", "inf2.8xlarge"]
    service = synthesized.only_serving("AWS::ECS::Service")
    assert {"Type": "memberOf", "Expression": "attribute:ecs.instance-type in [inf2.xlarge, inf2.8xlarge]"} in (
        service["PlacementConstraints"]
    )
    # one task per instance: alone on every size, whatever its vCPUs
    assert {"Type": "distinctInstance"} in service["PlacementConstraints"]


def test_without_fallback_sizes_the_group_launches_one_size(synth: SynthFn) -> None:
    policy = synth("default").only("AWS::AutoScaling::AutoScalingGroup")["MixedInstancesPolicy"]

    assert "Overrides" not in policy["LaunchTemplate"]


@pytest.mark.parametrize(("variant", "base"), [("default", 0), ("split", 1)])
def test_on_demand_base_keeps_instances_beneath_the_spot_ones(synth: SynthFn, variant: str, base: int) -> None:
    distribution = synth(variant).only("AWS::AutoScaling::AutoScalingGroup")["MixedInstancesPolicy"][
        "InstancesDistribution"
    ]

    assert distribution["OnDemandBaseCapacity"] == base


# --- a spot interruption's two minutes -------------------------------------------------------------

# EC2 gives a spot instance two minutes' notice (ECS developer guide, "Spot Instance draining"); the ECS
# agent looks for it every second (amazon-ecs-agent agent/app/agent.go, startSpotInstanceDrainingPoller)
# and sets the instance DRAINING. What is left must cover ECS acting on that, then the target's
# deregistration delay (new connections stop, in-flight ones finish), then the server's stop timeout.
SPOT_NOTICE_SECONDS = 120
AGENT_POLL_SECONDS = 1
# Room for the DRAINING call, the scheduler choosing the tasks to stop, and the deregistration to start.
ECS_REACTION_MARGIN_SECONDS = 45
# The agent's default when a container sets none (amazon-ecs-agent README, ECS_CONTAINER_STOP_TIMEOUT).
DEFAULT_STOP_TIMEOUT_SECONDS = 30


def drain_seconds(synthesized: Synthesized) -> int:
    """The longest a task's drain can take, from the template: deregistration delay + container stop timeout."""
    delays = [
        int(attribute["Value"])
        for group in synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
        for attribute in group["Properties"].get("TargetGroupAttributes", [])
        if attribute["Key"] == "deregistration_delay.timeout_seconds"
    ]
    stops = [
        int(container.get("StopTimeout", DEFAULT_STOP_TIMEOUT_SECONDS))
        for definition in synthesized.serving("AWS::ECS::TaskDefinition").values()
        for container in definition["Properties"]["ContainerDefinitions"]
    ]
    assert delays
    assert stops
    return max(delays) + max(stops)


@pytest.mark.parametrize("variant", ASG_VARIANTS)
def test_a_task_drains_within_the_spot_notice_with_room_to_spare(synth: SynthFn, variant: str) -> None:
    assert AGENT_POLL_SECONDS + drain_seconds(synth(variant)) <= SPOT_NOTICE_SECONDS - ECS_REACTION_MARGIN_SECONDS


def test_the_budget_refuses_the_old_drain() -> None:
    # 60 s deregistration delay + 60 s stop timeout: the whole notice, and ECS has not acted yet.
    assert AGENT_POLL_SECONDS + 60 + 60 > SPOT_NOTICE_SECONDS - ECS_REACTION_MARGIN_SECONDS


@pytest.mark.parametrize("variant", ASG_VARIANTS)
def test_spot_groups_rebalance_before_the_interruption(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    group = synthesized.only("AWS::AutoScaling::AutoScalingGroup")

    assert group.get("CapacityRebalance", False) is synthesized.settings.spot
