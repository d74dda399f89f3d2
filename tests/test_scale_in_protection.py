"""`cdk destroy` with managed termination protection: the custom resource that lifts the protection.

The handler runs against a stand-in for the Auto Scaling API, and answers CloudFormation at a
ResponseURL served on loopback, as the custom resource protocol has it. The delete order that
makes it run at the right moment is checked on every variant's graph.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.capacity.functions import lift_scale_in_protection as lifter
from components.capacity.scale_in_protection import HANDLER
from tests.cfn_graph import delete_waves, dependencies, depends_on
from tests.conftest import ASG_VARIANTS, Synthesized
from tests.loopback import serving

SynthFn = Callable[[str], Synthesized]
GROUP = "BertInferentia-CapacityAutoScalingGroup-ABC"


class FakeAutoScaling:
    """The three Auto Scaling calls the handler makes, over one in-memory group."""

    def __init__(self, instances: dict[str, bool] | None, fail: bool = False) -> None:
        self.instances = instances
        self.new_protected = True
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def describe_auto_scaling_groups(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe", kwargs))
        if self.fail:
            raise RuntimeError("AccessDenied: not authorized")
        if self.instances is None:
            return {"AutoScalingGroups": []}
        listed = [{"InstanceId": i, "ProtectedFromScaleIn": p} for i, p in self.instances.items()]
        return {"AutoScalingGroups": [{"AutoScalingGroupName": GROUP, "Instances": listed}]}

    def update_auto_scaling_group(self, **kwargs: Any) -> None:
        self.calls.append(("update", kwargs))
        self.new_protected = kwargs["NewInstancesProtectedFromScaleIn"]

    def set_instance_protection(self, **kwargs: Any) -> None:
        self.calls.append(("protect", kwargs))
        assert len(kwargs["InstanceIds"]) <= 50, "the API takes at most 50 instance IDs"
        assert self.instances is not None
        for instance in kwargs["InstanceIds"]:
            self.instances[instance] = kwargs["ProtectedFromScaleIn"]


class _CloudFormation(http.server.BaseHTTPRequestHandler):
    answers: list[dict[str, Any]]

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.answers.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cloudformation() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    responses: list[dict[str, Any]] = []
    handler = type("Handler", (_CloudFormation,), {"answers": responses})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/presigned?signature=x", responses


def event(request_type: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/BertInferentia/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "CapacityLiftScaleInProtectionB8D74FF4",
        "ResourceProperties": {"AutoScalingGroupName": GROUP},
    }


def test_on_delete_every_protected_instance_is_unprotected_in_batches(
    cloudformation: tuple[str, list[dict[str, Any]]],
) -> None:
    url, responses = cloudformation
    instances = {f"i-{n:04d}": n % 12 != 0 for n in range(120)}  # 110 protected, 10 already not
    autoscaling = FakeAutoScaling(instances)

    lifter.handler(event("Delete", url), None, autoscaling)

    assert not any(instances.values())
    assert autoscaling.new_protected is False
    assert [name for name, _ in autoscaling.calls] == ["describe", "update", "protect", "protect", "protect"]
    (answer,) = responses
    assert (answer["Status"], answer["LogicalResourceId"], answer["RequestId"]) == (
        "SUCCESS",
        "CapacityLiftScaleInProtectionB8D74FF4",
        "request-1",
    )


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_change_nothing(cloudformation: tuple[str, list[dict[str, Any]]], request_type: str) -> None:
    url, responses = cloudformation
    autoscaling = FakeAutoScaling({"i-1": True})

    lifter.handler(event(request_type, url), None, autoscaling)

    assert autoscaling.calls == []
    assert [answer["Status"] for answer in responses] == ["SUCCESS"]


def test_a_group_already_gone_is_a_successful_delete(cloudformation: tuple[str, list[dict[str, Any]]]) -> None:
    url, responses = cloudformation
    autoscaling = FakeAutoScaling(None)

    lifter.handler(event("Delete", url), None, autoscaling)

    assert [name for name, _ in autoscaling.calls] == ["describe"]
    assert responses[0]["Status"] == "SUCCESS"


def test_a_failure_is_reported_to_cloudformation_not_left_to_time_out(
    cloudformation: tuple[str, list[dict[str, Any]]],
) -> None:
    url, responses = cloudformation

    lifter.handler(event("Delete", url), None, FakeAutoScaling({"i-1": True}, fail=True))

    (answer,) = responses
    assert answer["Status"] == "FAILED"
    assert "AccessDenied" in answer["Reason"]


@pytest.mark.parametrize("variant", ASG_VARIANTS)
def test_the_protection_is_lifted_after_the_provider_goes_and_before_the_group(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    template = synthesized.json
    graph = dependencies(template)
    waves = delete_waves(graph)
    (lift,) = synthesized.resources("Custom::LiftScaleInProtection")
    (provider,) = synthesized.resources("AWS::ECS::CapacityProvider")
    (group,) = synthesized.resources("AWS::AutoScaling::AutoScalingGroup")
    (function,) = synthesized.resources("AWS::Lambda::Function").keys() - {
        logical_id
        for logical_id in synthesized.resources("AWS::Lambda::Function")
        if "VpcRestrictDefaultSG" in logical_id
    }

    assert depends_on(graph, provider, lift)
    assert depends_on(graph, lift, group)
    assert waves[provider] < waves[lift] < waves[group]
    # its function and the function's permissions are still there when it runs
    assert depends_on(graph, lift, function)
    policies = [p for p in synthesized.resources("AWS::IAM::Policy") if "LiftScaleInProtection" in p]
    assert policies
    assert all(waves[lift] < waves[policy] for policy in policies)
    group_properties = synthesized.only("AWS::AutoScaling::AutoScalingGroup")
    assert group_properties["NewInstancesProtectedFromScaleIn"] is True


def test_the_handler_fits_in_an_inline_lambda() -> None:
    # CloudFormation's ZipFile takes at most 4,096 characters (AWS::Lambda::Function Code).
    assert len(HANDLER.read_text()) <= 4096


class _FlakyCloudFormation(_CloudFormation):
    """Refuses the first answer (as a throttled or briefly unreachable endpoint would), then takes them."""

    refused: list[int]

    def do_PUT(self) -> None:
        if not self.refused:
            self.refused.append(1)
            self.send_response(503)
            self.end_headers()
            return
        super().do_PUT()


def test_an_answer_that_does_not_get_through_is_sent_again() -> None:
    responses: list[dict[str, Any]] = []
    pauses: list[float] = []
    handler = type("Handler", (_FlakyCloudFormation,), {"answers": responses, "refused": []})
    with serving(handler) as port:
        lifter.handler(
            event("Delete", f"http://127.0.0.1:{port}/x"), None, FakeAutoScaling({"i-1": True}), pauses.append
        )

    assert [answer["Status"] for answer in responses] == ["SUCCESS"]  # once, and not turned into FAILED
    assert pauses == [lifter.ANSWER_BACKOFF_SECONDS]


def test_the_answers_tries_fit_the_functions_timeout(synth: SynthFn) -> None:
    (function,) = [
        resource["Properties"]
        for logical_id, resource in synth("default").resources("AWS::Lambda::Function").items()
        if "LiftScaleInProtection" in logical_id
    ]
    pauses = sum(lifter.ANSWER_BACKOFF_SECONDS * 2**n for n in range(lifter.ANSWER_ATTEMPTS - 1))
    worst = lifter.ANSWER_ATTEMPTS * 15 + pauses

    assert worst + 10 <= function["Timeout"]  # ten seconds for the Auto Scaling calls


def test_a_malformed_event_is_answered_too(cloudformation: tuple[str, list[dict[str, Any]]]) -> None:
    url, responses = cloudformation
    malformed = {key: value for key, value in event("Delete", url).items() if key != "ResourceProperties"}

    lifter.handler(malformed, None, FakeAutoScaling(None, fail=True))

    (answer,) = responses
    assert answer["Status"] == "FAILED"
