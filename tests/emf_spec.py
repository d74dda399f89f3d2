"""A checker for CloudWatch's Embedded Metric Format, from its specification.

Source: Amazon CloudWatch user guide, "Specification: Embedded metric format" (root node, metadata
object, MetricDirective, DimensionSet, MetricDefinition) and the CloudWatch API's limits on
dimensions (name 1-255 characters, value 1-1024) and units. Returns every rule a document breaks,
so a test shows all of them at once.
"""

from __future__ import annotations

import json
from typing import Any

UNITS = {
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
    *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second"),
    *("Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second"),
    *("Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"),
}
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
MAX_EVENT_BYTES = 1_048_576


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def violations(document: Any) -> list[str]:
    """Every way ``document`` breaks the EMF specification (empty when it is a valid EMF event)."""
    if not isinstance(document, dict):
        return ["the root node must be a JSON object"]
    found: list[str] = []
    if len(json.dumps(document).encode()) > MAX_EVENT_BYTES:
        found.append("the event exceeds 1 MB")
    metadata = document.get("_aws")
    if not isinstance(metadata, dict):
        return [*found, "the root node must hold an _aws metadata object"]
    if not _is_number(metadata.get("Timestamp")) or metadata["Timestamp"] < 0:
        found.append("_aws.Timestamp must be a number of milliseconds since the epoch")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [*found, "_aws.CloudWatchMetrics must be an array of MetricDirective objects"]
    for index, directive in enumerate(directives):
        found += _directive_violations(document, directive, f"CloudWatchMetrics[{index}]")
    return found


def _directive_violations(document: dict[str, Any], directive: Any, where: str) -> list[str]:
    if not isinstance(directive, dict):
        return [f"{where} must be an object"]
    found = [
        f"{where} has member {key!r}, which the spec does not define"
        for key in set(directive) - {"Namespace", "Dimensions", "Metrics"}
    ]
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255 or namespace.startswith("AWS/"):
        found.append(f"{where}.Namespace must be a non-empty string of up to 255 characters, not under AWS/")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list):
        found.append(f"{where}.Dimensions must be an array of DimensionSets")
        dimension_sets = []
    for set_index, dimension_set in enumerate(dimension_sets):
        found += _dimension_set_violations(document, dimension_set, f"{where}.Dimensions[{set_index}]")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) > MAX_METRICS_PER_DIRECTIVE:
        return [*found, f"{where}.Metrics must be an array of at most {MAX_METRICS_PER_DIRECTIVE} MetricDefinitions"]
    for metric_index, metric in enumerate(metrics):
        found += _metric_violations(document, metric, f"{where}.Metrics[{metric_index}]")
    return found


def _dimension_set_violations(document: dict[str, Any], dimension_set: Any, here: str) -> list[str]:
    if not isinstance(dimension_set, list) or not all(isinstance(name, str) for name in dimension_set):
        return [f"{here} must be an array of strings"]
    found = []
    if len(dimension_set) > MAX_DIMENSIONS_PER_SET:
        found.append(f"{here} holds more than {MAX_DIMENSIONS_PER_SET} dimensions")
    for name in dimension_set:
        value = document.get(name)
        if not 1 <= len(name) <= 255:
            found.append(f"{here}: dimension name {name!r} must be 1-255 characters")
        if name not in document:
            found.append(f"{here}: dimension {name!r} is not a member of the root node")
        elif not isinstance(value, str):
            found.append(f"{here}: dimension {name!r} must have a string value, has {value!r}")
        elif not value.strip() or len(value) > 1024:
            found.append(f"{here}: dimension {name!r} has an empty or over-long value {value!r}")
    return found


def _metric_violations(document: dict[str, Any], metric: Any, where: str) -> list[str]:
    if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
        return [f"{where} must be an object with a string Name"]
    found = [
        f"{where} has member {key!r}, which the spec does not define"
        for key in set(metric) - {"Name", "Unit", "StorageResolution"}
    ]
    name = metric["Name"]
    value = document.get(name)
    values = value if isinstance(value, list) else [value]
    if name not in document:
        found.append(f"{where}: metric {name!r} is not a member of the root node")
    elif not values or len(values) > MAX_VALUES_PER_METRIC or not all(_is_number(item) for item in values):
        found.append(f"{where}: metric {name!r} must be a number or an array of 1-100 numbers, is {value!r}")
    if "Unit" in metric and metric["Unit"] not in UNITS:
        found.append(f"{where}: unit {metric['Unit']!r} is not a CloudWatch unit")
    if "StorageResolution" in metric and metric["StorageResolution"] not in (1, 60):
        found.append(f"{where}: StorageResolution must be 1 or 60")
    return found
