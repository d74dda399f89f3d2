"""Whole-template snapshots, one per variant: any change to what `cdk synth` emits shows up in review.

The fine-grained tests say what matters; these catch everything else. Asset hashes depend on
the files in docker/ (a user's model among them), so they are masked. Update with
`make snapshot-update` after a deliberate change, and review the diff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import VARIANTS, Synthesized

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def masked(template: dict[str, Any]) -> Any:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_masking_hides_asset_hashes_only() -> None:
    digest = "ab" * 32
    assert masked({"Image": f"repo:{digest}", "Name": "bert"}) == {"Image": "repo:<asset-hash>", "Name": "bert"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_template_matches_snapshot(
    synth: Callable[[str], Synthesized], snapshot_json: SnapshotAssertion, variant: str
) -> None:
    synthesized = synth(variant)

    assert masked(synthesized.json) == snapshot_json(name=f"{synthesized.stack.stack_name}-{variant}")
