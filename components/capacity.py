"""Capacity: the Inferentia instances that join the ECS cluster, and the capacity provider over them."""

from __future__ import annotations

from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.findings import acknowledge
from config.hardware import InstanceSize, NeuronFamily
from config.settings import NeuronRuntime

ROOT_DEVICE = "/dev/xvda"
SPOT_DRAINING = "echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config"

# Neuron drivers after 2.24 dropped Inf1; the AL2023 Neuron AMI ships the newest one, so Inf1
# hosts swap it for the last line that still drives Inferentia v1 before the ECS agent starts.
INF1_DRIVER_PIN = r"""
if ! rpm -q --qf '%{VERSION}' aws-neuronx-dkms | grep -q '^2\.24\.'; then
  if [ ! -f /etc/yum.repos.d/neuron.repo ]; then
    cat > /etc/yum.repos.d/neuron.repo <<'REPO'
[neuron]
name=Neuron YUM Repository
baseurl=https://yum.repos.neuron.amazonaws.com
enabled=1
metadata_expire=0
REPO
    rpm --import https://yum.repos.neuron.amazonaws.com/GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB
  fi
  dnf install -y "kernel-devel-uname-r == $(uname -r)"
  dnf remove -y aws-neuronx-dkms
  dnf install -y 'aws-neuronx-dkms-2.24.*'
  modprobe -r neuron || true
  modprobe neuron
fi
""".strip()


def neuron_ami(runtime: NeuronRuntime) -> ec2.IMachineImage:
    """The ECS-optimized Neuron AMI, resolved at deploy time from its public SSM parameter.

    ``libnrt`` uses Amazon Linux 2023. ``rtd`` stays on the Amazon Linux 2 ``inf`` AMI, the
    last one whose Docker set-up still carries the Neuron OCI hook the 2020 layout relies on.
    """
    if runtime is NeuronRuntime.RTD:
        return ecs.EcsOptimizedImage.amazon_linux2(ecs.AmiHardwareType.NEURON)
    return ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.NEURON)


class InferentiaCapacity(Construct):
    """An Auto Scaling group of Inferentia instances, registered on the cluster as a capacity provider.

    The group has no desired capacity of its own: ECS managed scaling sizes it between the bounds
    from the tasks it must place. Managed termination protection stays off so that ``cdk destroy``
    and scale-in never wait on instance protection; running tasks are drained instead.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.Cluster,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        instance_size: InstanceSize,
        runtime: NeuronRuntime,
        spot: bool,
        min_instances: int,
        max_instances: int,
        root_volume_gib: int,
        key_name: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ECS container instance: the ECS agent for one cluster, and SSM Session Manager",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self._grant_ecs_agent(cluster)
        self.scaling_events = sns.Topic(self, "ScalingEvents", enforce_ssl=True)

        user_data = ec2.UserData.for_linux()
        if instance_size.family is NeuronFamily.INF1 and runtime is NeuronRuntime.LIBNRT:
            user_data.add_commands(INF1_DRIVER_PIN)
        if spot:
            # The cluster writes this line only for launch-configuration spot (spotPrice), never
            # for a mixed-instances policy, so the agent would not drain tasks on a spot notice.
            user_data.add_commands(SPOT_DRAINING)

        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=neuron_ami(runtime),
            instance_type=ec2.InstanceType(instance_size.name),
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
            new_instances_protected_from_scale_in=False,
            notifications=[autoscaling.NotificationConfiguration(topic=self.scaling_events)],
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=0,
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
            enable_managed_termination_protection=False,
            enable_managed_draining=True,
            target_capacity_percent=100,
        )
        cluster.add_asg_capacity_provider(
            self.capacity_provider,
            machine_image_type=ecs.MachineImageType.AMAZON_LINUX_2,
        )
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
        acknowledge(
            self.scaling_events,
            "AwsSolutions-SNS2",
            "Scaling notifications carry only instance IDs and activity; Auto Scaling cannot publish "
            "to a topic under the AWS managed SNS key",
        )
