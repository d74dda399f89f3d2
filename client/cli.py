"""Command line: ``python -m client`` (load) and ``python -m client status``.

Exit codes: 0 every request succeeded; 1 some failed (figures still printed) or the status check
failed; 2 bad arguments; 130 interrupted with Ctrl-C (figures for what was measured are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from client import endpoint
from client.inputs import BertInputs, TokenizerNotFound, load_tokenizer, text_inputs, zero_inputs
from client.kserve import READY
from client.load import LoadPlan, LoadRunner
from client.pricing import ON_DEMAND_USD_PER_HOUR, PRICE_TABLE_DATE, PRICE_TABLE_REGION
from client.report import Cost, RunReport, RunSettings, json_line, plot, render_table
from client.stats import Summary, cost_per_million, summarize
from client.text import API_KEY_VARIABLE, TextTransport, text_body
from client.transport import (
    API_KSERVE,
    API_TEXT,
    API_TFSERVING,
    APIS,
    RequestFailed,
    Transport,
    one_line,
    open_transport,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROGRESS_AFTER_S = 1.0
# Callers one process drives: asyncio tasks are cheap, but each is a request kept in flight.
MAX_CONCURRENCY = 10_000
DEFAULT_REQUESTS = 100


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the one line that says what is wrong (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _target(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


# What `status` calls serving: TF Serving's AVAILABLE version, or KServe's ready model.
SERVING_STATES = ("AVAILABLE", READY)


def _common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", type=_target, help="HOST:PORT of the server (gRPC, REST or text port)")
    where.add_argument("--stack", help="read the endpoint from this deployed CloudFormation stack's outputs")
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument(
        "--api",
        choices=APIS,
        default=None,
        help="tfserving (TF Serving's API), kserve (KServe v2, Triton) or text (the text API: TEI's, over HTTP, "
        f"key from ${API_KEY_VARIABLE}); default: the stack's, else tfserving",
    )
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="connect over TLS (default: as the stack's TensorTls and TextUrl say, else no)",
    )
    parser.add_argument(
        "--host",
        help="with --stack: connect to this DNS name (the certificate's) instead of the load balancer's own",
    )
    parser.add_argument("--model", default=None, help="model name (default: the stack's, else bert)")
    parser.add_argument("--timeout", type=_positive_float, default=10.0, help="per-request timeout, seconds")


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    load = OneLineParser(
        prog="python -m client",
        description="Load TF Serving with BERT requests and report latency, throughput and cost. "
        "`python -m client status --target HOST:PORT` reports the model's state.",
    )
    _common(load)
    amount = load.add_mutually_exclusive_group()
    amount.add_argument("--requests", type=_positive_int, help=f"measured requests (default {DEFAULT_REQUESTS})")
    amount.add_argument("--duration", type=_positive_float, help="measure for this many seconds")
    shape = load.add_mutually_exclusive_group()
    shape.add_argument("--concurrency", type=_positive_int, help="closed loop: requests in flight (default 1)")
    shape.add_argument("--rate", type=_positive_float, help="open loop: requests per second, latency from send time")
    load.add_argument("--batch", type=_positive_int, default=1)
    load.add_argument("--seq-len", type=_positive_int, default=128)
    load.add_argument("--warmup", type=_non_negative_int, default=10, help="unmeasured requests first (default 10)")
    load.add_argument("--signature", default="", help="signature_name (default: the model's default)")
    load.add_argument("--text", help="send token ids of this text instead of zeros (needs --tokenizer)")
    load.add_argument("--text-pair", help="the second sentence of a pair, as BERT's second segment (with --text)")
    load.add_argument(
        "--tokenizer",
        type=Path,
        help="the model's tokenizer: the version folder make model wrote (e.g. components/model_server/model/1), "
        "a folder of tokenizer files, or a vocab.txt",
    )
    load.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    load.add_argument("--plot", type=Path, metavar="FILE.png", help="draw latency histogram and timeline")
    load.add_argument("--hourly-price", type=_positive_float, help="USD per instance-hour for the cost figure")
    load.add_argument("--instance-type", help="price from the built-in on-demand table (default: the stack's)")

    status = OneLineParser(prog="python -m client status", description="Report the model's version states.")
    _common(status)
    return load, status


def _inputs(args: argparse.Namespace, parser: argparse.ArgumentParser, *, text_api: bool = False) -> BertInputs:
    """The tensors a tensor API is sent; the text API is sent the text itself (the front tokenizes), so
    it needs no tokenizer and its tensors only size the report."""
    if text_api:
        if args.text_pair is not None and args.text is None:
            parser.error("--text-pair needs --text")
        return zero_inputs(args.batch, args.seq_len)
    if args.text is None:
        if args.text_pair is not None:
            parser.error("--text-pair needs --text")
        return zero_inputs(args.batch, args.seq_len)
    if args.tokenizer is None:
        parser.error("--text needs --tokenizer: the model's version folder, tokenizer files or vocab.txt")
    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except TokenizerNotFound as error:
        parser.error(str(error))
    return text_inputs(args.text, args.text_pair, tokenizer, args.batch, args.seq_len)


def _cost(hourly_price: float | None, instance_type: str | None, summary: Summary) -> Cost | None:
    if hourly_price is not None:
        price, source = hourly_price, "--hourly-price"
    elif instance_type in ON_DEMAND_USD_PER_HOUR:
        price = ON_DEMAND_USD_PER_HOUR[instance_type]
        source = f"{instance_type} on-demand, {PRICE_TABLE_REGION}, table of {PRICE_TABLE_DATE}"
    else:
        return None
    return Cost(
        hourly_price_usd=price,
        source=source,
        per_million_inferences_usd=cost_per_million(price, summary.inferences_per_s),
    )


async def _run_with_progress(runner: LoadRunner, plan: LoadPlan, show: bool) -> None:
    task = asyncio.create_task(runner.run())
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C ends the process at once
        runner.stop()
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
    if show:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_AFTER_S)
        if not done:
            total = plan.requests if plan.requests is not None else plan.duration
            unit = "requests" if plan.requests is not None else "s"
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                bar = progress.add_task("measuring", total=total)
                started = time.perf_counter()
                while not task.done():
                    done_count = len(runner.result.samples)
                    progress.update(bar, completed=done_count if unit == "requests" else time.perf_counter() - started)
                    await asyncio.wait({task}, timeout=0.1)
    await task
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGINT)


@dataclass(frozen=True)
class Destination:
    target: str
    """HOST:PORT, or for the text API its base URL."""
    model: str
    api: str
    instance_type: str | None
    tls: bool = False


def _destination(args: argparse.Namespace) -> Destination:
    """Target, model, API and instance type: from the arguments, filled in from ``--stack`` when given."""
    target, model, api, instance_type = args.target, args.model, args.api, getattr(args, "instance_type", None)
    tls = bool(args.tls)
    if args.stack:
        found = endpoint.resolve(args.stack, model=model)
        model = model or found.model
        api = api or found.api
        instance_type = instance_type or found.instance_type
        if api == API_TEXT:
            if found.text_url is None:
                raise endpoint.EndpointNotFound(f"stack {args.stack!r} has no text API (TextUrl): the rtd layout")
            scheme, _, rest = found.text_url.partition("://")
            host, _, port = rest.rpartition(":")
            tls = scheme == "https" if args.tls is None else args.tls
            return Destination(
                f"{'https' if tls else 'http'}://{args.host or host}:{port}", model, api, instance_type, tls
            )
        tls = found.tensor_tls if args.tls is None else args.tls
        target = found.target(args.protocol)
        if args.host:
            target = f"{args.host}:{target.rpartition(':')[2]}"
    elif api == API_TEXT:
        target = f"{'https' if tls else 'http'}://{target}"
    return Destination(target, model or "bert", api or API_TFSERVING, instance_type, tls)


async def _load(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        destination = _destination(args)
    except endpoint.EndpointNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    target, model, instance_type = destination.target, destination.model, destination.instance_type
    plan = LoadPlan(
        requests=_measured_requests(args),
        duration=args.duration,
        concurrency=None if args.rate else (args.concurrency or 1),
        rate=args.rate,
        warmup=args.warmup,
    )
    inputs = _inputs(args, parser, text_api=destination.api == API_TEXT)
    transport: Transport
    if destination.api == API_TEXT:
        transport = TextTransport(
            target,
            body=text_body(args.text, args.text_pair, args.batch),
            batch=args.batch,
            timeout=args.timeout,
            connections=plan.concurrency or 64,
        )
    else:
        transport = open_transport(
            args.protocol,
            target,
            model=model,
            signature=args.signature,
            inputs=inputs,
            timeout=args.timeout,
            concurrency=plan.concurrency or 64,
            api=destination.api,
            tls=destination.tls,
        )
    runner = LoadRunner(transport, plan)
    console = Console()
    try:
        await _run_with_progress(runner, plan, show=not args.json and sys.stderr.isatty())
    finally:
        await transport.close()

    if runner.result.abandoned:
        print(f"error: {target}: {runner.result.abandoned}", file=sys.stderr)
        return EXIT_FAILED
    summary = summarize(runner.result, batch=inputs.batch)
    report = RunReport(
        settings=RunSettings(
            target=target,
            protocol=args.protocol,
            api=destination.api,
            model=model,
            batch=inputs.batch,
            seq_len=inputs.seq_len,
            warmup=plan.warmup,
            requests=plan.requests,
            duration=plan.duration,
            concurrency=plan.concurrency,
            rate=plan.rate,
            timeout=args.timeout,
            inputs="text" if args.text or destination.api == API_TEXT else "zeros",
        ),
        summary=summary,
        cost=_cost(args.hourly_price, instance_type, summary),
        result=runner.result,
    )
    if args.json:
        print(json_line(report), flush=True)
    else:
        render_table(console, report)
    if args.plot:
        plot(report, args.plot)
    return _verdict(summary, runner.result.error_details)


def _verdict(summary: Summary, details: dict[str, str]) -> int:
    if summary.interrupted:
        print(f"interrupted: figures cover the {summary.requests} requests completed so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary.errors:
        worst = max(summary.errors_by_code.items(), key=lambda item: item[1])[0]
        detail = one_line(details.get(worst, ""), 200)
        print(
            f"error: {summary.errors} of {summary.requests} requests failed; most often {worst}"
            + (f" ({detail})" if detail else ""),
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    try:
        destination = _destination(args)
    except endpoint.EndpointNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    target, model = destination.target, destination.model
    transport: Transport = (
        TextTransport(target, body=b"", batch=1, timeout=args.timeout, connections=1)
        if destination.api == API_TEXT
        else open_transport(
            args.protocol,
            target,
            model=model,
            signature="",
            inputs=zero_inputs(1, 1),
            timeout=args.timeout,
            concurrency=1,
            api=destination.api,
            tls=destination.tls,
        )
    )
    try:
        versions = await transport.model_status()
    except RequestFailed as failure:
        print(f"error: status of model {model!r} at {target} failed: {failure}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await transport.close()
    for version, state in versions:
        # KServe's readiness is the model's, not a version's
        readiness = destination.api in (API_KSERVE, API_TEXT)
        print(f"{model}: {state}" if readiness else f"{model} version {version}: {state}")
    available = any(state in SERVING_STATES for _, state in versions)
    return EXIT_OK if available else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    load_parser, status_parser = build_parser()
    if arguments[:1] == ["status"]:
        return asyncio.run(_status(status_parser.parse_args(arguments[1:])))
    args = load_parser.parse_args(arguments)
    if args.rate is not None and args.rate > 100_000:
        load_parser.error("--rate above 100000 requests/s is beyond what one client process can schedule")
    if args.plot is not None:
        _check_writable(args.plot, load_parser)
    if args.concurrency is not None:
        protocol = "rest" if args.api == API_TEXT else args.protocol  # the text API: a connection per caller
        args.concurrency = _held_concurrency(args.concurrency, _measured_requests(args), protocol, load_parser)
    return asyncio.run(_load(args, load_parser))


def _measured_requests(args: argparse.Namespace) -> int | None:
    """--requests, or DEFAULT_REQUESTS when neither it nor --duration is given; None in duration mode."""
    return args.requests if args.requests or args.duration else DEFAULT_REQUESTS


def _check_writable(path: Path, parser: argparse.ArgumentParser) -> None:
    """Before the run: a plot that cannot be written would lose the figures at its end."""
    folder = path.parent
    if path.suffix.lower() != ".png":
        parser.error(f"--plot {path}: the plot is a PNG, name it FILE.png")
    if not folder.is_dir():
        parser.error(f"--plot {path}: folder {folder} does not exist")
    if path.is_dir():
        parser.error(f"--plot {path}: is a folder; name a file in it")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        parser.error(f"--plot {path}: cannot write there")


def _held_concurrency(concurrency: int, requests: int | None, protocol: str, parser: argparse.ArgumentParser) -> int:
    """The callers this process can hold: REST opens one connection per caller, so at most half the
    open-file limit; gRPC multiplexes them on one channel. More callers than requests would idle."""
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = MAX_CONCURRENCY if protocol == "grpc" else min(MAX_CONCURRENCY, soft_limit // 2)
    if concurrency > limit:
        reason = (
            "the client's limit" if limit == MAX_CONCURRENCY else f"half this process's open-file limit ({soft_limit})"
        )
        parser.error(f"--concurrency {concurrency} is more than one client process can hold: at most {limit}, {reason}")
    if requests is not None and concurrency > requests:
        print(f"note: --concurrency {concurrency} capped at {requests}, the number of requests", file=sys.stderr)
        return requests
    return concurrency
