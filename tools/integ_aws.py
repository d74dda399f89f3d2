"""make integ's AWS side: deploy and destroy with the project's CDK CLI, the checks' calls with boto3.

Nothing here has run against an account (none is reachable where this was written); each call follows the
API reference named beside it. tests/test_integ.py checks the sweep and the metric query with botocore's
Stubber.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from client import endpoint
from client.report import read_json_line
from client.text import classify
from components.neuron_monitor.runtime import metric_names
from contracts import outputs as keys
from tools import tunnel
from tools.integ_plan import IntegPlan
from tools.loopback import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
INTEG_APP = ROOT / "tests" / "integ" / "integ_endpoint.py"
CDK = ("npx", "--no-install", "cdk")
DEPLOY_TIMEOUT_S = 60 * 60  # each of cdk deploy and cdk destroy; the workflow allows 150 minutes in all
SWEEP_TRIES, SWEEP_PAUSE_S = 6, 20


class AwsAccount:
    """One run's account, region and stack."""

    def __init__(self, plan: IntegPlan) -> None:
        self.plan = plan
        self.session = endpoint.aws_session()
        self.server_api = "tfserving"
        self.environment = {
            "INTEG_RUN_ID": plan.run_id,
            "INTEG_FAMILY": plan.family,
            "INTEG_SPOT": str(plan.spot).lower(),
            "INTEG_MODEL_S3_URI": plan.model_s3_uri,
        }

    def client(self, service: str) -> Any:
        return endpoint.aws_client(self.session, service)

    def _cdk(self, *arguments: str) -> None:
        app = f"{sys.executable} {INTEG_APP}"
        command = [*CDK, *arguments, "--app", app, "--all", "--no-notices"]
        environment = {**os.environ, **self.environment}
        subprocess.run(command, cwd=ROOT, env=environment, check=True, timeout=DEPLOY_TIMEOUT_S)

    def deploy(self, plan: IntegPlan) -> dict[str, str]:
        """`cdk deploy` of the integ app: the stack, then the assertion stack, whose custom resources return
        only once the service runs its task and every target is healthy (or fail the deploy)."""
        self._cdk("deploy", "--require-approval", "never")
        outputs = endpoint.stack_outputs(self.session, plan.stack_name)
        # The tensor checks speak the stack's server API (KServe for Triton on Inf2); the text API has its own.
        self.server_api = outputs.get(keys.SERVER_API, "tfserving")
        return outputs

    @contextmanager
    def tunnels(self, outputs: dict[str, str]) -> Iterator[dict[str, str]]:
        """Local ports forwarded through one relay task to the load balancer's gRPC, REST and text ports."""
        found = endpoint.resolve(self.plan.stack_name, self.session, outputs=outputs)
        ecs = self.client("ecs")
        relay = tunnel.start_relay(ecs, outputs)
        text_port = int((found.text_url or ":0").rsplit(":", 1)[1])
        with ExitStack() as stack:
            stack.callback(_stop_and_wait, ecs, relay)
            ports = {}
            for name, remote in (("grpc", found.grpc_port), ("rest", found.rest_port), ("text", text_port)):
                local = free_port()
                command = tunnel.session_command(
                    relay=relay, host=found.host, port=remote, local_port=local, region=str(self.session.region_name)
                )
                session = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                stack.callback(session.terminate)
                ports[name] = f"{LOOPBACK}:{local}"
            for target in ports.values():
                _wait_connectable(target)
            yield ports

    def client_command(self, target: str, *arguments: str) -> list[str]:
        """The load client against ``target``, in the stack's server API unless ``arguments`` name one."""
        api = [] if "--api" in arguments else ["--api", self.server_api]
        return [sys.executable, "-m", "client", "--target", target, *api, "--json", *arguments]

    def load(self, target: str, *arguments: str) -> dict[str, Any]:
        command = self.client_command(target, *arguments)
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
        lines = result.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output")
        document: dict[str, Any] = json.loads(lines[-1])
        return document

    def classify(self, text_target: str, pair: tuple[str, str]) -> str:
        return classify(f"http://{text_target}", *pair, timeout=30)[0]

    def neuron_metric_dimensions(self, outputs: dict[str, str]) -> list[dict[str, str]]:
        """The dimensions of every NeuronCore utilization series of the stack's cluster (CloudWatch
        ListMetrics), waiting up to five minutes for the first report."""
        return neuron_metric_dimensions(self.client("cloudwatch"), outputs[keys.CLUSTER_NAME])

    def alarm_reaches_topic(self, plan: IntegPlan, outputs: dict[str, str]) -> float:
        """Subscribes a queue of the run's to the topic, sets one of the stack's alarms to ALARM
        (SetAlarmState) and waits for SNS to deliver it; the queue and subscription go afterwards."""
        sqs, sns, cloudwatch = self.client("sqs"), self.client("sns"), self.client("cloudwatch")
        topic = outputs[keys.NOTIFICATIONS_TOPIC_ARN]
        queue = sqs.create_queue(QueueName=f"{plan.stack_name}-alarms", tags=plan.tags())["QueueUrl"]
        try:
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ],
            }
            sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
            subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)
            try:
                alarms = self.client("cloudformation").describe_stack_resources(StackName=plan.stack_name)
                name = next(
                    resource["PhysicalResourceId"]
                    for resource in alarms["StackResources"]
                    if resource["ResourceType"] == "AWS::CloudWatch::Alarm"
                )
                started = time.monotonic()
                cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="make integ")
                while time.monotonic() - started < 300:
                    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=20).get("Messages", [])
                    if any(name in message["Body"] for message in messages):
                        return time.monotonic() - started
                raise RuntimeError(f"no notification of {name} within 300 s")
            finally:
                sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        finally:
            sqs.delete_queue(QueueUrl=queue)

    def redeploy_under_load(self, outputs: dict[str, str], target: str) -> dict[str, Any]:
        """A forced new deployment (ECS UpdateService) while the client sends a light open-loop load, until
        the service is stable again (the ECS services_stable waiter)."""
        ecs = self.client("ecs")
        cluster, service = outputs[keys.CLUSTER_NAME], outputs[keys.SERVICE_NAME]
        command = self.client_command(target, "--rate", "5", "--duration", "900")
        load = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(10)
            ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
            ecs.get_waiter("services_stable").wait(
                cluster=cluster, services=[service], WaiterConfig={"Delay": 15, "MaxAttempts": 60}
            )
        finally:
            load.send_signal(2)  # the client reports what it measured on Ctrl-C
            printed, _ = load.communicate(timeout=60)
        return read_json_line(printed)

    def destroy(self, plan: IntegPlan) -> None:
        self._cdk("destroy", "--force")

    def leftovers(self, plan: IntegPlan) -> list[str]:
        """The run's stacks that still exist, then whatever is still tagged with the run."""
        return remaining_stacks(self.client("cloudformation"), plan) + leftovers(
            self.client("resourcegroupstaggingapi"), plan
        )


def neuron_metric_dimensions(
    cloudwatch: Any, cluster: str, *, tries: int = 10, pause: float = 30
) -> list[dict[str, str]]:
    for attempt in range(tries):
        found = cloudwatch.list_metrics(
            Namespace=metric_names.NAMESPACE,
            MetricName=metric_names.NEURON_CORE_UTILIZATION,
            Dimensions=[{"Name": metric_names.CLUSTER, "Value": cluster}],
        )["Metrics"]
        if found:
            return [{item["Name"]: item["Value"] for item in metric["Dimensions"]} for metric in found]
        if attempt + 1 < tries:
            time.sleep(pause)
    return []


def remaining_stacks(cloudformation: Any, plan: IntegPlan) -> list[str]:
    """The run's two stacks unless CloudFormation no longer knows them (DescribeStacks by name raises a
    ValidationError for a deleted stack) or reports them deleted."""
    left = []
    for name in (plan.stack_name, plan.assertion_stack_name):
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except cloudformation.exceptions.ClientError as error:
            if "does not exist" in str(error):  # DescribeStacks' answer for a stack that is gone
                continue
            raise  # AccessDenied, throttling: the check cannot say the stack is gone
        left += [
            f"stack {name} ({stack['StackStatus']})" for stack in stacks if stack["StackStatus"] != "DELETE_COMPLETE"
        ]
    return left


def leftovers(tagging: Any, plan: IntegPlan, *, tries: int = SWEEP_TRIES, pause: float = SWEEP_PAUSE_S) -> list[str]:
    """ARNs still tagged with the run (Resource Groups Tagging API GetResources), after the tagging index
    has had a few chances to drop what was just deleted."""
    ((key, value),) = plan.tags().items()
    left: list[str] = []
    for attempt in range(tries):
        pages = tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": key, "Values": [value]}])
        # A deleted task definition stays registered as INACTIVE with its tags (ECS keeps every revision
        # until DeleteTaskDefinitions); it costs nothing and is no leftover. Not confirmed in an account.
        left = [
            item["ResourceARN"]
            for page in pages
            for item in page["ResourceTagMappingList"]
            if ":task-definition/" not in item["ResourceARN"]
        ]
        if not left:
            return []
        if attempt + 1 < tries:
            time.sleep(pause)
    return left


def _stop_and_wait(ecs: Any, relay: tunnel.Relay) -> None:
    """Stops the relay and waits until ECS reports it stopped (the tasks_stopped waiter): a Fargate task's
    network interface would otherwise hold its subnet and security group while the destroy begins."""
    tunnel.stop_relay(ecs, relay)
    ecs.get_waiter("tasks_stopped").wait(
        cluster=relay.cluster, tasks=[relay.task_arn], WaiterConfig={"Delay": 6, "MaxAttempts": 50}
    )


def _wait_connectable(target: str, timeout: float = 60) -> None:
    host, _, port = target.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the port forward to {target} did not open within {timeout:.0f} s")
