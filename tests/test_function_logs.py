"""Every Lambda function can write the log group it logs to, so a failed delete can be diagnosed."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]
WRITES = ("logs:CreateLogStream", "logs:PutLogEvents")
# AWS's managed policy for a function's default log group (logs:CreateLogGroup, CreateLogStream, PutLogEvents on *)
BASIC_EXECUTION = "AWSLambdaBasicExecutionRole"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    role = resources[role_id]["Properties"]
    statements = [s for policy in role.get("Policies", []) for s in _listed(policy["PolicyDocument"]["Statement"])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", []):
            statements += _listed(resource["Properties"]["PolicyDocument"]["Statement"])
    if any(BASIC_EXECUTION in json.dumps(arn) for arn in role.get("ManagedPolicyArns", [])):
        statements.append({"Effect": "Allow", "Action": list(WRITES), "Resource": "*"})
    return statements


def allows(statement: dict[str, Any], action: str, log_group: Any) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(fnmatch.fnmatchcase(action, pattern) for pattern in _listed(statement["Action"])):
        return False
    group_arn = {"Fn::GetAtt": [log_group["Ref"], "Arn"]} if isinstance(log_group, dict) else None
    return any(resource in ("*", group_arn) for resource in _listed(statement["Resource"]))


def function_logging(template: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(function, role, log group) for every function; a function without LoggingConfig logs to its default group."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        role = properties["Role"]["Fn::GetAtt"][0]
        found.append((logical_id, role, properties.get("LoggingConfig", {}).get("LogGroup", "default")))
    return found


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_functions_role_can_write_its_log_group(synth: SynthFn, variant: str) -> None:
    template = synth(variant).json

    functions = function_logging(template)
    assert functions
    for function, role, log_group in functions:
        statements = role_statements(template, role)
        for action in WRITES:
            assert any(allows(statement, action, log_group) for statement in statements), (function, action)


def test_the_check_sees_a_role_that_cannot_write_its_own_group() -> None:
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "LoggingConfig": {"LogGroup": {"Ref": "Logs"}}},
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        }
    }
    ((_, role, log_group),) = function_logging(template)

    assert not any(allows(statement, WRITES[0], log_group) for statement in role_statements(template, role))
