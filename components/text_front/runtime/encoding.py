"""Text to the model's three int32 rows, as the model was compiled: the sequence length fixed, the
rest padded. Hugging Face ``tokenizers`` does the work with the checkpoint's own tokenizer."""

from __future__ import annotations

from typing import Any

import numpy as np
from tokenizers import Tokenizer

from components.model_server.runtime.model_signature import INPUT_DTYPE, INPUT_NAMES

Sequence = tuple[str] | tuple[str, str]
"""One input: a text, or a pair of texts."""
DIRECTIONS = ("right", "left")


class TooLong(ValueError):
    """The input has more tokens than the model takes, and truncation was not asked for."""

    def __init__(self, limit: int, given: int) -> None:
        super().__init__(f"`inputs` must have less than {limit} tokens. Given: {given}")


class Encoder:
    """Encodes one sequence into ``{input name: int32 [1, sequence_length]}``, with the special tokens."""

    def __init__(self, tokenizer: Tokenizer, sequence_length: int) -> None:
        self.sequence_length = sequence_length
        serialized = tokenizer.to_str()
        self._whole = Tokenizer.from_str(serialized)
        self._whole.no_truncation()
        self._whole.no_padding()
        self._truncating: dict[str, Tokenizer] = {}
        for direction in DIRECTIONS:
            truncating = Tokenizer.from_str(serialized)
            truncating.no_padding()
            truncating.enable_truncation(max_length=sequence_length, direction=direction)
            self._truncating[direction] = truncating

    def count(self, sequence: Sequence) -> int:
        return len(self._whole.encode(*sequence).ids)

    def encode(self, sequence: Sequence, *, truncate: bool, direction: str = "right") -> dict[str, Any]:
        encoding = self._truncating[direction].encode(*sequence)
        if encoding.overflowing and not truncate:
            raise TooLong(self.sequence_length, self.count(sequence))
        length = len(encoding.ids)
        rows = np.zeros((3, 1, self.sequence_length), dtype=INPUT_DTYPE)
        rows[0, 0, :length] = encoding.ids
        rows[1, 0, :length] = encoding.attention_mask
        rows[2, 0, :length] = encoding.type_ids
        return dict(zip(INPUT_NAMES, rows, strict=True))
