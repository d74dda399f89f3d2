"""The stack's CloudFormation outputs, as the stack declares them and the load client (``--stack``) reads them."""

from __future__ import annotations

CLUSTER_NAME = "ClusterName"
SECURITY_GROUP_ID = "SecurityGroupId"
INSTANCE_TYPE = "InstanceType"
LOAD_BALANCER_DNS_NAME = "LoadBalancerDnsName"
NOTIFICATIONS_TOPIC_ARN = "NotificationsTopicArn"
# The API the endpoint speaks: "tfserving" (TF Serving's own) or "kserve" (Triton's KServe v2), the client's --api.
SERVER_API = "ServerApi"
# "true" when the gRPC and REST ports terminate TLS (certificateArn with tlsTensorPorts): the client connects with TLS.
TENSOR_TLS = "TensorTls"

# make tunnel's relay task (components/endpoint_relay.py): what RunTask needs to start it.
RELAY_TASK_DEFINITION = "RelayTaskDefinitionArn"
RELAY_SECURITY_GROUP = "RelaySecurityGroupId"
RELAY_SUBNETS = "RelaySubnetIds"

# One of each per served model: the first model's keys are bare, the n-th's are prefixed "Model<n>".
MODEL_NAME = "ModelName"
SERVICE_NAME = "ServiceName"
GRPC_PORT = "GrpcPort"
REST_PORT = "RestPort"
DASHBOARD_NAME = "DashboardName"
# The text API's base URL (http:// or https://, the load balancer and the model's textPort), where a task has one.
TEXT_URL = "TextUrl"
PER_MODEL = (MODEL_NAME, SERVICE_NAME, GRPC_PORT, REST_PORT, DASHBOARD_NAME)


def model_prefix(index: int) -> str:
    """The prefix of the ``index``-th (0-based) model's outputs and construct IDs: "" for the first."""
    return "" if index == 0 else f"Model{index + 1}"


def model_output(key: str, index: int) -> str:
    return f"{model_prefix(index)}{key}"
