"""Runs the pinned cdk CLI with make's ``CDK_ARGS``, each ``-c key=value`` kept whole.

``make synth CDK_ARGS='-c batching={"maxBatchSize": 16}'`` reaches make as one string. Put into the
recipe's command line, the shell would strip the JSON's quotes and split it at its spaces; read
from the environment here, each ``-c``/``--context`` takes everything up to the next option as its
value (one pair of quotes around the value is dropped, so ``-c 'key=value'`` works too). Other
options are split as the shell would.

    python -m tools.cdk_cli synth --no-notices --quiet      (CDK_ARGS from the environment)
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence

CONTEXT_FLAGS = ("-c", "--context")
# A new option starts at whitespace followed by -c, --context or any --long-option.
_OPTION_START = re.compile(r"\s+(?=(?:-c|--context)(?:\s|$)|--[A-Za-z])")
CDK = ("npx", "--no-install", "cdk")


def split_cdk_args(text: str) -> list[str]:
    """The cdk CLI arguments ``text`` means, context values verbatim."""
    arguments: list[str] = []
    for piece in _OPTION_START.split(text.strip()):
        flag, _, value = piece.partition(" ")
        if flag in CONTEXT_FLAGS:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            if "=" not in value:
                raise ValueError(f"{flag} needs key=value, got {value!r}")
            arguments += [flag, value]
        elif piece:
            arguments += shlex.split(piece)
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    command = list(sys.argv[1:] if argv is None else argv)
    try:
        extra = split_cdk_args(os.environ.get("CDK_ARGS", ""))
    except ValueError as error:
        print(f"error: CDK_ARGS: {error}", file=sys.stderr)
        return 1
    os.execvp(CDK[0], [*CDK, *command, *extra])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
