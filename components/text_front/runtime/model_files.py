"""What the front reads from the model's newest version folder: the tokenizer, the class names and the
compiled sequence length (the files `make model` writes beside the model, model_signature.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from components.model_server.runtime.model_signature import BUILD_RECORD, LABELS_FILE, TOKENIZER_DIR


class ModelFilesError(ValueError):
    """The model folder holds nothing the front can serve; the message is one line."""


@dataclass(frozen=True)
class ModelFiles:
    version_dir: Path
    sequence_length: int
    checkpoint: str
    id2label: dict[int, str]
    """Empty when the build wrote no labels: classes are then named LABEL_<i>, as Hugging Face does."""
    tokenizer: Tokenizer
    server: str = "tfserving"
    """The server the model was built for (the build record's), which decides the API it speaks."""

    def label(self, index: int) -> str:
        return self.id2label.get(index, f"LABEL_{index}")


def newest_version(base: Path) -> Path:
    """``base`` itself when it is a version folder, else its newest version folder."""
    if not base.is_dir():
        raise ModelFilesError(f"no model folder at {base}")
    if (base / BUILD_RECORD).is_file():
        return base
    versions = [child for child in base.iterdir() if child.name.isdigit() and (child / BUILD_RECORD).is_file()]
    if not versions:
        raise ModelFilesError(f"no version folder with a build record ({BUILD_RECORD}) in {base}: run make model")
    return max(versions, key=lambda child: int(child.name))


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelFilesError(f"cannot read {path}: {error}") from None


def load_model_files(base: Path) -> ModelFiles:
    version = newest_version(base)
    record = _json(version / BUILD_RECORD)
    try:
        sequence_length = int(record["sequenceLength"])
    except (KeyError, TypeError, ValueError):
        raise ModelFilesError(f"{version / BUILD_RECORD} names no sequenceLength") from None
    tokenizer_file = version / TOKENIZER_DIR / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelFilesError(f"no {TOKENIZER_DIR}/tokenizer.json in {version}: rebuild the model with make model")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as error:  # tokenizers raises a bare Exception on a file it cannot parse
        raise ModelFilesError(f"{tokenizer_file} is not a tokenizer file: {error}") from None
    labels_file = version / LABELS_FILE
    id2label: dict[int, str] = {}
    if labels_file.is_file():
        document = _json(labels_file)
        names = document.get("id2label") if isinstance(document, dict) else None
        if not isinstance(names, dict) or not all(str(key).isdigit() for key in names):
            raise ModelFilesError(f'{labels_file} holds no {{"id2label": {{"0": "name", ...}}}}')
        id2label = {int(key): str(name) for key, name in names.items()}
    return ModelFiles(
        version,
        sequence_length,
        str(record.get("checkpoint", base.name)),
        id2label,
        tokenizer,
        server=str(record.get("server", "tfserving")),
    )
