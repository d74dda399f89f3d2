"""Creates the service-linked roles a first deploy in a new account needs, before CloudFormation does.

ECS, EC2 Auto Scaling and Application Auto Scaling each create their service-linked role on first
use, but a stack that uses them minutes later can race the role's creation (aws/containers-roadmap#631;
aws/aws-cdk#4108 for Application Auto Scaling). Creating them first removes the race; one that exists
already answers InvalidInput "... has been taken in this account", which is success here.

    python -m tools.service_roles        (make bootstrap runs it)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

# The services whose roles the stack's resources use: the cluster and capacity providers (ECS), the
# Auto Scaling group, and the services' scalable targets.
SERVICES = ("ecs.amazonaws.com", "autoscaling.amazonaws.com", "ecs.application-autoscaling.amazonaws.com")


class RoleError(RuntimeError):
    """A role could not be created, for a reason other than that it exists."""


def ensure(iam: Any, services: Sequence[str] = SERVICES) -> list[str]:
    """Creates each service's role unless it exists; returns the services whose role was created now."""
    created = []
    for service in services:
        try:
            iam.create_service_linked_role(AWSServiceName=service)
        except Exception as error:  # botocore's ClientError
            response = getattr(error, "response", {}).get("Error", {})
            if response.get("Code") == "InvalidInput" and "has been taken" in response.get("Message", ""):
                continue
            raise RoleError(f"cannot create the service-linked role for {service}: {error}") from None
        created.append(service)
    return created


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    try:
        from client.endpoint import aws_session  # noqa: PLC0415

        created = ensure(aws_session().client("iam"))
    except RoleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # no credentials, no network: botocore's errors
        print(f"error: cannot reach IAM ({error}): run `aws configure` or set AWS_PROFILE", file=sys.stderr)
        return 1
    for service in SERVICES:
        print(f"service-linked role for {service}: {'created' if service in created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
