"""One endpoint: a Network Load Balancer forwarding gRPC and REST to every model-server task."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from components.findings import acknowledge
from config.engines import EngineFacts
from config.placement import ModelSettings
from config.profile import RuntimeProfile

# Docker's ephemeral range on the ECS-optimized AMIs, where dynamic host ports come from.
DYNAMIC_HOST_PORTS = (32768, 65535)
# In-flight requests finish before a target is dropped (scale-in, deployments, spot notices). A BERT
# request takes milliseconds; the delay plus the server's stop timeout must fit a spot instance's
# two-minute interruption notice with room for ECS to act (tests/test_capacity.py derives the budget).
DEREGISTRATION_DELAY = Duration.seconds(30)


class InferenceLoadBalancer(Construct):
    """An NLB (internal unless ``public``) whose security group admits ``allowed_cidr`` only.

    Targets are the tasks' host ports, registered by the ECS service. REST targets are healthy
    only while the model can serve (the engine's ready path: TF Serving's metadata, Triton's
    ``/v2/models/<name>/ready``); gRPC targets are checked by TCP, which TF Serving accepts only once
    its first model load has finished.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        public: bool,
        allowed_cidr: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._clients = ec2.Peer.ipv4(allowed_cidr)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Model endpoint: TF Serving gRPC and REST from allowedCidr only",
            allow_all_outbound=True,
        )

        self.load_balancer = elbv2.NetworkLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=public,
            vpc_subnets=ec2.SubnetSelection(
                subnet_type=ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_WITH_EGRESS
            ),
            security_groups=[self.security_group],
            cross_zone_enabled=True,
        )
        acknowledge(
            self.load_balancer,
            "AwsSolutions-ELB2",
            "NLB access logs record only TLS listeners; these listeners are plain TCP, so a log bucket "
            "would stay empty (VPC flow logs record the connections instead)",
        )

    def admit_to(self, targets: ec2.ISecurityGroup, profile: RuntimeProfile, models: Sequence[ModelSettings]) -> None:
        """Lets the load balancer (traffic and health checks) reach the tasks' host ports.

        Static host ports are the models' own; dynamic ones come from Docker's ephemeral range.
        """
        host_ports = (
            [ec2.Port.tcp(port) for model in models for port in (model.grpc_port, model.rest_port)]
            if profile.static_host_ports
            else [ec2.Port.tcp_range(*DYNAMIC_HOST_PORTS)]
        )
        for ports in host_ports:
            targets.add_ingress_rule(
                ec2.Peer.security_group_id(self.security_group.security_group_id),
                ports,
                "Model server host ports from the load balancer",
            )

    def serve(
        self, scope: Construct, service: ecs.BaseService, *, model: ModelSettings, engine: EngineFacts
    ) -> dict[str, elbv2.NetworkTargetGroup]:
        """Opens the model's gRPC and REST ports to the clients and forwards them to every task of ``service``.

        The listeners belong to ``scope`` (the served model), on this one load balancer, each model on
        its own pair of ports. Returns the target groups by protocol.
        """
        container_name = model.name
        target_groups = {}
        for name, port, check_protocol, check_path in (
            ("Grpc", model.grpc_port, elbv2.Protocol.TCP, None),
            ("Rest", model.rest_port, elbv2.Protocol.HTTP, engine.ready_path(container_name)),
        ):
            self.security_group.add_ingress_rule(
                self._clients,
                ec2.Port.tcp(port),
                f"{engine.display_name} {name.upper()} ({container_name}) from allowedCidr",
            )
            listener = elbv2.NetworkListener(
                scope, f"{name}Listener", load_balancer=self.load_balancer, port=port, protocol=elbv2.Protocol.TCP
            )
            target_group = listener.add_targets(
                f"Tasks{port}",
                port=port,
                protocol=elbv2.Protocol.TCP,
                deregistration_delay=DEREGISTRATION_DELAY,
                health_check=elbv2.HealthCheck(
                    # Each task answers on its own dynamic host port: check that one.
                    port="traffic-port",
                    protocol=check_protocol,
                    path=check_path,
                    healthy_threshold_count=2,
                    unhealthy_threshold_count=2,
                    interval=Duration.seconds(10),
                ),
                targets=[service.load_balancer_target(container_name=container_name, container_port=port)],
            )
            target_group.set_attribute("deregistration_delay.connection_termination.enabled", "true")
            target_groups[name] = target_group
        # CDK makes the service depend on its listeners (needed) and on the target groups it already
        # references (redundant), which cfn-lint reports as W3005; only that check is silenced.
        service_resource = service.node.default_child
        assert isinstance(service_resource, CfnResource)
        service_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        return target_groups
