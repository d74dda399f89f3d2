"""A CloudFormation template's dependency graph, and the order a stack delete walks it in.

CloudFormation creates a resource after everything it references (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``) or names in ``DependsOn``, and deletes in the reverse order: a resource goes only once
nothing that depends on it is left. Independent resources go in parallel, so the delete runs in
waves; two resources are ordered only where a chain of dependencies joins them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".", 1)[0]
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from _SUB_REFERENCE.findall(text)
                if isinstance(inner, list):
                    yield from _references(inner[1])
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def dependencies(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each resource's direct dependencies on other resources of the template."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        named = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        referenced = set(_references(resource.get("Properties", {})))
        graph[logical_id] = {target for target in named | referenced if target in resources and target != logical_id}
    return graph


def depends_on(graph: Mapping[str, set[str]], source: str, target: str) -> bool:
    """Whether ``source`` depends on ``target`` directly or through a chain."""
    seen: set[str] = set()
    pending = [source]
    while pending:
        current = pending.pop()
        for upstream in graph[current]:
            if upstream == target:
                return True
            if upstream not in seen:
                seen.add(upstream)
                pending.append(upstream)
    return False


def delete_waves(graph: Mapping[str, set[str]]) -> dict[str, int]:
    """The wave in which a stack delete removes each resource (0 first), as parallel as CloudFormation allows."""
    remaining = set(graph)
    wave_of: dict[str, int] = {}
    wave = 0
    while remaining:
        needed = {upstream for resource in remaining for upstream in graph[resource]}
        deletable = remaining - needed
        assert deletable, f"dependency cycle among {sorted(remaining)}"
        for resource in deletable:
            wave_of[resource] = wave
        remaining -= deletable
        wave += 1
    return wave_of
