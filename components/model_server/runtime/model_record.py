"""What a model's build record says, and whether this server may serve it: one home for both sides.

`make model` writes ``assets.extra/model-build.json`` into every version folder (family, server,
compiled batch, sequence length, tiny). The CDK app reads it at synth for a model baked into the
image (components/model_image.py); the server's entrypoint reads it at start for a model copied
from S3 (serve.sh, serve_triton.py). Either refuses, in one line, a model built for another family
or server, or a CPU or TINY build, which would load random or unservable weights onto Inferentia.
A model without a record (built elsewhere) is not judged. Standard library only: it runs on the
image's python3 (3.9 on Amazon Linux 2023).

    model_record.py MODEL_BASE_PATH FAMILY SERVER     (exits 1 with one line when it refuses)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import model_signature
else:  # run in the image, beside its sibling modules
    import model_signature
# What a version folder holds for TF Serving (a SavedModel) or for Triton (a traced model).
MODEL_FILES = {"tfserving": "saved_model.pb", "triton": "model.pt"}


def newest_version(base: Path) -> Optional[Path]:
    if not base.is_dir():
        return None
    versions = [
        child
        for child in base.iterdir()
        if child.name.isdigit() and any((child / name).is_file() for name in MODEL_FILES.values())
    ]
    return max(versions, key=lambda child: int(child.name), default=None)


def read_record(version: Path) -> Optional[dict[str, Any]]:
    path = version / model_signature.BUILD_RECORD
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if isinstance(record, dict) else None


def refusal(base: Path, family: str, server: str) -> Optional[str]:
    """Why the newest version under ``base`` may not be served by a ``server`` on ``family``, or None."""
    version = newest_version(base)
    record = read_record(version) if version else None
    if version is None or record is None:
        return None
    built_family, built_server = str(record.get("family")), str(record.get("server", "tfserving"))
    tiny = bool(record.get("tiny")) or str(record.get("checkpoint", "")).startswith("TINY")
    if (built_family, built_server, tiny) == (family, server, False):
        return None
    said = f"family {built_family}, server {built_server}" + (", tiny (random weights)" if tiny else "")
    return (
        f"{version} holds a model built for {said} ({model_signature.BUILD_RECORD}), "
        f"but this stack serves {family} with {server}: "
        f"build the right one with `make model FAMILY={family} SERVER={server}`"
    )


def main(arguments: list[str]) -> int:
    problem = refusal(Path(arguments[0]), arguments[1], arguments[2])
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:4]))
