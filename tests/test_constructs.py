"""Construct-level specifications: each construct alone in a bare Stack, read with Template, Match and Capture.

The app-level variants (conftest.py) check composition and behaviour; these say what one construct
promises whatever stack it is put in, given only its own props. All stacks share one App.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Capture, Match, Template

from components.capacity.asg_capacity import InferentiaCapacity
from components.capacity.managed_capacity import ManagedInferentiaCapacity
from components.endpoint.relay import EndpointRelay
from components.model_server.task import InferenceTaskDefinition
from components.notifications import NotificationsTopic
from components.observability import EndpointAlarms
from components.service.fleet_scaling import FleetScaling
from config.hardware import INSTANCE_SIZES
from config.neuron_releases import RUNTIME_2_33_DRIVERS
from config.settings import load_settings
from contracts import containers
from tests.conftest import CDK_JSON_CONTEXT, VALIDATES

pytestmark = VALIDATES  # the bare stacks below keep the built-in validation

SETTINGS = load_settings(CDK_JSON_CONTEXT.get)
INF2_24 = INSTANCE_SIZES["inf2.24xlarge"]


def bare(app: cdk.App, name: str) -> tuple[cdk.Stack, ec2.Vpc]:
    stack = cdk.Stack(app, name)
    return stack, ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)


@pytest.fixture(scope="module")
def templates() -> dict[str, Template]:
    # With the CDK's built-in CloudFormation validation: these stacks use options no variant uses.
    app = cdk.App()

    topic_stack = cdk.Stack(app, "TopicAlone")
    NotificationsTopic(topic_stack, "Notifications")

    capacity, vpc = bare(app, "CapacityAlone")
    InferentiaCapacity(
        capacity,
        "Capacity",
        cluster=ecs.Cluster(capacity, "Cluster", vpc=vpc),
        vpc=vpc,
        security_group=ec2.SecurityGroup(capacity, "Sg", vpc=vpc),
        notifications=sns.Topic(capacity, "Events"),
        instance_sizes=[INF2_24],
        host_driver=RUNTIME_2_33_DRIVERS,
        ami_id="ami-0123abcd",
        ami_release="recommended",
        spot=True,
        on_demand_base=1,
        min_instances=0,
        max_instances=3,
        key_name=None,
        root_volume_gib=80,
        log_retention_days=7,
    )

    managed, vpc = bare(app, "ManagedAlone")
    ManagedInferentiaCapacity(
        managed,
        "Capacity",
        cluster=ecs.Cluster(managed, "Cluster", vpc=vpc),
        vpc=vpc,
        security_group=ec2.SecurityGroup(managed, "Sg", vpc=vpc),
        instance_size=INSTANCE_SIZES["inf2.xlarge"],
        spot=False,
        root_volume_gib=60,
    )

    task = cdk.Stack(app, "TaskAlone")
    image = ecs.ContainerImage.from_registry("public.ecr.aws/example/server:1")
    InferenceTaskDefinition(
        task,
        "Task",
        profile=SETTINGS.profile,
        model=SETTINGS.models[0],
        instance_sizes=SETTINGS.instance_sizes,
        server_image=image,
        sidecar_image=image,
        log_retention_days=7,
        cluster_name="cluster-1",
    )

    scaling, vpc = bare(app, "ScalingAlone")
    cluster = ecs.Cluster(scaling, "Cluster", vpc=vpc)
    definition = ecs.Ec2TaskDefinition(scaling, "Definition")
    definition.add_container("c", image=image, memory_limit_mib=128)
    cluster.add_capacity("Group", instance_type=ec2.InstanceType("t3.small"), max_capacity=1)
    services = [ecs.Ec2Service(scaling, f"Service{n}", cluster=cluster, task_definition=definition) for n in (1, 2)]
    FleetScaling(
        scaling, "Scaling", cluster_name="c1", services=services, neuron_metrics=True, min_tasks=2, max_tasks=4
    )

    relay, vpc = bare(app, "RelayAlone")
    endpoint_group = ec2.SecurityGroup(relay, "EndpointSg", vpc=vpc)
    EndpointRelay(
        relay,
        "Relay",
        vpc=vpc,
        endpoint_security_group=endpoint_group,
        load_balancer_ports=[8500, 8501],
        log_retention_days=7,
    )

    alarms, vpc = bare(app, "AlarmsAlone")
    EndpointAlarms(
        alarms,
        "EndpointAlarms",
        load_balancer=elbv2.NetworkLoadBalancer(alarms, "Nlb", vpc=vpc),
        notifications=sns.Topic(alarms, "Topic"),
    )

    stacks = (topic_stack, capacity, managed, task, scaling, relay, alarms)
    return {stack.stack_name: Template.from_stack(stack) for stack in stacks}


def test_the_topic_refuses_plain_http_and_lets_this_accounts_alarms_publish(templates: dict[str, Template]) -> None:
    templates["TopicAlone"].has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        ),
                    ]
                ),
                "Version": "2012-10-17",
            }
        },
    )


def test_capacity_checks_its_size_and_driver_and_rebalances_spot(templates: dict[str, Template]) -> None:
    template = templates["CapacityAlone"]
    user_data = Capture()

    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "ImageId": "ami-0123abcd",  # amiId wins over amiRelease
                    "InstanceType": "inf2.24xlarge",
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "UserData": {"Fn::Base64": {"Fn::Join": ["", user_data]}},
                }
            )
        },
    )
    script = "".join(part for part in user_data.as_array() if isinstance(part, str))
    assert "NEURON_DEVICE_COUNT=6\n" in script
    assert "NEURON_DRIVER_LOWEST=2.27\nNEURON_DRIVER_BELOW=2.31\n" in script
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "CapacityRebalance": True,
            "MaxSize": "3",
            "NotificationConfigurations": [
                Match.object_like({"TopicARN": {"Ref": Match.string_like_regexp("Events")}})
            ],
            "MixedInstancesPolicy": Match.object_like(
                {"InstancesDistribution": Match.object_like({"OnDemandBaseCapacity": 1})}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {"AutoScalingGroupProvider": Match.object_like({"ManagedTerminationProtection": "ENABLED"})},
    )
    template.resource_count_is("AWS::SNS::Topic", 1)  # the one it was given: it makes none of its own


def test_managed_capacity_offers_its_one_size_on_demand(templates: dict[str, Template]) -> None:
    templates["ManagedAlone"].has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "ManagedInstancesProvider": Match.object_like(
                {
                    "InstanceLaunchTemplate": Match.object_like(
                        {
                            "CapacityOptionType": "ON_DEMAND",
                            "InstanceRequirements": Match.object_like({"AllowedInstanceTypes": ["inf2.xlarge"]}),
                        }
                    )
                }
            )
        },
    )


def test_task_maps_the_devices_to_the_server_and_runs_the_monitor_privileged(templates: dict[str, Template]) -> None:
    template = templates["TaskAlone"]

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "NetworkMode": "bridge",
            "PidMode": "task",
            "ContainerDefinitions": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": SETTINGS.models[0].name,
                            "Essential": True,
                            "LinuxParameters": Match.object_like(
                                {
                                    "Capabilities": {"Add": ["IPC_LOCK"]},
                                    "Devices": [
                                        {
                                            "HostPath": "/dev/neuron0",
                                            "ContainerPath": "/dev/neuron0",
                                            "Permissions": ["read", "write"],
                                        }
                                    ],
                                }
                            ),
                            "PortMappings": Match.array_with(
                                [Match.object_like({"ContainerPort": 8500, "HostPort": 0})]
                            ),
                        }
                    ),
                    Match.object_like({"Name": containers.NEURON_MONITOR, "Essential": False, "Privileged": True}),
                ]
            ),
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})


def test_fleet_scaling_gives_every_service_the_same_figure_and_names_no_role(templates: dict[str, Template]) -> None:
    template = templates["ScalingAlone"]
    configurations = [
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for policy in template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()

    assert len(configurations) == 2
    assert configurations[0] == configurations[1]
    (expression,) = [
        q["Expression"] for q in configurations[0]["CustomizedMetricSpecification"]["Metrics"] if "Expression" in q
    ]
    assert expression == "MAX([cpu1 / 60, FILL(neuron1, 0) / 70, cpu2 / 60, FILL(neuron2, 0) / 70]) * 100"
    assert configurations[0]["TargetValue"] == 100
    assert {(t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) for t in targets} == {(2, 4)}
    assert all("RoleARN" not in target["Properties"] for target in targets)


def test_the_relay_runs_on_fargate_and_the_endpoint_admits_it(templates: dict[str, Template]) -> None:
    template = templates["RelayAlone"]

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256"}
    )
    rules = Capture()
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("EndpointSg"), "SecurityGroupIngress": rules},
    )
    assert {(rule["FromPort"], rule["ToPort"]) for rule in rules.as_array()} == {(8500, 8500), (8501, 8501)}
    relay_groups = {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in rules.as_array()}
    assert len(relay_groups) == 1
    assert relay_groups.pop().startswith("RelaySecurityGroup")


def test_endpoint_alarms_watch_resets_once_and_notify_both_ways(templates: dict[str, Template]) -> None:
    template = templates["AlarmsAlone"]

    template.resource_count_is("AWS::CloudWatch::Alarm", 1)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "TCP_Target_Reset_Count",
            "Namespace": "AWS/NetworkELB",
            "AlarmActions": [{"Ref": Match.string_like_regexp("Topic")}],
            "OKActions": [{"Ref": Match.string_like_regexp("Topic")}],
        },
    )
