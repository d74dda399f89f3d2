"""TensorFlow Serving's wire messages, generated from tensorflow_serving.proto by `make proto`."""
