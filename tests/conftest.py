"""Shared fixtures: each variant of the app is synthesized once per session, with cdk.json's context.

Synthesis costs seconds of jsii start-up, so tests never build their own App: they ask
``synth(variant)`` for a cached :class:`Synthesized` and read its template.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

import components.model_server
from app import build_app
from config.settings import DeploymentSettings, load_settings
from tools.variants import VARIANTS

__all__ = [
    "ASG_VARIANTS",
    "CDK_JSON_CONTEXT",
    "NEURON_RECOVERY_PREFIX",
    "ROOT",
    "VARIANTS",
    "Synthesized",
    "context_for",
]

# The suite synthesizes against an empty model folder, whatever model a developer built into the image's.
components.model_server.MODEL_DIR = Path(tempfile.mkdtemp(prefix="no-model-"))

# CI replays the same generated examples every run, so a landing never hangs on a new draw;
# developers' runs draw afresh and widen the search.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON_CONTEXT: Mapping[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]

# The variants whose instances are this stack's own Auto Scaling group.
ASG_VARIANTS = tuple(
    sorted(name for name, overrides in VARIANTS.items() if overrides.get("capacity") != "managedInstances")
)

# Logical IDs of the resources that serve no model start with their construct's ID: the Neuron problem
# detector and recovery daemon, and make tunnel's relay task.
NEURON_RECOVERY_PREFIX = "NeuronRecovery"
RELAY_PREFIX = "Relay"


@dataclass(frozen=True)
class Synthesized:
    """One synthesized variant: its settings, template and the raw template JSON."""

    settings: DeploymentSettings
    stack: cdk.Stack
    template: Template
    assembly: cdk.cx_api.CloudAssembly

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: dict(resource) for logical_id, resource in self.template.find_resources(resource_type).items()
        }

    def only(self, resource_type: str) -> dict[str, Any]:
        """The properties of the one resource of ``resource_type``."""
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return dict(next(iter(found.values()))["Properties"])

    def serving(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of ``resource_type`` that serve models (not the Neuron problem detector's or the relay's)."""
        return {
            logical_id: resource
            for logical_id, resource in self.resources(resource_type).items()
            if not logical_id.startswith((NEURON_RECOVERY_PREFIX, RELAY_PREFIX))
        }

    def only_serving(self, resource_type: str) -> dict[str, Any]:
        """The properties of the one model-serving resource of ``resource_type``."""
        found = self.serving(resource_type)
        assert len(found) == 1, f"expected one serving {resource_type}, found {len(found)}"
        return dict(next(iter(found.values()))["Properties"])


def context_for(variant: str) -> dict[str, object]:
    return {**CDK_JSON_CONTEXT, **VARIANTS[variant]}


@cache
def _synthesize(variant: str) -> Synthesized:
    # Without the CDK's built-in CloudFormation validation, half of each synth's time here: `make lint`
    # synthesizes every variant with it (and fails on its findings, validateAgainstDefaultRules is on),
    # then scans them with cfn-lint; the settings fuzz keeps it for the settings it draws.
    app = cdk.App(context=context_for(variant), builtin_cloud_formation_validation=False)
    stack = build_app(app)
    template = Template.from_stack(stack)
    settings = load_settings(context_for(variant).get)
    return Synthesized(settings=settings, stack=stack, template=template, assembly=app.synth())


@pytest.fixture(scope="session")
def synth() -> Callable[[str], Synthesized]:
    """Returns the synthesized variant by name, building each at most once per session."""
    return _synthesize
