"""Where the instances can come from: availability zones, fallback sizes, and the on-demand base."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from config.hardware import INSTANCE_SIZES, InstanceSize
from config.parsing import SettingsError, fail, integer

MIN_ZONES, MAX_ZONES = 2, 6
_ZONE_NAME = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9][a-z]")
SUBNETS_PER_ZONE = 2  # public and private, a /24 each (components/network.py)
SUBNET_PREFIX = 24


@dataclass(frozen=True)
class Zones:
    """The availability zones of the VPC: a count of the region's first zones, or named zones."""

    count: int
    names: tuple[str, ...] = ()


def _listed(key: str, value: object, allowed: str) -> list[object] | None:
    """A list as cdk.json gives it, or as -c gives it (JSON text or a comma-separated string); None if neither."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise fail(key, value, allowed) from None
            if not isinstance(parsed, list):
                raise fail(key, value, allowed)
            return parsed
        if "," in text or (text and not text.isdigit()):
            return [part.strip() for part in text.split(",")]
    return None


def parse_zones(value: object) -> Zones:
    """``availabilityZones``: a count from 2 to 6, or a list (or comma-separated string) of zone names."""
    allowed = (
        f"expected a count from {MIN_ZONES} to {MAX_ZONES}, or {MIN_ZONES}-{MAX_ZONES} zone names such as us-east-1a"
    )
    names = _listed("availabilityZones", value, allowed)
    if names is None:
        try:
            return Zones(integer("availabilityZones", value, low=MIN_ZONES, high=MAX_ZONES))
        except SettingsError:
            raise fail("availabilityZones", value, allowed) from None
    if not MIN_ZONES <= len(names) <= MAX_ZONES or len(set(map(str, names))) != len(names):
        raise fail("availabilityZones", value, allowed + ", each once")
    zone_names = []
    for name in names:
        if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name):
            raise fail("availabilityZones", name, allowed)
        zone_names.append(name)
    if len({name[:-1] for name in zone_names}) != 1:
        raise fail("availabilityZones", value, "expected zones of one region")
    return Zones(len(zone_names), tuple(zone_names))


def check_subnets_fit(zones: Zones, vpc_cidr: str) -> None:
    """Each zone takes a public and a private /24 out of ``vpcCidr``."""
    prefix = int(vpc_cidr.split("/")[1])
    room = 2 ** (SUBNET_PREFIX - prefix)
    needed = zones.count * SUBNETS_PER_ZONE
    if needed > room:
        raise fail(
            "vpcCidr",
            vpc_cidr,
            f"holds {room} /24 subnets, and {zones.count} availability zones need {needed} (a public and a "
            "private one each): use a larger block or fewer zones",
        )


def parse_fallback_sizes(value: object, primary: InstanceSize, *, tasks_per_instance: int) -> tuple[InstanceSize, ...]:
    """``fallbackInstanceTypes``: more sizes of the primary's family with its task layout.

    A size must have the primary's chips and NeuronCores (the tasks' device mappings and core
    slots are the same on every instance). When tasks split an instance (more than one per
    instance), their CPU reservations cap them per instance, which holds only on sizes with the
    primary's vCPUs.
    """
    allowed = "expected [] or sizes of the same family, as a list or a comma-separated string"
    if value in ("", [], None):
        return ()
    names = _listed("fallbackInstanceTypes", value, allowed)
    if names is None:
        names = [value]
    sizes = []
    for name in names:
        if not isinstance(name, str) or name not in INSTANCE_SIZES:
            raise fail("fallbackInstanceTypes", name, "expected sizes from " + ", ".join(INSTANCE_SIZES))
        size = INSTANCE_SIZES[name]
        if size == primary or size in sizes:
            raise fail(
                "fallbackInstanceTypes", name, f"expected sizes other than instanceType ({primary.name}), each once"
            )
        if (size.family, size.chips, size.neuron_cores) != (primary.family, primary.chips, primary.neuron_cores):
            raise fail(
                "fallbackInstanceTypes",
                name,
                f"would change the task layout: {name} has {size.chips} chips and {size.neuron_cores} NeuronCores, "
                f"{primary.name} {primary.chips} and {primary.neuron_cores}",
            )
        if tasks_per_instance > 1 and size.vcpus != primary.vcpus:
            raise fail(
                "fallbackInstanceTypes",
                name,
                f"has {size.vcpus} vCPUs where {primary.name} has {primary.vcpus}: with {tasks_per_instance} tasks per "
                "instance their CPU shares keep each on its NeuronCores only on equal vCPUs (coresPerTask=0 gives "
                "one task per instance, exact on every size)",
            )
        sizes.append(size)
    return tuple(sizes)
