"""Neuron's node problem detector and recovery: a DAEMON service on every Inferentia instance.

As Neuron documents it for ECS (aws-neuron-sdk ``deploy/ecs/npd.rst``): a task of two containers,
``npd`` (Kubernetes' node problem detector watching ``/dev/kmsg`` for Neuron hardware errors) and
``recovery`` (Neuron's ``check-health.py``: on an unrecoverable error it publishes to CloudWatch's
``NeuronHealthCheck`` namespace and, with ``ENABLE_RECOVERY=true``, marks the instance unhealthy so
the Auto Scaling group replaces it). ``awsvpc`` networking as in Neuron's task definition, so the
two containers share one network namespace.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.findings import acknowledge, acknowledge_group_arn
from components.log_retention import retention
from components.model_server.runtime import task_environment as env
from components.observability import notifying_alarm
from contracts import containers

NPD_IMAGE = "registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.19"
RECOVERY_IMAGE = "public.ecr.aws/neuron/neuron-node-recovery:1.3.0"
HEALTH_NAMESPACE = "NeuronHealthCheck"
# The recovery container publishes under HEALTH_NAMESPACE, but Neuron does not document its metric's
# name; this stack counts the detector's own findings from its log instead (see DETECTED_PATTERN).
DETECTED_METRIC = "NeuronErrorsDetected"
# Neuron's kernel-monitor rules (aws-neuron-sdk src/k8/neuron-problem-detector/
# k8s-neuron-problem-detector-and-recovery-config.yml): a permanent NeuronHealth condition per
# unrecoverable error the driver writes to the kernel log.
NEURON_ERRORS = ("SRAM_UNCORRECTABLE_ERROR", "NC_UNCORRECTABLE_ERROR", "HBM_UNCORRECTABLE_ERROR", "DMA_ERROR")
ERROR_REASON_PREFIX = "NeuronHasError_"
KERNEL_MONITOR: dict[str, object] = {
    "plugin": "kmsg",
    "logPath": "/dev/kmsg",
    "lookback": "5m",
    "bufferSize": 10,
    "source": "kernel-monitor",
    "conditions": [{"type": "NeuronHealth", "reason": "NeuronHasNoError", "message": "Neuron has no error"}],
    "rules": [
        {
            "type": "permanent",
            "condition": "NeuronHealth",
            "reason": f"{ERROR_REASON_PREFIX}{error}",
            "pattern": f".* NEURON_HW_ERR={error} .*",
        }
        for error in NEURON_ERRORS
    ],
}
# The detector logs every status its rules produce ("New status generated: &{Source:kernel-monitor
# Events:[{... Reason:NeuronHasError_DMA_ERROR ...", node-problem-detector's log_monitor.go), and
# CloudWatch Logs counts an event when it holds every quoted term.
DETECTED_PATTERN = ("New status generated", ERROR_REASON_PREFIX)
CONFIG_PATH = "/config/kernel-monitor.json"


def npd_command() -> str:
    """Neuron's ECS command: write the kernel-monitor rules, then run the detector on them."""
    config = json.dumps(KERNEL_MONITOR, separators=(",", ":"))
    return (
        f"echo '{config}' > {CONFIG_PATH} && /node-problem-detector --v=2 --logtostderr "
        f"--enable-k8s-exporter=false --config.system-log-monitor={CONFIG_PATH}"
    )


class NeuronRecovery(Construct):
    """One detector-and-recovery task per instance, its least-privilege role, and an alarm on its findings.

    The task role may publish metrics to ``NeuronHealthCheck`` only, and read and set the health of
    the instances of ``auto_scaling_group`` only (the policy of Neuron's own
    ``problem-detector-irsa.rst``, with ``DescribeAutoScalingInstances``, which IAM cannot scope, on
    ``*``). With ``recover`` false it detects and reports and leaves the instance in place.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        vpc: ec2.IVpc,
        auto_scaling_group: autoscaling.AutoScalingGroup,
        recover: bool,
        log_retention_days: int,
        notifications: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention(log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        task = ecs.Ec2TaskDefinition(self, "TaskDefinition", network_mode=ecs.NetworkMode.AWS_VPC)
        npd_linux = ecs.LinuxParameters(self, "NpdLinuxParameters")
        npd_linux.add_devices(
            ecs.Device(
                host_path="/dev/kmsg",
                container_path="/dev/kmsg",
                permissions=[ecs.DevicePermission.READ, ecs.DevicePermission.WRITE],
            )
        )
        task.add_container(
            "Npd",
            container_name=containers.NPD,
            image=ecs.ContainerImage.from_registry(NPD_IMAGE),
            essential=True,
            memory_reservation_mib=80,
            entry_point=["/bin/sh", "-c"],
            command=[npd_command()],
            privileged=True,
            linux_parameters=npd_linux,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=containers.NPD, log_group=self.log_group),
        )
        task.add_container(
            "Recovery",
            container_name=containers.RECOVERY,
            image=ecs.ContainerImage.from_registry(RECOVERY_IMAGE),
            essential=True,
            memory_reservation_mib=150,
            entry_point=["/bin/sh", "-c"],
            command=["python scripts/check-health.py"],
            environment={env.ENABLE_RECOVERY: "true" if recover else "false", env.AWS_REGION: Stack.of(self).region},
            readonly_root_filesystem=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=containers.RECOVERY, log_group=self.log_group),
        )
        self._grant(task, auto_scaling_group)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Neuron problem detector and recovery: no inbound traffic, AWS APIs outbound",
            allow_all_outbound=True,
        )
        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            daemon=True,
            # A daemon's replacement starts on the same instance only once the old task has stopped.
            min_healthy_percent=0,
            max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            security_groups=[self.security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )

        self.errors_detected = cloudwatch.Metric(
            namespace=HEALTH_NAMESPACE, metric_name=DETECTED_METRIC, statistic="Sum", period=Duration.minutes(1)
        )
        self.log_group.add_metric_filter(
            "ErrorsDetected",
            filter_pattern=logs.FilterPattern.all_terms(*DETECTED_PATTERN),
            metric_namespace=HEALTH_NAMESPACE,
            metric_name=DETECTED_METRIC,
            metric_value="1",
        )
        self.alarm = notifying_alarm(
            self,
            "NeuronErrorsDetected",
            self.errors_detected,
            notifications=notifications,
            threshold=0,
            evaluation_periods=1,
            description="Neuron's problem detector found an unrecoverable Neuron error on an instance"
            + ("; the instance is being replaced" if recover else " (recovery is off: replace it by hand)"),
        )
        acknowledge(
            task,
            "AwsSolutions-ECS2",
            "The environment holds only ENABLE_RECOVERY and the region; nothing secret is passed",
        )
        acknowledge(
            task.obtain_execution_role().node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource; log writes are limited to this log group",
        )

    def _grant(self, task: ecs.TaskDefinition, group: autoscaling.AutoScalingGroup) -> None:
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="SetTheHealthOfThisGroupsInstances",
                actions=["autoscaling:SetInstanceHealth"],
                resources=[group.auto_scaling_group_arn],
            )
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="FindTheInstancesGroup", actions=["autoscaling:DescribeAutoScalingInstances"], resources=["*"]
            )
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="DescribeThisGroupsInstances",
                actions=["ec2:DescribeInstances"],
                resources=["*"],
                conditions={
                    "ForAllValues:StringEquals": {
                        "ec2:ResourceTag/aws:autoscaling:groupName": group.auto_scaling_group_name
                    }
                },
            )
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="PublishNeuronHealth",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": HEALTH_NAMESPACE}},
            )
        )
        policy = task.task_role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "DescribeAutoScalingInstances, DescribeInstances and PutMetricData support no resource; "
            "PutMetricData is limited to the NeuronHealthCheck namespace, and the one write, "
            "SetInstanceHealth, to this stack's group",
        )
        acknowledge_group_arn(policy, group)
