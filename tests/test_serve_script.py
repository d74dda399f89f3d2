"""The model server's entrypoint, run for real with a stand-in TF Serving binary on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import SERVER_RUNTIME as SERVER_DIR
from tests.scripts import image_bin as image_bin_of


@pytest.fixture
def image_bin(tmp_path: Path) -> Path:
    """A /usr/local/bin look-alike: the entrypoint, the slot claimer, python3 and a fake server."""
    bin_dir = image_bin_of(SERVER_DIR / "Dockerfile", tmp_path / "bin")
    (bin_dir / "python3").symlink_to(sys.executable)
    fake = bin_dir / "tensorflow_model_server_neuronx"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "cores=${NEURON_RT_VISIBLE_CORES:-unset}"\n'
        'for arg in "$@"; do echo "arg=$arg"; done\n'
        'for arg in "$@"; do case "$arg" in --batching_parameters_file=*) cat "${arg#*=}";; esac; done\n'
    )
    fake.chmod(0o755)
    return bin_dir


def run_entrypoint(image_bin: Path, **env: str) -> list[str]:
    base = {"PATH": f"{image_bin}:/usr/bin:/bin", "MODEL_NAME": "bert", "MODEL_BASE_PATH": "/models/bert"}
    result = subprocess.run(
        [str(image_bin / "serve.sh")],
        env={**base, "GRPC_PORT": "8500", "REST_PORT": "8501", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


def test_starts_tf_serving_with_the_images_model_and_ports(image_bin: Path) -> None:
    lines = run_entrypoint(image_bin)

    assert lines == [
        "cores=unset",
        "arg=--port=8500",
        "arg=--rest_api_port=8501",
        "arg=--model_name=bert",
        "arg=--model_base_path=/models/bert",
    ]


def test_claims_a_core_slot_before_starting(image_bin: Path, tmp_path: Path) -> None:
    lines = run_entrypoint(
        image_bin, NEURON_CORES_PER_TASK="2", NEURON_CORE_SLOTS="6", NEURON_SLOT_DIR=str(tmp_path / "slots")
    )

    assert "cores=0-1" in lines
    assert any(line.startswith("neuron_slot: slot 0") for line in lines)


def test_batching_parameters_become_a_file_and_two_flags(image_bin: Path) -> None:
    parameters = "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 2000 }\n"

    lines = run_entrypoint(image_bin, BATCHING_PARAMETERS=parameters)

    assert "arg=--enable_batching=true" in lines
    assert any(line.startswith("arg=--batching_parameters_file=") for line in lines)
    assert lines[-2:] == ["max_batch_size { value: 16 }", "batch_timeout_micros { value: 2000 }"]


def test_batching_takes_the_compiled_batchs_multiples_from_the_models_build_record(
    image_bin: Path, tmp_path: Path
) -> None:
    version = tmp_path / "models" / "bert" / "2"
    (version / "assets.extra").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    (version / "assets.extra" / "model-build.json").write_text('{"batch": 2}')
    parameters = "max_batch_size { value: 6 }\nbatch_timeout_micros { value: 100 }\n"

    lines = run_entrypoint(image_bin, MODEL_BASE_PATH=str(version.parent), BATCHING_PARAMETERS=parameters)

    assert lines[-3:] == ["allowed_batch_sizes: 2", "allowed_batch_sizes: 4", "allowed_batch_sizes: 6"]


def test_missing_server_binary_is_a_clear_error(image_bin: Path) -> None:
    os.remove(image_bin / "tensorflow_model_server_neuronx")
    result = subprocess.run(
        [str(image_bin / "serve.sh")],
        env={"PATH": f"{image_bin}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert "no tensorflow_model_server_neuron binary" in result.stderr


def test_a_quick_cpu_model_copied_from_s3_stops_the_server_in_one_line(image_bin: Path, tmp_path: Path) -> None:
    version = tmp_path / "model" / "1"
    (version / "assets.extra").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    record = '{"family": "cpu", "server": "tfserving", "batch": 1, "tiny": true}'
    (version / "assets.extra" / "model-build.json").write_text(record)
    environment = {
        "PATH": f"{image_bin}:/usr/bin:/bin",
        "MODEL_NAME": "bert",
        "MODEL_BASE_PATH": str(version.parent),
        "MODEL_FAMILY": "inf2",
        "GRPC_PORT": "8500",
        "REST_PORT": "8501",
    }

    result = subprocess.run(
        [str(image_bin / "serve.sh")], env=environment, capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ERROR: {version} holds a model built for family cpu, server tfserving, tiny")
    assert "arg=--port=8500" not in result.stdout  # the server never started
