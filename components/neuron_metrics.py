"""The neuron-monitor sidecars' metrics, as a service's scaling and dashboard read them.

Names and dimensions come from ``contracts/metrics.py``, the exporter's contract.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from components.neuron_monitor.runtime import metric_names as metrics


def neuron_metric(cluster_name: str, service_name: str, name: str, statistic: str) -> cloudwatch.Metric:
    """A figure the neuron-monitor sidecars of one service publish."""
    return cloudwatch.Metric(
        namespace=metrics.NAMESPACE,
        metric_name=name,
        dimensions_map=dict(zip(metrics.SERVICE_DIMENSIONS, (cluster_name, service_name), strict=True)),
        statistic=statistic,
        period=Duration.minutes(1),
    )


def neuron_core_utilization(cluster_name: str, service_name: str) -> cloudwatch.Metric:
    """Mean NeuronCore utilisation across one service's tasks."""
    return neuron_metric(cluster_name, service_name, metrics.NEURON_CORE_UTILIZATION_AVERAGE, "Average")
