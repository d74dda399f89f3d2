"""`make model-check`: ask a built model what the client would ask the server, here, without AWS.

The request is the client's own (``client.transport.predict_request``), serialized, then decoded the
way TF Serving decodes a PredictRequest: the signature by name (``serving_default`` when none is
given), the inputs checked against the signature's, each TensorProto turned into a tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from client.inputs import BertInputs, load_tokenizer, text_inputs, zero_inputs
from client.tfs_api.tensorflow_serving_pb2 import PredictRequest
from client.transport import predict_request
from contracts import model_signature as signature
from modelbuild.options import DEFAULT_OUT, ModelBuildError, invalid
from modelbuild.upload import built_versions

_loaded: dict[Path, Any] = {}


def load(version_dir: Path) -> Any:
    """The SavedModel, loaded once per process."""
    from modelbuild.export import tf  # noqa: PLC0415  (TensorFlow loads only now)

    if version_dir not in _loaded:
        _loaded[version_dir] = tf.saved_model.load(str(version_dir))
    return _loaded[version_dir]


def answer(version_dir: Path, request_bytes: bytes) -> dict[str, Any]:
    """What TF Serving computes for a serialized PredictRequest against this version."""
    from tensorflow.core.framework import tensor_pb2  # noqa: PLC0415

    from modelbuild.export import tf  # noqa: PLC0415

    request = PredictRequest.FromString(request_bytes)
    name = request.model_spec.signature_name or signature.SIGNATURE_NAME
    signatures = load(version_dir).signatures
    if name not in signatures:
        raise ModelBuildError(f"The model at {version_dir} has no signature {name!r}: it has {sorted(signatures)}")
    function = signatures[name]
    expected = set(function.structured_input_signature[1])
    if set(request.inputs) != expected:
        raise ModelBuildError(
            f"The model at {version_dir} takes {sorted(expected)}, the request sends {sorted(request.inputs)}"
        )
    tensors = {
        input_name: tf.constant(tf.make_ndarray(tensor_pb2.TensorProto.FromString(proto.SerializeToString())))
        for input_name, proto in request.inputs.items()
    }
    return {output: value.numpy() for output, value in function(**tensors).items()}


def check_command(*, out: str, text: str, pair: str) -> str:
    folder = Path(out).expanduser().resolve() if out.strip() else DEFAULT_OUT
    versions = built_versions(folder)
    if not versions:
        raise invalid("OUT", folder, "no <version>/saved_model.pb there: run make model first")
    version_dir = versions[-1]
    sequence_length = _sequence_length(version_dir)
    inputs: BertInputs = (
        text_inputs(text, pair or None, load_tokenizer(version_dir), 1, sequence_length)
        if text.strip()
        else zero_inputs(1, sequence_length)
    )
    logits = answer(version_dir, predict_request("bert", "", inputs).SerializeToString())[signature.OUTPUT_NAME][0]
    shown = ", ".join(f"{value:.4f}" for value in logits)
    asked = f"{text!r} / {pair!r}" if text.strip() else "the walk-through's zeros"
    return f"{version_dir}: {asked} -> logits [{shown}], class {int(np.argmax(logits))}"


def _sequence_length(version_dir: Path) -> int:
    spec = load(version_dir).signatures[signature.SIGNATURE_NAME].structured_input_signature[1]
    return int(spec[signature.INPUT_NAMES[0]].shape[1])
