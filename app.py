#!/usr/bin/env python3
"""CDK entry point: read the settings once, fail with one line if they are wrong, build the stack."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config.settings import SettingsError, check_setting_names, load_settings
from stacks.bert_inference_stack import BertInferenceStack


def build_app(app: cdk.App) -> BertInferenceStack:
    """Adds the stack, configured from the app's context, to ``app``, checked by cdk-nag at synth.

    An unacknowledged AwsSolutions finding fails synthesis, in ``cdk synth`` and in the tests alike.
    """
    check_setting_names(app.node.get_all_context())
    settings = load_settings(app.node.try_get_context)
    stack = BertInferenceStack(
        app,
        settings.stack_name,
        settings=settings,
        description=f"BERT on {settings.profile.engine.long_name} for AWS Neuron, on Amazon ECS with Inferentia "
        "instances",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> int:
    app = cdk.App()
    try:
        build_app(app)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
