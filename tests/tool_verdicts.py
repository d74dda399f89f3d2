"""What cfn-lint and checkov said about a template, remembered across test sessions.

Both are pure functions of the template, the tool's version and its options, and together they are
most of the suite's CPU time. A verdict is kept in pytest's cache (``.pytest_cache``, never committed)
under a digest of all three, so a changed template, tool or option is checked afresh, a fresh clone
(CI) runs every check, and an unchanged template is not re-linted on the next run.
``pytest --cache-clear`` forgets every verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

Verdict = TypeVar("Verdict")


class VerdictCache(Protocol):
    """What of ``pytest.Cache`` this uses."""

    def get(self, key: str, default: Any) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def remembered(cache: VerdictCache, tool: str, inputs: Any, check: Callable[[], Verdict]) -> Verdict:
    """``check()``'s JSON-able result for these ``inputs``, run only if no earlier session recorded it."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]
    key = f"tool-verdicts/{tool}/{digest}"
    recorded = cache.get(key, None)
    if recorded is not None:
        return recorded  # type: ignore[no-any-return]
    verdict = check()
    cache.set(key, verdict)
    return verdict
