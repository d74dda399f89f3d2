"""The app's test and lint variants: cdk.json's settings with overrides, one per distinct layout.

The tests synthesize each once per session (tests/conftest.py); `make lint` synthesizes each and
scans the templates (tools/scan.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# Overrides are given as strings where `-c key=value` would give strings.
VARIANTS: Mapping[str, Mapping[str, object]] = {
    "default": {},
    # The walk-through's own AMI (us-east-1): no current ECS AMI runs neuron-rtd.
    "rtd": {"neuronRuntime": "rtd", "amiId": "ami-04450f16e0cd20356"},
    # The walk-through's TF Serving kept on Inf2 (server=tfserving), on-demand, with a fallback size.
    "inf2": {
        "instanceType": "inf2.xlarge",
        "server": "tfserving",
        "spot": "false",
        "fallbackInstanceTypes": "inf2.8xlarge",
        "availabilityZones": "us-east-1a,us-east-1b,us-east-1d",
    },
    "large": {
        "instanceType": "inf1.24xlarge",
        "keyName": "ops-key",
        "allowedCidr": "203.0.113.0/24",
        "minInstances": "1",
        "maxInstances": "4",
        "desiredCount": "3",
        "maxTasks": "6",
        "modelName": "bert-large",
        "grpcPort": "9000",
        "restPort": "9001",
    },
    # Parked: no task runs, the group empties to minInstances; only the NAT gateway and NLB cost.
    "parked": {"minTasks": "0", "desiredCount": "0"},
    # Several tasks per instance, each on 4 of the 24 NeuronCores, behind an internet-facing NLB.
    "split": {
        "instanceType": "inf2.48xlarge",
        "coresPerTask": "4",
        "desiredCount": "6",
        "minTasks": "2",
        "maxTasks": "6",
        "batching": '{"maxBatchSize": 16, "batchTimeoutMicros": 2000}',
        "modelS3Uri": "s3://bert-models-example/bert-base/",
        "maxInstances": "1",
        "publicEndpoint": "true",
        "allowedCidr": "198.51.100.0/24",
        "onDemandBase": "1",
        # TLS on every port, and a key for the text API named by the secret's name.
        "certificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/0123abcd-4567-89ab-cdef-0123456789ab",
        "apiKeySecret": "bert/text-api-key",
    },
    # ECS Managed Instances on inf2.xlarge (Triton, Inf2's default): AWS runs the instances, one task each, spot.
    # TLS on the text API only, its key named by the secret's full ARN.
    "managed": {
        "capacity": "managedInstances",
        "instanceType": "inf2.xlarge",
        "certificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/0123abcd-4567-89ab-cdef-0123456789ab",
        "tlsTensorPorts": "false",
        "apiKeySecret": "arn:aws:secretsmanager:us-east-1:111122223333:secret:bert/text-api-key-AbCdEf",
        "maxClientBatchSize": "8",
    },
    # Two models behind Triton on inf2.24xlarge: 6 cores each (chips 0-2 and 3-5) per instance.
    "triton-multi": {
        "instanceType": "inf2.24xlarge",
        "minTasks": "2",
        "desiredCount": "2",
        "models": json.dumps(
            [
                {"name": "bert", "cores": 6, "grpcPort": 8500, "restPort": 8501, "modelS3Uri": "s3://models-b/bert"},
                {"name": "minilm", "cores": 6, "grpcPort": 8502, "restPort": 8503, "modelS3Uri": "s3://models-b/mini"},
            ]
        ),
    },
    # Two models side by side on inf1.6xlarge: each instance holds one task of each, on two chips each; two
    # tasks of each at least, so a deploy in place never leaves a model without one.
    "multi": {
        "instanceType": "inf1.6xlarge",
        "minTasks": "2",
        "desiredCount": "2",
        "maxInstances": "3",
        "maxTasks": "3",
        "models": json.dumps(
            [
                {"name": "bert", "cores": 8, "grpcPort": 8500, "restPort": 8501, "modelS3Uri": "s3://models-a/bert"},
                {
                    "name": "distilbert",
                    "cores": 8,
                    "grpcPort": 8502,
                    "restPort": 8503,
                    "modelS3Uri": "s3://models-a/distil",
                },
            ]
        ),
    },
}
