"""Every alarm reaches its topic: the topic's policy, evaluated as SNS would for CloudWatch's publish.

A topic policy replaces SNS's default one. CloudWatch publishes alarm actions as the service
principal ``cloudwatch.amazonaws.com``, over TLS, with the alarm as ``aws:SourceArn``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import VARIANTS, Synthesized
from tests.policy_eval import ACCOUNT, Request, alarm_arn, allowed, resolve, topic_arn

SynthFn = Callable[[str], Synthesized]
ALARM_ACTIONS = ("AlarmActions", "OKActions", "InsufficientDataActions")


def alarm_topics(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(alarm, topic) for every action of every alarm that notifies an SNS topic of the template."""
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for key in ALARM_ACTIONS:
            for action in resource["Properties"].get(key, []):
                target = action.get("Ref") if isinstance(action, dict) else None
                if isinstance(target, str) and resources.get(target, {}).get("Type") == "AWS::SNS::Topic":
                    yield logical_id, target


def topic_policies(template: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    return [
        resolve(resource["Properties"]["PolicyDocument"], template)
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic} in resource["Properties"]["Topics"]
    ]


def publish(topic: str, alarm: str, *, account: str = ACCOUNT, tls: bool = True) -> Request:
    return Request(
        principal_service="cloudwatch.amazonaws.com",
        action="SNS:Publish",
        resource=topic_arn(topic),
        context={
            "aws:SecureTransport": "true" if tls else "false",
            "aws:SourceAccount": account,
            "aws:SourceArn": alarm_arn(alarm, account),
        },
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cloudwatch_may_publish_every_alarm_to_its_topic(synth: SynthFn, variant: str) -> None:
    template = synth(variant).json
    pairs = sorted(set(alarm_topics(template)))

    assert pairs, "every variant has alarms that notify"
    for alarm, topic in pairs:
        policies = topic_policies(template, topic)
        # No topic policy means SNS's default one, which admits the account; a policy replaces it.
        assert all(allowed(policy, publish(topic, alarm)) for policy in policies), (alarm, topic)
        # An encrypted topic would also need its key to admit CloudWatch.
        assert "KmsMasterKeyId" not in template["Resources"][topic].get("Properties", {}), topic


@pytest.mark.parametrize("variant", ["default", "multi"])
def test_the_topic_admits_this_accounts_alarms_only_and_only_over_tls(synth: SynthFn, variant: str) -> None:
    template = synth(variant).json
    alarm, topic = next(alarm_topics(template))
    (policy,) = topic_policies(template, topic)

    assert allowed(policy, publish(topic, alarm))
    assert not allowed(policy, publish(topic, alarm, account="444455556666"))
    assert not allowed(policy, publish(topic, alarm, tls=False))
    assert not allowed(
        policy, Request(principal_service="events.amazonaws.com", action="SNS:Publish", resource=topic_arn(topic))
    )


def test_a_tls_only_policy_alone_delivers_no_alarm() -> None:
    # What Topic(enforce_ssl=True) writes by itself: the evaluator must refuse CloudWatch here.
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
    policy = resolve(
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": {"Ref": "Topic"},
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ]
        },
        template,
    )

    assert not allowed(policy, publish("Topic", "AnyAlarm"))
