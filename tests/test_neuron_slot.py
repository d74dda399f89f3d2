"""Core slots: tasks sharing an instance each claim different NeuronCores, and free them on exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.model_server.runtime import neuron_slot
from tests.paths import SERVER_RUNTIME

SLOT_SCRIPT = SERVER_RUNTIME / "neuron_slot.py"


def start_server(
    slot_dir: Path, slots: int, cores: int, seconds: float, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A stand-in server: prints the cores it was given, then holds them for ``seconds``."""
    server = f"import os, time; print(os.environ['NEURON_RT_VISIBLE_CORES'], flush=True); time.sleep({seconds})"
    env = {
        **os.environ,
        "NEURON_CORES_PER_TASK": str(cores),
        "NEURON_CORE_SLOTS": str(slots),
        "NEURON_SLOT_DIR": str(slot_dir),
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, str(SLOT_SCRIPT), sys.executable, "-c", server],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def visible_cores(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(2)]  # neuron_slot's line, then the server's
    return lines[-1]


@pytest.mark.parametrize(
    ("slot", "cores", "expected"), [(0, 4, "0-3"), (3, 4, "12-15"), (5, 2, "10-11"), (0, 1, "0-0")]
)
def test_slot_n_owns_its_own_core_range(slot: int, cores: int, expected: str) -> None:
    assert neuron_slot.cores_for(slot, cores) == expected


def test_tasks_on_one_instance_get_distinct_cores_and_the_extra_one_waits(tmp_path: Path) -> None:
    # GIVEN an instance with 3 slots of 4 cores and four tasks starting
    servers = [start_server(tmp_path, slots=3, cores=4, seconds=5) for _ in range(3)]
    claimed = sorted(visible_cores(server) for server in servers)
    extra = start_server(tmp_path, slots=3, cores=4, seconds=5)
    _, error = extra.communicate(timeout=20)

    # THEN the three hold disjoint core ranges and the fourth exits for ECS to retry
    assert claimed == ["0-3", "4-7", "8-11"]
    assert extra.returncode == 75
    assert "all 3 NeuronCore slots" in error
    for server in servers:
        server.kill()
        server.wait()


def test_a_slot_frees_itself_when_its_server_exits(tmp_path: Path) -> None:
    first = start_server(tmp_path, slots=1, cores=2, seconds=0.1)
    assert visible_cores(first) == "0-1"
    first.wait(timeout=20)

    # the lock went with the server process, so the next task gets slot 0 again
    deadline = time.monotonic() + 5
    second = start_server(tmp_path, slots=1, cores=2, seconds=0.1)
    assert visible_cores(second) == "0-1"
    second.wait(timeout=20)
    assert time.monotonic() < deadline


def test_serve_script_claims_a_slot_only_when_asked() -> None:
    script = (SERVER_RUNTIME / "serve.sh").read_text()

    assert 'if [ -n "${NEURON_CORES_PER_TASK:-}" ] && [ -z "${NEURON_RT_VISIBLE_CORES:-}" ]; then' in script
    assert 'exec python3 "$(dirname "$0")/neuron_slot.py" "$0" "$@"' in script


def test_offset_and_stride_interleave_several_models(tmp_path: Path) -> None:
    # GIVEN distilbert's slots: 2 cores from core 2, one row of 4 cores apart
    env = {"NEURON_CORE_OFFSET": "2", "NEURON_CORE_STRIDE": "4"}
    servers = [start_server(tmp_path, slots=2, cores=2, seconds=5, extra_env=env) for _ in range(2)]

    assert sorted(visible_cores(server) for server in servers) == ["2-3", "6-7"]
    for server in servers:
        server.kill()
        server.wait()
