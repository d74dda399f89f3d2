"""The model server: its images and task (CDK), and beside them the runtime its images run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.placement import ModelSettings
    from config.profile import RuntimeProfile

# Where `make model` writes the model the image bakes in (the Dockerfiles copy model_server/model/).
# Standard library only: `make model` reads it without the CDK app's packages, app.py before jsii
# starts, and the text front's image holds this file.
MODEL_DIR = Path(__file__).resolve().parent / "model"


def refuse_unfit_baked_model(model: ModelSettings, profile: RuntimeProfile, model_dir: Path | None = None) -> None:
    """Raises :class:`SettingsError` in one line when ``model`` is baked into the image (no ``modelS3Uri``)
    and the newest build under ``model_dir`` is not one this stack's server can serve. The image's own
    check (runtime/model_record.py), so synth judges a baked model as the server's entrypoint judges one
    from S3."""
    # Imported here: this file is in the text front's image, which holds neither (and config imports
    # this package's runtime modules).
    from components.model_server.runtime.model_record import refusal  # noqa: PLC0415
    from config.parsing import SettingsError  # noqa: PLC0415

    if model.s3 is not None:
        return
    problem = refusal(model_dir or MODEL_DIR, profile.family.value, profile.engine.engine.value)
    if problem:
        raise SettingsError(f"{problem} (or give modelS3Uri)")
