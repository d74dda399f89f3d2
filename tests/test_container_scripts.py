"""Each Python script a container runs works with the python3 of the image it runs in.

The sidecar and the TF Serving image are Amazon Linux 2023, whose ``/usr/bin/python3`` stays 3.9
for AL2023's life (AL2023 user guide, "Python in AL2023"); the Triton image runs Ubuntu 24.04's
3.12. The tests themselves run on 3.11, so a 3.10 feature (``isinstance(x, int | float)``) would
pass here and fail on the first report in the sidecar: vermin reads each script for the oldest
Python it needs. ``# novm`` marks the lines where ``|`` joins integer flags, not types.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.profile import AL2023_BASE, UBUNTU_BASE
from tests.paths import COMPONENTS

BIN = Path(sys.executable).parent
# The text front runs on the python image its Dockerfile names.
TEXT_FRONT_BASE = "python:3.11"
# Each image's python3 (the base images come from config/profile.py).
IMAGE_PYTHON = {AL2023_BASE: "3.9", UBUNTU_BASE: "3.12", TEXT_FRONT_BASE: "3.11"}
SCRIPTS = {
    "neuron_monitor/runtime/neuron_emf.py": AL2023_BASE,
    "neuron_monitor/runtime/triton_emf.py": AL2023_BASE,
    "neuron_monitor/runtime/metric_names.py": AL2023_BASE,
    "neuron_monitor/runtime/monitor_environment.py": AL2023_BASE,
    "model_server/runtime/neuron_slot.py": AL2023_BASE,
    "model_server/runtime/batch_sizes.py": AL2023_BASE,
    "model_server/runtime/model_record.py": AL2023_BASE,
    "model_server/runtime/model_signature.py": AL2023_BASE,
    "model_server/runtime/task_environment.py": AL2023_BASE,
    "model_server/runtime/serve_triton.py": UBUNTU_BASE,
    "model_server/runtime/model.py": UBUNTU_BASE,
    **{
        f"text_front/runtime/{name}.py": TEXT_FRONT_BASE
        for name in ("front", "front_environment", "backend", "encoding", "model_files")
    },
}


def oldest_python_violations(script: Path, python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "vermin"), "--no-tips", "--violations", "--feature", "union-types", f"-t={python}-", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_script_runs_with_its_images_python(script: str) -> None:
    result = oldest_python_violations(COMPONENTS / script, IMAGE_PYTHON[SCRIPTS[script]])

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_python_script_in_an_image_is_checked() -> None:
    shipped = {
        str(path.relative_to(COMPONENTS)) for path in COMPONENTS.glob("*/runtime/*.py") if path.name != "__init__.py"
    }

    assert shipped <= set(SCRIPTS)


def test_the_check_catches_a_310_feature_in_a_39_image(tmp_path: Path) -> None:
    script = tmp_path / "exporter.py"
    script.write_text("def number(value):\n    return isinstance(value, int | float)\n")

    result = oldest_python_violations(script, "3.9")

    assert result.returncode != 0
    assert "union types" in result.stdout
