"""Logical-ID snapshots, one per distinct layout: a change that would make CloudFormation replace a
deployed resource (a renamed or moved construct) shows up in review as a changed ID.

What each resource holds is specified by the construct and app tests; these guard only which logical
IDs exist, their types, and the stack's output keys (which the client reads, contracts/outputs.py).
The other variants name their resources as one of these does (``default`` covers inf2, large, parked
and split, up to the IDs their settings name, such as a target group's port). Update with
`make snapshot-update` after a deliberate change, review the diff, and say in CHANGELOG.md what a
deployed stack replaces.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import Synthesized

# Auto Scaling group with libnrt; neuron-rtd; ECS Managed Instances; several models on one fleet.
LAYOUTS = ("default", "rtd", "managed", "multi")


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_logical_ids_match_the_snapshot(
    synth: Callable[[str], Synthesized], snapshot_json: SnapshotAssertion, layout: str
) -> None:
    template = synth(layout).json

    assert {
        "Resources": {logical_id: resource["Type"] for logical_id, resource in sorted(template["Resources"].items())},
        "Outputs": sorted(template.get("Outputs", {})),
    } == snapshot_json
