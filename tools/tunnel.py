"""Reach the internal endpoint from a laptop: Session Manager port forwarding through one of the instances.

The load balancer is internal by default and the instances have no public address or SSH. Session
Manager's ``AWS-StartPortForwardingSessionToRemoteHost`` document forwards a local port, through an
instance's SSM agent, to a host the instance can reach: here the load balancer's gRPC or REST port
(AWS Systems Manager user guide, "Port forwarding to a remote host"). The instance role already
holds ``AmazonSSMManagedInstanceCore``; the laptop needs the AWS CLI and its Session Manager plugin.

    python -m tools.tunnel --stack BertInferentia [--protocol grpc|rest] [--model NAME] [--local-port N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from client import endpoint
from contracts import outputs as keys

DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"


class TunnelError(RuntimeError):
    """Nothing to tunnel through, or no way to open the session."""


def instance_id(session: Any, cluster: str) -> str:
    """An EC2 instance registered in the cluster (any of them can reach the load balancer)."""
    ecs = endpoint.aws_client(session, "ecs")
    arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")["containerInstanceArns"]
    if not arns:
        raise TunnelError(f"cluster {cluster} has no instance to tunnel through: is the stack parked at zero?")
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns[:1])
    return str(described["containerInstances"][0]["ec2InstanceId"])


def session_command(*, instance: str, host: str, port: int, local_port: int, region: str) -> list[str]:
    parameters = f"host={host},portNumber={port},localPortNumber={local_port}"
    return [
        *("aws", "ssm", "start-session", "--region", region, "--target", instance),
        *("--document-name", DOCUMENT, "--parameters", parameters),
    ]


def plan(stack: str, protocol: str, model: str | None, local_port: int | None, session: Any) -> list[str]:
    """The ``aws ssm start-session`` command that forwards localhost to the stack's endpoint."""
    found = endpoint.resolve(stack, session, model=model)
    if found.cluster is None:
        raise TunnelError(f"stack {stack!r} has no {keys.CLUSTER_NAME} output")
    port = found.grpc_port if protocol == "grpc" else found.rest_port
    return session_command(
        instance=instance_id(session, found.cluster),
        host=found.host,
        port=port,
        local_port=local_port or port,
        region=session.region_name,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tunnel", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument("--model", default=None, help="which model's port, in a several-model stack")
    parser.add_argument("--local-port", type=int, default=None, help="default: the endpoint's own port")
    args = parser.parse_args(argv)
    try:
        import boto3  # noqa: PLC0415

        command = plan(args.stack, args.protocol, args.model, args.local_port, boto3.session.Session())
    except (endpoint.EndpointNotFound, TunnelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if shutil.which("session-manager-plugin") is None:
        print(
            "error: the AWS CLI's Session Manager plugin is not installed (AWS Systems Manager user guide, "
            "'Install the Session Manager plugin for the AWS CLI'); the command would be: " + " ".join(command),
            file=sys.stderr,
        )
        return 1
    print(f"forwarding localhost:{command[-1].rsplit('=', 1)[1]}; Ctrl-C ends it", file=sys.stderr)
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
