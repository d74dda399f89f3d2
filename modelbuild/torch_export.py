"""Builds Triton's model: the BERT classifier traced to TorchScript, on CPU or with torch-neuronx for Inf2.

Written as ``model.pt`` in the version folder, beside the tokenizer and the build record that
``model.py`` reads (the batch it was traced for, the sequence length). Shapes are fixed at trace
time (Neuron's tracing API); ``model.py`` cuts any batch into chunks of the traced one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.jit._trace import TracerWarning
from transformers import BertForSequenceClassification
from transformers.utils import logging as transformers_logging

from modelbuild.neuron import neuron_trace
from modelbuild.options import BuildOptions, Family, ModelBuildError
from modelbuild.version_folder import checked_bert_checkpoint, tiny_tokenizer_and_config, write_version

# TORCHSCRIPT: torch-neuronx 2.9 traces to TorchScript and the Triton image loads it with torch 2.9; the
# PyTorch 2.13 of this environment deprecates torch.jit in favour of torch.export, which torch-neuronx 2.9
# does not produce. The format follows the server's PyTorch, so the warning is silenced where it is used.

# transformers' notes about configuration defaults are not the user's business here.
transformers_logging.set_verbosity_error()

TorchCompiler = Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], Any]
"""(module, example inputs) -> a traced module ``torch.jit.save`` can write."""


class Signature(torch.nn.Module):
    """The model behind the signature the client sends: three int32 tensors in, the logits out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, input_mask: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        outputs = self.model(
            input_ids=input_ids, attention_mask=input_mask, token_type_ids=segment_ids, return_dict=False
        )
        return outputs[0]


def example_inputs(batch: int, sequence_length: int) -> tuple[torch.Tensor, ...]:
    shape = (batch, sequence_length)
    return (
        torch.zeros(shape, dtype=torch.int32),
        torch.ones(shape, dtype=torch.int32),
        torch.zeros(shape, dtype=torch.int32),
    )


def cpu_trace(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> Any:
    with warnings.catch_warnings():
        # transformers' attention-mask arithmetic is constant for a fixed shape, which tracing fixes anyway
        warnings.simplefilter("ignore", TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # see TORCHSCRIPT
        return torch.jit.trace(module, example)


def _model(options: BuildOptions, workdir: Path) -> tuple[torch.nn.Module, Any]:
    if options.checkpoint is None:
        tokenizer, config = tiny_tokenizer_and_config(workdir)
        torch.manual_seed(0)
        return BertForSequenceClassification(config), tokenizer
    tokenizer, _config = checked_bert_checkpoint(options.checkpoint)
    try:
        model = BertForSequenceClassification.from_pretrained(options.checkpoint)
    except OSError as error:
        raise ModelBuildError(
            f"Invalid make model variable CHECKPOINT={options.checkpoint}: no PyTorch weights could be loaded: "
            f"{str(error).splitlines()[0]}"
        ) from None
    return model, tokenizer


def export_traced(options: BuildOptions, trace: TorchCompiler, *, neuron_release: str | None) -> Path:
    """Writes ``out/version`` for Triton: ``model.pt``, the tokenizer and the build record."""

    def fill(built: Path, workdir: Path) -> Any:
        model, tokenizer = _model(options, workdir)
        module = Signature(model.eval()).eval()
        with torch.no_grad():
            traced = trace(module, example_inputs(options.batch, options.sequence_length))
        built.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see TORCHSCRIPT
            torch.jit.save(traced, str(built / "model.pt"))
        return tokenizer, model.config.id2label

    return write_version(options, fill, neuron_release=neuron_release)


def build(options: BuildOptions) -> Path:
    """``FAMILY=cpu SERVER=triton``: trace with plain PyTorch, here."""
    if options.family is not Family.CPU:
        raise ValueError("Neuron families trace in their container (modelbuild.container)")
    return export_traced(options, cpu_trace, neuron_release=None)


__all__ = ["Signature", "build", "cpu_trace", "example_inputs", "export_traced", "neuron_trace"]
