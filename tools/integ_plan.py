"""What one `make integ` run deploys: a copy of the stack under its own name and tag, the family's smallest
size, on-demand unless asked, the model from S3. Read from ``INTEG_*`` variables, each checked in one
line; the integ app (tests/integ/integ_endpoint.py) and the orchestrator (tools/integ.py) share it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TAG_KEY = "bert-inferentia:integ-run"
# The smallest size of each family: the cheapest instance that runs the whole path.
SMALLEST = {"inf1": "inf1.xlarge", "inf2": "inf2.xlarge"}
SNAPSHOT_RUN = "snapshot"
SNAPSHOT_MODEL = "s3://integ-model-bucket/bert"
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")
_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?")


class IntegError(ValueError):
    """A variable of the run is wrong, or the run cannot go on; one line."""


@dataclass(frozen=True)
class IntegPlan:
    run_id: str
    family: str
    spot: bool
    model_s3_uri: str
    bench_seconds: int = 60

    @property
    def stack_name(self) -> str:
        return f"BertInteg-{self.run_id}"

    @property
    def assertion_stack_name(self) -> str:
        return f"{self.stack_name}-Assertions"

    @property
    def instance_type(self) -> str:
        return SMALLEST[self.family]

    def context(self) -> dict[str, object]:
        """The cdk.json settings this run overrides."""
        return {
            "stackName": self.stack_name,
            "instanceType": self.instance_type,
            "spot": self.spot,
            "modelS3Uri": self.model_s3_uri,
            "minTasks": 1,
            "desiredCount": 1,
            "maxTasks": 1,
            "minInstances": 0,
            "maxInstances": 2,
        }

    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.run_id}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> IntegPlan:
        run_id = environ.get("INTEG_RUN_ID", "").strip() or SNAPSHOT_RUN
        if not _RUN_ID.fullmatch(run_id):
            raise IntegError(f"INTEG_RUN_ID={run_id}: expected 1-20 lower-case letters, digits and -")
        family = environ.get("INTEG_FAMILY", "").strip() or "inf1"
        if family not in SMALLEST:
            raise IntegError(f"INTEG_FAMILY={family}: expected inf1 or inf2")
        spot = environ.get("INTEG_SPOT", "").strip().lower() or "false"
        if spot not in ("true", "false"):
            raise IntegError(f"INTEG_SPOT={spot}: expected true or false")
        model = environ.get("INTEG_MODEL_S3_URI", "").strip() or SNAPSHOT_MODEL
        if not _S3_URI.fullmatch(model):
            raise IntegError(f"INTEG_MODEL_S3_URI={model}: expected s3://bucket/prefix of make model-upload")
        seconds = environ.get("INTEG_BENCH_SECONDS", "").strip() or "60"
        if not seconds.isdigit() or not 10 <= int(seconds) <= 3600:
            raise IntegError(f"INTEG_BENCH_SECONDS={seconds}: expected a whole number of seconds, 10-3600")
        return cls(run_id, family, spot == "true", model, int(seconds))
