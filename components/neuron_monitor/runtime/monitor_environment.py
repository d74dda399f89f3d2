"""Environment variables the task sets for the neuron-monitor sidecar, and the one the ECS agent sets.

One home for both sides: the task construct (components/model_server/task.py) imports this module
and the image copies it beside the exporter (neuron_emf.py reads it). Standard library only.
"""

from __future__ import annotations

METRICS_NAMESPACE = "METRICS_NAMESPACE"
CLUSTER_NAME = "CLUSTER_NAME"
# Where the sidecar scrapes Triton's Prometheus metrics, Triton's tasks only
TRITON_METRICS_URL = "TRITON_METRICS_URL"
# Set by the ECS agent in every container
ECS_CONTAINER_METADATA_URI_V4 = "ECS_CONTAINER_METADATA_URI_V4"
