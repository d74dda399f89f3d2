"""``make triton-check``: the Triton stack's own parts against a real tritonserver, on this machine's CPU.

The nvidia-pytriton wheel carries Triton 2.51 with its Python backend and runs without a GPU. This
builds the TINY model with ``make model FAMILY=cpu SERVER=triton``, writes Triton's repository with
the image's own ``serve_triton.py`` (``config.pbtxt``, ``model.py`` beside each version), starts
tritonserver as the image does (the backend stub copied beside the backend, the Python library on
``LD_LIBRARY_PATH``), then drives it with the load client over KServe gRPC and REST at batch 1 and
a batch the model must cut and pad, asks ``status`` both ways, and reads ``/metrics`` through the
sidecar's own parser. Any failure is one line and a non-zero exit.

    python -m tools.triton_check --triton-venv .triton-venv
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from client.report import read_json_line
from client.text import classify
from config.engines import TRITON
from tools import text_local
from tools.loopback import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bert"
READY_TIMEOUT_S = 120


class CheckFailed(RuntimeError):
    pass


def _run(command: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(command[:4])} … failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return result  # type: ignore[no-any-return]


def triton_paths(venv: Path) -> tuple[Path, Path, Path]:
    """tritonserver, its backends folder, and the venv Python's shared-library folder."""
    site = next((venv / "lib").glob("python3.*/site-packages"), None)
    if site is None or not (site / "pytriton").is_dir():
        raise CheckFailed(f"no nvidia-pytriton in {venv}: run `make triton-check`, which installs it")
    server = site / "pytriton" / "tritonserver"
    libdir = _run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"]
    ).stdout.strip()
    return server / "bin" / "tritonserver", server / "backends", Path(libdir)


def install_stub(venv: Path, backends: Path) -> None:
    """As the image's Dockerfile does: the backend stub for the venv's Python, beside the backend."""
    version = _run([str(venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    stub = backends.parent / "python_backend_stubs" / version.stdout.strip() / "triton_python_backend_stub"
    shutil.copy2(stub, backends / "python" / stub.name)


def build_repository(workdir: Path, batch: int, model_python: Path) -> Path:
    models = workdir / "model"
    _run(
        [
            *(str(model_python), "-m", "modelbuild", "--family", "cpu", "--server", "triton", "--tiny", "1"),
            *("--batch", str(batch), "--out", str(models)),
        ],
        cwd=ROOT,
        env={**os.environ, "USE_TF": "0"},
    )
    from components.model_server.runtime import serve_triton  # noqa: PLC0415  (the image's own entrypoint)

    batching = {"max_batch_size": batch * 2, "batch_timeout_micros": 1000}
    return Path(
        serve_triton.write_repository(workdir / "repository", name=MODEL, base=models, instances=2, batching=batching)
    )


def wait_ready(rest_port: int, server: subprocess.Popen[str]) -> float:
    started = time.perf_counter()
    url = f"http://{LOOPBACK}:{rest_port}{TRITON.ready_path(MODEL)}"
    while time.perf_counter() - started < READY_TIMEOUT_S:
        if server.poll() is not None:
            raise CheckFailed(f"tritonserver exited with {server.returncode} before the model was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise CheckFailed(f"{MODEL} not ready after {READY_TIMEOUT_S} s")


def client(*arguments: str) -> dict[str, object]:
    result = _run([sys.executable, "-m", "client", "--api", "kserve", "--model", MODEL, *arguments, "--json"], cwd=ROOT)
    return read_json_line(result.stdout)


def text_through_the_front(model: Path, grpc_port: int) -> None:
    """The text front (make text-local) in front of this Triton over KServe gRPC: a pair's labels, then
    the client's text API load through it. A front that never turns healthy is a RuntimeError."""
    with text_local.running(model, f"{LOOPBACK}:{grpc_port}", server_api="kserve", model_name=MODEL) as (port, _):
        labels = classify(
            f"http://{LOOPBACK}:{port}", "The company said profit rose.", "Profit went up, the firm said.", timeout=10
        )
        report = _run(
            [
                *(sys.executable, "-m", "client", "--api", "text", "--target", f"{LOOPBACK}:{port}"),
                *("--requests", "200", "--concurrency", "4", "--warmup", "5", "--json"),
            ],
            cwd=ROOT,
        )
    figures = read_json_line(report.stdout)
    if figures["errors"] or len(labels) != 2:
        raise CheckFailed(f"text front: {figures['errors_by_code']}, labels {labels}")
    print(
        f"text front over KServe gRPC: labels {labels}; {figures['requests']} requests, 0 errors, "
        f"{figures['throughput_rps']} req/s, p50 {figures['latency_ms']['p50']} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.triton_check", description=__doc__.splitlines()[0])
    parser.add_argument("--triton-venv", type=Path, required=True)
    parser.add_argument("--model-python", type=Path, required=True, help="the model build's venv's python")
    args = parser.parse_args(argv)
    grpc_port, rest_port, metrics_port = free_port(), free_port(), free_port()
    server: subprocess.Popen[str] | None = None
    try:
        tritonserver, backends, libdir = triton_paths(args.triton_venv.resolve())
        install_stub(args.triton_venv.resolve(), backends)
        with tempfile.TemporaryDirectory(prefix="triton-check-") as workdir:
            repository = build_repository(Path(workdir), batch=2, model_python=args.model_python)
            log = Path(workdir) / "tritonserver.log"
            env = {
                **os.environ,
                "PATH": f"{args.triton_venv.resolve() / 'bin'}:{os.environ['PATH']}",
                "LD_LIBRARY_PATH": str(libdir),
                "NEURON_RT_VISIBLE_CORES": "0-1",  # what the core-slot claim sets in the task
            }
            with log.open("w") as output:
                server = subprocess.Popen(
                    [
                        str(tritonserver),
                        f"--model-repository={repository}",
                        f"--backend-directory={backends}",
                        f"--http-port={rest_port}",
                        f"--grpc-port={grpc_port}",
                        f"--metrics-port={metrics_port}",
                        "--model-control-mode=none",
                    ],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=env,
                    text=True,
                )
                ready_after = wait_ready(rest_port, server)
                print(f"tritonserver {MODEL} ready after {ready_after:.1f} s (two model.py instances, warm-up done)")
                for protocol, port in (("grpc", grpc_port), ("rest", rest_port)):
                    status = _run(
                        [
                            *(sys.executable, "-m", "client", "status", "--api", "kserve", "--model", MODEL),
                            *("--target", f"{LOOPBACK}:{port}", "--protocol", protocol),
                        ],
                        cwd=ROOT,
                    )
                    print(f"status over {protocol}: {status.stdout.strip()}")
                    for batch in (1, 3):  # 3: model.py cuts it into traced batches of 2 and pads the last
                        report = client(
                            *("--target", f"{LOOPBACK}:{port}", "--protocol", protocol, "--batch", str(batch)),
                            *("--requests", "200", "--concurrency", "4", "--warmup", "5"),
                        )
                        if report["errors"]:
                            raise CheckFailed(f"{protocol} batch {batch}: {report['errors_by_code']}")
                        latency = report["latency_ms"]
                        assert isinstance(latency, dict)
                        print(
                            f"{protocol} batch {batch}: {report['requests']} requests, 0 errors, "
                            f"{report['inferences_per_s']} inferences/s, p50 {latency['p50']} ms"
                        )
                text_through_the_front(Path(workdir) / "model", grpc_port)
                from components.neuron_monitor.runtime.triton_emf import totals  # noqa: PLC0415  (the sidecar's)

                with urllib.request.urlopen(f"http://{LOOPBACK}:{metrics_port}/metrics", timeout=5) as response:
                    read = totals(response.read().decode(), MODEL)
                print("metrics the sidecar reads: " + ", ".join(f"{name}={value:g}" for name, value in read.items()))
    # CheckFailed; the text front not becoming healthy; an answer of /predict or /metrics that is wrong
    # (ValueError) or that does not come (OSError: urllib's HTTPError and URLError)
    except (RuntimeError, ValueError, OSError) as error:
        print(f"error: triton-check: {error}", file=sys.stderr)
        return 1
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
