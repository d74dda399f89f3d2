"""The integ test app: a disposable copy of the stack, and the CDK's own assertions on it.

`make integ` deploys this app (`tools/integ.py`), which puts the stack under its own name and tags on the
family's smallest size, on-demand, with the model from S3, plus integ-tests-alpha's assertion stack: its
custom resources wait, during the deploy, until the service runs its task and the load balancer calls
every target of the text, gRPC and REST ports healthy. `make test` holds a snapshot of both stacks'
logical IDs and types (tests/test_integ.py), which needs no account.

The run's variables (``INTEG_*``, tools/integ.py) have fixed defaults, so the snapshot does not move.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

# Run as a script (`cdk --app`, or integ-runner), its own folder heads sys.path: the project's packages
# are two folders up.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# The CLI hands the app its context in the environment (integ-runner's has a key named "default" among
# its feature flags). The CDK's node process reads it when aws_cdk is first imported, so it is taken out
# first; build() keeps what the CDK or this project reads, and build_app's check of setting names holds.
GIVEN_CONTEXT = json.loads(os.environ.pop("CDK_CONTEXT_JSON", "{}"))

import aws_cdk as cdk  # noqa: E402
from aws_cdk import integ_tests_alpha as integ  # noqa: E402

from app import build_app  # noqa: E402
from config.settings import SETTING_KEYS, cdk_context, cdks_own  # noqa: E402
from tools.integ_plan import IntegPlan  # noqa: E402

TARGET_HEALTH_ACTION = "elasticloadbalancing:DescribeTargetHealth"


def build(environ: Mapping[str, str]) -> tuple[cdk.App, cdk.Stack, integ.IntegTest]:
    """The app, the stack under test and its IntegTest, for the run ``environ``'s INTEG_* describe."""
    plan = IntegPlan.from_environment(environ)
    kept = {key: value for key, value in GIVEN_CONTEXT.items() if key in SETTING_KEYS or cdks_own(key)}
    app = cdk.App(context={**kept, **cdk_context(), **plan.context()})
    stack = build_app(app)
    test = integ.IntegTest(
        app,
        "Integ",
        test_cases=[stack],
        # Named after the run, so two runs in one account and region do not share it.
        assertion_stack=cdk.Stack(app, plan.assertion_stack_name),
        # The images hold whatever model a developer built; their hashes are not the template's shape.
        diff_assets=False,
        stack_update_workflow=False,
    )
    # Every stack of the run, the assertions' too (integ-tests' own resources take no tags: the run checks
    # that both stacks are gone as well as sweeping by tag).
    for key, value in plan.tags().items():
        cdk.Tags.of(app).add(key, value)
    services = test.assertions.aws_api_call(
        "ECS",
        "describeServices",
        {"cluster": stack.cluster.cluster_name, "services": [stack.served[0].inference.service.service_name]},
    )
    services.expect(
        integ.ExpectedResult.object_like({"services": [{"runningCount": 1, "desiredCount": 1}]})
    ).wait_for_assertions(total_timeout=cdk.Duration.minutes(40), interval=cdk.Duration.seconds(30))
    for group in stack.served[0].target_groups.values():
        health = test.assertions.aws_api_call(
            "ElasticLoadBalancingV2", "describeTargetHealth", {"TargetGroupArn": group.target_group_arn}
        )
        health.expect(
            integ.ExpectedResult.object_like({"TargetHealthDescriptions": [{"TargetHealth": {"State": "healthy"}}]})
        ).wait_for_assertions(total_timeout=cdk.Duration.minutes(20), interval=cdk.Duration.seconds(30))
        health.node.add_dependency(services)
        # integ-tests derives the action from the SDK's service name ("elasticloadbalancingv2:..."), which
        # IAM does not know; ELB's actions are "elasticloadbalancing:" (Service Authorization Reference).
        # DescribeTargetHealth supports no resource-level permission.
        read_health = {"Effect": "Allow", "Action": [TARGET_HEALTH_ACTION], "Resource": ["*"]}
        health.provider.add_to_role_policy(read_health)
        assert isinstance(health, integ.AwsApiCall)
        assert health.waiter_provider is not None
        health.waiter_provider.add_to_role_policy(read_health)
    return app, stack, test


if __name__ == "__main__":
    build(os.environ)[0].synth()
