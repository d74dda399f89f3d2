"""The three BERT inputs the model expects: int32 ``[batch, seq_len]`` each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

BERT_INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
Int32Array = npt.NDArray[np.int32]


@dataclass(frozen=True)
class BertInputs:
    """One request's tensors, keyed by the model's input names."""

    tensors: dict[str, Int32Array]

    @property
    def batch(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    @property
    def seq_len(self) -> int:
        return int(next(iter(self.tensors.values())).shape[1])


def zero_inputs(batch: int, seq_len: int) -> BertInputs:
    """All zeros, as the 2020 walk-through's client sent."""
    return BertInputs({name: np.zeros((batch, seq_len), dtype=np.int32) for name in BERT_INPUT_NAMES})


def text_inputs(text: str, vocab: Path, batch: int, seq_len: int) -> BertInputs:
    """Token ids of ``text`` from a BERT WordPiece vocabulary, padded or truncated to ``seq_len``."""
    from tokenizers import BertWordPieceTokenizer  # noqa: PLC0415  (only --text needs it)

    tokenizer = BertWordPieceTokenizer(str(vocab), lowercase=True)
    tokenizer.enable_truncation(max_length=seq_len)
    tokenizer.enable_padding(length=seq_len)
    encoding = tokenizer.encode(text)
    rows = {
        "input_ids": encoding.ids,
        "input_mask": encoding.attention_mask,
        "segment_ids": encoding.type_ids,
    }
    return BertInputs({name: np.tile(np.asarray(row, dtype=np.int32), (batch, 1)) for name, row in rows.items()})
