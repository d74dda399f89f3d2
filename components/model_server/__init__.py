"""The model server: its images and task (CDK), and beside them the runtime its images run."""

from __future__ import annotations

from pathlib import Path

# Where `make model` writes the model the image bakes in (the Dockerfiles copy model_server/model/).
# Standard library only: `make model` reads it without the CDK app's packages.
MODEL_DIR = Path(__file__).resolve().parent / "model"
