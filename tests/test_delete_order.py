"""`cdk destroy`, simulated: the stack's dependency graph walked in delete order, for every variant.

ECS refuses to remove a capacity provider from a cluster while a service's strategy still names it
("The specified capacity provider is in use"), and a provider cannot go while it is associated (ECS
API DeleteCapacityProvider). So a delete must remove every service on a provider, then the
association, then the provider, then its Auto Scaling group.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cfn_graph import delete_waves, dependencies, depends_on
from tests.conftest import VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]


def _of_type(synthesized: Synthesized, resource_type: str) -> list[str]:
    return sorted(synthesized.resources(resource_type))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_delete_removes_services_then_association_then_provider_then_group(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    template = synthesized.json
    graph = dependencies(template)
    waves = delete_waves(graph)
    resources = template["Resources"]

    services = [
        logical_id
        for logical_id in _of_type(synthesized, "AWS::ECS::Service")
        if resources[logical_id]["Properties"].get("CapacityProviderStrategy")
    ]
    (provider,) = _of_type(synthesized, "AWS::ECS::CapacityProvider")
    groups = _of_type(synthesized, "AWS::AutoScaling::AutoScalingGroup")  # none with Managed Instances
    # An Auto Scaling group's provider joins the cluster through an association; a Managed Instances
    # provider names its cluster itself (ClusterName), with no association.
    holders = _of_type(synthesized, "AWS::ECS::ClusterCapacityProviderAssociations") or [provider]
    (holder,) = holders

    assert len(services) == len(synthesized.settings.models)
    for service in services:
        assert depends_on(graph, service, holder), f"{service} must go before {holder}"
        assert waves[service] < waves[holder] <= waves[provider]
    assert len(groups) == (1 if synthesized.settings.profile.own_instances else 0)
    for group in groups:
        assert waves[provider] < waves[group]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_provider_a_service_names_is_released_before_it_is_disassociated(synth: SynthFn, variant: str) -> None:
    # The whole kind: any resource whose properties name a capacity provider depends on every
    # association that holds it, so no delete order can pull the provider from under it.
    template = synth(variant).json
    graph = dependencies(template)
    resources = template["Resources"]
    associations = {
        logical_id: {entry["Ref"] for entry in resource["Properties"]["CapacityProviders"] if isinstance(entry, dict)}
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::ECS::ClusterCapacityProviderAssociations"
    }
    providers = {provider for held in associations.values() for provider in held}
    users = [
        (logical_id, provider)
        for logical_id, resource in resources.items()
        if resource["Type"] != "AWS::ECS::ClusterCapacityProviderAssociations"
        for provider in providers
        if provider in graph[logical_id] and resources[provider]["Type"] == "AWS::ECS::CapacityProvider"
    ]

    assert users or not associations  # Managed Instances: no association to be released from
    for user, provider in users:
        for association, held in associations.items():
            if provider in held:
                assert depends_on(graph, user, association), (user, association)


def test_the_simulation_finds_the_fault_when_the_dependency_is_missing() -> None:
    # A service that names its provider but not the association: the delete takes both at once.
    template = {
        "Resources": {
            "Group": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {}},
            "Provider": {
                "Type": "AWS::ECS::CapacityProvider",
                "Properties": {"AutoScalingGroupProvider": {"AutoScalingGroupArn": {"Ref": "Group"}}},
            },
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {}},
            "Association": {
                "Type": "AWS::ECS::ClusterCapacityProviderAssociations",
                "Properties": {"Cluster": {"Ref": "Cluster"}, "CapacityProviders": [{"Ref": "Provider"}]},
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "Cluster": {"Ref": "Cluster"},
                    "CapacityProviderStrategy": [{"CapacityProvider": {"Ref": "Provider"}}],
                },
            },
        }
    }
    graph = dependencies(template)
    waves = delete_waves(graph)

    assert not depends_on(graph, "Service", "Association")
    assert waves["Service"] == waves["Association"]  # deleted in parallel: DELETE_FAILED on a real stack
