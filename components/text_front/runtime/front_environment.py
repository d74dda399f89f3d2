"""The text front's environment: one home for the names the task definition sets and the front reads."""

from __future__ import annotations

CONTAINER_PORT = 8080
"""The port the front listens on inside the task (the load balancer's text port maps to it)."""
PORT = "TEXT_PORT"
HOST = "TEXT_HOST"
DEFAULT_HOST = "0.0.0.0"
"""Every interface of the task (the load balancer's health checks and traffic come from outside it)."""
MODEL_NAME = "MODEL_NAME"
MODEL_BASE_PATH = "MODEL_BASE_PATH"
"""The model's folder of numbered versions (the newest one's tokenizer, labels and build record are read)."""
MODEL_SERVER = "MODEL_SERVER"
"""``host:port`` of the model server's gRPC API, in the same task."""
SERVER_API = "SERVER_API"
SERVER_APIS = ("tfserving", "kserve")
"""TF Serving's Predict, or KServe v2's ModelInfer (Triton)."""
MAX_CLIENT_BATCH_SIZE = "MAX_CLIENT_BATCH_SIZE"
DEFAULT_MAX_CLIENT_BATCH_SIZE = 32
"""TEI's default (--max-client-batch-size, router/src/main.rs)."""
MAX_CONCURRENT_REQUESTS = "MAX_CONCURRENT_REQUESTS"
DEFAULT_MAX_CONCURRENT_REQUESTS = 512
"""TEI's default (--max-concurrent-requests): beyond it a request is refused as Overloaded (429)."""
API_KEY = "API_KEY"
"""The key clients send as ``Authorization: Bearer <key>``; ECS sets it from Secrets Manager at task start."""
HEALTH_PATH = "/health"
