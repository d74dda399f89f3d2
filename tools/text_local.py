"""make text-local: the text front in the foreground on 127.0.0.1, for a model built by make model.

    make text-local [MODEL=dir] [MODEL_SERVER=host:port] [SERVER_API=tfserving|kserve] [PORT=8080]

MODEL is a version folder (or a folder of them) from make model; empty takes the newest build in the
image's model folder, else in the scratch folder. With no MODEL_SERVER the project's stand-in model
server is started on loopback (zero logits after a fixed model time: the labels are the model's,
the scores mean nothing), so text in, labels out can be tried with no AWS account and no Neuron device.
Each bad variable is one line naming it, and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.model_server.runtime.model_signature import BUILD_RECORD
from components.text_front.runtime import front_environment as front_env
from components.text_front.runtime.backend import connect
from components.text_front.runtime.front import FrontSettings, TextFront
from components.text_front.runtime.model_files import ModelFiles, ModelFilesError, load_model_files
from modelbuild.options import DEFAULT_OUT, SCRATCH_OUT
from tools.loopback import LOOPBACK, free_port
from tools.model_server_standin import Behaviour, LocalServer

# What each server of make model's build record speaks over gRPC.
SERVER_APIS = {"tfserving": "tfserving", "triton": "kserve"}
STANDIN_MODEL_TIME_MS = 5.0


class TextLocalError(ValueError):
    """One line naming the variable and what it allows."""


def model_folder(value: str) -> Path:
    """MODEL as given (a version folder or a folder of them), else the newest local build."""
    if value.strip():
        folder = Path(value).expanduser().resolve()
        if not folder.is_dir():
            raise TextLocalError(f"MODEL={value}: no such folder; give a version folder from make model")
        return folder
    for candidate in (DEFAULT_OUT, SCRATCH_OUT):
        if candidate.is_dir() and any((child / BUILD_RECORD).is_file() for child in candidate.iterdir()):
            return candidate
    raise TextLocalError(
        f"MODEL is empty and no model is built in {DEFAULT_OUT} or {SCRATCH_OUT}: run make model "
        "(make model FAMILY=cpu TINY=1 builds a quick one) or give MODEL=<version folder>"
    )


def server_api(value: str, files: ModelFiles) -> str:
    """SERVER_API as given, else what the model's build record says its server speaks."""
    if value.strip():
        if value not in front_env.SERVER_APIS:
            raise TextLocalError(f"SERVER_API={value}: expected one of {', '.join(front_env.SERVER_APIS)}")
        return value
    return SERVER_APIS.get(files.server, "tfserving")


def model_server(value: str) -> str | None:
    """MODEL_SERVER as host:port, or None for the stand-in."""
    if not value.strip():
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TextLocalError(f"MODEL_SERVER={value}: expected host:port of the model server's gRPC API")
    return value


def listen_port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise TextLocalError(f"PORT={value}: expected a port number, 1-65535")
    port = int(value)
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            held = "is taken by another program" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error})"
            raise TextLocalError(f"PORT={port}: {LOOPBACK}:{port} {held}; choose another PORT") from None
    return port


@contextmanager
def running(
    model: Path, model_server: str, *, server_api: str = "", model_name: str = "bert", timeout: float = 60
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """make text-local in a process of its own, against ``model_server``: yields its port and process
    once its /health answers 200 (the model server ready), and stops it after."""
    port = free_port()
    command = [sys.executable, "-m", "tools.text_local", "--model", str(model), "--model-name", model_name]
    command += ["--model-server", model_server, "--server-api", server_api, "--port", str(port)]
    root = Path(__file__).resolve().parent.parent
    front = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=2):
                    break
            except OSError:
                if front.poll() is not None or time.monotonic() > deadline:
                    said = front.stderr.read().decode() if front.stderr and front.poll() is not None else ""
                    raise RuntimeError(f"the text front did not become healthy: {said}".strip()) from None
                time.sleep(0.1)
        yield port, front
    finally:
        front.terminate()
        front.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="")
    parser.add_argument("--model-server", default="")
    parser.add_argument("--server-api", default="")
    parser.add_argument("--model-name", default="bert")
    parser.add_argument("--port", default=str(front_env.CONTAINER_PORT))
    args = parser.parse_args(argv)
    try:
        folder = model_folder(args.model)
        try:
            files = load_model_files(folder)
        except ModelFilesError as error:
            raise TextLocalError(f"MODEL={folder}: {error}") from None
        api = server_api(args.server_api, files)
        target = model_server(args.model_server)
        port = listen_port(args.port)
    except TextLocalError as error:
        print(f"text-local: {error}", file=sys.stderr)
        return 2

    import uvicorn  # noqa: PLC0415  (the server, only once the variables are good)

    standin = None
    if target is None:
        behaviour = Behaviour(model_name=args.model_name, model_time=STANDIN_MODEL_TIME_MS / 1000.0)
        standin = LocalServer(behaviour).start()
        target = f"{LOOPBACK}:{standin.grpc_port}"
        print(
            f"text-local: the stand-in model server on {target} ({api}; zero logits after "
            f"{STANDIN_MODEL_TIME_MS:g} ms: the labels are the model's, the scores mean nothing)"
        )
    settings = FrontSettings(
        model_name=args.model_name,
        max_client_batch_size=front_env.DEFAULT_MAX_CLIENT_BATCH_SIZE,
        max_concurrent_requests=front_env.DEFAULT_MAX_CONCURRENT_REQUESTS,
        api_key="",
    )
    front = TextFront(settings, files, connect(api, target, model=args.model_name))
    print(f"text-local: {files.version_dir} (sequence length {files.sequence_length}) on http://{LOOPBACK}:{port}")
    print(
        f"  curl -s http://{LOOPBACK}:{port}/predict -H 'Content-Type: application/json' "
        """-d '{"inputs": ["The firm said profits rose.", "Profits went up, the company said."]}'"""
    )
    print("  Ctrl-C stops it.", flush=True)
    try:
        uvicorn.run(front.app(), host=LOOPBACK, port=port, log_level="warning", access_log=False)
    finally:
        if standin is not None:
            standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
