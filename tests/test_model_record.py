"""The model that gets deployed is the model the stack serves: the build record judged at synth (a baked
model) and at the server's start (a model from S3), by one module, components/model_server/runtime/model_record.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest

from components.model_server.images import ModelServerImages
from components.model_server.runtime import model_record
from config.parsing import SettingsError
from config.settings import load_settings
from tests.conftest import CDK_JSON_CONTEXT
from tests.paths import ROOT


def built(base: Path, *, family: str, server: str = "tfserving", tiny: bool = False, version: str = "1") -> Path:
    """A version folder as `make model` writes it (its model file and its build record)."""
    folder = base / version
    (folder / "assets.extra").mkdir(parents=True)
    (folder / ("model.pt" if server == "triton" else "saved_model.pb")).write_bytes(b"")
    record = {"family": family, "server": server, "batch": 1, "sequenceLength": 128, "tiny": tiny}
    (folder / "assets.extra" / "model-build.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(
    ("family", "server", "tiny", "said"),
    [
        ("cpu", "tfserving", True, "family cpu, server tfserving, tiny (random weights)"),
        ("cpu", "tfserving", False, "family cpu, server tfserving"),
        ("inf2", "tfserving", False, "family inf2, server tfserving"),
        ("inf1", "tfserving", True, "family inf1, server tfserving, tiny (random weights)"),
    ],
)
def test_a_model_of_another_kind_is_refused_in_one_line(
    tmp_path: Path, family: str, server: str, tiny: bool, said: str
) -> None:
    folder = built(tmp_path, family=family, server=server, tiny=tiny)

    problem = model_record.refusal(tmp_path, "inf1", "tfserving")

    assert problem == (
        f"{folder} holds a model built for {said} (assets.extra/model-build.json), but this stack serves inf1 "
        "with tfserving: build the right one with `make model FAMILY=inf1 SERVER=tfserving`"
    )


def test_the_right_model_and_one_without_a_record_pass(tmp_path: Path) -> None:
    built(tmp_path / "right", family="inf2", server="triton")
    (tmp_path / "elsewhere" / "1").mkdir(parents=True)
    (tmp_path / "elsewhere" / "1" / "saved_model.pb").write_bytes(b"")

    assert model_record.refusal(tmp_path / "right", "inf2", "triton") is None
    assert model_record.refusal(tmp_path / "elsewhere", "inf1", "tfserving") is None  # built elsewhere: not judged
    assert model_record.refusal(tmp_path / "none", "inf1", "tfserving") is None


def test_only_the_newest_version_counts(tmp_path: Path) -> None:
    built(tmp_path, family="cpu", tiny=True, version="1")
    built(tmp_path, family="inf1", version="2")

    assert model_record.refusal(tmp_path, "inf1", "tfserving") is None


def test_synth_refuses_a_quick_cpu_model_baked_into_an_inferentia_image(tmp_path: Path) -> None:
    built(tmp_path, family="cpu", tiny=True)
    settings = load_settings(CDK_JSON_CONTEXT.get)

    with pytest.raises(SettingsError) as refused:
        ModelServerImages(
            cdk.Stack(cdk.App(), "S"), "Images", profile=settings.profile, model=settings.models[0], model_dir=tmp_path
        )

    (line,) = str(refused.value).splitlines()
    assert f"{tmp_path / '1'} holds a model built for family cpu" in line
    assert "`make model FAMILY=inf1 SERVER=tfserving`" in line


def test_the_app_prints_the_refusal_as_one_line(tmp_path: Path) -> None:
    # the app run as cdk runs it, against a model folder with a TINY build (a copy of the project)
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(".venv", ".*venv", "node_modules", "cdk.out", ".git", "*_cache", "model-scratch"),
    )
    model_dir = project / "components" / "model_server" / "model"
    for child in model_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    built(model_dir, family="cpu", tiny=True)

    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=project,
        env={
            "PATH": "/usr/bin:/bin",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_OUTDIR": str(tmp_path / "out"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("!!") and line.strip()]
    assert line.startswith("error: ")
    assert "holds a model built for family cpu, server tfserving, tiny (random weights)" in line
