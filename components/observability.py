"""Observability: a dashboard and alarms per served model, the endpoint's own alarms once, all to one topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.neuron_metrics import neuron_core_utilization, neuron_metric
from components.neuron_monitor.runtime import metric_names as metrics

CONTAINER_INSIGHTS = "ECS/ContainerInsights"
PERIOD = Duration.minutes(1)
WIDTH = 12


def notifying_alarm(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    notifications: sns.ITopic,
    threshold: float,
    evaluation_periods: int,
    description: str,
    comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
) -> cloudwatch.Alarm:
    """An alarm that notifies ``notifications`` when it fires and when it clears."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        metric=metric,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        comparison_operator=comparison,
        treat_missing_data=missing,
        alarm_description=description,
    )
    notify = actions.SnsAction(notifications)
    alarm.add_alarm_action(notify)
    alarm.add_ok_action(notify)
    return alarm


def target_resets(load_balancer: elbv2.NetworkLoadBalancer) -> cloudwatch.IMetric:
    return load_balancer.metrics.tcp_target_reset_count(period=PERIOD, statistic="Sum")


class EndpointAlarms(Construct):
    """Alarms on load-balancer-wide metrics: one set for the endpoint, however many models it serves."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        load_balancer: elbv2.NetworkLoadBalancer,
        notifications: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms = [
            notifying_alarm(
                self,
                "TargetResets",
                target_resets(load_balancer),
                notifications=notifications,
                threshold=10,
                evaluation_periods=5,
                description="Model servers reset more than 10 connections a minute for 5 minutes",
            )
        ]


class ServiceObservability(Construct):
    """A dashboard and alarms for one served model's service.

    Widgets: task count (running against desired), CPU and memory, load balancer flows and
    resets, healthy and unhealthy targets, and, where the neuron-monitor sidecar runs, the
    service's NeuronCore utilisation, execution latency and errors, and under Triton its queue,
    compute and request time per request, requests, inferences, batches, failures and pending
    requests. An NLB publishes no latency for TCP listeners, so latency comes from the Neuron
    runtime's and Triton's own statistics (and the load client).

    Alarms: any unhealthy target, fewer running tasks than ``min_tasks`` (unless parked), and
    Neuron execution errors. The endpoint's own alarms are :class:`EndpointAlarms`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ecs.BaseService,
        cluster_name: str,
        load_balancer: elbv2.NetworkLoadBalancer,
        target_groups: dict[str, elbv2.NetworkTargetGroup],
        min_tasks: int,
        neuron_metrics: bool,
        notifications: sns.ITopic,
        server_metrics: bool = False,
        neuron_health: cloudwatch.IMetric | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._notifications = notifications
        self.alarms: list[cloudwatch.Alarm] = []

        dimensions = {"ClusterName": cluster_name, "ServiceName": service.service_name}
        running = cloudwatch.Metric(
            namespace=CONTAINER_INSIGHTS,
            metric_name="RunningTaskCount",
            dimensions_map=dimensions,
            statistic="Minimum",
            period=PERIOD,
        )
        desired = cloudwatch.Metric(
            namespace=CONTAINER_INSIGHTS,
            metric_name="DesiredTaskCount",
            dimensions_map=dimensions,
            statistic="Maximum",
            period=PERIOD,
        )
        nlb = load_balancer.metrics

        for protocol, target_group in target_groups.items():
            self._add_alarm(
                f"Unhealthy{protocol}Targets",
                target_group.metrics.un_healthy_host_count(period=PERIOD, statistic="Maximum"),
                threshold=0,
                evaluation_periods=3,
                description=f"A model-server {protocol} target failed its health check for 3 minutes",
            )
        if min_tasks > 0:  # parked (minTasks 0): no task is expected, so none is missing
            self._add_alarm(
                "TooFewTasks",
                running,
                threshold=min_tasks,
                evaluation_periods=5,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=f"Fewer than minTasks ({min_tasks}) model-server tasks running for 5 minutes",
                # "ignore: the current alarm state is maintained" (CloudWatch user guide, "Configuring how
                # CloudWatch alarms treat missing data"): before the service's first report (every first
                # deploy) the alarm stays INSUFFICIENT_DATA and notifies nobody; once it has fired, a
                # service that stops reporting keeps it firing. "breaching" fired on every first deploy.
                missing=cloudwatch.TreatMissingData.IGNORE,
            )

        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title="Tasks: running and desired", left=[running, desired], width=WIDTH),
            cloudwatch.GraphWidget(
                title="Service CPU and memory (%)",
                left=[service.metric_cpu_utilization(period=PERIOD), service.metric_memory_utilization(period=PERIOD)],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Load balancer flows",
                left=[nlb.active_flow_count(period=PERIOD), nlb.new_flow_count(period=PERIOD)],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Connection resets",
                left=[
                    target_resets(load_balancer),
                    nlb.tcp_elb_reset_count(period=PERIOD, statistic="Sum"),
                    nlb.tcp_client_reset_count(period=PERIOD, statistic="Sum"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Targets: healthy and unhealthy",
                left=[
                    metric
                    for target_group in target_groups.values()
                    for metric in (
                        target_group.metrics.healthy_host_count(period=PERIOD),
                        target_group.metrics.un_healthy_host_count(period=PERIOD),
                    )
                ],
                width=WIDTH,
            ),
        ]
        if neuron_metrics:
            widgets += self._neuron_widgets(cluster_name, service.service_name)
        if server_metrics:
            widgets += self._server_widgets(cluster_name, service.service_name)
        if neuron_health is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Neuron errors found on the instances (problem detector)", left=[neuron_health], width=WIDTH
                )
            )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", widgets=[widgets])

    def _neuron_widgets(self, cluster_name: str, service_name: str) -> list[cloudwatch.IWidget]:
        errors = neuron_metric(cluster_name, service_name, metrics.EXECUTION_ERRORS, "Sum")
        self._add_alarm(
            "NeuronExecutionErrors",
            errors,
            threshold=0,
            evaluation_periods=1,
            description="The Neuron runtime reported failed executions",
        )
        return [
            cloudwatch.GraphWidget(
                title="NeuronCore utilisation (%)",
                left=[neuron_core_utilization(cluster_name, service_name)],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Neuron execution latency (ms)",
                left=[
                    neuron_metric(cluster_name, service_name, metrics.EXECUTION_LATENCY_P50, "Average"),
                    neuron_metric(cluster_name, service_name, metrics.EXECUTION_LATENCY_P99, "Maximum"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Neuron executions and errors",
                left=[neuron_metric(cluster_name, service_name, metrics.EXECUTIONS_COMPLETED, "Sum")],
                right=[errors],
                width=WIDTH,
            ),
        ]

    @staticmethod
    def _server_widgets(cluster_name: str, service_name: str) -> list[cloudwatch.IWidget]:
        """Triton's own figures: where a request's time goes, and how much work arrives."""

        def figure(name: str, statistic: str) -> cloudwatch.Metric:
            return neuron_metric(cluster_name, service_name, name, statistic)

        return [
            cloudwatch.GraphWidget(
                title="Triton: time per request (ms)",
                left=[
                    figure(metrics.QUEUE_TIME, "Average"),
                    figure(metrics.COMPUTE_TIME, "Average"),
                    figure(metrics.REQUEST_TIME, "Average"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Triton: requests, inferences and batches",
                left=[
                    figure(metrics.INFERENCE_REQUESTS, "Sum"),
                    figure(metrics.INFERENCES, "Sum"),
                    figure(metrics.BATCH_EXECUTIONS, "Sum"),
                ],
                right=[figure(metrics.INFERENCE_FAILURES, "Sum"), figure(metrics.PENDING_REQUESTS, "Maximum")],
                width=WIDTH,
            ),
        ]

    def _add_alarm(self, construct_id: str, metric: cloudwatch.IMetric, **options: Any) -> None:
        self.alarms.append(notifying_alarm(self, construct_id, metric, notifications=self._notifications, **options))
