"""Just enough of IAM's resource-policy evaluation to ask "would AWS let this principal do this?".

Explicit Deny wins, then an Allow is needed; a condition on a key the request does not carry fails
(no ``...IfExists`` operator is used in this project). Template values are resolved the way
CloudFormation would for one account and region. Anything this evaluator does not model raises, so a
test cannot pass by skipping a statement it does not understand.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"
PARTITION = "aws"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
}


def topic_arn(logical_id: str) -> str:
    """The ARN a topic with this logical ID is given in the test account (its name is the logical ID)."""
    return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{logical_id}"


def alarm_arn(logical_id: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:cloudwatch:{REGION}:{account}:alarm:{logical_id}"


def resolve(value: Any, template: Mapping[str, Any]) -> Any:
    """A template value as CloudFormation would deploy it (SNS topics' Ref is their ARN)."""
    if isinstance(value, list):
        return [resolve(item, template) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _reference(value["Ref"], template)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, template)) for part in parts)
    return {key: resolve(inner, template) for key, inner in value.items()}


def _reference(name: str, template: Mapping[str, Any]) -> str:
    if name in PSEUDO:
        return PSEUDO[name]
    if template["Resources"][name]["Type"] == "AWS::SNS::Topic":
        return topic_arn(name)
    return name


@dataclass(frozen=True)
class Request:
    principal_service: str
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    unknown = set(principal) - {"Service", "AWS"}
    if unknown:
        raise NotImplementedError(f"principal keys {unknown}")
    return request.principal_service in _as_list(principal.get("Service", []))


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    if key not in context:
        return False
    actual = context[key]
    values = [str(value) for value in _as_list(expected)]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in values
    if operator in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, pattern) for pattern in values)
    if operator == "Bool":
        return actual.lower() in [value.lower() for value in values]
    raise NotImplementedError(f"condition operator {operator}")


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    if unknown:
        raise NotImplementedError(f"statement keys {unknown}")
    actions = [action.lower() for action in _as_list(statement["Action"])]
    resources = _as_list(statement["Resource"])
    return (
        _principal_matches(statement["Principal"], request)
        and any(fnmatch.fnmatchcase(request.action.lower(), action) for action in actions)
        and any(fnmatch.fnmatchcase(request.resource, str(resource)) for resource in resources)
        and all(
            _condition_holds(operator, key, expected, request.context)
            for operator, pairs in statement.get("Condition", {}).items()
            for key, expected in pairs.items()
        )
    )


def allowed(policy: Mapping[str, Any], request: Request) -> bool:
    """Whether a resource policy (already resolved) lets ``request`` through."""
    statements = [statement for statement in policy["Statement"] if _statement_applies(statement, request)]
    if any(statement["Effect"] == "Deny" for statement in statements):
        return False
    return any(statement["Effect"] == "Allow" for statement in statements)
