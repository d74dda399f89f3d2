"""The model build's tests run in its own venv (.model-venv: TensorFlow, PyTorch, transformers), apart
from the CDK app's: `make test` runs them with --confcutdir here, so tests/conftest.py (which starts
jsii) is not loaded."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent.parent

hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")
