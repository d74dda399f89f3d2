"""--stack: the endpoint comes from the deployed stack's outputs, through boto3, stubbed here (no AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from client.endpoint import EndpointNotFound, aws_session, resolve

OUTPUTS = {
    "ClusterName": "cluster-1",
    "ServiceName": "service-1",
    "GrpcPort": "8500",
    "RestPort": "8501",
    "ModelName": "bert",
    "InstanceType": "inf1.xlarge",
}


# One botocore session for the module: its loader keeps the service models it has read (EC2's takes
# about 0.4 s to load), while each test still gets fresh clients and stubs.
BOTOCORE = botocore.session.get_session()


class StubbedSession:
    """A boto3 session whose clients answer from stubs and never reach AWS."""

    def __init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1", botocore_session=BOTOCORE
        )
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


MULTI_OUTPUTS = {
    **OUTPUTS,
    "LoadBalancerDnsName": "nlb-1.elb.us-east-1.amazonaws.com",
    "Model2ModelName": "distilbert",
    "Model2ServiceName": "service-2",
    "Model2GrpcPort": "8502",
    "Model2RestPort": "8503",
}


@pytest.mark.parametrize(
    ("model", "grpc", "rest"), [(None, "8500", "8501"), ("bert", "8500", "8501"), ("distilbert", "8502", "8503")]
)
def test_every_model_of_a_several_model_stack_is_reached_by_name(
    session: StubbedSession, model: str | None, grpc: str, rest: str
) -> None:
    describe_stacks(session, MULTI_OUTPUTS)

    found = resolve("BertInferentia", session, model=model)

    assert found.model == (model or "bert")
    assert (found.target("grpc"), found.target("rest")) == (
        f"nlb-1.elb.us-east-1.amazonaws.com:{grpc}",
        f"nlb-1.elb.us-east-1.amazonaws.com:{rest}",
    )


def test_a_model_the_stack_does_not_serve_names_those_it_does(session: StubbedSession) -> None:
    describe_stacks(session, MULTI_OUTPUTS)

    with pytest.raises(EndpointNotFound, match=r"serves no model 'gpt': it serves bert, distilbert"):
        resolve("BertInferentia", session, model="gpt")


def test_no_region_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))

    with pytest.raises(EndpointNotFound, match=r"set a region \(AWS_REGION"):
        resolve("BertInferentia", boto3.session.Session())


def test_no_credentials_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # no instance metadata either: botocore would otherwise ask 169.254.169.254
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(EndpointNotFound, match=r"cannot read stack 'BertInferentia': Unable to locate credentials"):
        resolve("BertInferentia", boto3.session.Session(region_name="us-east-1"))


RELAY_OUTPUTS = {
    "ClusterName": "cluster-1",
    "RelayTaskDefinitionArn": "arn:aws:ecs:us-east-1:111111111111:task-definition/relay:1",
    "RelaySecurityGroupId": "sg-0relay",
    "RelaySubnetIds": "subnet-a,subnet-b",
}
RELAY_TASK = "arn:aws:ecs:us-east-1:111111111111:task/cluster-1/0123456789abcdef"


def relay_task(status: str, agent: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "relay", "runtimeId": "0123456789abcdef-3524792233"}
    if agent:
        container["managedAgents"] = [{"name": "ExecuteCommandAgent", "lastStatus": agent}]
    return {"taskArn": RELAY_TASK, "lastStatus": status, "containers": [container]}


def test_the_tunnel_runs_the_relay_on_fargate_and_forwards_through_it(session: StubbedSession) -> None:
    from tools.tunnel import DOCUMENT, session_command, start_relay  # noqa: PLC0415

    ecs = session.stubs["ecs"]
    ecs.add_response(
        "run_task",
        {"tasks": [relay_task("PROVISIONING", None)], "failures": []},
        {
            "cluster": "cluster-1",
            "taskDefinition": RELAY_OUTPUTS["RelayTaskDefinitionArn"],
            "launchType": "FARGATE",
            "enableExecuteCommand": True,
            "startedBy": "make-tunnel",
            "count": 1,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": ["subnet-a", "subnet-b"],
                    "securityGroups": ["sg-0relay"],
                    "assignPublicIp": "DISABLED",
                }
            },
        },
    )
    ecs.add_response("describe_tasks", {"tasks": [relay_task("PENDING", "PENDING")]})
    ecs.add_response("describe_tasks", {"tasks": [relay_task("RUNNING", "RUNNING")]})
    pauses: list[float] = []

    relay = start_relay(session.client("ecs"), RELAY_OUTPUTS, sleep=pauses.append)
    command = session_command(relay=relay, host="nlb-1", port=8503, local_port=9000, region="us-east-1")

    assert pauses == [5]
    assert command == [
        *("aws", "ssm", "start-session", "--region", "us-east-1"),
        *("--target", "ecs:cluster-1_0123456789abcdef_0123456789abcdef-3524792233"),
        *("--document-name", DOCUMENT),
        *("--parameters", "host=nlb-1,portNumber=8503,localPortNumber=9000"),
    ]


def test_a_relay_that_stops_is_one_line(session: StubbedSession) -> None:
    from tools.tunnel import TunnelError, start_relay  # noqa: PLC0415

    session.stubs["ecs"].add_response("run_task", {"tasks": [relay_task("PROVISIONING", None)], "failures": []})
    stopped = relay_task("STOPPED", None) | {"stoppedReason": "CannotPullContainerError: timeout"}
    session.stubs["ecs"].add_response("describe_tasks", {"tasks": [stopped]})

    with pytest.raises(TunnelError, match="the relay task stopped: CannotPullContainerError"):
        start_relay(session.client("ecs"), RELAY_OUTPUTS, sleep=lambda _: None)


def test_a_stack_from_before_the_relay_is_one_line(session: StubbedSession) -> None:
    from tools.tunnel import TunnelError, start_relay  # noqa: PLC0415

    with pytest.raises(TunnelError, match="no RelayTaskDefinitionArn, RelaySubnetIds output"):
        start_relay(session.client("ecs"), {"ClusterName": "cluster-1"})


@pytest.mark.parametrize("default_region", [None, "us-east-1"])
def test_aws_region_alone_selects_the_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, default_region: str | None
) -> None:
    # The README says to set AWS_REGION, as for the AWS CLI; botocore reads only AWS_DEFAULT_REGION.
    for variable in ("AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    if default_region:  # and it wins over AWS_DEFAULT_REGION, as in the AWS CLI
        monkeypatch.setenv("AWS_DEFAULT_REGION", default_region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_REGION", "eu-west-3")

    session = aws_session()

    assert session.region_name == "eu-west-3"
    assert session.client("cloudformation", aws_access_key_id="x", aws_secret_access_key="x").meta.region_name == (
        "eu-west-3"
    )
