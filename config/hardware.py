"""The Inferentia instance sizes this project deploys to, and what each one holds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CPU_UNITS_PER_VCPU = 1024
MEMORY_KEPT_BACK_PERCENT = 10


class NeuronFamily(Enum):
    """An Inferentia generation: it decides the AMI, the driver and the model-server package."""

    INF1 = "inf1"
    INF2 = "inf2"


@dataclass(frozen=True, kw_only=True)
class InstanceSize:
    """One EC2 Inferentia size: its accelerators and host resources."""

    name: str
    family: NeuronFamily
    chips: int
    neuron_cores: int
    vcpus: int
    memory_gib: int
    on_demand_usd_per_hour: float
    """Linux on-demand list price in us-east-1 (see ON_DEMAND_PRICES_AS_OF)."""

    @property
    def cores_per_chip(self) -> int:
        return self.neuron_cores // self.chips

    def core_group_sizes(self) -> tuple[int, ...]:
        """NeuronCores one task may hold: groups that tile the instance without straddling chips."""
        per_chip = self.cores_per_chip
        return tuple(
            size
            for size in range(1, self.neuron_cores + 1)
            if self.neuron_cores % size == 0 and (per_chip % size == 0 or size % per_chip == 0)
        )

    @property
    def schedulable_cpu_units(self) -> int:
        """CPU units ECS registers for the instance: 1,024 a vCPU."""
        return self.vcpus * CPU_UNITS_PER_VCPU

    @property
    def schedulable_memory_mib(self) -> int:
        """Memory tasks may reserve: the agent registers less than the nominal size, for the kernel and the
        platform (an m4.large's 8 GiB registers 7,985 MiB: ECS developer guide, "Container instance memory
        management"); a tenth is kept back for those and the host's own daemons."""
        return self.memory_gib * 1024 * (100 - MEMORY_KEPT_BACK_PERCENT) // 100

    @property
    def device_paths(self) -> tuple[str, ...]:
        """The Neuron device files the driver creates, one per chip."""
        return tuple(f"/dev/neuron{index}" for index in range(self.chips))


def _size(
    name: str, *, chips: int, neuron_cores: int, vcpus: int, memory_gib: int, usd_per_hour: float
) -> InstanceSize:
    family = NeuronFamily(name.split(".", 1)[0])
    return InstanceSize(
        name=name,
        family=family,
        chips=chips,
        neuron_cores=neuron_cores,
        vcpus=vcpus,
        memory_gib=memory_gib,
        on_demand_usd_per_hour=usd_per_hour,
    )


# Prices as AWS published them for each type, written on this date and not re-checked against the
# live price list from here; spot and other regions differ.
ON_DEMAND_PRICES_AS_OF = "2026-11-25"
ON_DEMAND_PRICES_REGION = "us-east-1"


INSTANCE_SIZES: dict[str, InstanceSize] = {
    size.name: size
    for size in (
        _size("inf1.xlarge", chips=1, neuron_cores=4, vcpus=4, memory_gib=8, usd_per_hour=0.228),
        _size("inf1.2xlarge", chips=1, neuron_cores=4, vcpus=8, memory_gib=16, usd_per_hour=0.362),
        _size("inf1.6xlarge", chips=4, neuron_cores=16, vcpus=24, memory_gib=48, usd_per_hour=1.180),
        _size("inf1.24xlarge", chips=16, neuron_cores=64, vcpus=96, memory_gib=192, usd_per_hour=4.721),
        _size("inf2.xlarge", chips=1, neuron_cores=2, vcpus=4, memory_gib=16, usd_per_hour=0.7582),
        _size("inf2.8xlarge", chips=1, neuron_cores=2, vcpus=32, memory_gib=128, usd_per_hour=1.9679),
        _size("inf2.24xlarge", chips=6, neuron_cores=12, vcpus=96, memory_gib=384, usd_per_hour=6.4906),
        _size("inf2.48xlarge", chips=12, neuron_cores=24, vcpus=192, memory_gib=768, usd_per_hour=12.9813),
    )
}
