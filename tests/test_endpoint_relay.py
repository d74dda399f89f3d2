"""make tunnel's path never relies on a target reaching its own load balancer.

"NAT loopback, also known as hairpinning, is not supported when client IP preservation is enabled"
(Elastic Load Balancing, Network Load Balancers, "Troubleshoot"): a registered target's connection
through its own NLB times out. So whatever the tunnel forwards through must be nothing a target
group of the endpoint can ever register. Targets are, by target type: ``instance``, the cluster's
instances (the Auto Scaling group); ``ip``, the tasks of the services attached to the group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts import outputs as keys
from tests.conftest import VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]


def target_hosts(synthesized: Synthesized) -> set[str]:
    """What can be registered behind the endpoint: "instances" and/or "task:<task definition>"."""
    hosts = set()
    services = synthesized.resources("AWS::ECS::Service")
    for group_id, group in synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup").items():
        if group["Properties"].get("TargetType", "instance") == "instance":
            hosts.add("instances")
            continue
        for service in services.values():
            if any(lb["TargetGroupArn"] == {"Ref": group_id} for lb in service["Properties"].get("LoadBalancers", [])):
                hosts.add(f"task:{service['Properties']['TaskDefinition']['Ref']}")
    return hosts


def relay_host(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    """What `make tunnel` forwards through: a task of the task definition the stack names for it."""
    reference = synthesized.json["Outputs"][keys.RELAY_TASK_DEFINITION]["Value"]["Ref"]
    return f"task:{reference}", synthesized.resources("AWS::ECS::TaskDefinition")[reference]["Properties"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_tunnel_forwards_through_something_the_load_balancer_never_targets(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    host, definition = relay_host(synthesized)

    assert host not in target_hosts(synthesized)
    # on Fargate: never on a cluster instance, which an instance target group registers
    assert definition["RequiresCompatibilities"] == ["FARGATE"]
    assert definition["NetworkMode"] == "awsvpc"
    assert all(
        service["Properties"]["TaskDefinition"]["Ref"] != host.removeprefix("task:")
        for service in synthesized.resources("AWS::ECS::Service").values()
    )


@pytest.mark.parametrize("variant", sorted(name for name in VARIANTS if VARIANTS[name].get("capacity") is None))
def test_the_check_sees_the_old_tunnel_through_an_instance_hairpin(synth: SynthFn, variant: str) -> None:
    # What make tunnel did before: a Session Manager forward through a cluster instance.
    assert "instances" in target_hosts(synth(variant))


@pytest.mark.parametrize("variant", ["default", "large", "split"])
def test_the_endpoint_admits_the_relay_on_every_model_port(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    relay_group = synthesized.json["Outputs"][keys.RELAY_SECURITY_GROUP]["Value"]
    listeners = {
        listener["Properties"]["Port"]
        for listener in synthesized.resources("AWS::ElasticLoadBalancingV2::Listener").values()
    }
    inline = [
        rule
        for group in synthesized.resources("AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    separate = [rule["Properties"] for rule in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()]
    admitted = {rule["FromPort"] for rule in [*inline, *separate] if rule.get("SourceSecurityGroupId") == relay_group}

    assert listeners
    assert admitted == listeners  # also where allowedCidr names only a laptop's address


def test_the_relay_may_open_ecs_exec_channels_and_nothing_else(synth: SynthFn) -> None:
    synthesized = synth("default")
    _, definition = relay_host(synthesized)
    role = definition["TaskRoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]

    assert [statement["Action"] for statement in policy] == [
        [
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        ]
    ]
