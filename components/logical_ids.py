"""Grouping constructs that leave CloudFormation logical IDs as they were before the grouping.

A logical ID is derived from a resource's construct path, and a changed logical ID makes
CloudFormation replace the resource (a listener on a port that is still taken, a service that
drops its tasks). :class:`IdTransparentScope` groups constructs without that cost: a resource
below it keeps the ID it would have if its branch had been created in the scope's parent with
``id_suffix`` appended to the branch's top construct ID (``Task`` + ``Model2`` = ``TaskModel2``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import jsii
from aws_cdk import CfnElement, IAspect, Stack
from constructs import Construct, IConstruct

# aws-cdk-lib core/lib/private/uniqueid.ts (2.275.0)
_HIDDEN_ID = "Default"
_HIDDEN_FROM_HUMAN_ID = "Resource"
_HASH_LEN = 8
_MAX_HUMAN_LEN = 240
_MAX_ID_LEN = 255


def _alphanumeric(text: str) -> str:
    return "".join(character for character in text if character.isascii() and character.isalnum())


def cdk_logical_id(components: Sequence[str]) -> str:
    """CDK's logical ID for a construct path below its stack (``makeUniqueId``)."""
    path = [component for component in components if component != _HIDDEN_ID]
    if not path:
        raise ValueError("a logical ID needs at least one path component")
    if len(path) == 1 and len(_alphanumeric(path[0])) <= _MAX_ID_LEN:
        return _alphanumeric(path[0])
    digest = hashlib.md5("/".join(path).encode(), usedforsecurity=False).hexdigest()[:_HASH_LEN].upper()
    human: list[str] = []
    for component in path:
        if not human or not human[-1].endswith(component):
            human.append(component)
    return "".join(_alphanumeric(part) for part in human if part != _HIDDEN_FROM_HUMAN_ID)[:_MAX_HUMAN_LEN] + digest


class IdTransparentScope(Construct):
    """A construct whose own ID never reaches its resources' logical IDs (see the module's docstring)."""

    def __init__(self, scope: Construct, construct_id: str, *, id_suffix: str) -> None:
        super().__init__(scope, construct_id)
        self.id_suffix = id_suffix


def legacy_path(element: IConstruct, stack: Stack) -> list[str]:
    """The construct path below ``stack`` with every transparent scope folded into its child's ID."""
    scopes = element.node.scopes[element.node.scopes.index(stack) + 1 :]
    path: list[str] = []
    suffix = ""
    for scope in scopes:
        if isinstance(scope, IdTransparentScope):
            suffix = scope.id_suffix
            continue
        path.append(scope.node.id + suffix)
        suffix = ""
    return path


def stable_unique_id(scope: Construct, *child_ids: str) -> str:
    """The name ``Names.unique_id`` gives a construct at ``scope/child_ids``, as if no scope were transparent.

    CDK derives some physical names from the construct path (a task definition's family, a scaling
    policy's name); pass this where such a name must survive the grouping.
    """
    stack = Stack.of(scope)
    above = [ancestor.node.id for ancestor in stack.node.scopes[1:]]
    return cdk_logical_id([*above, *legacy_path(scope, stack), *child_ids])


@jsii.implements(IAspect)
class KeepLogicalIds:
    """Gives each resource below an :class:`IdTransparentScope` its pre-grouping logical ID."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnElement):
            return
        stack = Stack.of(node)
        if any(isinstance(scope, IdTransparentScope) for scope in node.node.scopes):
            node.override_logical_id(cdk_logical_id(legacy_path(node, stack)))
