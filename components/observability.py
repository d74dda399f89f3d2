"""Observability: one dashboard for the service, and alarms that page through the notifications topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.neuron_metrics import neuron_core_utilization, neuron_metric

CONTAINER_INSIGHTS = "ECS/ContainerInsights"
PERIOD = Duration.minutes(1)
WIDTH = 12


class ServiceObservability(Construct):
    """A dashboard and alarms for one inference service.

    Widgets: task count (running against desired), CPU and memory, load balancer flows and
    resets, healthy and unhealthy targets, and, where the neuron-monitor sidecar runs, NeuronCore
    utilisation, execution latency and errors. An NLB publishes no latency for TCP listeners, so
    latency comes from the Neuron runtime's own execution statistics (and from the load client).

    Alarms: any unhealthy target, fewer running tasks than ``min_tasks``, a burst of target
    resets, and Neuron execution errors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ecs.Ec2Service,
        cluster_name: str,
        load_balancer: elbv2.NetworkLoadBalancer,
        target_groups: dict[str, elbv2.NetworkTargetGroup],
        min_tasks: int,
        neuron_metrics: bool,
        notifications: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)

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
        resets = nlb.tcp_target_reset_count(period=PERIOD, statistic="Sum")

        self.alarms: list[cloudwatch.Alarm] = []
        for protocol, target_group in target_groups.items():
            self._alarm(
                f"Unhealthy{protocol}Targets",
                target_group.metrics.un_healthy_host_count(period=PERIOD, statistic="Maximum"),
                threshold=0,
                evaluation_periods=3,
                description=f"A model-server {protocol} target failed its health check for 3 minutes",
            )
        if min_tasks > 0:  # parked (minTasks 0): no task is expected, so none is missing
            self._alarm(
                "TooFewTasks",
                running,
                threshold=min_tasks,
                evaluation_periods=5,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=f"Fewer than minTasks ({min_tasks}) model-server tasks running for 5 minutes",
                missing=cloudwatch.TreatMissingData.BREACHING,
            )
        self._alarm(
            "TargetResets",
            resets,
            threshold=10,
            evaluation_periods=5,
            description="Model servers reset more than 10 connections a minute for 5 minutes",
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
                    resets,
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
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", widgets=[widgets])
        notify = actions.SnsAction(notifications)
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)

    def _neuron_widgets(self, cluster_name: str, service_name: str) -> list[cloudwatch.IWidget]:
        errors = neuron_metric(cluster_name, service_name, "ExecutionErrors", "Sum")
        self._alarm(
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
                    neuron_metric(cluster_name, service_name, "ExecutionLatencyP50", "Average"),
                    neuron_metric(cluster_name, service_name, "ExecutionLatencyP99", "Maximum"),
                ],
                width=WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Neuron executions and errors",
                left=[neuron_metric(cluster_name, service_name, "ExecutionsCompleted", "Sum")],
                right=[errors],
                width=WIDTH,
            ),
        ]

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        evaluation_periods: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=evaluation_periods,
                comparison_operator=comparison,
                treat_missing_data=missing,
                alarm_description=description,
            )
        )
