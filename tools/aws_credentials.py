"""Stops `make deploy`, `diff`, `destroy`, `bootstrap` and `integ` before any synth when no AWS credentials
and region are configured, with one line that says how to provide them.

Only botocore's own resolution runs (environment, shared files, SSO cache, process, container and
instance providers): no AWS API is called.
"""

from __future__ import annotations

import sys


def problem() -> str | None:
    """What is missing, or None when credentials and a region resolve."""
    from client.endpoint import aws_session  # noqa: PLC0415

    session = aws_session()
    try:
        credentials = session.get_credentials()
    except Exception as error:  # a broken profile or config file
        return f"AWS credentials cannot be read ({error})"
    if credentials is None:
        return "no AWS credentials: run `aws configure` (or `aws sso login`), or set AWS_PROFILE"
    if not session.region_name:
        return "no AWS region: set AWS_REGION (one with Inferentia, e.g. us-east-1 or us-west-2) or run `aws configure`"
    return None


def main() -> int:
    found = problem()
    if found:
        print(f"error: {found}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
