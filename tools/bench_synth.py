"""``make bench-synth``: `cdk synth` of the default app against a one-resource app, same CLI.

Both run alternately, ``--runs`` times each, so a busy moment on a shared machine falls on both;
the ratio of the fastest runs is the figure (the fastest run is the one least disturbed), and the
medians are printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK = ["npx", "--no-install", "cdk", "synth", "--no-notices", "--quiet"]
ONE_RESOURCE_APP = f"{sys.executable} {ROOT / 'tools' / 'one_resource_app.py'}"


def synth_seconds(out: Path, *app: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([*CDK, "-o", str(out), *app], cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: bench-synth: cdk synth failed ({result.returncode}): {detail}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each app (default 5)")
    runs = parser.parse_args(argv).runs
    app: list[float] = []
    one: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as scratch:
        for _ in range(runs):
            app.append(synth_seconds(Path(scratch) / "app"))
            one.append(synth_seconds(Path(scratch) / "one", "--app", ONE_RESOURCE_APP))
    print(f"default app:      fastest {min(app):.2f} s, median {statistics.median(app):.2f} s ({runs} runs)")
    print(f"one-resource app: fastest {min(one):.2f} s, median {statistics.median(one):.2f} s")
    print(f"ratio: {min(app) / min(one):.2f} (fastest), {statistics.median(app) / statistics.median(one):.2f} (median)")


if __name__ == "__main__":
    main()
