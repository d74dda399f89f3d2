"""A first deploy in a new account: the service-linked roles exist before CloudFormation needs them,
and no template names one (so none can fail to resolve)."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest
from botocore.stub import Stubber

from tests.conftest import VARIANTS, Synthesized
from tools.service_roles import SERVICES, RoleError, ensure

SynthFn = Callable[[str], Synthesized]
TAKEN = "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix."


def iam_client() -> object:
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_a_new_account_gets_every_role() -> None:
    iam = iam_client()
    with Stubber(iam) as stub:
        for service in SERVICES:
            stub.add_response("create_service_linked_role", {"Role": ROLE}, {"AWSServiceName": service})
        assert ensure(iam) == list(SERVICES)
        stub.assert_no_pending_responses()


def test_roles_that_exist_are_success() -> None:
    iam = iam_client()
    with Stubber(iam) as stub:
        stub.add_client_error("create_service_linked_role", "InvalidInput", TAKEN)
        stub.add_response("create_service_linked_role", {"Role": ROLE})
        stub.add_client_error("create_service_linked_role", "InvalidInput", TAKEN)
        assert ensure(iam) == ["autoscaling.amazonaws.com"]


def test_any_other_failure_names_the_service() -> None:
    iam = iam_client()
    with Stubber(iam) as stub:
        stub.add_client_error("create_service_linked_role", "AccessDenied", "not allowed")
        with pytest.raises(RoleError, match=r"for ecs\.amazonaws\.com: .*not allowed"):
            ensure(iam)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_template_names_a_service_linked_role(synth: SynthFn, variant: str) -> None:
    # A role ARN in the template must exist when the resource is created; without one, Application Auto
    # Scaling uses (and creates) its own (RegisterScalableTarget API reference).
    assert "aws-service-role" not in json.dumps(synth(variant).json)
    for target in synth(variant).resources("AWS::ApplicationAutoScaling::ScalableTarget").values():
        assert "RoleARN" not in target["Properties"]


ROLE = {
    "Path": "/aws-service-role/ecs.amazonaws.com/",
    "RoleName": "AWSServiceRoleForECS",
    "RoleId": "AROAEXAMPLEEXAMPLE123",
    "Arn": "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
    "CreateDate": "2026-12-01T00:00:00Z",
}
