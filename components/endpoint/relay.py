"""The laptop's way in: a Fargate task that `make tunnel` starts and forwards a local port through.

The load balancer is internal by default. A Session Manager port forward through a cluster instance
would run from a registered target of that load balancer, and "NAT loopback, also known as
hairpinning, is not supported when client IP preservation is enabled" (Elastic Load Balancing, Network
Load Balancers, "Troubleshoot": a target's requests to its own load balancer time out); ECS Managed
Instances allow no Session Manager access at all ("no SSH access, no SSM Session Manager access",
ECS shared responsibility model for Managed Instances). So the relay is a task of its own, on
Fargate, that is never a target: `make tunnel` runs it with ECS Exec and forwards through it with
``AWS-StartPortForwardingSessionToRemoteHost`` (target ``ecs:<cluster>_<task>_<container runtime id>``),
then stops it. The task stops by itself after ``RELAY_LIFETIME`` if nobody stops it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.findings import acknowledge
from components.log_retention import retention
from contracts import containers

RELAY_IMAGE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
RELAY_LIFETIME_SECONDS = 8 * 3600


class EndpointRelay(Construct):
    """A Fargate task definition (ECS Exec on), its security group, and the endpoint's admission of it.

    The task does nothing but wait: ECS Exec's agent, which ECS runs beside the container, carries the
    forwarded connection to ``load_balancer_ports`` of the endpoint.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        endpoint_security_group: ec2.ISecurityGroup,
        load_balancer_ports: Sequence[int],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Relay task of make tunnel: no inbound", allow_all_outbound=True
        )
        for port in load_balancer_ports:
            endpoint_security_group.add_ingress_rule(
                ec2.Peer.security_group_id(self.security_group.security_group_id),
                ec2.Port.tcp(port),
                f"Port {port} from the relay task of make tunnel",
            )
        self.task_definition = ecs.FargateTaskDefinition(self, "TaskDefinition", cpu=256, memory_limit_mib=512)
        # ECS Exec's agent opens its control and data channels to Session Manager (ECS developer guide,
        # "Monitor Amazon ECS containers with ECS Exec": the task role's required permissions).
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="EcsExecChannels",
                actions=[
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                resources=["*"],
            )
        )
        log_group = logs.LogGroup(
            self, "Logs", retention=retention(log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        self.task_definition.add_container(
            "Relay",
            container_name=containers.RELAY,
            image=ecs.ContainerImage.from_registry(RELAY_IMAGE),
            command=["sleep", str(RELAY_LIFETIME_SECONDS)],
            essential=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=containers.RELAY, log_group=log_group),
        )
        acknowledge(
            self.task_definition.task_role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "ssmmessages channel actions support no resource-level permissions (Service Authorization Reference)",
        )
