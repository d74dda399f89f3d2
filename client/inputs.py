"""The three BERT inputs the model expects: int32 ``[batch, seq_len]`` each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from components.model_server.runtime.model_signature import INPUT_DTYPE, INPUT_NAMES, TOKENIZER_DIR

BERT_INPUT_NAMES = INPUT_NAMES
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
    return BertInputs({name: np.zeros((batch, seq_len), dtype=INPUT_DTYPE) for name in BERT_INPUT_NAMES})


# What every BERT WordPiece vocabulary holds: the tokens the encoder adds around and inside each pair.
BERT_SPECIAL_TOKENS = frozenset({"[UNK]", "[CLS]", "[SEP]", "[PAD]"})


class TokenizerNotFound(ValueError):
    """``--tokenizer`` names nothing a BERT tokenizer can be read from."""


def load_tokenizer(path: Path) -> Any:
    """The model's own tokenizer: from a model version folder `make model` wrote, a folder of Hugging Face
    tokenizer files, or a ``vocab.txt``.

    ``tokenizer.json`` carries the checkpoint's normalisation (casing, accents) whole; a bare
    ``vocab.txt`` takes ``do_lower_case`` from a ``tokenizer_config.json`` beside it, else lower-cases
    as Hugging Face's BertTokenizer does by default.
    """
    from tokenizers import Tokenizer  # noqa: PLC0415  (only --text needs it)
    from tokenizers.implementations import BertWordPieceTokenizer  # noqa: PLC0415
    from tokenizers.models import WordPiece  # noqa: PLC0415

    folder = path if path.is_dir() else path.parent
    if (folder / TOKENIZER_DIR).is_dir():
        folder = folder / TOKENIZER_DIR
    if path.is_dir() and (folder / "tokenizer.json").is_file():
        try:
            return Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # tokenizers raises a bare Exception on a file it cannot parse
            raise TokenizerNotFound(f"{folder / 'tokenizer.json'} is not a tokenizer file: {error}") from None
    vocab = path if path.is_file() else folder / "vocab.txt"
    if vocab.name != "vocab.txt" or not vocab.is_file():
        raise TokenizerNotFound(
            f"no tokenizer at {path}: expected a model version folder, a folder with tokenizer.json or vocab.txt, "
            "or a vocab.txt"
        )
    try:
        tokens = set(vocab.read_text(encoding="utf-8").splitlines())
        config = folder / "tokenizer_config.json"
        lowercase = bool(json.loads(config.read_text()).get("do_lower_case", True)) if config.is_file() else True
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TokenizerNotFound(f"cannot read the tokenizer at {path}: {error}") from None
    missing = sorted(BERT_SPECIAL_TOKENS - tokens)
    if missing:
        raise TokenizerNotFound(
            f"{vocab} is not a BERT WordPiece vocabulary: it lacks {', '.join(missing)} (one token per line)"
        )
    return BertWordPieceTokenizer(WordPiece.read_file(str(vocab)), lowercase=lowercase)


def text_inputs(text: str, pair: str | None, tokenizer: Any, batch: int, seq_len: int) -> BertInputs:
    """Token ids of ``text`` (and ``pair``, as BERT's second segment), padded or truncated to ``seq_len``."""
    tokenizer.enable_truncation(max_length=seq_len)
    tokenizer.enable_padding(length=seq_len)
    encoding = tokenizer.encode(text, pair)
    rows = {
        "input_ids": encoding.ids,
        "input_mask": encoding.attention_mask,
        "segment_ids": encoding.type_ids,
    }
    return BertInputs({name: np.tile(np.asarray(row, dtype=INPUT_DTYPE), (batch, 1)) for name, row in rows.items()})
