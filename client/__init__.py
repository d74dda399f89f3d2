"""Load client for TensorFlow Serving: truthful latency and throughput over gRPC and REST."""
