"""The model servers' requests and replies built and read once, for every caller: the load client,
the stand-in and the text front. Tensors travel as raw little-endian bytes (TF Serving's
``tensor_content``, KServe's ``raw_input_contents``), as the servers' own clients send them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from components.model_server.apis.kserve_api.kserve_pb2 import ModelInferRequest, ModelInferResponse
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import (
    DataType,
    ModelSpec,
    PredictRequest,
    PredictResponse,
    TensorProto,
    TensorShapeProto,
)
from components.model_server.runtime.model_signature import OUTPUT_NAME

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
READY_METHOD = "/inference.GRPCInferenceService/ModelReady"

Array = np.ndarray[Any, Any]
# numpy dtype -> (TF DataType, little-endian numpy dtype for tensor_content)
_TENSOR_TYPES = {
    np.dtype(np.int32): (DataType.DT_INT32, "<i4"),
    np.dtype(np.int64): (DataType.DT_INT64, "<i8"),
    np.dtype(np.float32): (DataType.DT_FLOAT, "<f4"),
}
_WIRE_TYPES = {dtype: wire for dtype, wire in _TENSOR_TYPES.values()}
# KServe v2's names for tensor types (Open Inference Protocol, "Tensor Data Types").
KSERVE_DATATYPES = {"int32": "INT32", "int64": "INT64", "float32": "FP32"}


class BadReply(ValueError):
    """A reply without the logits, or with logits of the wrong size."""


def tensor_proto(array: Array) -> TensorProto:
    """An array as TF Serving expects it: raw little-endian bytes in ``tensor_content``."""
    dtype, wire = _TENSOR_TYPES[array.dtype]
    return TensorProto(
        dtype=dtype,
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=size) for size in array.shape]),
        tensor_content=array.astype(wire).tobytes(),
    )


def tensor_array(tensor: TensorProto) -> Array:
    """A float tensor of a reply, from ``tensor_content`` or ``float_val`` (TF Serving uses either)."""
    shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
    if tensor.dtype != DataType.DT_FLOAT:
        raise BadReply(f"expected float logits, got {DataType.Name(tensor.dtype)}")
    values = (
        np.frombuffer(tensor.tensor_content, dtype=_WIRE_TYPES[DataType.DT_FLOAT])
        if tensor.tensor_content
        else np.asarray(tensor.float_val, dtype=np.float32)
    )
    if values.size != int(np.prod(shape)):
        raise BadReply(f"{values.size} logits for shape {list(shape)}")
    return values.reshape(shape)


def predict_request(model: str, signature: str, tensors: Mapping[str, Array]) -> PredictRequest:
    request = PredictRequest(model_spec=ModelSpec(name=model, signature_name=signature))
    for name, array in tensors.items():
        request.inputs[name].CopyFrom(tensor_proto(array))
    return request


def predict_logits(reply: PredictResponse) -> Array:
    if OUTPUT_NAME not in reply.outputs:
        raise BadReply(f"no {OUTPUT_NAME!r} in the reply")
    return tensor_array(reply.outputs[OUTPUT_NAME])


def infer_request(model: str, tensors: Mapping[str, Array]) -> ModelInferRequest:
    """Each input as raw little-endian bytes in ``raw_input_contents``, in the order of ``tensors``, as
    Triton's own clients send them; the logits asked for by name."""
    request = ModelInferRequest(model_name=model)
    for name, array in tensors.items():
        request.inputs.add(name=name, datatype=KSERVE_DATATYPES[array.dtype.name], shape=list(array.shape))
        request.raw_input_contents.append(array.astype(array.dtype.newbyteorder("<")).tobytes())
    request.outputs.add(name=OUTPUT_NAME)
    return request


def infer_logits(reply: ModelInferResponse) -> Array:
    """The logits of a ModelInfer reply, raw (``raw_output_contents``) or typed (``contents.fp32_contents``)."""
    for index, output in enumerate(reply.outputs):
        if output.name != OUTPUT_NAME:
            continue
        if output.datatype != "FP32":
            raise BadReply(f"expected FP32 logits, got {output.datatype}")
        shape = tuple(output.shape)
        values = (
            np.frombuffer(reply.raw_output_contents[index], dtype="<f4")
            if index < len(reply.raw_output_contents)
            else np.asarray(output.contents.fp32_contents, dtype=np.float32)
        )
        if values.size != int(np.prod(shape)):
            raise BadReply(f"{values.size} logits for shape {list(shape)}")
        return values.reshape(shape)
    raise BadReply(f"no {OUTPUT_NAME!r} in the reply")
