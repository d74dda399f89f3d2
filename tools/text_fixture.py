"""A model version folder the text front can read, as `make model` writes it less the model itself: a real
BERT-style WordPiece tokenizer over a small vocabulary, labels and a build record. For the tests and
`make bench-local`, which need the front without TensorFlow or a checkpoint download."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from components.model_server.runtime.model_signature import BUILD_RECORD, LABELS_FILE, TOKENIZER_DIR

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "company", "said", "profits", "rose", "went", "up", "firm", "shares", "fell", ",", "."]
LABELS = {"0": "not_equivalent", "1": "equivalent"}


def bert_tokenizer() -> Tokenizer:
    """A BERT-style WordPiece tokenizer (lower-casing, [CLS] a [SEP] b [SEP]) over a small vocabulary."""
    vocabulary = {token: index for index, token in enumerate([*SPECIAL, *WORDS])}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return tokenizer


def model_folder(base: Path, *, sequence_length: int = 16, labels: Mapping[str, str] | None = LABELS) -> Path:
    """``base/1`` as `make model` writes it, less the model: tokenizer, labels, build record."""
    version = base / "1"
    (version / TOKENIZER_DIR).mkdir(parents=True)
    bert_tokenizer().save(str(version / TOKENIZER_DIR / "tokenizer.json"))
    record = {"family": "cpu", "server": "tfserving", "batch": 1, "sequenceLength": sequence_length}
    (version / BUILD_RECORD).write_text(json.dumps({**record, "checkpoint": "test/bert-mrpc", "tiny": True}))
    if labels is not None:
        (version / LABELS_FILE).write_text(json.dumps({"id2label": dict(labels)}))
    return base
