"""--stack: the endpoint comes from the deployed stack's outputs, through boto3, stubbed here (no AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from client.endpoint import EndpointNotFound, resolve

OUTPUTS = {
    "ClusterName": "cluster-1",
    "ServiceName": "service-1",
    "GrpcPort": "8500",
    "RestPort": "8501",
    "ModelName": "bert",
    "InstanceType": "inf1.xlarge",
}


class StubbedSession:
    """A boto3 session whose clients answer from stubs and never reach AWS."""

    def __init__(self) -> None:
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        self.clients = {name: session.client(name) for name in ("cloudformation", "ecs", "ec2")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str) -> Any:
        return self.clients[name]


@pytest.fixture
def session() -> Iterator[StubbedSession]:
    stubbed = StubbedSession()
    for stub in stubbed.stubs.values():
        stub.activate()
    yield stubbed
    for stub in stubbed.stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def describe_stacks(session: StubbedSession, outputs: dict[str, str]) -> None:
    session.stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "BertInferentia",
                    "CreationTime": "2026-11-25T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
                }
            ]
        },
        {"StackName": "BertInferentia"},
    )


def test_finds_the_instance_running_the_task(session: StubbedSession) -> None:
    describe_stacks(session, OUTPUTS)
    task_arn = "arn:aws:ecs:us-east-1:111111111111:task/cluster-1/abc"
    instance_arn = "arn:aws:ecs:us-east-1:111111111111:container-instance/cluster-1/def"
    session.stubs["ecs"].add_response(
        "list_tasks",
        {"taskArns": [task_arn]},
        {"cluster": "cluster-1", "serviceName": "service-1", "desiredStatus": "RUNNING"},
    )
    session.stubs["ecs"].add_response(
        "describe_tasks",
        {"tasks": [{"taskArn": task_arn, "containerInstanceArn": instance_arn}]},
        {"cluster": "cluster-1", "tasks": [task_arn]},
    )
    session.stubs["ecs"].add_response(
        "describe_container_instances",
        {"containerInstances": [{"containerInstanceArn": instance_arn, "ec2InstanceId": "i-0123"}]},
        {"cluster": "cluster-1", "containerInstances": [instance_arn]},
    )
    session.stubs["ec2"].add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [{"InstanceId": "i-0123", "PrivateIpAddress": "10.0.2.15"}]}]},
        {"InstanceIds": ["i-0123"]},
    )

    found = resolve("BertInferentia", session)

    assert (found.target("grpc"), found.target("rest")) == ("10.0.2.15:8500", "10.0.2.15:8501")
    assert (found.model, found.instance_type) == ("bert", "inf1.xlarge")


def test_prefers_a_load_balancer_address(session: StubbedSession) -> None:
    describe_stacks(session, {**OUTPUTS, "LoadBalancerDnsName": "nlb-1.elb.us-east-1.amazonaws.com"})

    assert resolve("BertInferentia", session).target("grpc") == "nlb-1.elb.us-east-1.amazonaws.com:8500"


def test_a_service_with_no_running_task_is_a_clear_error(session: StubbedSession) -> None:
    describe_stacks(session, OUTPUTS)
    session.stubs["ecs"].add_response(
        "list_tasks", {"taskArns": []}, {"cluster": "cluster-1", "serviceName": "service-1", "desiredStatus": "RUNNING"}
    )

    with pytest.raises(EndpointNotFound, match="service service-1 has no running task"):
        resolve("BertInferentia", session)


def test_another_projects_stack_is_refused(session: StubbedSession) -> None:
    describe_stacks(session, {"BucketName": "x"})

    with pytest.raises(EndpointNotFound, match="no output GrpcPort, RestPort, ModelName"):
        resolve("BertInferentia", session)


def test_a_missing_stack_is_a_clear_error(session: StubbedSession) -> None:
    session.stubs["cloudformation"].add_client_error(
        "describe_stacks", service_error_code="ValidationError", service_message="Stack with id Nope does not exist"
    )

    with pytest.raises(EndpointNotFound, match=r"cannot read stack 'Nope'.*does not exist"):
        resolve("Nope", session)
