"""Builds the SavedModel: a BERT sequence classifier behind the signature the client sends.

TensorFlow and transformers are imported here only, so the CLI checks its variables in a blink
before any of this loads.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts import model_signature as signature
from modelbuild.neuron import Compiler, Forward
from modelbuild.options import BuildOptions, Family, ModelBuildError

# transformers' TensorFlow models are Keras 2 models; TensorFlow 2.16+ brings Keras 3 unless told
# to use tf-keras (transformers docs, "Keras 3"). The compile container's TensorFlow 2.10 ignores it.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ logging (3: errors only are dropped too, e.g. "failed call to cuInit" on a CPU machine).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    BertTokenizerFast,
    TFBertForSequenceClassification,
)
from transformers.utils import logging as transformers_logging

# transformers warns on every import that its TensorFlow classes are deprecated: v4 is pinned for them.
transformers_logging.set_verbosity_error()

__all__ = ["build", "cpu_compiler", "example_inputs", "export", "tf", "tiny_vocabulary"]

# TINY: small enough to export in seconds, shaped like BERT in every way the server sees.
TINY_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Cased on purpose: a client that lower-cases would get other ids than this tokenizer gives.
TINY_WORDS = ["The", "the", "Company", "company", "said", "profit", "rose", "fell", "shares", "quarter", "in", "and"]
TINY_LABELS = 2


def tiny_vocabulary() -> list[str]:
    characters = list(string.ascii_letters + string.digits + string.punctuation)
    return [*TINY_SPECIAL_TOKENS, *TINY_WORDS, *characters, *(f"##{c}" for c in characters)]


def _tiny(workdir: Path) -> tuple[Any, Any]:
    vocabulary = tiny_vocabulary()
    vocab_file = workdir / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=False)
    config = BertConfig(
        vocab_size=len(vocabulary),
        max_position_embeddings=signature.MAX_SEQUENCE_LENGTH,
        num_labels=TINY_LABELS,
        **TINY_SHAPE,
    )
    tf.keras.utils.set_random_seed(0)
    return TFBertForSequenceClassification(config), tokenizer


def _from_checkpoint(checkpoint: str) -> tuple[Any, Any]:
    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type != "bert":
        raise ModelBuildError(
            f"Invalid make model variable CHECKPOINT={checkpoint}: a {config.model_type} model; expected a BERT "
            "checkpoint (the signature feeds input_ids, input_mask and segment_ids)"
        )
    try:
        model = TFBertForSequenceClassification.from_pretrained(checkpoint)
    except OSError as error:
        raise ModelBuildError(
            f"Invalid make model variable CHECKPOINT={checkpoint}: no TensorFlow weights (tf_model.h5) could be "
            f"loaded: {str(error).splitlines()[0]}"
        ) from None
    return model, AutoTokenizer.from_pretrained(checkpoint)


def example_inputs(batch: int, sequence_length: int) -> dict[str, Any]:
    """What a compiler traces with: the compiled batch, every token attended."""
    shape = [batch, sequence_length]
    return {
        "input_ids": tf.zeros(shape, tf.int32),
        "input_mask": tf.ones(shape, tf.int32),
        "segment_ids": tf.zeros(shape, tf.int32),
    }


class _Eager(tf.Module):  # type: ignore[misc]
    """The CPU 'compile': the model itself, called with the signature's inputs as one dict."""

    def __init__(self, model: Any, forward: Forward) -> None:
        super().__init__()
        self.model = model
        self._forward = forward

    def __call__(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._forward(**inputs)


def cpu_compiler(model: Any) -> Compiler:
    return lambda forward, _example: _Eager(model, forward)


def export(options: BuildOptions, compiler_for: Any, *, neuron_release: str | None) -> Path:
    """Writes ``out/version``: the SavedModel, the tokenizer and the build record; returns the folder.

    ``compiler_for(model)`` gives the compile step (``cpu_compiler``, or Neuron's behind its seam).
    The folder is written beside its final place and swapped in, so a failed build leaves the old
    version as it was.
    """
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{options.version}.", dir=options.out) as staging_name:
        staging = Path(staging_name)
        model, tokenizer = _tiny(staging) if options.checkpoint is None else _from_checkpoint(options.checkpoint)
        (staging / "vocab.txt").unlink(missing_ok=True)

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
        built = staging / "model"
        tf.saved_model.save(holder, str(built), signatures={signature.SIGNATURE_NAME: serve})
        tokenizer.save_pretrained(str(built / signature.TOKENIZER_DIR))
        record = {
            "family": options.family.value,
            "batch": options.batch,
            "sequenceLength": options.sequence_length,
            "checkpoint": options.checkpoint or "TINY (random weights)",
            "neuronRelease": neuron_release,
        }
        (built / signature.BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if options.version_dir.exists():
            shutil.rmtree(options.version_dir)
        built.rename(options.version_dir)
    return options.version_dir


def build(options: BuildOptions) -> Path:
    """``FAMILY=cpu``: export with plain TensorFlow, here."""
    if options.family is not Family.CPU:
        raise ValueError("Neuron families compile in their container (modelbuild.container)")
    return export(options, cpu_compiler, neuron_release=None)
