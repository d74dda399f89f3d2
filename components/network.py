"""Network: the VPC the inference fleet lives in, and who may reach the model server."""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.log_retention import retention

SSH_PORT = 22
# The provider CDK adds to strip the default security group's rules (restrictDefaultSecurityGroup).
DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


def _drop_redundant_provider_dependency(stack: Stack) -> None:
    """CDK's provider Lambda lists its role in DependsOn beside a GetAtt of it (cfn-lint W3005)."""
    provider = stack.node.try_find_child(DEFAULT_SG_PROVIDER)
    handler = provider.node.try_find_child("Handler") if provider else None
    if isinstance(handler, CfnResource):
        handler.add_deletion_override("DependsOn")


class ServingNetwork(Construct):
    """A VPC over ``zones`` availability zones with private subnets for the instances, and their security group.

    The instances sit in private subnets and reach ECR, CloudWatch and SSM through NAT. One NAT
    gateway (the default) is the cheapest way to give every zone egress; two keep egress alive
    when one NAT gateway's zone fails. Interface endpoints for the same services would cost more per hour.

    Every accepted and rejected flow is logged to CloudWatch Logs, kept ``flow_log_retention_days``.

    The instances' security group admits SSH from ``allowed_cidr`` only when a key pair is named;
    the load balancer opens the model server's host ports to itself. CIDRs are literal blocks: a
    token CIDR would hide from reviewers who is let in.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc_cidr: str,
        nat_gateways: int,
        zones: int,
        named_zones: bool = False,
        allowed_cidr: str,
        allow_ssh: bool,
        flow_log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(vpc_cidr),
            max_azs=zones,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24),
            ],
        )

        _drop_redundant_provider_dependency(Stack.of(self))
        if named_zones:
            # The user named the zones (availabilityZones): they are hard-coded on purpose.
            for subnet in [*self.vpc.public_subnets, *self.vpc.private_subnets]:
                resource = subnet.node.default_child
                assert isinstance(resource, CfnResource)
                resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(flow_log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=self.vpc,
            description="Inferentia container instances: model server ports from the load balancer only",
            allow_all_outbound=True,
        )
        if allow_ssh:
            self.security_group.add_ingress_rule(
                ec2.Peer.ipv4(allowed_cidr), ec2.Port.tcp(SSH_PORT), "SSH from allowedCidr (keyName is set)"
            )
