"""One endpoint: an NLB forwarding gRPC and REST to every task, healthy only when the model is AVAILABLE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Synthesized

SynthFn = Callable[[str], Synthesized]


def target_groups(synthesized: Synthesized) -> dict[int, dict[str, Any]]:
    return {
        group["Properties"]["Port"]: group["Properties"]
        for group in synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    }


@pytest.mark.parametrize(
    ("variant", "scheme", "subnets"), [("default", "internal", "Private"), ("split", "internet-facing", "Public")]
)
def test_load_balancer_is_internal_unless_public_endpoint(
    synth: SynthFn, variant: str, scheme: str, subnets: str
) -> None:
    balancer = synth(variant).only("AWS::ElasticLoadBalancingV2::LoadBalancer")

    assert balancer["Type"] == "network"
    assert balancer["Scheme"] == scheme
    assert all(subnets in subnet["Ref"] for subnet in balancer["Subnets"])


@pytest.mark.parametrize(("variant", "cidr"), [("default", "10.0.0.0/16"), ("split", "198.51.100.0/24")])
def test_load_balancer_admits_only_allowed_cidr_on_the_two_ports(synth: SynthFn, variant: str, cidr: str) -> None:
    synthesized = synth(variant)
    group = next(
        resource["Properties"]
        for key, resource in synthesized.resources("AWS::EC2::SecurityGroup").items()
        if key.startswith("EndpointSecurityGroup")
    )

    rules = group["SecurityGroupIngress"]
    assert sorted((rule["FromPort"], rule["CidrIp"]) for rule in rules if "CidrIp" in rule) == [
        (8080, cidr),
        (8500, cidr),
        (8501, cidr),
    ]
    # and nothing else but make tunnel's relay task (tests/test_endpoint_relay.py)
    others = [rule for rule in rules if "CidrIp" not in rule]
    assert all(rule["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("RelaySecurityGroup") for rule in others)


def test_listeners_forward_grpc_rest_and_text_over_tcp_without_a_certificate(synth: SynthFn) -> None:
    listeners = synth("large").resources("AWS::ElasticLoadBalancingV2::Listener").values()

    assert sorted((listener["Properties"]["Port"], listener["Properties"]["Protocol"]) for listener in listeners) == [
        (8080, "TCP"),
        (9000, "TCP"),
        (9001, "TCP"),
    ]


@pytest.mark.parametrize("variant", ["default", "rtd", "large"])
def test_health_checks_mean_model_available(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    groups = target_groups(synthesized)

    rest = groups[settings.models[0].rest_port]
    assert rest["HealthCheckProtocol"] == "HTTP"
    assert rest["HealthCheckPath"] == f"/v1/models/{settings.models[0].name}/metadata"
    assert rest["HealthCheckPort"] == "traffic-port"
    grpc = groups[settings.models[0].grpc_port]
    assert grpc["HealthCheckProtocol"] == "TCP"
    assert grpc["HealthCheckPort"] == "traffic-port"
    for group in groups.values():
        assert group["TargetType"] == "instance"
        assert group["Protocol"] == "TCP"


def test_scale_in_drains_connections_before_dropping_a_target(synth: SynthFn) -> None:
    for group in target_groups(synth("default")).values():
        attributes = {item["Key"]: item["Value"] for item in group["TargetGroupAttributes"]}
        assert attributes["deregistration_delay.timeout_seconds"] == "30"
        assert attributes["deregistration_delay.connection_termination.enabled"] == "true"


def test_service_registers_its_model_container_and_its_text_front_behind_the_listeners(synth: SynthFn) -> None:
    synthesized = synth("large")
    service = synthesized.only_serving("AWS::ECS::Service")

    registrations = sorted((lb["ContainerName"], lb["ContainerPort"]) for lb in service["LoadBalancers"])
    assert registrations == [("bert-large", 9000), ("bert-large", 9001), ("text-front", 8080)]
    assert service["HealthCheckGracePeriodSeconds"] == 300


def test_output_names_the_endpoint(synth: SynthFn) -> None:
    outputs = synth("default").json["Outputs"]

    assert outputs["LoadBalancerDnsName"]["Value"] == {
        "Fn::GetAtt": [
            next(k for k in synth("default").resources("AWS::ElasticLoadBalancingV2::LoadBalancer")),
            "DNSName",
        ]
    }
