"""Shared fixtures: each variant of the app is synthesized once per session, with cdk.json's context.

Synthesis costs seconds of jsii start-up, so tests never build their own App: they ask
``synth(variant)`` for a cached :class:`Synthesized` and read its template.
"""

from __future__ import annotations

import json
import os
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

from app import build_app
from config.settings import DeploymentSettings, load_settings

# CI replays the same generated examples every run, so a landing never hangs on a new draw;
# developers' runs draw afresh and widen the search.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON_CONTEXT: Mapping[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]

# Overrides are given as strings where `-c key=value` would give strings.
VARIANTS: Mapping[str, Mapping[str, object]] = {
    "default": {},
    # The walk-through's own AMI (us-east-1): no current ECS AMI runs neuron-rtd.
    "rtd": {"neuronRuntime": "rtd", "amiId": "ami-04450f16e0cd20356"},
    # On-demand, with a fallback size and three named zones.
    # The walk-through's TF Serving kept on Inf2 (server=tfserving), on-demand, with a fallback size.
    "inf2": {
        "instanceType": "inf2.xlarge",
        "server": "tfserving",
        "spot": "false",
        "fallbackInstanceTypes": "inf2.8xlarge",
        "availabilityZones": "us-east-1a,us-east-1b,us-east-1d",
    },
    "large": {
        "instanceType": "inf1.24xlarge",
        "keyName": "ops-key",
        "allowedCidr": "203.0.113.0/24",
        "minInstances": "1",
        "maxInstances": "4",
        "desiredCount": "3",
        "maxTasks": "6",
        "modelName": "bert-large",
        "grpcPort": "9000",
        "restPort": "9001",
    },
    # Parked: no task runs, the group empties to minInstances; only the NAT gateway and NLB cost.
    "parked": {"minTasks": "0", "desiredCount": "0"},
    # Several tasks per instance, each on 4 of the 24 NeuronCores, behind an internet-facing NLB.
    "split": {
        "instanceType": "inf2.48xlarge",
        "coresPerTask": "4",
        "desiredCount": "6",
        "minTasks": "2",
        "maxTasks": "6",
        "batching": '{"maxBatchSize": 16, "batchTimeoutMicros": 2000}',
        "modelS3Uri": "s3://bert-models-example/bert-base/",
        "maxInstances": "1",
        "publicEndpoint": "true",
        "allowedCidr": "198.51.100.0/24",
        "onDemandBase": "1",
    },
    # ECS Managed Instances on inf2.xlarge (Triton, Inf2's default): AWS runs the instances, one task each, spot.
    "managed": {"capacity": "managedInstances", "instanceType": "inf2.xlarge"},
    # Two models behind Triton on inf2.24xlarge: 6 cores each (chips 0-2 and 3-5) per instance.
    "triton-multi": {
        "instanceType": "inf2.24xlarge",
        "minTasks": "2",
        "desiredCount": "2",
        "models": json.dumps(
            [
                {"name": "bert", "cores": 6, "grpcPort": 8500, "restPort": 8501, "modelS3Uri": "s3://models-b/bert"},
                {"name": "minilm", "cores": 6, "grpcPort": 8502, "restPort": 8503, "modelS3Uri": "s3://models-b/mini"},
            ]
        ),
    },
    # Two models side by side on inf1.6xlarge: each instance holds one task of each, on two chips each; two
    # tasks of each at least, so a deploy in place never leaves a model without one.
    "multi": {
        "instanceType": "inf1.6xlarge",
        "minTasks": "2",
        "desiredCount": "2",
        "maxInstances": "3",
        "maxTasks": "3",
        "models": json.dumps(
            [
                {"name": "bert", "cores": 8, "grpcPort": 8500, "restPort": 8501, "modelS3Uri": "s3://models-a/bert"},
                {
                    "name": "distilbert",
                    "cores": 8,
                    "grpcPort": 8502,
                    "restPort": 8503,
                    "modelS3Uri": "s3://models-a/distil",
                },
            ]
        ),
    },
}


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
    app = cdk.App(context=context_for(variant))
    stack = build_app(app)
    template = Template.from_stack(stack)
    settings = load_settings(context_for(variant).get)
    return Synthesized(settings=settings, stack=stack, template=template, assembly=app.synth())


@pytest.fixture(scope="session")
def synth() -> Callable[[str], Synthesized]:
    """Returns the synthesized variant by name, building each at most once per session."""
    return _synthesize
