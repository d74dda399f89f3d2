"""The model's serving signature: what `make model` exports, the client sends and the server checks.

The 2020 walk-through's client sends three int32 tensors of shape ``[batch, sequence length]``
named as Google's BERT ``run_classifier`` names them; the model answers with classification
logits. ``modelbuild`` exports exactly this signature, ``client`` builds its requests from it,
and the server's entrypoints read the build record named here (``model_record.py``, beside it in
the image). Standard library only.
"""

from __future__ import annotations

SIGNATURE_NAME = "serving_default"
INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
INPUT_DTYPE = "int32"
"""numpy's (and TensorFlow's) name of the inputs' element type."""
OUTPUT_NAME = "logits"

DEFAULT_SEQUENCE_LENGTH = 128
MAX_SEQUENCE_LENGTH = 512
"""BERT's position embeddings: no BERT checkpoint takes a longer sequence."""

# Written by `make model` inside each version folder, read by the server's entrypoint at start:
# {"family": ..., "batch": compiled batch size, "sequenceLength": ..., "neuronRelease": ...}.
BUILD_RECORD = "assets.extra/model-build.json"
# The checkpoint's tokenizer files, beside the SavedModel in each version folder.
TOKENIZER_DIR = "assets.extra/tokenizer"
# The checkpoint's class names, {"id2label": {"0": "not_equivalent", ...}}, for the text front.
LABELS_FILE = "assets.extra/labels.json"
