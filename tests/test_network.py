"""Network: a two-AZ VPC, instances in private subnets, and only the model server's ports open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.conftest import Synthesized

SynthFn = Callable[[str], Synthesized]


def ingress_rules(synthesized: Synthesized) -> list[dict[str, Any]]:
    group = synthesized.only("AWS::EC2::SecurityGroup")
    rules = list(group.get("SecurityGroupIngress", []))
    for resource in synthesized.resources("AWS::EC2::SecurityGroupIngress").values():
        rules.append(resource["Properties"])
    return rules


def test_vpc_spans_two_azs_with_one_nat_gateway(synth: SynthFn) -> None:
    default = synth("default")

    default.template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    subnets = default.resources("AWS::EC2::Subnet")
    assert len(subnets) == 4  # public and private, in each of two AZs
    default.template.resource_count_is("AWS::EC2::NatGateway", 1)


@pytest.mark.parametrize("variant", ["default", "rtd", "inf2"])
def test_only_the_model_server_ports_are_open_and_only_to_the_vpc(synth: SynthFn, variant: str) -> None:
    # GIVEN no allowedCidr and no keyName
    synthesized = synth(variant)

    # THEN exactly gRPC and REST are open, to the VPC's CIDR as a literal block
    rules = ingress_rules(synthesized)
    assert sorted((rule["FromPort"], rule["ToPort"], rule["CidrIp"]) for rule in rules) == [
        (8500, 8500, "10.0.0.0/16"),
        (8501, 8501, "10.0.0.0/16"),
    ]


def test_ssh_opens_only_when_a_key_pair_is_named(synth: SynthFn) -> None:
    # GIVEN keyName, allowedCidr and custom ports (the "large" variant)
    rules = ingress_rules(synth("large"))

    # THEN port 22 joins the model server's ports, all limited to allowedCidr
    assert sorted((rule["FromPort"], rule["CidrIp"]) for rule in rules) == [
        (22, "203.0.113.0/24"),
        (9000, "203.0.113.0/24"),
        (9001, "203.0.113.0/24"),
    ]
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
