"""make integ, offline: the orchestration against a fake account (order, a failing check, a failed
deploy, Ctrl-C and SIGTERM all end in destroy and sweep, and a report), its AWS calls against botocore's
Stubber, the refusal without credentials, and the integ app's synthesized shape."""

from __future__ import annotations

import ast
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore import xform_name
from botocore.stub import Stubber
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import VALIDATES
from tests.integ.integ_endpoint import TARGET_HEALTH_ACTION, build
from tests.paths import ROOT
from tools import integ
from tools.integ_aws import AwsAccount, leftovers, neuron_metric_dimensions, remaining_stacks
from tools.integ_plan import TAG_KEY, IntegPlan

PLAN = IntegPlan(run_id="t1", family="inf1", spot=False, model_s3_uri="s3://models/bert", bench_seconds=10)
OUTPUTS = {"ClusterName": "c", "ServiceName": "s", "NotificationsTopicArn": "arn:aws:sns:us-east-1:1:t"}


class FakeAccount:
    """Records each call; ``fail`` names a call that raises, ``interrupt`` one that is interrupted."""

    def __init__(self, *, fail: str = "", interrupt: str = "", left: list[str] | None = None) -> None:
        self.calls: list[str] = []
        self.fail, self.interrupt, self.left = fail, interrupt, left or []

    def _called(self, name: str) -> None:
        self.calls.append(name)
        if name == self.interrupt:
            raise KeyboardInterrupt
        if name == self.interrupt.replace("sigterm:", "") and self.interrupt.startswith("sigterm:"):
            os.kill(os.getpid(), signal.SIGTERM)
        if name == self.fail:
            raise RuntimeError(f"{name} failed")

    def deploy(self, plan: IntegPlan) -> dict[str, str]:
        self._called("deploy")
        return OUTPUTS

    @contextmanager
    def tunnels(self, outputs: dict[str, str]) -> Iterator[dict[str, str]]:
        self._called("tunnels")
        try:
            yield {"grpc": "127.0.0.1:1", "rest": "127.0.0.1:2", "text": "127.0.0.1:3"}
        finally:
            self.calls.append("tunnels closed")

    def load(self, target: str, *arguments: str) -> dict[str, Any]:
        self._called(f"load {target} {' '.join(arguments[:2])}".strip())
        return {"requests": 20, "errors": 0, "throughput_rps": 100.0, "latency_ms": {"p50": 5.0, "p99": 9.0}}

    def classify(self, text_target: str, pair: tuple[str, str]) -> str:
        self._called("classify")
        return "equivalent" if pair == integ.PARAPHRASE else "not_equivalent"

    def neuron_metric_dimensions(self, outputs: dict[str, str]) -> list[dict[str, str]]:
        self._called("metrics")
        return [{"ClusterName": "c", "ServiceName": "s", "NeuronCore": "0"}]

    def alarm_reaches_topic(self, plan: IntegPlan, outputs: dict[str, str]) -> float:
        self._called("alarm")
        return 12.0

    def redeploy_under_load(self, outputs: dict[str, str], target: str) -> dict[str, Any]:
        self._called("redeploy")
        return {"requests": 900, "errors": 0}

    def destroy(self, plan: IntegPlan) -> None:
        self._called("destroy")

    def leftovers(self, plan: IntegPlan) -> list[str]:
        self._called("sweep")
        return self.left


def report_of(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "integ-report.json").read_text())
    return document


def test_a_run_deploys_checks_through_the_tunnels_then_destroys_and_sweeps(tmp_path: Path) -> None:
    account = FakeAccount()

    report = integ.run(PLAN, account, report_folder=tmp_path)

    assert report.passed
    assert account.calls[:2] == ["deploy", "tunnels"]
    assert account.calls[-3:] == ["tunnels closed", "destroy", "sweep"]
    names = [check["name"] for check in report_of(tmp_path)["checks"]]
    assert names[0] == "deployed and steady"
    assert names[-2:] == ["destroyed", "nothing left (sweep by tag)"]
    assert len(names) == 11
    assert all(check["confirms"] for check in report_of(tmp_path)["checks"])
    markdown = (tmp_path / "integ-report.md").read_text()
    assert markdown.startswith("# make integ: passed")
    assert "| a 10-second bench | pass |" in markdown


def test_a_failing_check_fails_the_run_but_the_others_run_and_everything_is_destroyed(tmp_path: Path) -> None:
    account = FakeAccount(fail="classify")

    report = integ.run(PLAN, account, report_folder=tmp_path)

    assert not report.passed
    failed = [check for check in report.checks if not check.passed]
    assert [check.name for check in failed] == ["the MRPC checkpoint tells a paraphrase from a non-paraphrase"]
    assert "classify failed" in failed[0].figure
    assert {"metrics", "alarm", "redeploy", "destroy", "sweep"} <= set(account.calls)


def test_a_failed_deploy_is_still_destroyed(tmp_path: Path) -> None:
    account = FakeAccount(fail="deploy")

    report = integ.run(PLAN, account, report_folder=tmp_path)

    assert not report.passed
    assert account.calls == ["deploy", "destroy", "sweep"]
    assert report_of(tmp_path)["checks"][0]["name"] == "deploy"


@pytest.mark.parametrize("signal_kind", ["ctrl-c", "sigterm"])
def test_an_interrupted_run_destroys_sweeps_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal_kind: str
) -> None:
    account = FakeAccount(interrupt="alarm" if signal_kind == "ctrl-c" else "sigterm:alarm")
    monkeypatch.setattr("tools.aws_credentials.problem", lambda: None)
    monkeypatch.setenv("INTEG_MODEL_S3_URI", "s3://models/bert")
    monkeypatch.setenv("INTEG_REPORT", str(tmp_path))
    before = signal.getsignal(signal.SIGTERM)

    code = integ.main([], account_factory=lambda plan: account)

    assert code == 1
    assert account.calls[-3:] == ["tunnels closed", "destroy", "sweep"]
    assert "redeploy" not in account.calls
    assert report_of(tmp_path)["interrupted"] is True
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_teardown_does_not_stop_it(tmp_path: Path, signum: int) -> None:
    class SignalledDuringDestroy(FakeAccount):
        def destroy(self, plan: IntegPlan) -> None:
            self.calls.append("destroy")
            os.kill(os.getpid(), signum)  # CI's second signal, while cdk destroy runs

    account = SignalledDuringDestroy()

    report = integ.run(PLAN, account, report_folder=tmp_path)

    assert account.calls[-2:] == ["destroy", "sweep"]
    assert report_of(tmp_path)["checks"][-1]["name"] == "nothing left (sweep by tag)"
    assert report.passed


def test_integ_destroy_does_the_teardown_alone_without_a_model_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    account = FakeAccount()
    monkeypatch.setattr("tools.aws_credentials.problem", lambda: None)
    monkeypatch.delenv("INTEG_MODEL_S3_URI", raising=False)

    code = integ.main(["--destroy"], account_factory=lambda plan: account)

    assert code == 0
    assert account.calls == ["destroy", "sweep"]


def test_something_left_after_the_destroy_fails_the_sweep(tmp_path: Path) -> None:
    account = FakeAccount(left=["arn:aws:s3:::bertinteg-t1-accesslogs"])

    report = integ.run(PLAN, account, report_folder=tmp_path)

    (sweep,) = [check for check in report.checks if check.name.startswith("nothing left")]
    assert not sweep.passed
    assert "bertinteg-t1-accesslogs" in sweep.figure


def test_without_credentials_it_refuses_in_one_line_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe off loopback
    built: list[IntegPlan] = []

    def factory(plan: IntegPlan) -> FakeAccount:
        built.append(plan)
        return FakeAccount()

    code = integ.main([], account_factory=factory)

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert built == []
    assert line.startswith("error: make integ deploys a copy of the stack and needs AWS credentials")


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("INTEG_FAMILY", "trn1", "INTEG_FAMILY=trn1: expected inf1 or inf2"),
        ("INTEG_SPOT", "maybe", "INTEG_SPOT=maybe: expected true or false"),
        ("INTEG_RUN_ID", "Has Spaces", "INTEG_RUN_ID=Has Spaces: expected"),
        ("INTEG_MODEL_S3_URI", "", "INTEG_MODEL_S3_URI is not set: build the model (make model)"),
        ("INTEG_BENCH_SECONDS", "5", "INTEG_BENCH_SECONDS=5: expected"),
    ],
)
def test_each_bad_variable_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, said: str
) -> None:
    monkeypatch.setattr("tools.aws_credentials.problem", lambda: None)
    monkeypatch.setenv("INTEG_MODEL_S3_URI", "s3://models/bert")
    monkeypatch.setenv(variable, value)

    code = integ.main([], account_factory=lambda plan: FakeAccount())

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert said in line


# --- the AWS calls, against botocore's Stubber ------------------------------------------------------


def _client(service: str) -> Any:
    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        service
    )


def test_the_sweep_asks_for_the_runs_tag_and_waits_for_the_index_to_empty() -> None:
    tagging = _client("resourcegroupstaggingapi")
    asked = {"TagFilters": [{"Key": TAG_KEY, "Values": ["t1"]}]}
    with Stubber(tagging) as stub:
        stub.add_response("get_resources", {"ResourceTagMappingList": [{"ResourceARN": "arn:aws:ecs:x"}]}, asked)
        stub.add_response("get_resources", {"ResourceTagMappingList": []}, asked)

        assert leftovers(tagging, PLAN, pause=0) == []
        stub.assert_no_pending_responses()


def test_metrics_are_asked_for_the_clusters_neuroncore_series() -> None:
    cloudwatch = _client("cloudwatch")
    series = {
        "Metrics": [
            {
                "Namespace": "NeuronMonitor",
                "MetricName": "NeuronCoreUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "c"}, {"Name": "ServiceName", "Value": "s"}],
            }
        ]
    }
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "list_metrics",
            series,
            {
                "Namespace": "NeuronMonitor",
                "MetricName": "NeuronCoreUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "c"}],
            },
        )

        assert neuron_metric_dimensions(cloudwatch, "c", pause=0) == [{"ClusterName": "c", "ServiceName": "s"}]


# --- the integ app ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def integ_app() -> tuple[Template, Template, Any]:
    app, stack, _ = build({"INTEG_RUN_ID": "snapshot"})
    (assertions,) = [
        found for found in app.node.children if isinstance(found, cdk.Stack) and found.node.id.endswith("-Assertions")
    ]
    return Template.from_stack(stack), Template.from_stack(assertions), stack


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@VALIDATES
def test_the_copy_has_its_own_name_size_and_tag_and_is_on_demand(integ_app: tuple[Template, Template, Any]) -> None:
    template, _, stack = integ_app

    assert stack.stack_name == "BertInteg-snapshot"
    template.has_output("InstanceType", {"Value": "inf1.xlarge"})
    launch = template.find_resources("AWS::EC2::LaunchTemplate")
    assert all("InstanceMarketOptions" not in item["Properties"]["LaunchTemplateData"] for item in launch.values())
    tagged = template.find_resources("AWS::ECS::Cluster")
    (cluster,) = tagged.values()
    assert {"Key": TAG_KEY, "Value": "snapshot"} in cluster["Properties"]["Tags"]


@VALIDATES
def test_the_health_waiters_may_call_elbs_own_iam_action(integ_app: tuple[Template, Template, Any]) -> None:
    _, assertions, _ = integ_app
    granted = {
        action
        for role in assertions.find_resources("AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }

    # integ-tests' own guess from the SDK's name is no IAM action; ELB's prefix is elasticloadbalancing
    assert TARGET_HEALTH_ACTION in granted
    assert TARGET_HEALTH_ACTION == "elasticloadbalancing:DescribeTargetHealth"
    assert "ecs:DescribeServices" in granted


@VALIDATES
def test_the_assertions_wait_for_the_task_and_every_targets_health(integ_app: tuple[Template, Template, Any]) -> None:
    _, assertions, _ = integ_app
    calls = assertions.find_resources("Custom::DeployAssert@SdkCallECSdescribeServices")
    health = [
        resource
        for kind, resource in assertions.to_json()["Resources"].items()
        if resource["Type"].startswith("Custom::DeployAssert@SdkCallElasticLoadBalancingV2describeTa")  # cut at 60
    ]

    assert len(calls) == 1
    assert len(health) == 3  # gRPC, REST, text


@VALIDATES
def test_the_integ_apps_shape_matches_its_snapshot(
    integ_app: tuple[Template, Template, Any], snapshot_json: SnapshotAssertion
) -> None:
    template, assertions, _ = integ_app

    assert {
        "stack": {key: value["Type"] for key, value in sorted(template.to_json()["Resources"].items())},
        "assertions": {key: value["Type"] for key, value in sorted(assertions.to_json()["Resources"].items())},
    } == snapshot_json


# --- the CI role's policy ------------------------------------------------------------------------

# The services the run calls, and their IAM prefixes.
SERVICES = {
    "ecs": "ecs",
    "cloudformation": "cloudformation",
    "cloudwatch": "cloudwatch",
    "sqs": "sqs",
    "sns": "sns",
    "resourcegroupstaggingapi": "tag",
}
# Calls made by name, not as methods: a paginator's operation and the services_stable waiter's.
BY_NAME = {"get_resources": ("tag", "GetResources"), "services_stable": ("ecs", "DescribeServices")}


def called_actions() -> set[str]:
    """Every AWS operation tools/integ_aws.py, tools/tunnel.py and client/endpoint.py call, as IAM actions:
    each method call whose name is an operation of a service the run uses (botocore's own models)."""
    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            operations.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
    actions: set[str] = set()
    for path in ("tools/integ_aws.py", "tools/tunnel.py", "client/endpoint.py"):
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                actions |= operations.get(node.func.attr, set())
                for argument in node.args:
                    if isinstance(argument, ast.Constant) and argument.value in BY_NAME:
                        actions.add(":".join(BY_NAME[argument.value]))
    return actions


def test_the_ci_roles_policy_allows_every_call_the_run_makes() -> None:
    policy = json.loads((ROOT / "docs" / "integ-policy.json").read_text())
    allowed = {
        action
        for statement in policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    called = called_actions()

    assert {"ecs:RunTask", "sqs:CreateQueue", "tag:GetResources", "cloudwatch:SetAlarmState"} <= called
    # the client's task-host fallback (stacks without a load balancer) is not the run's
    fallback = {"ecs:ListTasks", "ecs:DescribeContainerInstances"}
    assert called - fallback <= allowed, called - fallback - allowed
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    # "*" only for actions with no resource-level permissions, or where a condition narrows it
    unscoped = [st for st in policy["Statement"] if st["Resource"] == "*" and "Condition" not in st]
    assert {action for st in unscoped for action in st["Action"]} <= {"cloudwatch:ListMetrics", "tag:GetResources"}


@VALIDATES
def test_the_assertion_stack_is_named_after_the_run(integ_app: tuple[Template, Template, Any]) -> None:
    app, _, _ = build({"INTEG_RUN_ID": "r2"})

    names = sorted(found.stack_name for found in app.node.children if isinstance(found, cdk.Stack))

    assert names == ["BertInteg-r2", "BertInteg-r2-Assertions"]


def test_a_stack_that_cannot_be_read_is_not_taken_for_gone() -> None:
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_client_error("describe_stacks", "AccessDenied", "not authorized", 403)

        with pytest.raises(cloudformation.exceptions.ClientError):
            remaining_stacks(cloudformation, PLAN)


def test_the_tensor_checks_speak_the_stacks_server_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    account = AwsAccount(PLAN)
    account.server_api = "kserve"  # Triton on Inf2, as the ServerApi output says

    assert account.client_command("127.0.0.1:1", "--protocol", "grpc")[3:8] == [
        "--target", "127.0.0.1:1", "--api", "kserve", "--json",
    ]  # fmt: skip
    assert account.client_command("127.0.0.1:3", "--api", "text").count("--api") == 1


def test_a_stack_still_there_after_the_destroy_is_left_over() -> None:
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": PLAN.stack_name, "StackStatus": "DELETE_FAILED", "CreationTime": "2026-12-01"}]},
            {"StackName": PLAN.stack_name},
        )
        stub.add_client_error("describe_stacks", "ValidationError", "Stack does not exist", 400)

        assert remaining_stacks(cloudformation, PLAN) == [f"stack {PLAN.stack_name} (DELETE_FAILED)"]
