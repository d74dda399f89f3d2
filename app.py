#!/usr/bin/env python3
"""CDK entry point: check the settings before the CDK starts, fail with one line if they are wrong, build the stack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from components import model_server
from config.settings import SettingsError, check_setting_names, load_settings

if TYPE_CHECKING:
    import aws_cdk as cdk

    from stacks.bert_inference_stack import BertInferenceStack

# How the CDK CLI hands the app its context: cx-api's CONTEXT_ENV, and the file the part that does not
# fit in the environment goes to (aws-cdk's toolkit-lib, cloud-assembly/private/prepare-source.ts,
# writeContextToEnv).
CONTEXT_VARIABLE = "CDK_CONTEXT_JSON"
CONTEXT_OVERFLOW_VARIABLE = "CONTEXT_OVERFLOW_LOCATION_ENV"


def build_app(app: cdk.App) -> BertInferenceStack:
    """Adds the stack, configured from the app's context, to ``app``, checked by cdk-nag at synth.

    An unacknowledged AwsSolutions finding fails synthesis, in ``cdk synth`` and in the tests alike.
    """
    # Imported here, not at the top: main() checks the settings before jsii starts.
    import aws_cdk as cdk  # noqa: PLC0415
    from cdk_nag import AwsSolutionsChecks  # noqa: PLC0415

    from stacks.bert_inference_stack import BertInferenceStack  # noqa: PLC0415

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


def context_from_cli() -> dict[str, object] | None:
    """The context the CDK CLI passed, as the app will read it; None when it cannot be read here (the app
    then reads it itself and build_app checks it there)."""
    try:
        context = json.loads(os.environ.get(CONTEXT_VARIABLE) or "{}")
        overflow = os.environ.get(CONTEXT_OVERFLOW_VARIABLE)
        if overflow:
            context.update(json.loads(Path(overflow).read_text()))
    except (OSError, ValueError, AttributeError):
        return None
    return context if isinstance(context, dict) else None


def main() -> int:
    try:
        # The settings (and a baked model's fit) first, in this process alone: a bad one is one line at
        # once, not after jsii's start.
        context = context_from_cli()
        if context is not None:
            check_setting_names(context)
            settings = load_settings(context.get)
            for model in settings.models:
                model_server.refuse_unfit_baked_model(model, settings.profile)
        import aws_cdk as cdk  # noqa: PLC0415

        app = cdk.App()
        build_app(app)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
