"""What `make model` is asked to build, read from its variables and checked before any work starts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from config.engines import ServingEngine
from config.hardware import INSTANCE_SIZES, NeuronFamily
from config.profile import DEFAULT_ENGINE, ENGINE_FAMILIES
from contracts.model_signature import DEFAULT_SEQUENCE_LENGTH, MAX_SEQUENCE_LENGTH

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docker" / "model-server" / "model"
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


def _cdk_context() -> dict[str, object]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def default_family() -> Family:
    """The family of ``instanceType`` in cdk.json, the app's one place for defaults."""
    return Family(INSTANCE_SIZES[str(_cdk_context()["instanceType"])].family.value)


def _server(value: str, family: Family) -> ServingEngine:
    """SERVER, else cdk.json's ``server``, else the family's default (Triton on Inf2); cpu builds for either."""
    written = value.strip().lower() or str(_cdk_context().get("server", "")).strip().lower()
    allowed = ", ".join(engine.value for engine in ServingEngine)
    if not written:
        return ServingEngine.TFSERVING if family is Family.CPU else DEFAULT_ENGINE[NeuronFamily(family.value)]
    try:
        server = ServingEngine(written)
    except ValueError:
        raise invalid("SERVER", value or written, f"expected one of {allowed}") from None
    if family is not Family.CPU and NeuronFamily(family.value) not in ENGINE_FAMILIES[server]:
        raise invalid(
            "SERVER", written, f"{server.value} does not run on {family.value}: Triton's torch-neuronx is Inf2 only"
        )
    return server


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
        out=Path(out.strip()).expanduser().resolve() if out.strip() else DEFAULT_OUT,
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
