"""KServe v2 (Triton) wire messages, generated from kserve.proto by `make proto`."""
