"""Environment variables the task definition sets and the containers read.

Readers that cannot import this module: ``docker/model-server/serve.sh`` and ``neuron_slot.py``,
``docker/neuron-monitor/neuron_emf.py``, and the model-server Dockerfile's ``ENV``.
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
# neuron-monitor sidecar (task -> neuron_emf.py)
METRICS_NAMESPACE = "METRICS_NAMESPACE"
CLUSTER_NAME = "CLUSTER_NAME"
# Where the sidecar scrapes Triton's Prometheus metrics (task -> neuron_emf.py), Triton's tasks only
TRITON_METRICS_URL = "TRITON_METRICS_URL"
# Set by the ECS agent in every container (read by neuron_emf.py)
ECS_CONTAINER_METADATA_URI_V4 = "ECS_CONTAINER_METADATA_URI_V4"
# The AWS SDK's region (task -> the model-sync and recovery containers)
AWS_REGION = "AWS_REGION"
# Neuron's recovery container: replace a faulty instance (true) or only report (false)
ENABLE_RECOVERY = "ENABLE_RECOVERY"
