"""Shared fixtures: each variant of the app is synthesized once per session, with cdk.json's context.

Synthesis costs seconds of jsii start-up, so tests never build their own App: they ask
``synth(variant)`` for a cached :class:`Synthesized` and read its template.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
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
    "VALIDATES",
    "VARIANTS",
    "Synthesized",
    "context_for",
    "synthesize",
]

# The suite synthesizes against an empty model folder, whatever model a developer built into the image's.
components.model_server.MODEL_DIR = Path(tempfile.mkdtemp(prefix="no-model-"))

# CI replays the same generated examples every run, so a landing never hangs on a new draw;
# developers' runs draw afresh and widen the search.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

# The tests that synthesize with the CDK's built-in CloudFormation validation, kept in one xdist worker
# (pyproject.toml runs `--dist loadgroup`): its engine, @aws/cloudformation-validate's 8.9 MB WebAssembly
# module, takes about 3 s (5 s of CPU) to start in each process that validates, and then 0.1 s a synth.
VALIDATES = pytest.mark.xdist_group("cfn-validation")


def pytest_collection_finish() -> None:
    # What collection imported (jsii's aws_cdk modules, hypothesis, grpc, ...) lives as long as the worker:
    # frozen, the collector's passes during the tests skip it (pytest 40.1 -> 38.2 s, alternated runs).
    gc.freeze()


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
    """One synthesized variant: its settings, its template, and the cloud assembly's directory (the
    template beside its metadata, asset manifest and cdk-nag's validation report)."""

    settings: DeploymentSettings
    template_text: str
    directory: Path

    @property
    def artifact_id(self) -> str:
        """The stack's artifact in the assembly: a top-level stack's is its name."""
        return self.settings.stack_name

    @cached_property
    def template(self) -> Template:
        """The template for ``Match`` and ``Capture`` (built in jsii on first use)."""
        return Template.from_json(self.json)

    @property
    def json(self) -> dict[str, Any]:
        """A fresh copy of the template, parsed here: a jsii round trip per look costs more than the look."""
        document: dict[str, Any] = json.loads(self.template_text)
        return document

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
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


# Set by the synth fixture: a folder all of the session's xdist workers share, so that each variant is
# synthesized once per session, not once per worker (the first worker to need it writes it, under a lock).
_shared_assemblies: Path | None = None


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synthesize(name: str, context: Mapping[str, object], *, validate: bool = False) -> Synthesized:
    """The app synthesized with ``context`` into the session's folder for ``name``, or read from it when
    another worker already has; ``validate`` keeps the CDK's built-in CloudFormation validation."""
    if _shared_assemblies is None:
        raise RuntimeError("synthesize() needs the session's folder: request the synth fixture first")
    # The folder is named by what it was made from too, so a name given twice cannot read another's assembly.
    made_from = hashlib.sha256(json.dumps([context, validate], sort_keys=True).encode()).hexdigest()[:12]
    directory = _shared_assemblies / f"{name}-{made_from}"
    with _locked(directory.parent / f"{directory.name}.lock"):
        if not (directory / ".complete").exists():
            shutil.rmtree(directory, ignore_errors=True)
            # The variants are synthesized without the CDK's built-in CloudFormation validation (see
            # VALIDATES for the callers that keep it): `make lint` synthesizes every variant with it (and
            # fails on its findings, validateAgainstDefaultRules is on), then scans them with cfn-lint.
            app = cdk.App(context=dict(context), outdir=str(directory), builtin_cloud_formation_validation=validate)
            build_app(app)
            app.synth()
            (directory / ".complete").touch()
    settings = load_settings(context.get)
    template_text = (directory / f"{settings.stack_name}.template.json").read_text()
    return Synthesized(settings=settings, template_text=template_text, directory=directory)


@cache
def _synthesize(variant: str) -> Synthesized:
    return synthesize(variant, context_for(variant))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, worker_id: str, testrun_uid: str) -> Callable[[str], Synthesized]:
    """Returns the synthesized variant by name, building each at most once per session."""
    global _shared_assemblies  # noqa: PLW0603  (one folder per session, read by synthesize())
    # Under xdist each worker's base temp is a folder of the session's one: its parent is shared. The
    # session's id in the name keeps a parent that outlives sessions (remote workers) from serving old ones.
    base = tmp_path_factory.getbasetemp()
    _shared_assemblies = (base if worker_id == "master" else base.parent) / f"assemblies-{testrun_uid}"
    _shared_assemblies.mkdir(exist_ok=True)
    return _synthesize
