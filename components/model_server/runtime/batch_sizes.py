"""Makes TF Serving's batching agree with the batch the model was compiled for, before the server starts.

A Neuron model compiled for batch B with dynamic batch size runs any multiple of B (aws-neuron-sdk
archive/appnotes/perf/neuron-cc/performance-tuning.rst: "send a larger inference batch size ...
equal to a multiple of the compiled batch size"). TF Serving pads each batch it forms up to the
next of its ``allowed_batch_sizes``, increasing, the last equal to ``max_batch_size`` (tensorflow/
serving, servables/tensorflow/session_bundle_config.proto, BatchingParameters). So
``max_batch_size`` must be a multiple of B, and the allowed sizes are B, 2B, ... up to it. B is
read from the build record `make model` writes beside the newest version; a model built
elsewhere, without one, is left as it is. Standard library only: it runs on the image's python3.

    batch_sizes.py MODEL_BASE_PATH BATCHING_PARAMETERS_FILE   (appends to the file, or exits 1)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import model_record
else:  # run in the image, beside its sibling modules
    import model_record
_MAX_BATCH_SIZE = re.compile(r"max_batch_size\s*\{\s*value:\s*(\d+)\s*\}")


def compiled_batch(base: Path) -> Optional[int]:
    version = model_record.newest_version(base)
    record = model_record.read_record(version) if version else None
    return int(record["batch"]) if record else None


def allowed_batch_sizes(compiled: int, max_batch_size: int) -> list[int]:
    if max_batch_size % compiled:
        raise ValueError(
            f"batching maxBatchSize is {max_batch_size}, but the model was compiled for batch {compiled}: "
            f"set batching.maxBatchSize to a multiple of {compiled} (Neuron runs multiples of the compiled batch)"
        )
    return list(range(compiled, max_batch_size + 1, compiled))


def main(base: str, parameters_file: str) -> int:
    compiled = compiled_batch(Path(base))
    if compiled is None:
        return 0
    parameters = Path(parameters_file)
    found = _MAX_BATCH_SIZE.search(parameters.read_text())
    if found is None:
        print("ERROR: the batching parameters name no max_batch_size", file=sys.stderr)
        return 1
    try:
        sizes = allowed_batch_sizes(compiled, int(found[1]))
    except ValueError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    with parameters.open("a") as out:
        out.writelines(f"allowed_batch_sizes: {size}\n" for size in sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
