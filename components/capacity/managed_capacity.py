"""Capacity from ECS Managed Instances: AWS launches, patches and drains the Inferentia instances."""

from __future__ import annotations

from aws_cdk import Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.findings import acknowledge
from config.hardware import InstanceSize


class ManagedInferentiaCapacity(Construct):
    """An ECS Managed Instances capacity provider limited to the configured Inferentia size.

    AWS chooses the instance (only ``instanceType`` is allowed), launches it as spot or on-demand
    as ``spot`` says, patches it and drains it; there is no Auto Scaling group, AMI, key pair or
    user data of this stack's. Each task asks for every Neuron device of its instance, so one task
    runs per instance (components/inference_task.py). The provider's infrastructure role and the
    instances' profile are CDK's defaults, which carry AWS's managed policies for Managed Instances.
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
        spot: bool,
        root_volume_gib: int,
    ) -> None:
        """``instance_size``: the one size AWS may launch; ``spot``: spot or on-demand capacity;
        ``root_volume_gib``: each instance's task storage."""
        super().__init__(scope, construct_id)
        size = instance_size
        self.capacity_provider = ecs.ManagedInstancesCapacityProvider(
            self,
            "CapacityProvider",
            subnets=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnets,
            security_groups=[security_group],
            instance_requirements=ec2.InstanceRequirementsConfig(
                v_cpu_count_min=size.vcpus,
                v_cpu_count_max=size.vcpus,
                memory_min=Size.gibibytes(size.memory_gib),
                memory_max=Size.gibibytes(size.memory_gib),
                allowed_instance_types=[size.name],
            ),
            capacity_option_type=ecs.CapacityOptionType.SPOT if spot else ecs.CapacityOptionType.ON_DEMAND,
            task_volume_storage=Size.gibibytes(root_volume_gib),
        )
        cluster.add_managed_instances_capacity_provider(self.capacity_provider)
        self.capacity_provider_name = self.capacity_provider.capacity_provider_name
        self._acknowledge_findings()

    def _acknowledge_findings(self) -> None:
        instance_role = self.capacity_provider.node.find_child("InstanceRole")
        acknowledge(
            instance_role,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's instance role for Managed Instances: ecs:DiscoverPollEndpoint supports no resource; "
            "registration and state changes are limited to this cluster",
        )
        acknowledge(
            instance_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:container-instance/*]",
            "The agent polls and reports telemetry for its own container instance, whose ARN exists only "
            "once AWS has launched it; CDK's default role names every container instance of the account",
        )
        infrastructure_role = self.capacity_provider.infrastructure_role
        acknowledge(
            infrastructure_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonECSInfrastructureRolePolicyForManagedInstances]",
            "AWS maintains what ECS needs to launch, patch and drain Managed Instances in this policy; ECS "
            "assumes the role only for this capacity provider",
        )
