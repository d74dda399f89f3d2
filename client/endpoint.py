"""Finds the model server of a deployed stack from its CloudFormation outputs (``--stack``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from contracts import outputs as keys


class EndpointNotFound(RuntimeError):
    """The stack exists but nothing in it serves the model right now, or it does not exist."""


@dataclass(frozen=True)
class StackEndpoint:
    host: str
    grpc_port: int
    rest_port: int
    model: str
    instance_type: str | None
    api: str
    """The API the stack's server speaks (the ServerApi output; stacks from before it speak TF Serving's)."""
    cluster: str | None = None
    text_url: str | None = None
    """The text API's base URL (the TextUrl output), where the stack's tasks have a text front."""
    tensor_tls: bool = False
    """The gRPC and REST ports terminate TLS (the TensorTls output)."""

    def target(self, protocol: str) -> str:
        return f"{self.host}:{self.grpc_port if protocol == 'grpc' else self.rest_port}"


def _outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError ...
        raise EndpointNotFound(f"cannot read stack {stack_name!r}: {error}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def _task_host(ecs: Any, ec2: Any, cluster: str, service: str) -> str:
    """The private IP of the instance running one of the service's tasks.

    Only for stacks without a load balancer output, whose tasks listen on static host ports.
    """
    task_arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    if not task_arns:
        raise EndpointNotFound(f"service {service} has no running task")
    task = ecs.describe_tasks(cluster=cluster, tasks=task_arns[:1])["tasks"][0]
    instance = ecs.describe_container_instances(cluster=cluster, containerInstances=[task["containerInstanceArn"]])
    instance_id = instance["containerInstances"][0]["ec2InstanceId"]
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["PrivateIpAddress"])


def _models(outputs: dict[str, str]) -> list[dict[str, str]]:
    """Each served model's outputs (the first model's keys bare, the n-th's prefixed ``Model<n>``)."""
    found: list[dict[str, str]] = []
    while all(keys.model_output(key, len(found)) in outputs for key in (keys.MODEL_NAME, keys.GRPC_PORT)):
        index = len(found)
        found.append(
            {
                key: outputs[keys.model_output(key, index)]
                for key in (*keys.PER_MODEL, keys.TEXT_URL)
                if keys.model_output(key, index) in outputs
            }
        )
    return found


def aws_session() -> Any:
    """A boto3 session whose region follows ``AWS_REGION`` when it is set, as the AWS CLI's does ("overrides
    the values in the environment variable AWS_DEFAULT_REGION and the profile setting region", AWS CLI user
    guide, "Environment variables"); botocore itself reads only ``AWS_DEFAULT_REGION`` and the profile
    (botocore/configprovider.py)."""
    import boto3  # noqa: PLC0415  (only what talks to AWS needs it)

    return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)


def aws_client(session: Any, service: str) -> Any:
    try:
        return session.client(service)
    except Exception as error:  # botocore's NoRegionError, and the like: raised before any call
        raise EndpointNotFound(
            f"cannot reach AWS ({error}): set a region (AWS_REGION, or `aws configure`) and credentials"
        ) from None


def stack_outputs(session: Any, stack_name: str) -> dict[str, str]:
    """The stack's CloudFormation outputs by key."""
    return _outputs(aws_client(session, "cloudformation"), stack_name)


def resolve(
    stack_name: str, session: Any = None, model: str | None = None, outputs: dict[str, str] | None = None
) -> StackEndpoint:
    """Reads the stack's outputs (or takes ``outputs`` already read); prefers a load balancer address,
    else a running task's instance.

    ``model`` picks one model of a several-model stack (its own ports); by default the first.
    """
    if session is None:
        session = aws_session()
    if outputs is None:
        outputs = stack_outputs(session, stack_name)
    missing = [key for key in (keys.GRPC_PORT, keys.REST_PORT, keys.MODEL_NAME) if key not in outputs]
    if missing:
        raise EndpointNotFound(f"stack {stack_name!r} has no output {', '.join(missing)}: is it this project's stack?")
    models = _models(outputs)
    chosen = next((found for found in models if found[keys.MODEL_NAME] == model), None) if model else models[0]
    if chosen is None:
        names = ", ".join(found[keys.MODEL_NAME] for found in models)
        raise EndpointNotFound(f"stack {stack_name!r} serves no model {model!r}: it serves {names}")
    host = outputs.get(keys.LOAD_BALANCER_DNS_NAME) or _task_host(
        aws_client(session, "ecs"), aws_client(session, "ec2"), outputs[keys.CLUSTER_NAME], chosen[keys.SERVICE_NAME]
    )
    return StackEndpoint(
        host=host,
        grpc_port=int(chosen[keys.GRPC_PORT]),
        rest_port=int(chosen[keys.REST_PORT]),
        model=chosen[keys.MODEL_NAME],
        instance_type=outputs.get(keys.INSTANCE_TYPE),
        api=outputs.get(keys.SERVER_API, "tfserving"),
        cluster=outputs.get(keys.CLUSTER_NAME),
        text_url=chosen.get(keys.TEXT_URL),
        tensor_tls=outputs.get(keys.TENSOR_TLS) == "true",
    )
