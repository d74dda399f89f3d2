"""Network: the VPC the inference fleet lives in, and who may reach the model server."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

SSH_PORT = 22


class ServingNetwork(Construct):
    """A two-AZ VPC with private subnets for the instances, and their security group.

    The instances sit in private subnets and reach ECR, CloudWatch and SSM through NAT. One NAT
    gateway (the default) is the cheapest way to give both AZs egress; two keep egress alive
    when one AZ fails. Interface endpoints for the same services would cost more per hour.

    The security group opens the model server's ports, and SSH only when a key pair is named,
    to one literal CIDR block: a token CIDR would hide from reviewers who is let in.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc_cidr: str,
        nat_gateways: int,
        allowed_cidr: str,
        service_ports: dict[str, int],
        allow_ssh: bool,
    ) -> None:
        super().__init__(scope, construct_id)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(vpc_cidr),
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24),
            ],
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=self.vpc,
            description="Inferentia container instances: model server ports from allowedCidr only",
            allow_all_outbound=True,
        )
        clients = ec2.Peer.ipv4(allowed_cidr)
        for purpose, port in service_ports.items():
            self.security_group.add_ingress_rule(clients, ec2.Port.tcp(port), f"{purpose} from allowedCidr")
        if allow_ssh:
            self.security_group.add_ingress_rule(
                clients, ec2.Port.tcp(SSH_PORT), "SSH from allowedCidr (keyName is set)"
            )
