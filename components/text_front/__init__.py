"""The text front: a Text Embeddings Inference-compatible classification API in every serving task,
its container and image (CDK) beside the app its image runs (runtime/)."""
