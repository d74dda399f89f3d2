"""How each model's tasks are placed and replaced: decided once, from the settings, for the service to read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """Where a model's tasks may run, and how a deployment replaces them."""

    instance_types: tuple[str, ...]
    """The sizes the group launches, the preferred one first: tasks go to these only."""
    one_per_instance: bool
    """A distinct-instance constraint (else CPU shares cap the tasks per instance at the core slots)."""
    min_healthy_percent: int
    max_percent: int
    binpack: bool
    """Bin-pack on CPU: several models, so a scale-in empties whole instances."""


def one_at_a_time_min_healthy_percent(tasks: int) -> int:
    """The largest minimum-healthy percentage that still lets ECS stop one of ``tasks`` to start its successor.

    ECS rounds the minimum up, so it must allow exactly ``tasks - 1`` healthy tasks: 50 % for two,
    66 % for three, ... (0 for one task: the one task would stop first.)
    """
    if tasks <= 1:
        return 0
    return (tasks - 1) * 100 // tasks


def deployment_percents(
    *, max_tasks: int, task_slots: int | None, min_tasks: int = 1, in_place: bool = False
) -> tuple[int, int]:
    """(minimum healthy, maximum) percent of a rolling deployment that never leaves the service without a task.

    ``in_place`` (several models, one task of each per instance): maximum 100 %, so a replacement can
    only take the slot its predecessor freed and every instance keeps one task of each model; a
    replacement started beside the old task would need an instance of its own, and the fleet would
    end with instances holding one model each. The minimum lets one task of ``min_tasks`` stop first
    (settings require at least two, so the model keeps serving).

    Maximum 200 %: ECS starts replacements beside the old tasks wherever a core slot is free, and
    managed scaling adds instances for them up to ``maxInstances``. Minimum 100 % when the fleet
    has a spare slot even at ``maxTasks`` (``task_slots`` > ``max_tasks``): every replacement
    starts before its predecessor stops. Otherwise, at ``maxTasks`` one task must stop first, so
    the minimum keeps ``max_tasks - 1`` (never 0: settings refuse a fleet of one slot).
    """
    if in_place:
        return one_at_a_time_min_healthy_percent(min_tasks), 100
    if task_slots is None or task_slots > max_tasks:  # None: AWS sizes the fleet (Managed Instances)
        return 100, 200
    return one_at_a_time_min_healthy_percent(max_tasks), 200
