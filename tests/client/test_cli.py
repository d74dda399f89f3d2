"""The command line against a real TF Serving stand-in on loopback: what it sends, what it reports.

Each test checks both sides: the figures the client printed and what the server received.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client import cli
from client.endpoint import StackEndpoint
from client.load import DEAD_TARGET_FAILURES
from client.pricing import ON_DEMAND_USD_PER_HOUR
from client.stats import cost_per_million
from tests.conftest import ROOT
from tools.loopback import free_port
from tools.model_server_standin import Behaviour, LocalServer

REQUIRED_KEYS = {"requests", "errors", "throughput_rps", "latency_ms", "errors_by_code", "settings"}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    behaviour = getattr(request, "param", Behaviour())
    with LocalServer(behaviour) as running:
        yield running


def target(server: LocalServer, protocol: str) -> str:
    return f"127.0.0.1:{server.grpc_port if protocol == 'grpc' else server.rest_port}"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_reports_every_figure_and_sends_bert_inputs(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    code, report, _ = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol,
        "--requests", "30", "--concurrency", "3", "--batch", "2", "--seq-len", "16", "--warmup", "5",
        "--signature", "serving_default",
    )  # fmt: skip

    assert code == 0
    assert set(report) >= REQUIRED_KEYS
    assert (report["requests"], report["errors"], report["errors_by_code"]) == (30, 0, {})
    assert set(report["latency_ms"]) >= {"avg", "p50", "p90", "p99", "max"}
    assert report["settings"]["concurrency"] == 3
    # the server saw warm-up plus measured requests, each with the three int32 [2, 16] inputs
    assert server.counters.predicts == 35
    received = server.received[-1]
    assert (received.protocol, received.model, received.signature) == (protocol, "bert", "serving_default")
    assert {name: shape for name, (_, shape) in received.inputs.items()} == {
        "input_ids": (2, 16),
        "input_mask": (2, 16),
        "segment_ids": (2, 16),
    }
    assert received.first_row["input_ids"] == (0,) * 16  # zeros, as the walk-through sent


def test_text_is_sent_as_wordpiece_token_ids(
    server: LocalServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"]) + "\n")

    code, _, _ = run_json(
        capsys, "--target", target(server, "grpc"), "--requests", "1", "--warmup", "0",
        "--seq-len", "8", "--text", "Hello worlds", "--tokenizer", str(vocab),
    )  # fmt: skip

    assert code == 0
    row = server.received[-1].first_row
    # a bare vocab.txt lower-cases, as Hugging Face's BertTokenizer does by default
    assert row["input_ids"] == (2, 5, 6, 7, 3, 0, 0, 0)  # [CLS] hello world ##s [SEP] [PAD]...
    assert row["input_mask"] == (1, 1, 1, 1, 1, 0, 0, 0)
    assert row["segment_ids"] == (0,) * 8


def test_a_cased_vocabulary_keeps_its_case_and_a_pair_is_the_second_segment(
    server: LocalServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "world"]) + "\n"
    )
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')

    code, _, _ = run_json(
        capsys, "--target", target(server, "grpc"), "--requests", "1", "--warmup", "0",
        "--seq-len", "8", "--text", "Hello", "--text-pair", "hello world", "--tokenizer", str(tmp_path),
    )  # fmt: skip

    assert code == 0
    row = server.received[-1].first_row
    assert row["input_ids"] == (2, 5, 3, 6, 7, 3, 0, 0)  # [CLS] Hello [SEP] hello world [SEP] [PAD] [PAD]
    assert row["segment_ids"] == (0, 0, 0, 1, 1, 1, 0, 0)


def test_text_without_tokenizer_is_a_usage_error(server: LocalServer) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--target", target(server, "grpc"), "--text", "hello"])
    assert exited.value.code == 2


def test_open_loop_reports_its_rate(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = run_json(capsys, "--target", target(server, "grpc"), "--rate", "400", "--requests", "40")

    assert code == 0
    assert report["settings"]["rate"] == 400
    assert report["requests"] == 40
    assert report["duration_s"] >= 39 / 400


@pytest.mark.parametrize(("protocol", "code"), [("grpc", "UNAVAILABLE"), ("rest", "CONNECTION_REFUSED")])
def test_absent_server_fails_clearly_with_figures_kept(
    capsys: pytest.CaptureFixture[str], protocol: str, code: str
) -> None:
    exit_code, report, err = run_json(
        capsys, "--target", f"127.0.0.1:{free_port()}", "--protocol", protocol, "--requests", "4", "--warmup", "0"
    )

    assert exit_code == 1
    assert report["errors_by_code"] == {code: 4}
    assert f"error: 4 of 4 requests failed; most often {code}" in err


@pytest.mark.parametrize("server", [Behaviour(error_every=3)], indirect=True)
@pytest.mark.parametrize(("protocol", "code"), [("grpc", "UNAVAILABLE"), ("rest", "HTTP 503")])
def test_server_errors_are_counted_by_code(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str, code: str
) -> None:
    exit_code, report, err = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol, "--requests", "30", "--warmup", "0"
    )

    assert exit_code == 1
    assert report["errors_by_code"] == {code: 10}
    assert report["requests"] == 30
    assert report["throughput_rps"] > 0  # successes still measured
    assert "injected failure" in err


@pytest.mark.parametrize("server", [Behaviour(model_time=1.0)], indirect=True)
@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_slow_server_hits_the_per_request_timeout(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    started = time.perf_counter()
    exit_code, report, _ = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol,
        "--requests", "2", "--concurrency", "2", "--warmup", "0", "--timeout", "0.2",
    )  # fmt: skip

    assert exit_code == 1
    assert report["errors_by_code"] == {"TIMEOUT": 2}
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("server", [Behaviour(garbage=True)], indirect=True)
@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_garbage_answers_are_bad_responses(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    exit_code, report, _ = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol, "--requests", "3", "--warmup", "0"
    )

    assert exit_code == 1
    assert report["errors_by_code"] == {"BAD_RESPONSE": 3}
    assert server.counters.predicts == 3  # the server did answer; the answers were unusable


@pytest.mark.parametrize(("protocol", "code"), [("grpc", "NOT_FOUND"), ("rest", "HTTP 404")])
def test_unknown_model_is_reported_by_its_status(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str, code: str
) -> None:
    exit_code, report, err = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol, "--model", "gpt", "--requests", "2",
        "--warmup", "0",
    )  # fmt: skip

    assert exit_code == 1
    assert report["errors_by_code"] == {code: 2}
    assert "Latest(gpt)" in err


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_status_reports_available(server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str) -> None:
    code = cli.main(["status", "--target", target(server, protocol), "--protocol", protocol])

    assert code == 0
    assert capsys.readouterr().out.strip() == "bert version 1: AVAILABLE"


@pytest.mark.parametrize("server", [Behaviour(state="LOADING")], indirect=True)
def test_status_fails_while_the_model_is_loading(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["status", "--target", target(server, "rest"), "--protocol", "rest"])

    assert code == 1
    assert capsys.readouterr().out.strip() == "bert version 1: LOADING"


def test_cost_from_the_hourly_price_and_from_the_table(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    _, priced, _ = run_json(capsys, "--target", target(server, "grpc"), "--requests", "20", "--hourly-price", "1.5")
    _, tabled, _ = run_json(
        capsys, "--target", target(server, "grpc"), "--requests", "20", "--instance-type", "inf2.xlarge"
    )

    assert priced["cost"]["per_million_inferences_usd"] == pytest.approx(
        cost_per_million(1.5, priced["inferences_per_s"]), rel=1e-3
    )
    assert tabled["cost"]["hourly_price_usd"] == ON_DEMAND_USD_PER_HOUR["inf2.xlarge"]
    assert "inf2.xlarge on-demand" in tabled["cost"]["source"]


def test_stack_supplies_target_model_and_price(
    server: LocalServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = StackEndpoint("127.0.0.1", server.grpc_port, server.rest_port, "bert", "inf1.xlarge", "tfserving")
    monkeypatch.setattr("client.endpoint.resolve", lambda name, model=None: found if name == "BertInferentia" else None)

    code, report, _ = run_json(capsys, "--stack", "BertInferentia", "--protocol", "rest", "--requests", "5")

    assert code == 0
    assert report["settings"]["target"] == f"127.0.0.1:{server.rest_port}"
    assert report["cost"]["hourly_price_usd"] == ON_DEMAND_USD_PER_HOUR["inf1.xlarge"]


def test_plot_draws_a_png(server: LocalServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    picture = tmp_path / "latency.png"

    code, _, _ = run_json(capsys, "--target", target(server, "grpc"), "--requests", "50", "--plot", str(picture))

    assert code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000


def test_table_output_without_json(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--target", target(server, "grpc"), "--requests", "5"])

    out = capsys.readouterr().out
    assert code == 0
    assert "requests completed" in out
    assert "latency p99" in out


@pytest.mark.parametrize("server", [Behaviour(model_time=0.01)], indirect=True)
def test_ctrl_c_prints_what_was_measured(server: LocalServer) -> None:
    # GIVEN a 60-second run in its own process
    process = subprocess.Popen(
        [sys.executable, "-m", "client", "--target", target(server, "grpc"), "--duration", "60", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while server.counters.predicts < 60 and time.monotonic() < deadline:
        time.sleep(0.05)

    # WHEN Ctrl-C arrives
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)

    # THEN it stops at once, reports the partial run and says so
    assert process.returncode == 130
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted"] is True
    assert report["requests"] >= 20
    assert report["duration_s"] < 30
    assert "interrupted" in err


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_a_dead_target_is_given_up_after_a_short_burst_not_hammered_for_the_duration(
    capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    started = time.perf_counter()

    exit_code = cli.main(
        ["--target", f"127.0.0.1:{free_port()}", "--protocol", protocol, "--duration", "60", "--concurrency", "2"]
    )

    err = capsys.readouterr().err
    assert exit_code == 1
    assert time.perf_counter() - started < 20  # not the 60 s asked for
    (line,) = err.strip().splitlines()
    assert line.startswith("error: 127.0.0.1:")
    assert f"the target never answered: {DEAD_TARGET_FAILURES} requests in a row failed" in line


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ("missing-folder/latency.png", "does not exist"),
        ("a-file/latency.png", "does not exist"),
        ("latency.txt", "name it FILE.png"),
        ("a-folder.png", "is a folder"),
    ],
)
def test_a_plot_that_cannot_be_written_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, plot: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder.png").mkdir()
    started = time.perf_counter()

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--target", "127.0.0.1:1", "--plot", str(tmp_path / plot), "--duration", "30"])

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert time.perf_counter() - started < 5  # refused before any request
    assert message in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello\nworld\n", "is not a BERT WordPiece vocabulary: it lacks [CLS], [PAD], [SEP], [UNK]"),
        (b"\xff\xfe\x00\x80", "cannot read the tokenizer"),
    ],
)
def test_a_vocabulary_that_is_not_wordpiece_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "vocab.txt").write_bytes(content)

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--target", "127.0.0.1:1", "--text", "hi", "--tokenizer", str(tmp_path / "vocab.txt")])

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert message in line


def test_concurrency_beyond_one_process_is_refused_and_above_the_requests_capped(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--target", target(server, "grpc"), "--concurrency", str(cli.MAX_CONCURRENCY + 1)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert f"at most {cli.MAX_CONCURRENCY}" in line

    exit_code, report, err = run_json(
        capsys, "--target", target(server, "grpc"), "--concurrency", "50", "--requests", "5", "--warmup", "0"
    )
    assert exit_code == 0
    assert "note: --concurrency 50 capped at 5, the number of requests" in err
    assert report["settings"]["concurrency"] == 5

    # without --requests, the default count caps it
    _, report, err = run_json(capsys, "--target", target(server, "grpc"), "--concurrency", "500", "--warmup", "0")
    assert f"capped at {cli.DEFAULT_REQUESTS}" in err
    assert report["settings"]["concurrency"] == cli.DEFAULT_REQUESTS
