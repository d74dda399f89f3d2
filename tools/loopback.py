"""Loopback for the local tools and their tests: the address, and a port that was free a moment ago."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on loopback and took back (free, barring a race)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
