"""Builds the SavedModel: a BERT sequence classifier behind the signature the client sends.

TensorFlow and transformers are imported here only, so the CLI checks its variables in a blink
before any of this loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.model_server.runtime import model_signature as signature
from modelbuild.neuron import Compiler, Forward
from modelbuild.options import BuildOptions, Family, ModelBuildError
from modelbuild.version_folder import checked_bert_checkpoint, tiny_tokenizer_and_config, tiny_vocabulary, write_version

# transformers' TensorFlow models are Keras 2 models; TensorFlow 2.16+ brings Keras 3 unless told
# to use tf-keras (transformers docs, "Keras 3"). The compile container's TensorFlow 2.10 ignores it.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ logging (3: errors only are dropped too, e.g. "failed call to cuInit" on a CPU machine).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

# transformers imports PyTorch too when it is installed (.model-venv has it for Triton's build): seconds
# this export never uses. USE_TF keeps it to TensorFlow; transformers.utils.import_utils reads it once, at
# import, so it is set for the import only and the processes this one starts see the environment as it was.
# In this process transformers then has no PyTorch classes: a PyTorch build runs in a process of its own
# (one build per `python -m modelbuild`; tests/model runs Triton's build as a subprocess).
_use_tf = os.environ.get("USE_TF")
os.environ["USE_TF"] = "1"
try:
    from transformers import TFBertForSequenceClassification
    from transformers.utils import logging as transformers_logging
finally:
    if _use_tf is None:
        del os.environ["USE_TF"]
    else:
        os.environ["USE_TF"] = _use_tf

# transformers warns on every import that its TensorFlow classes are deprecated: v4 is pinned for them.
transformers_logging.set_verbosity_error()

__all__ = ["FrozenForward", "build", "cpu_compiler", "example_inputs", "export", "tf", "tiny_vocabulary"]


def _tiny(workdir: Path) -> tuple[Any, Any]:
    tokenizer, config = tiny_tokenizer_and_config(workdir)
    tf.keras.utils.set_random_seed(0)
    model = TFBertForSequenceClassification(config)
    # Built eagerly on its dummy inputs, as from_pretrained builds a checkpoint's: a model first called
    # inside the freeze's tf.function makes its variables there, and TensorFlow then traces it twice.
    # (TFPreTrainedModel.dummy_inputs, transformers' modeling_tf_utils.py: a property in the 2022 releases and
    # in this venv's 4.57, so in the compile container's 4.36 between them.)
    model(model.dummy_inputs, training=False)
    return model, tokenizer


def _from_checkpoint(checkpoint: str) -> tuple[Any, Any]:
    tokenizer, _config = checked_bert_checkpoint(checkpoint)
    try:
        model = TFBertForSequenceClassification.from_pretrained(checkpoint)
    except OSError as error:
        raise ModelBuildError(
            f"Invalid make model variable CHECKPOINT={checkpoint}: no TensorFlow weights (tf_model.h5) could be "
            f"loaded: {str(error).splitlines()[0]}"
        ) from None
    return model, tokenizer


def example_inputs(batch: int, sequence_length: int) -> dict[str, Any]:
    """What a compiler traces with: the compiled batch, every token attended."""
    shape = [batch, sequence_length]
    return {
        "input_ids": tf.zeros(shape, tf.int32),
        "input_mask": tf.ones(shape, tf.int32),
        "segment_ids": tf.zeros(shape, tf.int32),
    }


class FrozenForward(tf.Module):
    """The CPU 'compile': the forward pass as one graph, weights folded in as constants, batch left free.

    Freezing is what a Neuron compile does to the weights too, and it spares ``tf.saved_model.save`` from
    tracing every Keras layer of the model (seconds, even for TINY).
    """

    def __init__(self, forward: Forward, example: Mapping[str, Any]) -> None:
        super().__init__()
        spec = {name: tf.TensorSpec([None, value.shape[1]], value.dtype) for name, value in example.items()}
        # autograph=False: AutoGraph would rewrite every layer's Python into graph control flow, seconds
        # even for TINY, and BERT's forward pass has none on tensors (were there any, the trace would stop
        # with "using a tf.Tensor as a Python bool"); the exported answers are the same to the bit.
        concrete = tf.function(lambda inputs: forward(**inputs), autograph=False).get_concrete_function(spec)
        self._structure = lambda flat: tf.nest.pack_sequence_as(concrete.structured_outputs, flat)
        self.graph = convert_variables_to_constants_v2(concrete)

    def __call__(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._structure(self.graph(*tf.nest.flatten(inputs)))  # type: ignore[no-any-return]


def cpu_compiler(_model: Any) -> Compiler:
    return FrozenForward


def export(options: BuildOptions, compiler_for: Any, *, neuron_release: str | None) -> Path:
    """Writes ``out/version`` for TF Serving: the SavedModel, the tokenizer and the build record.

    ``compiler_for(model)`` gives the compile step (``cpu_compiler``, or Neuron's behind its seam).
    """

    def fill(built: Path, workdir: Path) -> Any:
        model, tokenizer = _tiny(workdir) if options.checkpoint is None else _from_checkpoint(options.checkpoint)

        def forward(input_ids: Any, input_mask: Any, segment_ids: Any) -> dict[str, Any]:
            result = model(input_ids=input_ids, attention_mask=input_mask, token_type_ids=segment_ids, training=False)
            return {signature.OUTPUT_NAME: result.logits}

        compiled = compiler_for(model)(forward, example_inputs(options.batch, options.sequence_length))
        spec = [
            tf.TensorSpec([None, options.sequence_length], signature.INPUT_DTYPE, name=n) for n in signature.INPUT_NAMES
        ]

        @tf.function(input_signature=spec)
        def serve(input_ids: Any, input_mask: Any, segment_ids: Any) -> Any:
            return compiled({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})

        holder = tf.Module()
        holder.compiled = compiled
        tf.saved_model.save(holder, str(built), signatures={signature.SIGNATURE_NAME: serve})
        return tokenizer, model.config.id2label

    return write_version(options, fill, neuron_release=neuron_release)


def build(options: BuildOptions) -> Path:
    """``FAMILY=cpu``: export with plain TensorFlow, here."""
    if options.family is not Family.CPU:
        raise ValueError("Neuron families compile in their container (modelbuild.container)")
    return export(options, cpu_compiler, neuron_release=None)
