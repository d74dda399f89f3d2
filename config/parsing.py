"""Reading one setting from CDK context: each parser accepts what ``cdk.json`` gives (typed) and what
``-c key=value`` gives (always a string), and fails with :class:`SettingsError`, one line naming the
key, the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

_INTEGER = re.compile(r"[0-9]{1,9}")
# Host ports the ECS agent keeps for itself on container instances.
ECS_RESERVED_PORTS = frozenset({22, 2375, 2376, 51678, 51679, 51680})


class SettingsError(ValueError):
    """A setting was given a value it cannot take."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(key: str, value: object, allowed: str) -> SettingsError:
    return SettingsError(f"Invalid setting '{key}' = {_shown(value)}: {allowed}")


def boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(key, value, "expected true or false")


def integer(key: str, value: object, *, low: int, high: int) -> int:
    allowed = f"expected a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise fail(key, value, allowed)
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise fail(key, value, allowed)
        number = int(value)
    else:
        number = value
    if not low <= number <= high:
        raise fail(key, value, allowed)
    return number


def text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise fail(key, value, "expected a string")
    return value


def choice(key: str, value: object, choices: Mapping[str, object]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(key, value, "expected one of " + ", ".join(choices))
    return value


def ipv4_cidr(key: str, value: object, *, vpc: bool) -> str:
    allowed = (
        "expected a private IPv4 CIDR block from /16 to /22, e.g. 10.0.0.0/16"
        if vpc
        else "expected an IPv4 CIDR block such as 10.0.0.0/16 or 203.0.113.7/32"
    )
    written = text(key, value)
    if "/" not in written or written.strip() != written:
        raise fail(key, value, allowed)
    try:
        network = ipaddress.IPv4Network(written, strict=True)
    except ValueError:
        raise fail(key, value, allowed) from None
    if vpc and not (network.is_private and 16 <= network.prefixlen <= 22):
        raise fail(key, value, allowed)
    return str(network)


def port(key: str, value: object) -> int:
    number = integer(key, value, low=1, high=65535)
    if number in ECS_RESERVED_PORTS:
        reserved = ", ".join(map(str, sorted(ECS_RESERVED_PORTS)))
        raise fail(key, value, f"expected a port from 1 to 65535 other than {reserved} (kept by the ECS agent)")
    return number
