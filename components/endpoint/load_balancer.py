"""One endpoint: a Network Load Balancer forwarding gRPC, REST and the text API to every model's tasks,
over TLS when a certificate is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, CfnResource, CfnRule, CfnRuleAssertion, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from components.findings import acknowledge
from components.text_front.runtime import front_environment as front_env
from config.engines import EngineFacts
from config.placement import ModelSettings
from config.profile import RuntimeProfile

# Docker's ephemeral range on the ECS-optimized AMIs, where dynamic host ports come from.
DYNAMIC_HOST_PORTS = (32768, 65535)
# In-flight requests finish before a target is dropped (scale-in, deployments, spot notices). A BERT
# request takes milliseconds; the delay plus the server's stop timeout must fit a spot instance's
# two-minute interruption notice with room for ECS to act (tests/test_capacity.py derives the budget).
DEREGISTRATION_DELAY = Duration.seconds(30)
# TLS 1.3 and 1.2 only, forward secrecy (Elastic Load Balancing, "Security policies for your Network
# Load Balancer": ELBSecurityPolicy-TLS13-1-2-2021-06 is the recommended policy).
TLS_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS
# gRPC clients require HTTP/2 negotiated by ALPN during the TLS handshake; a TLS listener negotiates
# none unless it has an ALPN policy (Elastic Load Balancing, Network Load Balancers, "ALPN policies").
# The REST and text ports speak HTTP/1.1 to their targets, so they offer no ALPN at all.
GRPC_ALPN = elbv2.AlpnPolicy.HTTP2_ONLY
ACCESS_LOG_DAYS = 90
ACCESS_LOG_PREFIX = "nlb"


@dataclass(frozen=True)
class _Port:
    """One listener: its name and port, the container and port it forwards to, and its health check
    (HTTP on ``check_path``, else TCP)."""

    name: str
    port: int
    container: str
    container_port: int
    check_path: str | None
    tensor: bool


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
        certificate_arn: str | None = None,
        tls_tensor_ports: bool = True,
    ) -> None:
        """``certificate_arn``: an ACM certificate for TLS listeners (the text API's always, the tensor
        ports' too unless ``tls_tensor_ports`` is off), and access logs in a bucket of the stack's."""
        super().__init__(scope, construct_id)
        self._clients = ec2.Peer.ipv4(allowed_cidr)
        self._certificates = [elbv2.ListenerCertificate.from_arn(certificate_arn)] if certificate_arn else None
        self._tls_tensor_ports = tls_tensor_ports

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
        self.access_logs: s3.Bucket | None = None
        if certificate_arn:
            self._require_region_of(certificate_arn)
            self.access_logs = self._access_log_bucket()
            self._log_access_to(self.access_logs)
        else:
            acknowledge(
                self.load_balancer,
                "AwsSolutions-ELB2",
                "NLB access logs record only TLS listeners; these listeners are plain TCP, so a log bucket "
                "would stay empty (VPC flow logs record the connections instead); certificateArn turns both on",
            )

    def _require_region_of(self, certificate_arn: str) -> None:
        """A listener takes only a certificate of its own Region (ACM, "Supported Regions"); this stack's
        Region is chosen at deploy, so a CloudFormation rule refuses another before anything is created."""
        region = certificate_arn.split(":")[3]
        CfnRule(
            self,
            "CertificateInStackRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals(Aws.REGION, region),
                    assert_description=f"certificateArn is an ACM certificate of {region}: deploy the stack to "
                    f"{region}, or give certificateArn a certificate of this Region",
                )
            ],
        )

    def _access_log_bucket(self) -> s3.Bucket:
        """NLB access logs: SSE-S3 (the encryption NLB log delivery supports without a key policy of
        its own), TLS only, no public access, kept ``ACCESS_LOG_DAYS`` days, and kept after the stack."""
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "This bucket holds the load balancer's access logs; logging its own accesses to a further "
            "bucket would need that bucket logged in turn",
        )
        return bucket

    def _log_access_to(self, bucket: s3.Bucket) -> None:
        """Turns on NLB access logs into ``bucket``.

        Not CDK's ``log_access_logs``: that also grants the Region's ELB account (a classic and
        Application Load Balancer writer) and so needs a Region at synth, which this stack leaves to
        the deploy. NLBs deliver through the log delivery service alone, which needs ``GetBucketAcl``
        and ``PutObject`` under ``AWSLogs/<account>/``, limited to this account's log deliveries
        (Elastic Load Balancing, "Enable access logs for your Network Load Balancer", example policy).
        """
        stack = Stack.of(self)
        delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
        this_account = {"aws:SourceAccount": stack.account}
        its_deliveries = {"aws:SourceArn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"}
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketAcl"],
                principals=[delivery],
                resources=[bucket.bucket_arn],
                conditions={"StringEquals": this_account, "ArnLike": its_deliveries},
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                principals=[delivery],
                resources=[bucket.arn_for_objects(f"{ACCESS_LOG_PREFIX}/AWSLogs/{stack.account}/*")],
                conditions={
                    "StringEquals": {**this_account, "s3:x-amz-acl": "bucket-owner-full-control"},
                    "ArnLike": its_deliveries,
                },
            )
        )
        for key, value in {
            "access_logs.s3.enabled": "true",
            "access_logs.s3.bucket": bucket.bucket_name,
            "access_logs.s3.prefix": ACCESS_LOG_PREFIX,
        }.items():
            self.load_balancer.set_attribute(key, value)
        # ELB checks the bucket policy when the attribute is set: the policy must exist first.
        policy = bucket.policy
        assert policy is not None
        self.load_balancer.node.add_dependency(policy)

    def tls(self, *, tensor: bool) -> bool:
        """Whether a listener of this kind (a tensor port, or the text API's) terminates TLS."""
        return self._certificates is not None and (self._tls_tensor_ports or not tensor)

    def admit_to(self, targets: ec2.ISecurityGroup, profile: RuntimeProfile, models: Sequence[ModelSettings]) -> None:
        """Lets the load balancer (traffic and health checks) reach the tasks' host ports.

        Static host ports are the models' own; dynamic ones come from Docker's ephemeral range.
        """
        container_ports = [port for model in models for port in (model.grpc_port, model.rest_port)]
        if profile.text_front:
            container_ports.append(front_env.CONTAINER_PORT)  # every model's front listens on the same port
        host_ports = (
            [ec2.Port.tcp(port) for port in container_ports]
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
        self,
        scope: Construct,
        service: ecs.BaseService,
        *,
        model: ModelSettings,
        engine: EngineFacts,
        text_front: str | None = None,
    ) -> dict[str, elbv2.NetworkTargetGroup]:
        """Opens the model's gRPC and REST ports, and its text port when the task has a ``text_front``
        container (its name), to the clients and forwards them to every task of ``service``.

        The listeners belong to ``scope`` (the served model), on this one load balancer, each model on
        its own ports. Returns the target groups by protocol.
        """
        ports = [
            _Port("Grpc", model.grpc_port, model.name, model.grpc_port, None, tensor=True),
            _Port("Rest", model.rest_port, model.name, model.rest_port, engine.ready_path(model.name), tensor=True),
        ]
        if text_front:
            ports.append(
                _Port(
                    "Text", model.text_port, text_front, front_env.CONTAINER_PORT, front_env.HEALTH_PATH, tensor=False
                )
            )
        target_groups = {}
        for entry in ports:
            name, port, tensor = entry.name, entry.port, entry.tensor
            self.security_group.add_ingress_rule(
                self._clients,
                ec2.Port.tcp(port),
                f"{engine.display_name if tensor else 'Text API'} {name.upper()} ({model.name}) from allowedCidr",
            )
            tls = self.tls(tensor=tensor)
            listener = elbv2.NetworkListener(
                scope,
                f"{name}Listener",
                load_balancer=self.load_balancer,
                port=port,
                protocol=elbv2.Protocol.TLS if tls else elbv2.Protocol.TCP,
                certificates=self._certificates if tls else None,
                ssl_policy=TLS_POLICY if tls else None,
                alpn_policy=GRPC_ALPN if tls and name == "Grpc" else None,
            )
            target_group = listener.add_targets(
                f"Tasks{port}",
                port=port,
                protocol=elbv2.Protocol.TCP,
                deregistration_delay=DEREGISTRATION_DELAY,
                health_check=elbv2.HealthCheck(
                    # Each task answers on its own dynamic host port: check that one.
                    port="traffic-port",
                    protocol=elbv2.Protocol.HTTP if entry.check_path else elbv2.Protocol.TCP,
                    path=entry.check_path,
                    healthy_threshold_count=2,
                    unhealthy_threshold_count=2,
                    interval=Duration.seconds(10),
                ),
                targets=[
                    service.load_balancer_target(container_name=entry.container, container_port=entry.container_port)
                ],
            )
            target_group.set_attribute("deregistration_delay.connection_termination.enabled", "true")
            target_groups[name] = target_group
        # CDK makes the service depend on its listeners (needed) and on the target groups it already
        # references (redundant), which cfn-lint reports as W3005; only that check is silenced.
        service_resource = service.node.default_child
        assert isinstance(service_resource, CfnResource)
        service_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        return target_groups
