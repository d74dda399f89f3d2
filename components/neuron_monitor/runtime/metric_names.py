"""The metrics the neuron-monitor sidecars publish as CloudWatch EMF (``neuron_emf.py``; Triton's tasks
add Triton's own request figures, ``triton_emf.py``).

One home for both sides: the exporter imports this module beside it in the image, and the CDK app's
alarms, dashboards and scaling policies import it as ``components.neuron_monitor.runtime.metric_names``.
"""

from __future__ import annotations

NAMESPACE = "NeuronMonitor"
CLUSTER = "ClusterName"
SERVICE = "ServiceName"
TASK = "TaskId"
NEURON_CORE = "NeuronCore"
# Every task's totals are published under the cluster and under cluster + service.
SERVICE_DIMENSIONS = (CLUSTER, SERVICE)

NEURON_CORE_UTILIZATION = "NeuronCoreUtilization"
NEURON_CORE_UTILIZATION_AVERAGE = "NeuronCoreUtilizationAverage"
DEVICE_MEMORY_USED = "DeviceMemoryUsed"
HOST_MEMORY_USED = "HostMemoryUsed"
EXECUTIONS_COMPLETED = "ExecutionsCompleted"
EXECUTION_ERRORS = "ExecutionErrors"
EXECUTION_LATENCY_P50 = "ExecutionLatencyP50"
EXECUTION_LATENCY_P99 = "ExecutionLatencyP99"

# Triton's own figures (triton_emf.py), per interval, under SERVICE_DIMENSIONS.
INFERENCE_REQUESTS = "InferenceRequests"
INFERENCE_FAILURES = "InferenceFailures"
INFERENCES = "Inferences"
BATCH_EXECUTIONS = "BatchExecutions"
QUEUE_TIME = "QueueTime"
COMPUTE_TIME = "ComputeTime"
REQUEST_TIME = "RequestTime"
PENDING_REQUESTS = "PendingRequests"
