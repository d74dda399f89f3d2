"""What `make model` is asked to build, read from its variables and checked before any work starts."""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path

from components.model_server import MODEL_DIR
from components.model_server.runtime.model_signature import DEFAULT_SEQUENCE_LENGTH, MAX_SEQUENCE_LENGTH
from config.engines import ServingEngine
from config.hardware import NeuronFamily
from config.profile import ENGINE_FAMILIES
from config.settings import SettingsError, cdk_context, check_setting_names, load_settings
from tools.cdk_cli import CONTEXT_FLAGS, split_cdk_args

ROOT = Path(__file__).resolve().parent.parent
# Where the image bakes the model in: Neuron builds go here by default.
DEFAULT_OUT = MODEL_DIR
# Where the quick local builds (FAMILY=cpu, TINY=1) go by default: never into the image.
SCRATCH_OUT = ROOT / "model-scratch"
# BERT-base fine-tuned on MRPC (sentence-pair equivalence), the walk-through's task.
DEFAULT_CHECKPOINT = "bert-base-cased-finetuned-mrpc"
MAX_BATCH = 256
_VERSION = re.compile(r"[1-9][0-9]{0,17}")
# A Hugging Face model id: "name" or "owner/name" (huggingface_hub's repo id rule, without revisions).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


class Family(Enum):
    """What the model is built for."""

    INF1 = "inf1"
    INF2 = "inf2"
    CPU = "cpu"
    """Plain TensorFlow: for tests, dry runs and a local check of the signature."""


class ModelBuildError(ValueError):
    """A variable of `make model` cannot take its value, or the build cannot run here."""


def invalid(variable: str, value: object, allowed: str) -> ModelBuildError:
    return ModelBuildError(f"Invalid make model variable {variable}={value!s}: {allowed}")


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    family: Family
    server: ServingEngine
    """What will serve it: TF Serving loads a SavedModel, Triton a traced PyTorch model (model.pt)."""
    checkpoint: str | None
    """A Hugging Face model id or a local folder; None for TINY (random weights, built here)."""
    out: Path
    tiny: bool = False
    """Random weights: for dry runs and tests, never for a deployed stack."""
    version: int
    batch: int
    sequence_length: int

    @property
    def local_checkpoint(self) -> Path | None:
        """The checkpoint's folder when it is one here (else a Hub id, or TINY)."""
        if self.checkpoint is None:
            return None
        path = Path(self.checkpoint).expanduser()
        return path.resolve() if (path / "config.json").is_file() else None

    @property
    def version_dir(self) -> Path:
        return self.out / str(self.version)


@dataclass(frozen=True)
class StackTarget:
    """What the stack serves, as the settings synth uses say (cdk.json, then CDK_ARGS)."""

    family: NeuronFamily
    server: ServingEngine


@cache
def stack_target() -> StackTarget:
    """The stack's family and server, from cdk.json's context with make's CDK_ARGS over it; one line on a
    broken cdk.json, a malformed CDK_ARGS or a setting synth would refuse."""
    try:
        context = cdk_context()
        arguments = split_cdk_args(os.environ.get("CDK_ARGS", ""))
        for flag, pair in itertools.pairwise(arguments):
            if flag in CONTEXT_FLAGS:
                key, _, value = pair.partition("=")
                context[key] = value
        check_setting_names(context)
        settings = load_settings(context.get)
    except SettingsError as error:
        raise ModelBuildError(f"the stack's settings (cdk.json, CDK_ARGS) are refused: {error}") from None
    except ValueError as error:  # split_cdk_args
        raise ModelBuildError(f"CDK_ARGS: {error}") from None
    return StackTarget(settings.instance_size.family, settings.profile.engine.engine)


def default_family() -> Family:
    """The stack's family: the one place it is decided is the settings synth uses."""
    return Family(stack_target().family.value)


def _server(value: str, family: Family) -> ServingEngine:
    """SERVER, else the stack's server when building for its family (or for the CPU), else the family's own."""
    written = value.strip().lower()
    allowed = ", ".join(engine.value for engine in ServingEngine)
    if not written:
        target = stack_target()
        if family is Family.CPU or NeuronFamily(family.value) is target.family:
            return target.server
        return ServingEngine.TFSERVING if NeuronFamily(family.value) is NeuronFamily.INF1 else ServingEngine.TRITON
    try:
        server = ServingEngine(written)
    except ValueError:
        raise invalid("SERVER", value or written, f"expected one of {allowed}") from None
    if family is not Family.CPU and NeuronFamily(family.value) not in ENGINE_FAMILIES[server]:
        raise invalid(
            "SERVER", written, f"{server.value} does not run on {family.value}: Triton's torch-neuronx is Inf2 only"
        )
    return server


def _out(value: str, *, local: bool) -> Path:
    """OUT, whose parent must exist; else the image's model folder, or the scratch folder for a local build."""
    if not value.strip():
        return SCRATCH_OUT if local else DEFAULT_OUT
    out = Path(value.strip()).expanduser().resolve()
    if not out.parent.is_dir():
        raise invalid("OUT", value, f"its parent folder {out.parent} does not exist: create it, or name another")
    if out.exists() and not out.is_dir():
        raise invalid("OUT", value, "is a file: name a folder (the version folders go inside it)")
    return out


def _whole(variable: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()) or not low <= int(value) <= high:
        raise invalid(variable, value, f"expected a whole number from {low} to {high}")
    return int(value)


def parse_options(
    *,
    family: str,
    checkpoint: str,
    out: str,
    version: str,
    batch: str,
    sequence_length: str,
    tiny: str,
    server: str = "",
) -> BuildOptions:
    """Each argument as make passes it (empty = its default); one ModelBuildError naming the first bad one."""
    families = ", ".join(member.value for member in Family)
    chosen = default_family() if not family.strip() else None
    if chosen is None:
        try:
            chosen = Family(family.strip().lower())
        except ValueError:
            raise invalid("FAMILY", family, f"expected one of {families}") from None
    if tiny.strip() not in ("", "0", "1"):
        raise invalid("TINY", tiny, "expected 1 (a small BERT with random weights, built here) or nothing")
    is_tiny = tiny.strip() == "1"
    if is_tiny and checkpoint.strip():
        raise invalid("CHECKPOINT", checkpoint, "TINY=1 builds its own random BERT: leave CHECKPOINT empty")
    chosen_checkpoint = None if is_tiny else (checkpoint.strip() or DEFAULT_CHECKPOINT)
    if chosen_checkpoint is not None:
        _check_checkpoint(chosen_checkpoint)
    return BuildOptions(
        family=chosen,
        server=_server(server, chosen),
        checkpoint=chosen_checkpoint,
        tiny=is_tiny,
        out=_out(out, local=chosen is Family.CPU or is_tiny),
        version=_version(version),
        batch=_whole("BATCH", batch, 1, MAX_BATCH) if batch.strip() else 1,
        sequence_length=(
            _whole("SEQ", sequence_length, 8, MAX_SEQUENCE_LENGTH)
            if sequence_length.strip()
            else DEFAULT_SEQUENCE_LENGTH
        ),
    )


def _version(value: str) -> int:
    if not value.strip():
        return 1
    if not _VERSION.fullmatch(value.strip()):
        raise invalid("VERSION", value, "expected a positive whole number (TF Serving's version folder)")
    return int(value)


def _check_checkpoint(checkpoint: str) -> None:
    path = Path(checkpoint).expanduser()
    looks_local = checkpoint.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not (path / "config.json").is_file():
            raise invalid(
                "CHECKPOINT",
                checkpoint,
                "no Hugging Face checkpoint there: expected a folder holding config.json and its weights",
            )
    elif not _HUB_ID.fullmatch(checkpoint):
        raise invalid("CHECKPOINT", checkpoint, "expected a Hugging Face model id (owner/name) or a local folder")
