"""Construct-level specifications: each construct alone in a bare Stack, read with Template and Match.

The app-level variants (conftest.py) check composition, security and logical IDs; these say what
one construct promises whatever stack it is put in. All stacks share one App, synthesized once.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from constructs import Construct

from components.capacity import InferentiaCapacity
from components.inference_task import InferenceTaskDefinition
from components.logical_ids import IdTransparentScope, KeepLogicalIds, cdk_logical_id, stable_unique_id
from components.observability import EndpointAlarms
from config.settings import DeploymentSettings, load_settings
from contracts import containers
from tests.conftest import CDK_JSON_CONTEXT

SETTINGS = load_settings(CDK_JSON_CONTEXT.get)
INF2 = load_settings({**CDK_JSON_CONTEXT, "instanceType": "inf2.24xlarge", "amiId": "ami-0123abcd"}.get)


@dataclass(frozen=True)
class Built:
    templates: dict[str, Template]
    names: dict[str, str]


def _task(stack: cdk.Stack, settings: DeploymentSettings) -> InferenceTaskDefinition:
    image = ecs.ContainerImage.from_registry("public.ecr.aws/example/server:1")
    return InferenceTaskDefinition(
        stack,
        "Task",
        profile=settings.profile,
        model=settings.models[0],
        instance_sizes=settings.instance_sizes,
        server_image=image,
        sidecar_image=image,
        log_retention_days=7,
        cluster_name="cluster-1",
    )


@pytest.fixture(scope="module")
def built() -> Built:
    app = cdk.App()
    names: dict[str, str] = {}

    # Logical IDs: the same resource with and without a transparent grouping scope
    plain = cdk.Stack(app, "Plain")
    sns.Topic(Construct(plain, "TaskModel2"), "Topic")
    grouped = cdk.Stack(app, "Grouped")
    sns.Topic(Construct(IdTransparentScope(grouped, "Model2", id_suffix="Model2"), "Task"), "Topic")
    cdk.Aspects.of(grouped).add(KeepLogicalIds())
    names["stable"] = stable_unique_id(
        Construct(IdTransparentScope(grouped, "Model3", id_suffix="Model3"), "Task"), "X"
    )
    # what CDK names the same construct in a stack of the same name without the grouping
    names["plain"] = cdk.Names.unique_id(Construct(Construct(cdk.Stack(cdk.App(), "Grouped"), "TaskModel3"), "X"))

    capacity = cdk.Stack(app, "CapacityAlone")
    vpc = ec2.Vpc(capacity, "Vpc", max_azs=2, nat_gateways=1)
    InferentiaCapacity(
        capacity,
        "Capacity",
        cluster=ecs.Cluster(capacity, "Cluster", vpc=vpc),
        vpc=vpc,
        security_group=ec2.SecurityGroup(capacity, "Sg", vpc=vpc),
        settings=INF2,
    )

    task = cdk.Stack(app, "TaskAlone")
    _task(task, SETTINGS)

    alarms = cdk.Stack(app, "AlarmsAlone")
    EndpointAlarms(
        alarms,
        "EndpointAlarms",
        load_balancer=cdk.aws_elasticloadbalancingv2.NetworkLoadBalancer(
            alarms, "Nlb", vpc=ec2.Vpc(alarms, "Vpc", max_azs=2, nat_gateways=0)
        ),
        notifications=sns.Topic(alarms, "Topic"),
    )

    stacks = (plain, grouped, capacity, task, alarms)
    return Built({stack.stack_name: Template.from_stack(stack) for stack in stacks}, names)


def test_cdk_logical_id_reproduces_cdks_own_ids(built: Built) -> None:
    (plain_id,) = built.templates["Plain"].find_resources("AWS::SNS::Topic")

    assert plain_id == cdk_logical_id(["TaskModel2", "Topic", "Resource"])
    assert cdk_logical_id(["Default", "Resource"]) == "Resource"
    assert cdk_logical_id(["Cluster"]) == "Cluster"


def test_a_transparent_scope_leaves_logical_ids_and_path_derived_names_as_they_were(built: Built) -> None:
    (plain_id,) = built.templates["Plain"].find_resources("AWS::SNS::Topic")
    (grouped_id,) = built.templates["Grouped"].find_resources("AWS::SNS::Topic")

    assert grouped_id == plain_id
    assert built.names["stable"] == built.names["plain"]


def test_capacity_waits_for_every_device_of_its_size_and_lets_alarms_publish(built: Built) -> None:
    template = built.templates["CapacityAlone"]

    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "ImageId": "ami-0123abcd",
                    "InstanceType": "inf2.24xlarge",
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "UserData": {
                        "Fn::Base64": {
                            "Fn::Join": ["", Match.array_with([Match.string_like_regexp("NEURON_DEVICE_COUNT=6\n")])]
                        }
                    },
                }
            )
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        )
                    ]
                ),
                "Version": "2012-10-17",
            }
        },
    )
    template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {"AutoScalingGroupProvider": Match.object_like({"ManagedTerminationProtection": "ENABLED"})},
    )


def test_task_maps_the_devices_to_the_server_and_runs_the_monitor_privileged(built: Built) -> None:
    template = built.templates["TaskAlone"]

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


def test_endpoint_alarms_watch_resets_once_and_notify_both_ways(built: Built) -> None:
    template = built.templates["AlarmsAlone"]

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
