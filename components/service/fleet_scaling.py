"""Fleet scaling: every model service scales on one load figure, the busiest of its signals.

One target-tracking policy per service tracks

    load = MAX([cpu_1 / 60, FILL(neuron_1, 0) / 70, cpu_2 / 60, ...]) * 100   (target 100)

over the CPU and NeuronCore utilisation of every model the fleet serves. So:

* the fleet scales out when any signal passes its own target, and scales in only when every
  signal it scales out on is below its target: a NeuronCore-bound service with idle host CPU is
  never scaled in (two policies, one of them scale-out only, did that and oscillated);
* a Neuron figure that is missing counts as 0 (``FILL``), so a silent sidecar never blocks scale-in:
  target tracking does not act on a metric with insufficient data ("Application Auto Scaling cannot
  scale your scalable target until new data points are found", Application Auto Scaling user guide,
  "Target tracking scaling policies");
* several models on one instance scale together, one task of each at a time, so each new instance
  takes a task of every model and a scale-in frees whole instances.

Target tracking accepts metric math (``CustomizedMetricSpecification.Metrics``) whose expression
returns one time series; its alarms allow at most 10 metrics ("Alarms based on metric math
expressions can have up to 10 metrics", CloudWatch service quotas), hence at most five models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Names
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.neuron_monitor.runtime import metric_names as metrics
from config.placement import MAX_MODELS

# Inference load shows first on the NeuronCores; CPU (tokenising, gRPC, the runtime's host side)
# backs it up and is the only signal in the rtd layout, which has no neuron-monitor.
NEURON_TARGET_PERCENT = 70
CPU_TARGET_PERCENT = 60
LOAD_TARGET = 100
SCALE_OUT_COOLDOWN_SECONDS = 60
# Slow to scale in: a task that goes frees NeuronCores that take minutes to load a model again.
SCALE_IN_COOLDOWN_SECONDS = 300
METRIC_PERIOD_SECONDS = 60


@dataclass(frozen=True)
class Signal:
    """One metric of the load figure, and the utilisation it is held to."""

    metric_id: str
    namespace: str
    metric_name: str
    service_name: str
    target_percent: int
    fill_missing: bool

    def term(self) -> str:
        value = f"FILL({self.metric_id}, 0)" if self.fill_missing else self.metric_id
        return f"{value} / {self.target_percent}"


def fleet_signals(service_names: Sequence[str], *, neuron_metrics: bool) -> list[Signal]:
    """Every model's CPU (AWS/ECS) and, where the sidecar publishes them, NeuronCore utilisation."""
    signals = []
    for index, service_name in enumerate(service_names, start=1):
        signals.append(Signal(f"cpu{index}", "AWS/ECS", "CPUUtilization", service_name, CPU_TARGET_PERCENT, False))
        if neuron_metrics:
            signals.append(
                Signal(
                    f"neuron{index}",
                    metrics.NAMESPACE,
                    metrics.NEURON_CORE_UTILIZATION_AVERAGE,
                    service_name,
                    NEURON_TARGET_PERCENT,
                    True,
                )
            )
    return signals


def load_expression(signals: Sequence[Signal]) -> str:
    return f"MAX([{', '.join(signal.term() for signal in signals)}]) * {LOAD_TARGET}"


class FleetScaling(Construct):
    """One scalable target and one load-tracking policy per model service, all on the same load figure.

    The scalable targets name no role: Application Auto Scaling then uses its service-linked role
    for ECS, "which it creates if it does not yet exist" (RegisterScalableTarget API reference); a
    role ARN in the template fails in an account that has never used it (aws/aws-cdk#4108).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        services: Sequence[ecs.BaseService],
        neuron_metrics: bool,
        min_tasks: int,
        max_tasks: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if len(services) > MAX_MODELS:
            raise ValueError(f"at most {MAX_MODELS} services share one load figure (config/placement.py)")
        self.signals = fleet_signals([service.service_name for service in services], neuron_metrics=neuron_metrics)
        expression = load_expression(self.signals)
        queries = [
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id=signal.metric_id,
                metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                    metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                        namespace=signal.namespace,
                        metric_name=signal.metric_name,
                        dimensions=[
                            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                                name=metrics.CLUSTER, value=cluster_name
                            ),
                            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                                name=metrics.SERVICE, value=signal.service_name
                            ),
                        ],
                    ),
                    stat="Average",
                ),
                return_data=False,
            )
            for signal in self.signals
        ]
        queries.append(
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id="load", expression=expression, label="Fleet load (% of target)", return_data=True
            )
        )
        self.policies: list[appscaling.CfnScalingPolicy] = []
        for index, service in enumerate(services, start=1):
            task_count = service.auto_scale_task_count(min_capacity=min_tasks, max_capacity=max_tasks)
            target = task_count.node.find_child("Target")
            assert isinstance(target, appscaling.ScalableTarget)
            target_resource = target.node.default_child
            assert isinstance(target_resource, appscaling.CfnScalableTarget)
            target_resource.add_property_deletion_override("RoleARN")
            policy = appscaling.CfnScalingPolicy(
                self,
                f"LoadPolicy{index}",
                policy_name="",  # replaced below, once the construct has its path
                policy_type="TargetTrackingScaling",
                scaling_target_id=target.scalable_target_id,
                target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                    target_value=LOAD_TARGET,
                    scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                    scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
                    customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                        metrics=queries
                    ),
                ),
            )
            policy.policy_name = Names.unique_id(policy)
            self.policies.append(policy)
