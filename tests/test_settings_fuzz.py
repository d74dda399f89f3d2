"""Bad input, fuzzed: every setting either builds a valid app or fails with the one-line settings error.

Two properties. The first throws arbitrary values (empty, huge, unicode, negative, wrong type,
whitespace, injection-like strings) at every key and checks the settings layer alone, thousands of
times. The second draws plausible settings and synthesizes the whole app for each one that the
settings layer accepts, proving that acceptance means a template, checked by cdk-nag.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any

import aws_cdk as cdk
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app import build_app
from config.hardware import INSTANCE_SIZES
from config.settings import DeploymentSettings, SettingsError, defaults, load_settings
from tests.conftest import CDK_JSON_CONTEXT, VALIDATES

# CI (CI set, examples replayed from a fixed seed) draws the most; a developer's `make test` draws
# fewer, afresh each run, to keep within its minute.
SETTINGS_FUZZ_EXAMPLES = 2000 if os.environ.get("CI") else 800
SYNTH_FUZZ_EXAMPLES = 12 if os.environ.get("CI") else 6

INJECTION_LIKE = [
    "'; DROP TABLE models; --",
    "$(reboot)",
    "`id`",
    "bert; rm -rf /",
    "${AWS::AccountId}",
    '{"Ref": "AWS::StackName"}',
    "../../etc/passwd",
    "bert\nECS_CLUSTER=evil",
    "10.0.0.0/16\n",
    " 10.0.0.0/16",
    "\u202ebert",
    "inf1.xlarge\x00",
    "%s%s%s",
]

any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=200),
    st.text(alphabet=string.whitespace, max_size=5),
    st.text(alphabet=string.digits, min_size=1, max_size=25),
    st.sampled_from(INJECTION_LIKE),
    st.sampled_from([str(value) for value in defaults().values()]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _check_outcome(context: dict[str, Any]) -> DeploymentSettings | None:
    try:
        return load_settings(context.get)
    except SettingsError as error:
        message = str(error)
        assert "\n" not in message
        key = message.split("'")[1]
        assert message.startswith(f"Invalid setting '{key}' = ")
        assert re.split(r"[.\[]", key)[0] in defaults()  # fields read as batching.<field>, models[<i>].<field>
        return None


@settings(max_examples=SETTINGS_FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(defaults())), any_value, max_size=len(defaults())))
def test_any_values_give_settings_or_the_one_line_error(overrides: dict[str, Any]) -> None:
    outcome = _check_outcome({**CDK_JSON_CONTEXT, **overrides})
    event("accepted" if outcome else "rejected")

    if outcome is not None:
        # Accepted settings describe a fleet that can run: every model's core slots fit the size,
        # no two listeners share a port, and the bounds are ordered.
        size = outcome.instance_size
        for model in outcome.models:
            slots = [model.cores(slot) for slot in range(model.tasks_per_instance)]
            assert all(cores.start >= 0 and cores.stop <= size.neuron_cores for cores in slots)
        ports = [port for model in outcome.models for port in (model.grpc_port, model.rest_port)]
        assert len(ports) == len(set(ports))
        assert outcome.min_instances <= outcome.max_instances
        assert outcome.min_tasks <= outcome.max_tasks


plausible = st.fixed_dictionaries(
    {},
    optional={
        "instanceType": st.sampled_from(sorted(INSTANCE_SIZES)),
        "neuronRuntime": st.sampled_from(["libnrt", "rtd"]),
        "amiId": st.sampled_from(["", "ami-04450f16e0cd20356", "ami-0123abcd"]),
        "spot": st.sampled_from([True, False, "true", "false", "TRUE"]),
        "minInstances": st.integers(0, 5).map(str),
        "maxInstances": st.integers(1, 5),
        "desiredCount": st.integers(0, 5),
        "modelName": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True),
        "grpcPort": st.integers(1024, 65535),
        "restPort": st.integers(1024, 65535).map(str),
        "allowedCidr": st.sampled_from(["", "192.168.1.0/24", "203.0.113.7/32", "10.0.0.0/8"]),
        "keyName": st.sampled_from(["", "ops", "my key-1"]),
        "logRetentionDays": st.sampled_from([1, 7, 90, 3653]),
        "natGateways": st.sampled_from([1, 2]),
        "coresPerTask": st.sampled_from([0, 1, 2, 4]),
        "publicEndpoint": st.booleans(),
        "minTasks": st.integers(0, 3),
        "maxTasks": st.integers(1, 8),
        "batching": st.sampled_from([{}, "", '{"maxBatchSize": 4}', {"numBatchThreads": 2, "batchTimeoutMicros": 0}]),
        "models": st.sampled_from(
            [
                [],
                [{"name": "a", "cores": 1, "grpcPort": 9100, "restPort": 9101, "modelS3Uri": "s3://models-1/a"}],
                [
                    {"name": "a", "cores": 1, "grpcPort": 9100, "restPort": 9101, "modelS3Uri": "s3://models-1/a"},
                    {"name": "b", "cores": 1, "grpcPort": 9102, "restPort": 9103, "modelS3Uri": "s3://models-1/b"},
                ],
            ]
        ),
    },
)


@VALIDATES
@settings(max_examples=SYNTH_FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible)
def test_accepted_settings_always_synthesize_a_nag_clean_template(overrides: dict[str, Any]) -> None:
    context = {**CDK_JSON_CONTEXT, **overrides}
    accepted = _check_outcome(context)
    event("synthesized" if accepted else "rejected by settings")
    if accepted is None:
        return

    app = cdk.App(context=context)
    stack = build_app(app)
    assembly = app.synth()  # raises on an unacknowledged cdk-nag finding

    template = assembly.get_stack_artifact(stack.artifact_id).template
    services = [
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::Service" and not logical_id.startswith("NeuronRecovery")
    ]
    assert len(services) == len(accepted.models)  # one service per model
    # autoscaling owns the count: a DesiredCount would reset it on every update
    assert all("DesiredCount" not in service["Properties"] for service in services)
