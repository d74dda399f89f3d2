"""make text-local: the front in the foreground for a model of make model's, against the stand-in when no
model server is given; each bad variable one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from components.model_server.runtime.model_signature import BUILD_RECORD
from components.text_front.runtime.model_files import load_model_files
from tests.paths import ROOT
from tests.text_front.harness import LABELS, model_folder
from tools import text_local
from tools.loopback import free_port


def _get(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_with_no_model_server_it_serves_the_models_labels_through_the_stand_in(tmp_path: Path) -> None:
    model_folder(tmp_path)
    port = free_port()
    front = subprocess.Popen(
        [sys.executable, "-m", "tools.text_local", "--model", str(tmp_path / "1"), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"http://127.0.0.1:{port}/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, body = _get(f"http://127.0.0.1:{port}/predict", json.dumps({"inputs": ["the firm", "shares"]}).encode())
    finally:
        front.terminate()
        printed, _ = front.communicate(timeout=30)

    assert status == 200, printed
    assert sorted(item["label"] for item in json.loads(body)) == sorted(LABELS.values())
    assert "the stand-in model server on 127.0.0.1:" in printed


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--model", "/does/not/exist"], "MODEL=/does/not/exist: no such folder"),
        (["--server-api", "grpc"], "SERVER_API=grpc: expected one of tfserving, kserve"),
        (["--model-server", "localhost"], "MODEL_SERVER=localhost: expected host:port"),
        (["--port", "80800"], "PORT=80800: expected a port number, 1-65535"),
    ],
)
def test_each_bad_variable_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], named: str
) -> None:
    model_folder(tmp_path)
    defaults = ["--model", str(tmp_path), "--port", str(free_port())]

    status = text_local.main([*defaults, *arguments])

    (line,) = capsys.readouterr().err.splitlines()
    assert status == 2
    assert line.startswith("text-local: ")
    assert named in line


def test_a_folder_without_a_build_names_make_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = text_local.main(["--model", str(tmp_path), "--port", str(free_port())])

    (line,) = capsys.readouterr().err.splitlines()
    assert status == 2
    assert f"MODEL={tmp_path}" in line
    assert "run make model" in line


def test_a_port_in_use_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_folder(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]

        status = text_local.main(["--model", str(tmp_path), "--port", str(port)])

    (line,) = capsys.readouterr().err.splitlines()
    assert status == 2
    assert f"PORT={port}: 127.0.0.1:{port} is taken by another program" in line


@pytest.mark.parametrize(("server", "api"), [("tfserving", "tfserving"), ("triton", "kserve")])
def test_the_server_api_follows_the_models_build_record(tmp_path: Path, server: str, api: str) -> None:
    model_folder(tmp_path)
    record = tmp_path / "1" / BUILD_RECORD
    record.write_text(json.dumps({**json.loads(record.read_text()), "server": server}))
    files = load_model_files(tmp_path)

    assert text_local.server_api("", files) == api
