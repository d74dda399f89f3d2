"""`make model-check`: ask a built model what the client would ask the server, here, without AWS.

For TF Serving's SavedModel the request is the client's own (``client.transport.predict_request``),
serialized, then decoded the way TF Serving decodes a PredictRequest: the signature by name
(``serving_default`` when none is given), the inputs checked against the signature's, each
TensorProto turned into a tensor. For Triton's traced model (``model.pt``) the client's three int32
tensors go to the TorchScript module in the signature's order, as ``model.py`` passes them; only a
CPU build runs here (a Neuron trace needs NeuronCores).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from client.inputs import BertInputs, load_tokenizer, text_inputs, zero_inputs
from client.transport import predict_request
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import PredictRequest
from components.model_server.runtime import model_signature as signature
from modelbuild.options import DEFAULT_OUT, SCRATCH_OUT, ModelBuildError, invalid

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


MODEL_FILES = ("saved_model.pb", "model.pt")


def newest_built(folder: Path) -> Path | None:
    """The newest version folder holding a SavedModel or a traced model."""
    versions = [
        child
        for child in (folder.iterdir() if folder.is_dir() else [])
        if child.name.isdigit() and any((child / name).is_file() for name in MODEL_FILES)
    ]
    return max(versions, key=lambda child: int(child.name), default=None)


def check_command(*, out: str, text: str, pair: str) -> str:
    """OUT's newest model, else the image's model folder's, else the scratch folder's (make model's quick builds)."""
    folders = [Path(out).expanduser().resolve()] if out.strip() else [DEFAULT_OUT, SCRATCH_OUT]
    version_dir = next((found for found in map(newest_built, folders) if found is not None), None)
    if version_dir is None:
        shown = " or ".join(str(folder) for folder in folders)
        raise invalid("OUT", shown, "no <version>/saved_model.pb or <version>/model.pt there: run make model first")
    traced = (version_dir / "model.pt").is_file()
    sequence_length = _traced_sequence_length(version_dir) if traced else _sequence_length(version_dir)
    inputs: BertInputs = (
        text_inputs(text, pair or None, load_tokenizer(version_dir), 1, sequence_length)
        if text.strip()
        else zero_inputs(1, sequence_length)
    )
    if traced:
        logits = traced_answer(version_dir, inputs)
    else:
        logits = answer(version_dir, predict_request("bert", "", inputs).SerializeToString())[signature.OUTPUT_NAME][0]
    shown = ", ".join(f"{value:.4f}" for value in logits)
    asked = f"{text!r} / {pair!r}" if text.strip() else "the walk-through's zeros"
    return f"{version_dir}: {asked} -> logits [{shown}], class {int(np.argmax(logits))}"


def traced_answer(version_dir: Path, inputs: BertInputs) -> Any:
    """The first row's logits from a CPU-traced model.pt, called as model.py calls it."""
    import json  # noqa: PLC0415

    record = json.loads((version_dir / signature.BUILD_RECORD).read_text())
    if record.get("family") != "cpu":
        raise invalid(
            "OUT",
            version_dir,
            f"holds a model.pt traced for {record.get('family')}, which runs only on its NeuronCores: make model-check "
            "runs SavedModels and CPU builds of model.pt (make model FAMILY=cpu SERVER=triton); make triton-check "
            "serves one through Triton",
        )
    import torch  # noqa: PLC0415  (PyTorch loads only now)

    with warnings.catch_warnings():
        # torch-neuronx 2.9's format is TorchScript, which newer PyTorch deprecates (as in model.py)
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(version_dir / "model.pt"))
    tensors = [torch.from_numpy(np.ascontiguousarray(inputs.tensors[name])) for name in signature.INPUT_NAMES]
    with torch.no_grad():
        result = module(*tensors)
    logits = result[0] if isinstance(result, tuple | list) else result
    return logits.numpy()[0]


def _traced_sequence_length(version_dir: Path) -> int:
    import json  # noqa: PLC0415

    return int(json.loads((version_dir / signature.BUILD_RECORD).read_text())["sequenceLength"])


def _sequence_length(version_dir: Path) -> int:
    spec = load(version_dir).signatures[signature.SIGNATURE_NAME].structured_input_signature[1]
    return int(spec[signature.INPUT_NAMES[0]].shape[1])
