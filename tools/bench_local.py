"""``make bench-local``: the client against the loopback TF Serving stand-in.

Two questions. With a fixed 20 ms model time, how close does the client come to the limit, which
at concurrency C is C / 20 ms? And with zero model time, what does one request cost the client
and the stand-in together (the floor under every latency the client reports), beside the
walk-through's naive client (a loop of blocking ``Predict`` calls, timed one by one) on the same
stand-in in the same run?

The stand-in runs in its own process, so client and server do not share an interpreter. Each
figure comes from the real command line (``python -m client ... --json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MODEL_TIME_MS = 20.0
CONCURRENCIES = (1, 4, 16, 64)


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


def run_client(port: int, protocol: str, *arguments: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "client", "--target", f"127.0.0.1:{port}", "--protocol", protocol, "--json"]
    result = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"client failed ({result.returncode}): {result.stderr.strip()}")
    document: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def naive_client_p50_ms(port: int, requests: int, warmup: int = 200) -> float:
    """The walk-through's client: one blocking ``Predict`` after another, each timed on its own."""
    import grpc  # noqa: PLC0415  (the client's dependencies, imported only for this figure)

    from client.inputs import zero_inputs  # noqa: PLC0415
    from client.transport import PREDICT_METHOD, predict_request  # noqa: PLC0415
    from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import PredictResponse  # noqa: PLC0415

    request = predict_request("bert", "serving_default", zero_inputs(1, 128))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        predict = channel.unary_unary(
            PREDICT_METHOD, request_serializer=type(request).SerializeToString,
            response_deserializer=PredictResponse.FromString,
        )  # fmt: skip
        latencies = []
        for index in range(warmup + requests):
            started = time.perf_counter()
            predict(request, timeout=10.0)
            if index >= warmup:
                latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000.0


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
            if protocol == "grpc":
                client_p50 = latency["p50"]
        naive = naive_client_p50_ms(ports["grpc"], args.overhead_requests)
    print(
        f"\nThe walk-through's naive gRPC client on the same stand-in: p50 {naive:.3f} ms; this client's p50 is "
        f"{client_p50 / naive:.2f} of it"
    )


if __name__ == "__main__":
    main()
