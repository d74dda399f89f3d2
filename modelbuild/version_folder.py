"""What both exports share, without TensorFlow or PyTorch: the TINY vocabulary and configuration, the
checkpoint's checks, and writing a version folder (staged beside its place, swapped in whole)."""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components.model_server.runtime import model_signature as signature
from modelbuild.options import BuildOptions, ModelBuildError

# TINY: small enough to export in seconds, shaped like BERT in every way the server sees.
TINY_SHAPE = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
TINY_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Cased on purpose: a client that lower-cases would get other ids than this tokenizer gives.
TINY_WORDS = ["The", "the", "Company", "company", "said", "profit", "rose", "fell", "shares", "quarter", "in", "and"]
TINY_LABELS = 2


def tiny_vocabulary() -> list[str]:
    characters = list(string.ascii_letters + string.digits + string.punctuation)
    return [*TINY_SPECIAL_TOKENS, *TINY_WORDS, *characters, *(f"##{c}" for c in characters)]


def tiny_tokenizer_and_config(workdir: Path) -> tuple[Any, Any]:
    """A cased WordPiece tokenizer over the TINY vocabulary, and the BertConfig of a model that fits it."""
    from transformers import BertConfig, BertTokenizerFast  # noqa: PLC0415  (loads only for a build)

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
    return tokenizer, config


def checked_bert_checkpoint(checkpoint: str) -> tuple[Any, Any]:
    """The checkpoint's tokenizer and configuration, once it is known to be a BERT."""
    from transformers import AutoConfig, AutoTokenizer  # noqa: PLC0415

    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type != "bert":
        raise ModelBuildError(
            f"Invalid make model variable CHECKPOINT={checkpoint}: a {config.model_type} model; expected a BERT "
            "checkpoint (the signature feeds input_ids, input_mask and segment_ids)"
        )
    return AutoTokenizer.from_pretrained(checkpoint), config


def write_version(
    options: BuildOptions, fill: Callable[[Path, Path], tuple[Any, Mapping[Any, str]]], *, neuron_release: str | None
) -> Path:
    """Writes ``out/version``: ``fill(folder, workdir)`` puts the model and returns its tokenizer and its
    ``id2label``, then the tokenizer files, the labels and the build record go beside it. The folder is
    staged beside its final place and swapped in, so a failed build leaves the old version as it was."""
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{options.version}.", dir=options.out) as staging_name:
        staging = Path(staging_name)
        built = staging / "model"
        workdir = staging / "work"
        workdir.mkdir()
        tokenizer, id2label = fill(built, workdir)
        tokenizer.save_pretrained(str(built / signature.TOKENIZER_DIR))
        # The text front names each class as the checkpoint does (LABEL_0, ... when it names none).
        labels = {"id2label": {str(index): str(label) for index, label in sorted(id2label.items())}}
        (built / signature.LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
        record = {
            "family": options.family.value,
            "server": options.server.value,
            "batch": options.batch,
            "sequenceLength": options.sequence_length,
            "checkpoint": options.checkpoint or "TINY (random weights)",
            "tiny": options.tiny,
            "neuronRelease": neuron_release,
        }
        (built / signature.BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if options.version_dir.exists():
            shutil.rmtree(options.version_dir)
        built.rename(options.version_dir)
    return options.version_dir
