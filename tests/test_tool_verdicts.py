"""The verdict memo behind cfn-lint and checkov: a changed input is always checked afresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.tool_verdicts import remembered


class DictCache:
    """pytest's cache as ``remembered`` uses it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def test_a_verdict_is_reused_only_for_identical_inputs() -> None:
    cache, runs = DictCache(), list[list[str]]()

    def check(findings: list[str]) -> Callable[[], list[str]]:
        def run() -> list[str]:
            runs.append(findings)
            return findings

        return run

    assert remembered(cache, "lint", ["template", "1.0"], check(["E1 bad"])) == ["E1 bad"]
    assert remembered(cache, "lint", ["template", "1.0"], check([])) == ["E1 bad"]
    assert len(runs) == 1
    # a changed template, tool version or tool name is checked again
    assert remembered(cache, "lint", ["template2", "1.0"], check([])) == []
    assert remembered(cache, "lint", ["template", "1.1"], check(["W2"])) == ["W2"]
    assert remembered(cache, "other", ["template", "1.0"], check([])) == []
    assert len(runs) == 4
