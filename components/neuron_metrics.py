"""The metrics the neuron-monitor sidecars publish, as the service's scaling and the dashboard read them.

docker/neuron-monitor/neuron_emf.py writes them as CloudWatch Embedded Metric Format; a test keeps
its namespace and dimensions equal to these.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

METRICS_NAMESPACE = "NeuronMonitor"
# The dimensions of the per-service figures docker/neuron-monitor/neuron_emf.py publishes; the
# exporter reads ServiceName from the ECS task metadata endpoint.
NEURON_SERVICE_DIMENSIONS = ("ClusterName", "ServiceName")


def neuron_metric(cluster_name: str, service_name: str, name: str, statistic: str) -> cloudwatch.Metric:
    """A figure the neuron-monitor sidecars of one service publish (see docker/neuron-monitor/neuron_emf.py)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=dict(zip(NEURON_SERVICE_DIMENSIONS, (cluster_name, service_name), strict=True)),
        statistic=statistic,
        period=Duration.minutes(1),
    )


def neuron_core_utilization(cluster_name: str, service_name: str) -> cloudwatch.Metric:
    """Mean NeuronCore utilisation across one service's tasks."""
    return neuron_metric(cluster_name, service_name, "NeuronCoreUtilizationAverage", "Average")
