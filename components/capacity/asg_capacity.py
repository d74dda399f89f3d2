"""Capacity: the Inferentia instances that join the ECS cluster, and the capacity provider over them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import jsii
from aws_cdk import Annotations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.capacity.scale_in_protection import LiftScaleInProtectionOnDelete
from components.findings import acknowledge
from config.hardware import InstanceSize
from config.neuron_releases import DEFAULT_AMI_RELEASE, DriverRange

ROOT_DEVICE = "/dev/xvda"
SPOT_DRAINING = "echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config"
# Runs in user data before the cluster's own join line; see the script for why it installs nothing.
CHECK_NEURON_HOST = Path(__file__).resolve().parent / "host" / "check-neuron-host.sh"
NEURON_DEVICE_WAIT_SECONDS = 300
NEURON_DEVICE_POLL_SECONDS = 5


class ServingCapacity(Protocol):
    """What the services need of either capacity mode: the provider to run on."""

    @property
    def capacity_provider_name(self) -> str: ...


def check_neuron_host(instance_size: InstanceSize, drivers: DriverRange) -> str:
    """User data that joins the cluster only once every ``/dev/neuronN`` of ``instance_size`` exists and the
    loaded driver lies in ``drivers``.

    The script's comments stay in the repository: user data is limited to 16 KB.
    """
    body = [
        line
        for line in CHECK_NEURON_HOST.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return "\n".join(
        (
            f"# {CHECK_NEURON_HOST.name} (components/host/ in the CDK app)",
            f"NEURON_DEVICE_COUNT={instance_size.chips}",
            f"NEURON_DEVICE_WAIT_SECONDS={NEURON_DEVICE_WAIT_SECONDS}",
            f"NEURON_DEVICE_POLL_SECONDS={NEURON_DEVICE_POLL_SECONDS}",
            f"NEURON_DRIVER_LOWEST={drivers.lowest}",
            f"NEURON_DRIVER_BELOW={drivers.below}",
            *body,
        )
    )


@jsii.implements(ec2.IMachineImage)
class FixedImage:
    """One EC2 image ID in every region (``amiId``): no lookup, no mapping, the ID as given."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        return ec2.MachineImageConfig(
            image_id=self.image_id,
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )


def neuron_ami(*, ami_id: str | None, ami_release: str) -> ec2.IMachineImage:
    """``ami_id`` if given, else the AL2023 ECS-optimized Neuron AMI of ``ami_release`` (an AMI name, or
    ``recommended``), resolved at deploy time from the SSM parameter ECS publishes for it."""
    if ami_id:
        return FixedImage(ami_id)
    return ec2.MachineImage.from_ssm_parameter(neuron_ami_parameter(ami_release), os=ec2.OperatingSystemType.LINUX)


def neuron_ami_parameter(ami_release: str) -> str:
    """ECS's SSM parameter holding the image ID: ``.../neuron/recommended/image_id`` (ECS developer guide,
    "Retrieving Amazon ECS-optimized Linux AMI metadata") or ``.../neuron/<AMI name>/image_id``, the form ECS
    uses for its named releases (unconfirmed for the Neuron path here: make integ checks it)."""
    return f"/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/{ami_release}/image_id"


class InferentiaCapacity(Construct):
    """An Auto Scaling group of Inferentia instances, registered on the cluster as a capacity provider.

    The group has no desired capacity of its own: ECS managed scaling sizes it between the bounds
    from the tasks it must place. Managed termination protection keeps instances that run tasks
    from being scaled in (ECS unprotects an instance once it runs none), managed draining moves
    tasks off instances that leave anyway (spot, replacement), and a custom resource lifts the
    protection at stack delete so ``cdk destroy`` finishes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.Cluster,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        notifications: sns.ITopic,
        instance_sizes: Sequence[InstanceSize],
        host_driver: DriverRange,
        ami_id: str | None,
        ami_release: str,
        spot: bool,
        on_demand_base: int,
        min_instances: int,
        max_instances: int,
        key_name: str | None,
        root_volume_gib: int,
        log_retention_days: int,
    ) -> None:
        """``instance_sizes``: the preferred size first, then the fallbacks (same chips and NeuronCores);
        ``host_driver``: the drivers the image's runtime runs on, checked before an instance joins;
        ``ami_id`` or else ``ami_release``: the image the instances boot; ``notifications``: where the
        group's launch and termination events go."""
        super().__init__(scope, construct_id)
        size = instance_sizes[0]

        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ECS container instance: the ECS agent for one cluster, and SSM Session Manager",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self._grant_ecs_agent(cluster)

        user_data = ec2.UserData.for_linux()
        # Fail fast: a step that fails stops the script before the cluster's join line.
        user_data.add_commands("set -euo pipefail", check_neuron_host(size, host_driver))
        if spot:
            # The cluster writes this line only for launch-configuration spot (spotPrice), never
            # for a mixed-instances policy, so the agent would not drain tasks on a spot notice.
            user_data.add_commands(SPOT_DRAINING)

        if ami_id is None and ami_release != DEFAULT_AMI_RELEASE:
            Annotations.of(self).add_warning_v2(
                "bert-inferentia:unchecked-ami",
                f"amiRelease={ami_release}: the release table was checked on {DEFAULT_AMI_RELEASE}. "
                f"Instances whose Neuron driver lies outside {host_driver.lowest} up to {host_driver.below} power off "
                "instead of joining the cluster (docs/servers.md, 'Neuron releases').",
            )

        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=neuron_ami(ami_id=ami_id, ami_release=ami_release),
            instance_type=ec2.InstanceType(size.name),
            # The cluster would grant the agent a wildcard action plus ECR and CloudWatch Logs access
            # that tasks with an execution role never use; the role gets _grant_ecs_agent's instead.
            role=self.instance_role.without_policy_updates(),
            security_group=security_group,
            user_data=user_data,
            require_imdsv2=True,
            # One hop keeps containers in bridge mode away from the instance role's credentials.
            http_put_response_hop_limit=1,
            key_pair=ec2.KeyPair.from_key_pair_name(self, "KeyPair", key_name) if key_name else None,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )

        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "AutoScalingGroup",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            min_capacity=min_instances,
            max_capacity=max_instances,
            # With managed termination protection ECS lifts an instance's protection once it runs no
            # task, so scale-in only ever takes idle instances.
            new_instances_protected_from_scale_in=True,
            # Spot: start a replacement on EC2's rebalance recommendation, which usually comes before the
            # two-minute interruption notice; ECS managed draining drains the old instance as for a
            # scale-in (ECS developer guide, "Safely stop Amazon ECS workloads running on EC2 instances").
            capacity_rebalance=spot or None,
            notifications=[autoscaling.NotificationConfiguration(topic=notifications)],
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                # The preferred size first; on-demand capacity is launched in this order, spot from the
                # pools with the most capacity at the lowest price.
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(size.name))
                    for size in instance_sizes
                ]
                if len(instance_sizes) > 1
                else None,
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=on_demand_base,
                    on_demand_percentage_above_base_capacity=0 if spot else 100,
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                ),
            ),
        )

        self.capacity_provider = ecs.AsgCapacityProvider(
            self,
            "CapacityProvider",
            auto_scaling_group=self.auto_scaling_group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            enable_managed_draining=True,
            target_capacity_percent=100,
        )
        cluster.add_asg_capacity_provider(
            self.capacity_provider,
            machine_image_type=ecs.MachineImageType.AMAZON_LINUX_2,
        )
        # ...and `cdk destroy` still finishes: the protection is lifted once the provider is gone.
        self.lift_protection = LiftScaleInProtectionOnDelete(
            self,
            "LiftScaleInProtection",
            auto_scaling_group=self.auto_scaling_group,
            log_retention_days=log_retention_days,
        )
        self.lift_protection.must_outlive(self.capacity_provider)
        self.capacity_provider_name = self.capacity_provider.capacity_provider_name
        self._acknowledge_findings()

    def _grant_ecs_agent(self, cluster: ecs.ICluster) -> None:
        """What the ECS agent calls, and only for this cluster where IAM lets a policy say so."""
        self.instance_role.add_to_policy(
            iam.PolicyStatement(
                sid="JoinTheCluster",
                actions=[
                    "ecs:RegisterContainerInstance",
                    "ecs:DeregisterContainerInstance",
                    "ecs:SubmitContainerStateChange",
                    "ecs:SubmitTaskStateChange",
                    "ecs:SubmitAttachmentStateChanges",
                ],
                resources=[cluster.cluster_arn],
            )
        )
        self.instance_role.add_to_policy(
            iam.PolicyStatement(
                sid="RunTasksOfTheCluster",
                # UpdateContainerInstancesState lets the agent drain the instance on a spot notice.
                actions=["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        self.instance_role.add_to_policy(
            iam.PolicyStatement(sid="FindTheEcsEndpoint", actions=["ecs:DiscoverPollEndpoint"], resources=["*"])
        )

    def _acknowledge_findings(self) -> None:
        policy = self.instance_role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecs:DiscoverPollEndpoint supports no resource; ecs:Poll, StartTelemetrySession and "
            "UpdateContainerInstancesState are limited to this cluster by an ecs:cluster condition",
        )
        acknowledge(
            self.instance_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "AWS maintains the SSM agent's permissions in this policy; it replaces SSH for shell access",
        )
        acknowledge(
            self.auto_scaling_group,
            "AwsSolutions-EC26",
            "The launch template encrypts the root volume (tests assert it); the rule cannot follow "
            "the group's LatestVersionNumber reference to the launch template",
        )
