"""The model server that runs in the task, decided once: the walk-through's TF Serving, or Triton.

TF Serving for Neuron ships no build after Neuron 2.28.1, and TensorFlow on Inf2 is out of support
since Neuron 2.29; Triton Inference Server's Python backend running a torch-neuronx model is the
maintained path on Inf2 (aws-neuron-sdk release notes; triton-inference-server/python_backend
``inferentia/``). Constructs read these facts; none of them tests the engine again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from components.model_server.runtime.model_signature import INPUT_NAMES
from components.model_server.runtime.task_environment import TRITON_METRICS_PORT


class ServingEngine(Enum):
    """The ``server`` setting's values."""

    TFSERVING = "tfserving"
    TRITON = "triton"


@dataclass(frozen=True, kw_only=True)
class EngineFacts:
    """What differs between the two model servers, for the image, the task, the endpoint and the client."""

    engine: ServingEngine
    display_name: str
    """How errors and the README name it."""
    long_name: str
    """Its full name, for the stack's description."""
    api: str
    """The client's ``--api`` for it: TF Serving's own API, or KServe v2 (the Open Inference Protocol)."""
    dockerfile: str
    """The model server's Dockerfile in components/model_server/runtime."""
    model_file: str
    """What a model version folder holds for it, as `make model` writes it."""
    model_kind: str
    """How messages name the model the server loads."""
    instances_per_core: bool
    """The server runs one model instance per NeuronCore of the task, and must be told how many."""
    metrics_port: int | None = None
    """Where, inside the task, the server serves Prometheus metrics for the sidecar to scrape."""

    def metrics_url(self, server_host: str) -> str | None:
        """The sidecar's scrape URL, the server reached as ``server_host`` (a link alias, or localhost)."""
        return None if self.metrics_port is None else f"http://{server_host}:{self.metrics_port}/metrics"

    def ready_path(self, model_name: str) -> str:
        """A REST path answering 200 only while the model can serve: the load balancer's health check.

        TF Serving's ``GET /v1/models/<name>`` answers 200 even while LOADING; the metadata lookup
        goes through the loaded servables, so it fails until one is available. Triton's
        ``GET /v2/models/<name>/ready`` answers 200 when the model is ready and 400 otherwise (KServe
        v2 health API).
        """
        if self.engine is ServingEngine.TRITON:
            return f"/v2/models/{model_name}/ready"
        return f"/v1/models/{model_name}/metadata"

    def health_command(self, model_name: str, rest_port: int) -> list[str]:
        """The container health check: healthy only when the model serves the signature the client sends.

        TF Serving: AVAILABLE (the status endpoint answers 200 while still LOADING) and the metadata
        names each of the signature's inputs, so a model exported with other input names is rolled
        back instead of refusing every request. Triton: the model's ready endpoint, which turns 200
        only after ``model.py`` has loaded the model and run its warm-up, and whose configuration
        ``serve_triton.py`` writes from the same signature.
        """
        if self.engine is ServingEngine.TRITON:
            return ["CMD-SHELL", f"curl -fsS http://localhost:{rest_port}{self.ready_path(model_name)} || exit 1"]
        model_url = f"http://localhost:{rest_port}/v1/models/{model_name}"
        inputs = " && ".join(f'echo "$metadata" | grep -q \'"{name}"\'' for name in INPUT_NAMES)
        return [
            "CMD-SHELL",
            f'curl -fsS {model_url} | grep -q \'"AVAILABLE"\' && metadata="$(curl -fsS {model_url}/metadata)" '
            f"&& {inputs} || exit 1",
        ]


TF_SERVING = EngineFacts(
    engine=ServingEngine.TFSERVING,
    display_name="TF Serving",
    long_name="TensorFlow Serving",
    api="tfserving",
    dockerfile="Dockerfile",
    model_file="saved_model.pb",
    model_kind="SavedModel",
    instances_per_core=False,
)
TRITON = EngineFacts(
    engine=ServingEngine.TRITON,
    display_name="Triton",
    long_name="Triton Inference Server",
    api="kserve",
    dockerfile="Dockerfile.triton",
    model_file="model.pt",
    model_kind="traced model (model.pt)",
    instances_per_core=True,
    metrics_port=TRITON_METRICS_PORT,
)
ENGINES = {facts.engine: facts for facts in (TF_SERVING, TRITON)}
