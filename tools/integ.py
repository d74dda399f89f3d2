"""make integ: deploy a disposable copy of the stack, check it, destroy it, and report.

    make integ INTEG_MODEL_S3_URI=s3://bucket/prefix [INTEG_FAMILY=inf1|inf2] [INTEG_SPOT=false]
               [INTEG_RUN_ID=name] [INTEG_BENCH_SECONDS=60] [INTEG_REPORT=integ-report]

The copy is tests/integ/integ_endpoint.py's app (its own name, the run's tag, the family's smallest size,
on-demand unless asked, the model from S3), deployed with the project's CDK CLI; its integ-tests
assertion stack waits, during the deploy, for the service's task and every target's health. Then each
check prints pass or fail with the figure it measured, through make tunnel's relay (a Fargate task in the
VPC, never a target of the load balancer, so the laptop path itself is proved). Whatever happens (a
failed check, Ctrl-C, SIGTERM), the stacks are destroyed and a sweep by tag must find nothing left. The
report is JSON and Markdown in INTEG_REPORT.

Every AWS call goes through :class:`Account`; tests/test_integ.py runs the orchestration against a fake.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from client.pricing import ON_DEMAND_USD_PER_HOUR
from tools.integ_plan import IntegError, IntegPlan

# What else a run keeps running while it lasts (us-east-1 list prices, 2026): one NAT gateway and the NLB.
NAT_AND_NLB_USD_PER_HOUR = 0.045 + 0.0225
# An MRPC pair the fine-tuned checkpoint calls a paraphrase, and one it does not (GLUE MRPC dev set).
PARAPHRASE = (
    "The company said it would buy back up to 10 million of its shares.",
    "The firm said it plans to repurchase as many as 10 million shares.",
)
NOT_PARAPHRASE = (
    "The company said it would buy back up to 10 million of its shares.",
    "Heavy rain flooded several roads in the north of the country on Tuesday.",
)
REDEPLOY_RATE = 5


@dataclass
class Check:
    name: str
    passed: bool
    figure: str
    confirms: str
    """The item of docs/unconfirmed.md this check settles."""
    seconds: float = 0.0


@dataclass
class Report:
    plan: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    cost_usd: float = 0.0
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks) and not self.interrupted

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        document = {**asdict(self), "passed": self.passed}
        as_json = folder / "integ-report.json"
        as_json.write_text(json.dumps(document, indent=2) + "\n")
        lines = [
            f"# make integ: {'passed' if self.passed else 'FAILED'}",
            "",
            f"Stack `{self.plan['stack_name']}` on {self.plan['instance_type']}, {self.seconds / 60:.1f} min, "
            f"about ${self.cost_usd:.2f}" + (" (interrupted)" if self.interrupted else ""),
            "",
            "| check | result | figure | confirms |",
            "|---|---|---|---|",
            *(
                f"| {check.name} | {'pass' if check.passed else 'FAIL'} | {check.figure} | {check.confirms} |"
                for check in self.checks
            ),
        ]
        as_markdown = folder / "integ-report.md"
        as_markdown.write_text("\n".join(lines) + "\n")
        return as_json, as_markdown


class Account(Protocol):
    """What the run does in AWS; AwsAccount does it for real."""

    def deploy(self, plan: IntegPlan) -> dict[str, str]: ...

    def tunnels(self, outputs: dict[str, str]) -> Any: ...

    def load(self, target: str, *arguments: str) -> dict[str, Any]: ...

    def classify(self, text_target: str, pair: tuple[str, str]) -> str: ...

    def neuron_metric_dimensions(self, outputs: dict[str, str]) -> list[dict[str, str]]: ...

    def alarm_reaches_topic(self, plan: IntegPlan, outputs: dict[str, str]) -> float: ...

    def redeploy_under_load(self, outputs: dict[str, str], target: str) -> dict[str, Any]: ...

    def destroy(self, plan: IntegPlan) -> None: ...

    def leftovers(self, plan: IntegPlan) -> list[str]: ...


def _timed(name: str, confirms: str, body: Callable[[], tuple[bool, str]]) -> Check:
    started = time.monotonic()
    try:
        passed, figure = body()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # a check that cannot run has failed, with why
        passed, figure = False, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
    check = Check(name, passed, figure, confirms, round(time.monotonic() - started, 1))
    print(f"{'pass' if check.passed else 'FAIL'}  {check.name}: {check.figure}", flush=True)
    return check


def _checks(plan: IntegPlan, account: Account, outputs: dict[str, str], ports: dict[str, str]) -> Iterator[Check]:
    grpc, rest, text = ports["grpc"], ports["rest"], ports["text"]

    def answers(target: str, *arguments: str) -> Callable[[], tuple[bool, str]]:
        def body() -> tuple[bool, str]:
            figures = account.load(target, "--requests", "20", "--warmup", "2", *arguments)
            return figures["errors"] == 0, f"{figures['requests']} requests, p50 {figures['latency_ms']['p50']:.1f} ms"

        return body

    yield _timed("the text API answers through the load balancer", "tunnel; text front", answers(text, "--api", "text"))
    yield _timed("gRPC answers through the load balancer", "server on the driver", answers(grpc, "--protocol", "grpc"))
    yield _timed("REST answers through the load balancer", "server on the driver", answers(rest, "--protocol", "rest"))

    def mrpc() -> tuple[bool, str]:
        said = (account.classify(text, PARAPHRASE), account.classify(text, NOT_PARAPHRASE))
        return said == ("equivalent", "not_equivalent"), f"paraphrase -> {said[0]}, non-paraphrase -> {said[1]}"

    yield _timed("the MRPC checkpoint tells a paraphrase from a non-paraphrase", "model compile; checkpoint", mrpc)

    def bench() -> tuple[bool, str]:
        figures = account.load(
            grpc, "--duration", str(plan.bench_seconds), "--concurrency", "8", "--instance-type", plan.instance_type
        )
        cost = (figures.get("cost") or {}).get("per_million_inferences_usd")
        latency = figures["latency_ms"]
        return figures["errors"] == 0, (
            f"{figures['throughput_rps']:.1f} req/s, p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms"
            + (f", ${cost:.3f} per million" if cost is not None else "")
        )

    yield _timed(f"a {plan.bench_seconds}-second bench", "throughput and cost on hardware", bench)

    def metrics() -> tuple[bool, str]:
        dimensions = account.neuron_metric_dimensions(outputs)
        filled = [found for found in dimensions if found and all(found.values())]
        return bool(filled), f"{len(filled)} NeuronCore metric series with every dimension filled"

    yield _timed("NeuronCore metrics arrive with their dimensions", "neuron-monitor; ServiceName", metrics)

    def alarm() -> tuple[bool, str]:
        seconds = account.alarm_reaches_topic(plan, outputs)
        return True, f"the topic delivered the alarm in {seconds:.0f} s"

    yield _timed("an alarm reaches the notifications topic", "topic policy", alarm)

    def redeploy() -> tuple[bool, str]:
        figures = account.redeploy_under_load(outputs, grpc)
        return figures["errors"] == 0, f"{figures['requests']} requests during the deployment, {figures['errors']} lost"

    yield _timed("a rolling redeploy under light load loses no request", "deployment pacing", redeploy)


def run(plan: IntegPlan, account: Account, *, report_folder: Path) -> Report:
    """Deploy, check, and always destroy and sweep; the report is written even when interrupted."""
    report = Report(plan={**asdict(plan), "stack_name": plan.stack_name, "instance_type": plan.instance_type})
    started = time.monotonic()
    try:
        deploy_started = time.monotonic()
        outputs = account.deploy(plan)
        steady = time.monotonic() - deploy_started
        report.checks.append(
            Check("deployed and steady", True, f"{steady / 60:.1f} min to steady state", "images; AMI; task", steady)
        )
        print(f"pass  deployed and steady: {steady / 60:.1f} min", flush=True)
        with account.tunnels(outputs) as ports:
            for check in _checks(plan, account, outputs, ports):
                report.checks.append(check)
    except KeyboardInterrupt:
        report.interrupted = True
        print("interrupted: destroying what was deployed", file=sys.stderr, flush=True)
    except Exception as error:
        report.checks.append(Check("deploy", False, f"{type(error).__name__}: {error}"[:300], "images; AMI; task"))
        print(f"FAIL  deploy: {error}", flush=True)
    finally:
        with _signals_ignored():  # a second Ctrl-C, or CI's SIGTERM after its SIGINT, must not stop the teardown
            report.checks.extend(teardown(plan, account))
            report.seconds = time.monotonic() - started
            hourly = ON_DEMAND_USD_PER_HOUR.get(plan.instance_type, 0.0) + NAT_AND_NLB_USD_PER_HOUR
            report.cost_usd = hourly * report.seconds / 3600
            report.write(report_folder)
    return report


def teardown(plan: IntegPlan, account: Account) -> list[Check]:
    """Destroy the run's stacks, then require that nothing of them is left."""
    return [
        _timed("destroyed", "clean teardown", lambda: (_destroy(account, plan), "")),
        _timed("nothing left (sweep by tag)", "clean teardown", lambda: _swept(account, plan)),
    ]


@contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _destroy(account: Account, plan: IntegPlan) -> bool:
    account.destroy(plan)
    return True


def _swept(account: Account, plan: IntegPlan) -> tuple[bool, str]:
    left = account.leftovers(plan)
    return not left, "nothing tagged with the run is left" if not left else f"left: {', '.join(left[:5])}"


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI runner's cancel) ends the run the way Ctrl-C does: through the clean-up."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None, *, account_factory: Callable[[IntegPlan], Account] | None = None) -> int:
    from tools.aws_credentials import problem  # noqa: PLC0415

    missing = problem()
    if missing:
        print(
            f"error: make integ deploys a copy of the stack and needs AWS credentials and a region: {missing}",
            file=sys.stderr,
        )
        return 1
    destroying = (argv or [])[:1] == ["--destroy"]  # make integ-destroy: a run's teardown alone
    try:
        plan = IntegPlan.from_environment(os.environ)
        if not destroying and plan.model_s3_uri.startswith("s3://integ-model-bucket/"):
            raise IntegError(
                "INTEG_MODEL_S3_URI is not set: build the model (make model) and upload it "
                "(make model-upload S3=s3://bucket/prefix), then pass that URI"
            )
    except IntegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    folder = Path(os.environ.get("INTEG_REPORT", "").strip() or "integ-report")
    if account_factory is None:
        from tools.integ_aws import AwsAccount  # noqa: PLC0415  (boto3, only for a real run)

        account_factory = AwsAccount
    if destroying:
        with _signals_ignored():
            checks = teardown(plan, account_factory(plan))
        return 0 if all(check.passed for check in checks) else 1
    with _terminate_as_interrupt():
        report = run(plan, account_factory(plan), report_folder=folder)
    print(f"report: {folder / 'integ-report.md'} ({'passed' if report.passed else 'FAILED'})")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
