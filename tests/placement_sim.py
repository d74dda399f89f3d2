"""ECS placement on EC2 capacity, simulated through rolling deploys, scaling and spot interruptions.

The rules, from the ECS developer guide:

* a task is placed on an instance with enough unreserved CPU that meets the service's placement
  constraints (``distinctInstance``: no other task of the service there), chosen by its strategy:
  ``binpack`` on CPU takes the instance with the least CPU left; the default, ``spread`` over
  availability zones, any instance in the zone with fewest of the service's tasks
  ("Use strategies to define Amazon ECS task placement");
* on scale-in, ``binpack`` stops the task on "the container instance that has the most available
  resources left after task termination"; ``spread`` keeps the zones balanced and picks at random
  within one (same page);
* a rolling deployment keeps at least ceil(desired x minimumHealthyPercent / 100) tasks running and
  at most floor(desired x maximumPercent / 100) ("Deployment configuration");
* a task that fits nowhere waits; ECS managed scaling launches an instance for it (up to the group's
  maximum) and removes instances that run no task (ECS API reference, ``ManagedScaling``).

Ties and ``random`` choices are taken from a ``random.Random`` the caller seeds (hypothesis draws
it), so a test covers every choice ECS is free to make. Services are handled one after the other.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    cpu: int
    min_percent: int
    max_percent: int
    distinct_instance: bool
    binpack: bool


@dataclass(eq=False)
class Instance:
    number: int
    zone: int
    cpu: int
    tasks: list[tuple[str, int]] = field(default_factory=list)  # (service, deployment generation)

    def free(self, specs: dict[str, ServiceSpec]) -> int:
        return self.cpu - sum(specs[service].cpu for service, _ in self.tasks)

    def holds(self, service: str) -> int:
        return sum(1 for name, _ in self.tasks if name == service)


class PlacementError(AssertionError):
    """A deployment or placement that can never finish."""


@dataclass
class Fleet:
    specs: dict[str, ServiceSpec]
    instance_cpu: int
    max_instances: int
    zones: int
    rng: random.Random
    instances: list[Instance] = field(default_factory=list)
    desired: dict[str, int] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)
    fewest_running: dict[str, int] = field(default_factory=dict)
    launched: int = 0

    # --- placement -------------------------------------------------------------------------------

    def _candidates(self, service: str) -> list[Instance]:
        spec = self.specs[service]
        return [
            instance
            for instance in self.instances
            if instance.free(self.specs) >= spec.cpu and not (spec.distinct_instance and instance.holds(service))
        ]

    def _choose(self, service: str, candidates: list[Instance]) -> Instance:
        if self.specs[service].binpack:
            least = min(candidate.free(self.specs) for candidate in candidates)
            candidates = [candidate for candidate in candidates if candidate.free(self.specs) == least]
        else:
            per_zone = Counter(
                instance.zone for instance in self.instances for name, _ in instance.tasks if name == service
            )
            fewest = min(per_zone[candidate.zone] for candidate in candidates)
            candidates = [candidate for candidate in candidates if per_zone[candidate.zone] == fewest]
        return self.rng.choice(candidates)

    def _launch(self) -> Instance:
        if len(self.instances) >= self.max_instances:
            raise PlacementError("no room for a task and the group is at maxInstances")
        counts = Counter(instance.zone for instance in self.instances)
        zone = min(range(self.zones), key=lambda z: (counts[z], z))  # the group balances its zones
        self.launched += 1
        instance = Instance(self.launched, zone, self.instance_cpu)
        self.instances.append(instance)
        return instance

    def place(self, service: str) -> None:
        """Starts one task of ``service`` at its current generation, launching an instance if none fits."""
        candidates = self._candidates(service)
        instance = self._choose(service, candidates) if candidates else self._launch()
        if not candidates and instance not in self._candidates(service):
            raise PlacementError(f"a task of {service} fits on no instance, not even a new one")
        instance.tasks.append((service, self.generation[service]))

    def running(self, service: str) -> int:
        return sum(instance.holds(service) for instance in self.instances)

    def _stop(self, service: str, *, generation: int | None = None) -> None:
        """Stops one task of ``service`` (of ``generation`` if given), chosen as the strategy says."""
        holding = [
            instance
            for instance in self.instances
            if any(name == service and (generation is None or gen == generation) for name, gen in instance.tasks)
        ]
        if self.specs[service].binpack:
            after = {id(i): i.free(self.specs) + self.specs[service].cpu for i in holding}
            most = max(after.values())
            holding = [instance for instance in holding if after[id(instance)] == most]
        else:
            per_zone = Counter(i.zone for i in self.instances for name, _ in i.tasks if name == service)
            most = max(per_zone[i.zone] for i in holding)
            holding = [instance for instance in holding if per_zone[instance.zone] == most]
        instance = self.rng.choice(holding)
        task = next(t for t in instance.tasks if t[0] == service and (generation is None or t[1] == generation))
        instance.tasks.remove(task)

    def _scale_in_idle_instances(self) -> None:
        self.instances = [instance for instance in self.instances if instance.tasks]

    def _observe(self) -> None:
        for service in self.specs:
            self.fewest_running[service] = min(self.fewest_running.get(service, 10**9), self.running(service))

    # --- events ----------------------------------------------------------------------------------

    def start(self, count: int) -> None:
        for service in self.specs:
            self.generation[service] = 0
            self.desired[service] = count
        for _ in range(count):
            for service in self.specs:
                self.place(service)
        self._observe()

    def scale_to(self, count: int) -> None:
        """Every service to ``count`` tasks (the services scale in step), one service after the other."""
        for service in self.specs:
            while self.running(service) < count:
                self.place(service)
            while self.running(service) > count:
                self._stop(service)
            self.desired[service] = count
            self._observe()
        self._scale_in_idle_instances()

    def deploy(self, service: str) -> None:
        """A rolling deployment of ``service`` to a new generation."""
        spec, desired = self.specs[service], self.desired[service]
        floor_healthy = math.ceil(desired * spec.min_percent / 100)
        ceiling = desired * spec.max_percent // 100
        old = self.generation[service]
        self.generation[service] = new = old + 1
        for _ in range(4 * desired + 4):
            count_old = sum(1 for i in self.instances for name, gen in i.tasks if name == service and gen == old)
            count_new = sum(1 for i in self.instances for name, gen in i.tasks if name == service and gen == new)
            if count_old == 0 and count_new == desired:
                self._scale_in_idle_instances()
                return
            started = 0
            while count_new + started < desired and count_old + count_new + started < ceiling:
                try:
                    self.place(service)
                except PlacementError:
                    break
                started += 1
            self._observe()
            count_new += started
            surplus = count_old + count_new - desired
            stop = min(count_old, surplus) if surplus > 0 else 0
            if started == 0 and stop == 0:
                stop = min(count_old, max(0, count_old + count_new - floor_healthy))
            if started == 0 and stop == 0:
                raise PlacementError(f"deployment of {service} stuck at {count_old} old and {count_new} new tasks")
            for _ in range(stop):
                self._stop(service, generation=old)
            self._observe()
            self._scale_in_idle_instances()
        raise PlacementError(f"deployment of {service} did not finish")

    def interrupt(self, index: int) -> None:
        """A spot interruption: the instance goes with its tasks, and each service replaces what it lost."""
        instance = self.instances[index % len(self.instances)]
        self.instances.remove(instance)
        self._observe()
        for service in self.specs:
            while self.running(service) < self.desired[service]:
                self.place(service)

    # --- the layout ------------------------------------------------------------------------------

    def rows_intact(self) -> bool:
        """Every instance holds exactly one task of every model."""
        return all(sorted(name for name, _ in instance.tasks) == sorted(self.specs) for instance in self.instances)
