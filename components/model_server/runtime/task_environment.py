"""What the task definition and the model-server image agree on: the environment variables the task
sets and the server's scripts read, and the ports and limits both sides use.

One home for both sides: the CDK app imports this module (components/model_server/task.py) and the
image copies it beside the scripts that read it (neuron_slot.py, serve_triton.py, model.py). The
shell and Dockerfile readers cannot import it; tests/test_contracts.py checks the names they use are
these. Standard library only: it runs on the image's python3 (3.9 on Amazon Linux 2023).
"""

from __future__ import annotations

# Core slots (task -> serve.sh -> neuron_slot.py)
NEURON_CORES_PER_TASK = "NEURON_CORES_PER_TASK"
NEURON_CORE_SLOTS = "NEURON_CORE_SLOTS"
NEURON_SLOT_DIR = "NEURON_SLOT_DIR"
NEURON_CORE_OFFSET = "NEURON_CORE_OFFSET"
NEURON_CORE_STRIDE = "NEURON_CORE_STRIDE"
# Set by neuron_slot.py for the server; Neuron's runtime reads it.
NEURON_RT_VISIBLE_CORES = "NEURON_RT_VISIBLE_CORES"
# Model server (the Dockerfile's ENV, overridden by the task where it must be -> serve.sh)
MODEL_NAME = "MODEL_NAME"
# The family the image is built for, set by its Dockerfile: model_record.py refuses a model of another.
MODEL_FAMILY = "MODEL_FAMILY"
GRPC_PORT = "GRPC_PORT"
REST_PORT = "REST_PORT"
MODEL_BASE_PATH = "MODEL_BASE_PATH"
BATCHING_PARAMETERS = "BATCHING_PARAMETERS"
# Triton: model instances to start, one per NeuronCore of the task (-> serve_triton.py)
TRITON_INSTANCES = "TRITON_INSTANCES"
# Triton: each instance's shared-memory region, and the largest batch it takes (config/triton_memory.py)
TRITON_SHM_REGION_BYTES = "TRITON_SHM_REGION_BYTES"
TRITON_MAX_BATCH = "TRITON_MAX_BATCH"
# rtd layout: where the server finds neuron-rtd
NEURON_RTD_ADDRESS = "NEURON_RTD_ADDRESS"
# The AWS SDK's region (task -> the model-sync and recovery containers)
AWS_REGION = "AWS_REGION"
# Neuron's recovery container: replace a faulty instance (true) or only report (false)
ENABLE_RECOVERY = "ENABLE_RECOVERY"

# tritonserver's --metrics-port, as serve_triton.py starts it (Triton's default too); the sidecar scrapes it.
TRITON_METRICS_PORT = 8002
# The largest request batch Triton accepts when the task says none (make model's BATCH bound).
TRITON_MAX_REQUEST_BATCH = 256
