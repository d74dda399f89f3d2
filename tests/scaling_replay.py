"""Application Auto Scaling's target tracking, replayed minute by minute against a template's policies.

The model, from the Application Auto Scaling user guide ("Target tracking scaling policies"):

* each policy's alarms look at one-minute datapoints of its metric: scale out after 3 above the
  target, scale in after 15 below 90 % of it (the alarms AAS creates for ECS, as users report them:
  aws/containers-roadmap#1208; "usually more than 10% lower" in the guide);
* a policy whose metric has no datapoint does nothing, and its alarm counts start again;
* several policies on one target: out if any asks, in only if every policy with scale-in enabled asks;
* the new capacity is proportional to metric / target, rounded up ("acts conservatively by rounding
  up or down"), within [min, max], after the scale-out or scale-in cooldown.

A policy's metric is evaluated from the template: ``CustomizedMetricSpecification.Metrics`` metric
math (``MAX([...])``, ``FILL(m, 0)``, ``+ - * /``), or a plain metric. CloudWatch's ``FILL(m, 0)``
on a metric without data is taken to give 0 (not confirmed here; README, "What could not be
confirmed here").
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Readings = Mapping[str, float | None]
"""Utilisation by signal: "cpu" or "neuron", optionally "@<service>" (None: no datapoint)."""

HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
LOW_FRACTION = 0.9


@dataclass(frozen=True)
class TrackingPolicy:
    target: float
    scale_in: bool
    scale_in_cooldown: int
    scale_out_cooldown: int
    evaluate: Callable[[Readings], float | None]


def _evaluate(expression: str, values: Mapping[str, float | None]) -> float | None:
    def walk(node: ast.AST) -> Any:  # noqa: PLR0911  (one return per kind of node)
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.List):
            return [walk(item) for item in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            left, right = walk(node.left), walk(node.right)
            if left is None or right is None:
                return None
            operate: dict[type, Callable[[float, float], float]] = {
                ast.Add: lambda a, b: a + b,
                ast.Sub: lambda a, b: a - b,
                ast.Mult: lambda a, b: a * b,
                ast.Div: lambda a, b: a / b,
            }
            return operate[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            arguments = [walk(argument) for argument in node.args]
            if node.func.id == "MAX":
                present = [value for value in arguments[0] if value is not None]
                return max(present) if present else None
            if node.func.id == "FILL":
                return arguments[1] if arguments[0] is None else arguments[0]
        raise ValueError(f"metric math this replay does not model: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))  # type: ignore[no-any-return]


def _signal(metric: Mapping[str, Any]) -> str:
    kind = {"CPUUtilization": "cpu", "NeuronCoreUtilizationAverage": "neuron"}[metric["MetricName"]]
    service = next(d["Value"] for d in metric.get("Dimensions", []) if d["Name"] == "ServiceName")
    return f"{kind}@{json.dumps(service, sort_keys=True)}"


def _reading(readings: Readings, signal: str) -> float | None:
    """A signal's reading: per service where the replay gives one, else the fleet-wide "cpu"/"neuron"."""
    if signal in readings:
        return readings[signal]
    return readings.get(signal.split("@", 1)[0])


def policy_from_template(config: Mapping[str, Any]) -> TrackingPolicy:
    """The TargetTrackingScalingPolicyConfiguration of an ``AWS::ApplicationAutoScaling::ScalingPolicy``."""

    def policy(evaluate: Callable[[Readings], float | None]) -> TrackingPolicy:
        return TrackingPolicy(
            target=float(config["TargetValue"]),
            scale_in=not config.get("DisableScaleIn", False),
            scale_in_cooldown=int(config.get("ScaleInCooldown", 300)),
            scale_out_cooldown=int(config.get("ScaleOutCooldown", 300)),
            evaluate=evaluate,
        )

    if "PredefinedMetricSpecification" in config:
        return policy(lambda readings: readings.get("cpu"))
    queries = config["CustomizedMetricSpecification"].get("Metrics")
    if queries is None:  # one plain metric
        signal = _signal(config["CustomizedMetricSpecification"])
        return policy(lambda readings: _reading(readings, signal))
    signals = {query["Id"]: _signal(query["MetricStat"]["Metric"]) for query in queries if "MetricStat" in query}
    (returned,) = [query for query in queries if query.get("ReturnData", True) and "Expression" in query]

    def evaluate(readings: Readings) -> float | None:
        values = {metric_id: _reading(readings, signal) for metric_id, signal in signals.items()}
        return _evaluate(returned["Expression"], values)

    return policy(evaluate)


@dataclass(frozen=True)
class Action:
    minute: int
    direction: str
    capacity: int


def replay(
    policies: Sequence[TrackingPolicy],
    readings: Callable[[int, int], Readings],
    *,
    capacity: int,
    low: int,
    high: int,
    minutes: int,
) -> list[Action]:
    """Scaling actions over ``minutes``; ``readings(minute, capacity)`` gives that minute's utilisation."""
    above = [0] * len(policies)
    below = [0] * len(policies)
    last_out = last_in = -(10**9)
    actions: list[Action] = []
    for minute in range(minutes):
        now = readings(minute, capacity)
        values = [policy.evaluate(now) for policy in policies]
        wanted: list[int | None] = []
        for index, (policy, value) in enumerate(zip(policies, values, strict=True)):
            if value is None:
                above[index] = below[index] = 0
                wanted.append(None)
                continue
            above[index] = above[index] + 1 if value > policy.target else 0
            below[index] = below[index] + 1 if value < LOW_FRACTION * policy.target else 0
            wanted.append(math.ceil(capacity * value / policy.target - 1e-9))
        out = [
            want
            for policy, want, count in zip(policies, wanted, above, strict=True)
            if want is not None and count >= HIGH_DATAPOINTS and minute - last_out >= policy.scale_out_cooldown // 60
        ]
        voters = [(policy, index) for index, policy in enumerate(policies) if policy.scale_in]
        new = capacity
        if out:
            new = min(high, max(capacity, *out))
        elif voters and all(below[index] >= LOW_DATAPOINTS for _, index in voters):
            cooled = all(minute - max(last_in, last_out) >= policy.scale_in_cooldown // 60 for policy, _ in voters)
            wants = [wanted[index] for _, index in voters]
            if cooled and all(want is not None for want in wants):
                new = max(low, *(want for want in wants if want is not None))
        if new != capacity:
            direction = "out" if new > capacity else "in"
            if direction == "out":
                last_out = minute
            else:
                last_in = minute
            actions.append(Action(minute, direction, new))
            capacity = new
            above = [0] * len(policies)
            below = [0] * len(policies)
    return actions


def alternates(actions: Sequence[Action]) -> bool:
    """Whether the actions go out, then in, then out again (or in, out, in)."""
    directions = [action.direction for action in actions]
    collapsed = [
        direction for index, direction in enumerate(directions) if index == 0 or directions[index - 1] != direction
    ]
    return len(collapsed) >= 3
