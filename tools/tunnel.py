"""Reach the internal endpoint from a laptop: a port forward through the stack's relay task.

The relay (components/endpoint_relay.py) is a Fargate task with ECS Exec on, never a target of the
load balancer, so the forwarded connection does not hairpin through a target (which times out with
client IP preservation) and works in both capacity modes. This starts the task, waits for its ECS
Exec agent, opens Session Manager's ``AWS-StartPortForwardingSessionToRemoteHost`` through it to the
load balancer's gRPC or REST port (target ``ecs:<cluster>_<task id>_<container runtime id>``, as the
AWS CLI's ``ecs execute-command`` names it), and stops the task when the session ends. The laptop
needs the AWS CLI and its Session Manager plugin.

    python -m tools.tunnel --stack BertInferentia [--protocol grpc|rest] [--model NAME] [--local-port N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from client import endpoint
from contracts import containers
from contracts import outputs as keys

DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
STARTED_BY = "make-tunnel"
AGENT_WAIT_SECONDS = 180
POLL_SECONDS = 5


class TunnelError(RuntimeError):
    """Nothing to tunnel through, or no way to open the session."""


@dataclass(frozen=True)
class Relay:
    cluster: str
    task_arn: str
    runtime_id: str

    @property
    def session_target(self) -> str:
        task_id = self.task_arn.rsplit("/", 1)[1]
        return f"ecs:{self.cluster}_{task_id}_{self.runtime_id}"


def start_relay(ecs: Any, outputs: dict[str, str], *, sleep: Callable[[float], None] = time.sleep) -> Relay:
    """Runs the relay task and returns it once its ECS Exec agent is running."""
    missing = [key for key in (keys.RELAY_TASK_DEFINITION, keys.RELAY_SUBNETS, keys.CLUSTER_NAME) if key not in outputs]
    if missing:
        raise TunnelError(f"the stack has no {', '.join(missing)} output: deploy this version of the stack first")
    cluster = outputs[keys.CLUSTER_NAME]
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=outputs[keys.RELAY_TASK_DEFINITION],
        launchType="FARGATE",
        enableExecuteCommand=True,
        startedBy=STARTED_BY,
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": outputs[keys.RELAY_SUBNETS].split(","),
                "securityGroups": [outputs[keys.RELAY_SECURITY_GROUP]],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if started.get("failures") or not started.get("tasks"):
        raise TunnelError(f"the relay task did not start: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    deadline = AGENT_WAIT_SECONDS
    while deadline > 0:
        (task,) = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
        if task.get("lastStatus") == "STOPPED":
            raise TunnelError(f"the relay task stopped: {task.get('stoppedReason', 'no reason given')}")
        for container in task.get("containers", []):
            agents = {agent["name"]: agent.get("lastStatus") for agent in container.get("managedAgents", [])}
            if container["name"] == containers.RELAY and agents.get("ExecuteCommandAgent") == "RUNNING":
                return Relay(cluster, task_arn, container["runtimeId"])
        sleep(POLL_SECONDS)
        deadline -= POLL_SECONDS
    stop_relay(ecs, Relay(cluster, task_arn, ""))
    raise TunnelError(f"the relay's ECS Exec agent was not running after {AGENT_WAIT_SECONDS} s")


def stop_relay(ecs: Any, relay: Relay) -> None:
    ecs.stop_task(cluster=relay.cluster, task=relay.task_arn, reason="make tunnel ended")


def session_command(*, relay: Relay, host: str, port: int, local_port: int, region: str) -> list[str]:
    parameters = f"host={host},portNumber={port},localPortNumber={local_port}"
    return [
        *("aws", "ssm", "start-session", "--region", region, "--target", relay.session_target),
        *("--document-name", DOCUMENT, "--parameters", parameters),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tunnel", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument("--model", default=None, help="which model's port, in a several-model stack")
    parser.add_argument("--local-port", type=int, default=None, help="default: the endpoint's own port")
    args = parser.parse_args(argv)
    if shutil.which("session-manager-plugin") is None:
        print(
            "error: the AWS CLI's Session Manager plugin is not installed (AWS Systems Manager user guide, "
            "'Install the Session Manager plugin for the AWS CLI')",
            file=sys.stderr,
        )
        return 1
    try:
        session = endpoint.aws_session()
        outputs = endpoint.stack_outputs(session, args.stack)
        found = endpoint.resolve(args.stack, session, model=args.model, outputs=outputs)
        ecs = endpoint.aws_client(session, "ecs")
        relay = start_relay(ecs, outputs)
    except (endpoint.EndpointNotFound, TunnelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    port = found.grpc_port if args.protocol == "grpc" else found.rest_port
    local_port = args.local_port or port
    command = session_command(
        relay=relay, host=found.host, port=port, local_port=local_port, region=str(session.region_name)
    )
    print(f"forwarding localhost:{local_port} to {found.host}:{port}; Ctrl-C ends it", file=sys.stderr)
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 0
    finally:
        stop_relay(ecs, relay)


if __name__ == "__main__":
    sys.exit(main())
