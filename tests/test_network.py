"""Network: a VPC over three zones (or named ones), instances in private subnets, only the model server's ports open."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.conftest import Synthesized

SynthFn = Callable[[str], Synthesized]


def ingress_rules(synthesized: Synthesized) -> list[dict[str, Any]]:
    """Every ingress rule, inline or standalone, with the GroupId it belongs to."""
    rules = []
    for logical_id, group in synthesized.resources("AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            rules.append({**rule, "GroupId": {"Fn::GetAtt": [logical_id, "GroupId"]}})
    for resource in synthesized.resources("AWS::EC2::SecurityGroupIngress").values():
        rules.append(resource["Properties"])
    return rules


def test_vpc_spans_three_of_the_regions_zones_with_one_nat_gateway(synth: SynthFn) -> None:
    default = synth("default")

    default.template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    subnets = default.resources("AWS::EC2::Subnet").values()
    assert len(subnets) == 6  # public and private, in each of three AZs
    zones = {json.dumps(subnet["Properties"]["AvailabilityZone"]) for subnet in subnets}
    assert zones == {json.dumps({"Fn::Select": [index, {"Fn::GetAZs": ""}]}) for index in range(3)}
    default.template.resource_count_is("AWS::EC2::NatGateway", 1)


def test_named_zones_are_used_as_given(synth: SynthFn) -> None:
    subnets = synth("inf2").resources("AWS::EC2::Subnet").values()

    assert sorted({subnet["Properties"]["AvailabilityZone"] for subnet in subnets}) == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1d",
    ]
    # the instances and the load balancer span every zone
    group = synth("inf2").only("AWS::AutoScaling::AutoScalingGroup")
    assert len(group["VPCZoneIdentifier"]) == 3


def instance_ingress(synthesized: Synthesized) -> list[tuple[int, int, str]]:
    """(from port, to port, source) of every rule on the instances' security group."""
    group_id = next(key for key in synthesized.resources("AWS::EC2::SecurityGroup") if "InstanceSecurityGroup" in key)
    rules = []
    for rule in ingress_rules(synthesized):
        if rule.get("GroupId", {}).get("Fn::GetAtt", [group_id])[0] != group_id:
            continue
        source = rule.get("CidrIp") or rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        rules.append((rule["FromPort"], rule["ToPort"], source))
    return sorted(rules)


@pytest.mark.parametrize("variant", ["default", "inf2", "split"])
def test_instances_admit_only_the_load_balancer_on_dynamic_host_ports(synth: SynthFn, variant: str) -> None:
    # GIVEN no keyName THEN the only way in is from the load balancer's security group
    assert instance_ingress(synth(variant)) == [(32768, 65535, "EndpointSecurityGroup3A4D971B")]


def test_rtd_instances_admit_the_load_balancer_on_the_static_ports(synth: SynthFn) -> None:
    assert instance_ingress(synth("rtd")) == [
        (8500, 8500, "EndpointSecurityGroup3A4D971B"),
        (8501, 8501, "EndpointSecurityGroup3A4D971B"),
    ]


def test_ssh_opens_only_when_a_key_pair_is_named(synth: SynthFn) -> None:
    # GIVEN keyName and allowedCidr (the "large" variant) THEN port 22 opens to allowedCidr only
    assert (22, 22, "203.0.113.0/24") in instance_ingress(synth("large"))
    assert all(rule[0] != 22 for rule in instance_ingress(synth("default")))
    synth("large").template.has_resource_properties(
        "AWS::EC2::LaunchTemplate", {"LaunchTemplateData": Match.object_like({"KeyName": "ops-key"})}
    )


def test_no_key_pair_means_no_key_in_the_launch_template(synth: SynthFn) -> None:
    data = synth("default").only("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]

    assert "KeyName" not in data


def test_vpc_logs_every_flow_to_a_log_group_with_retention(synth: SynthFn) -> None:
    synthesized = synth("default")

    flow_log = synthesized.only("AWS::EC2::FlowLog")
    assert flow_log["ResourceType"] == "VPC"
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"]["Ref"].startswith("NetworkFlowLogs")
