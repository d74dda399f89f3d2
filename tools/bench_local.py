"""``make bench-local``: the client against the loopback TF Serving stand-in.

Two questions. With a fixed 20 ms model time, how close does the client come to the limit, which
at concurrency C is C / 20 ms? And with zero model time, what does one request cost the client
and the stand-in together (the floor under every latency the client reports), beside the
walk-through's naive client (a loop of blocking ``Predict`` calls, timed one by one) on the same
stand-in in the same run, by turns? And at concurrency 16 against the 20 ms stand-in, the naive
client in 16 threads beside this client? And the text front (its own process, in front of the same
stand-in): its throughput at concurrency 16 beside the client's own gRPC, the p50 it adds at
concurrency 1 for a pair of 128 tokens, and its CPU per 1,000 requests.

The stand-in runs in its own process, so client and server do not share an interpreter. Each
figure comes from the real command line (``python -m client ... --json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from client.report import read_json_line
from tools import text_local
from tools.loopback import LOOPBACK
from tools.text_fixture import WORDS, model_folder

MODEL_TIME_MS = 20.0
CONCURRENCIES = (1, 4, 16, 64)
NAIVE_CONCURRENCY = 16
OVERHEAD_TURNS = 3


@contextmanager
def stand_in(model_time_ms: float) -> Iterator[dict[str, int]]:
    command = [sys.executable, "-m", "tools.model_server_standin", "--grpc-port", "0", "--rest-port", "0"]
    server = subprocess.Popen([*command, "--model-time-ms", str(model_time_ms)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        yield {"grpc": ports["grpc_port"], "rest": ports["rest_port"]}
    finally:
        server.terminate()
        server.wait(timeout=30)


TEXT_CONCURRENCY = 16
TEXT_SEQUENCE_LENGTH = 128
# A pair of exactly 128 tokens with [CLS] and two [SEP]s (each fixture word is one token): the compiled
# length filled, nothing truncated.
FIRST_TEXT = " ".join(WORDS[index % len(WORDS)] for index in range(62))
SECOND_TEXT = " ".join(WORDS[(index + 5) % len(WORDS)] for index in range(63))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (/proc/<pid>/stat, fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(port: int, protocol: str, *arguments: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "client", "--target", f"{LOOPBACK}:{port}", "--protocol", protocol, "--json"]
    result = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"client failed ({result.returncode}): {result.stderr.strip()}")
    return read_json_line(result.stdout)


def _naive_predict(port: int) -> tuple[Any, Callable[[], Any]]:
    """The walk-through's client: a blocking ``Predict`` stub on one channel, and a call of it."""
    import grpc  # noqa: PLC0415  (the client's dependencies, imported only for these figures)

    from client.inputs import zero_inputs  # noqa: PLC0415
    from client.transport import PREDICT_METHOD, predict_request  # noqa: PLC0415
    from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import PredictResponse  # noqa: PLC0415

    request = predict_request("bert", "serving_default", zero_inputs(1, 128))
    channel = grpc.insecure_channel(f"{LOOPBACK}:{port}")
    predict = channel.unary_unary(
        PREDICT_METHOD, request_serializer=type(request).SerializeToString,
        response_deserializer=PredictResponse.FromString,
    )  # fmt: skip
    return channel, lambda: predict(request, timeout=10.0)


def naive_client_p50_ms(port: int, requests: int, warmup: int = 200) -> float:
    """The walk-through's client: one blocking ``Predict`` after another, each timed on its own."""
    channel, call = _naive_predict(port)
    with channel:
        latencies = []
        for index in range(warmup + requests):
            started = time.perf_counter()
            call()
            if index >= warmup:
                latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000.0


def naive_threads_rps(port: int, concurrency: int, duration: float) -> float:
    """The walk-through's client in ``concurrency`` threads (gRPC's blocking calls release the GIL): the
    best a plain synchronous gRPC client reaches against the same stand-in, for comparison."""
    channel, call = _naive_predict(port)
    with channel:
        for _ in range(4 * concurrency):
            call()
        counts = [0] * concurrency
        failures: list[BaseException] = []
        deadline = time.perf_counter() + duration

        def caller(index: int) -> None:
            try:
                while time.perf_counter() < deadline:
                    call()
                    counts[index] += 1
            except Exception as error:  # raised below, once every thread has ended
                failures.append(error)

        threads = [threading.Thread(target=caller, args=(index,)) for index in range(concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"the naive client failed: {failures[0]}")
    return sum(counts) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured point")
    parser.add_argument("--overhead-requests", type=int, default=2000)
    args = parser.parse_args(argv)

    print(f"Throughput against the limit, model time {MODEL_TIME_MS:.0f} ms, {args.duration:.0f} s per point\n")
    print("| protocol | concurrency | limit req/s | measured req/s | of limit | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    with stand_in(MODEL_TIME_MS) as ports:
        for protocol in ("grpc", "rest"):
            for concurrency in CONCURRENCIES:
                limit = concurrency / (MODEL_TIME_MS / 1000.0)
                figures = run_client(
                    ports[protocol], protocol, "--concurrency", str(concurrency),
                    "--duration", str(args.duration), "--warmup", str(4 * concurrency),
                )  # fmt: skip
                rate, latency = figures["throughput_rps"], figures["latency_ms"]
                print(
                    f"| {protocol} | {concurrency} | {limit:.0f} | {rate:.1f} | {rate / limit:.1%} "
                    f"| {latency['p50']:.2f} | {latency['p99']:.2f} |",
                    flush=True,
                )
        naive_rate = naive_threads_rps(ports["grpc"], NAIVE_CONCURRENCY, args.duration)
        naive_limit = NAIVE_CONCURRENCY / (MODEL_TIME_MS / 1000.0)
        print(
            f"\nThe walk-through's blocking gRPC client in {NAIVE_CONCURRENCY} threads on the same stand-in: "
            f"{naive_rate:.1f} req/s, {naive_rate / naive_limit:.1%} of the limit "
            f"(this client: the grpc row at concurrency {NAIVE_CONCURRENCY})"
        )

    print(f"\nPer-request overhead at zero model time, concurrency 1, {args.overhead_requests} requests\n")
    print("| protocol | p50 ms | p99 ms | avg ms | req/s |")
    print("|---|---|---|---|---|")
    with stand_in(0.0) as ports:
        for protocol in ("grpc", "rest"):
            figures = run_client(
                ports[protocol], protocol, "--concurrency", "1",
                "--requests", str(args.overhead_requests), "--warmup", "200",
            )  # fmt: skip
            latency = figures["latency_ms"]
            print(
                f"| {protocol} | {latency['p50']:.3f} | {latency['p99']:.3f} | {latency['avg']:.3f} "
                f"| {figures['throughput_rps']:.0f} |",
                flush=True,
            )
        # Side by side, taking turns, so that the machine's load moves both alike.
        print("\nThis client's gRPC p50 beside the walk-through's naive client (blocking Predict calls), by turns\n")
        print("| turn | this client p50 ms | naive p50 ms | ratio |")
        print("|---|---|---|---|")
        grpc_port = ports["grpc"]

        def this_client() -> float:
            figures = run_client(
                grpc_port, "grpc", "--concurrency", "1", "--requests", str(args.overhead_requests), "--warmup", "200"
            )
            p50: float = figures["latency_ms"]["p50"]
            return p50

        def naive_client() -> float:
            return naive_client_p50_ms(grpc_port, args.overhead_requests)

        ratios = []
        for turn in range(1, OVERHEAD_TURNS + 1):
            # Who goes first alternates, so that neither always meets a warmer machine.
            if turn % 2:
                client_p50, naive = this_client(), naive_client()
            else:
                naive, client_p50 = naive_client(), this_client()
            ratios.append(client_p50 / naive)
            print(f"| {turn} | {client_p50:.3f} | {naive:.3f} | {client_p50 / naive:.2f} |", flush=True)
    print(
        f"\nThis client's p50 is {statistics.median(ratios):.2f} of the naive client's "
        f"(the median of {OVERHEAD_TURNS} turns)"
    )
    text_api(args.duration, args.overhead_requests)


def text_api(duration: float, overhead_requests: int) -> None:
    """The front against the client's own gRPC, on the same stand-in."""
    print(f"\nThe text front, {TEXT_SEQUENCE_LENGTH}-token pair\n")
    print("| path | model time ms | concurrency | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    pair = ("--text", FIRST_TEXT, "--text-pair", SECOND_TEXT)
    results: dict[tuple[str, float], dict[str, Any]] = {}
    for model_time, concurrency, requests in ((MODEL_TIME_MS, TEXT_CONCURRENCY, None), (0.0, 1, overhead_requests)):
        amount = ("--duration", str(duration)) if requests is None else ("--requests", str(requests))
        load = ("--concurrency", str(concurrency), "--warmup", str(max(200 if requests else 0, 4 * concurrency)))
        with stand_in(model_time) as ports:
            direct = run_client(ports["grpc"], "grpc", "--seq-len", str(TEXT_SEQUENCE_LENGTH), *load, *amount)
            with (
                tempfile.TemporaryDirectory() as scratch,
                text_local.running(
                    model_folder(Path(scratch) / "bert", sequence_length=TEXT_SEQUENCE_LENGTH),
                    f"{LOOPBACK}:{ports['grpc']}",
                ) as (port, front),
            ):
                pid = front.pid
                started = cpu_seconds(pid)
                through = run_client(port, "grpc", "--api", "text", *pair, *load, *amount)
                cpu_per_1000 = (cpu_seconds(pid) - started) / (through["requests"] + int(load[3])) * 1000
        results[("direct", model_time)], results[("text", model_time)] = direct, through
        for name, figures in (("client -> gRPC", direct), ("client -> text front -> gRPC", through)):
            latency = figures["latency_ms"]
            print(
                f"| {name} | {model_time:.0f} | {concurrency} | {figures['throughput_rps']:.1f} "
                f"| {latency['p50']:.3f} | {latency['p99']:.3f} |",
                flush=True,
            )
        if requests is not None:
            print(f"\nThe front's CPU: {cpu_per_1000:.2f} s per 1,000 requests (user + system, /proc)")
    ratio = results[("text", MODEL_TIME_MS)]["throughput_rps"] / results[("direct", MODEL_TIME_MS)]["throughput_rps"]
    added = results[("text", 0.0)]["latency_ms"]["p50"] - results[("direct", 0.0)]["latency_ms"]["p50"]
    print(
        f"Throughput through the front at concurrency {TEXT_CONCURRENCY}, {MODEL_TIME_MS:.0f} ms model time: "
        f"{ratio:.2f} of the client's own gRPC; p50 added at concurrency 1: {added:.3f} ms"
    )


if __name__ == "__main__":
    main()
