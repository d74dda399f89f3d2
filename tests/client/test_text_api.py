"""The load client measures the text API too (``--api text``): the same figures, against the text front in
front of the stand-in, with the key from the environment, the URL from the stack's TextUrl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from client import cli
from client.endpoint import StackEndpoint, resolve
from client.text import API_KEY_VARIABLE, DEFAULT_PAIR, DEFAULT_TEXT, classify, text_body
from contracts import outputs
from tests.text_front.harness import LABELS, front, model_folder, serving
from tools.model_server_standin import Behaviour, LocalServer


@pytest.fixture
def standin() -> Iterator[LocalServer]:
    with LocalServer(Behaviour(model_time=0.002)) as running:
        yield running


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return model_folder(tmp_path / "bert")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, captured.err


def test_the_text_api_gets_the_same_figures_and_each_text_reaches_the_model(
    standin: LocalServer, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with front(model, target=f"127.0.0.1:{standin.grpc_port}") as url:
        code, report, _ = run_json(
            capsys, "--api", "text", "--target", url.removeprefix("http://"),
            "--requests", "40", "--concurrency", "4", "--batch", "2", "--warmup", "4", "--hourly-price", "0.228",
        )  # fmt: skip

    assert code == 0
    assert (report["requests"], report["errors"]) == (40, 0)
    assert report["settings"]["api"] == "text"
    assert report["settings"]["inputs"] == "text"
    assert report["cost"]["per_million_inferences_usd"] > 0
    # each request's two inputs are two model calls: (40 + 4 warm-up) x 2
    assert standin.counters.predicts == 88


def test_a_missing_key_is_one_line_naming_the_status(
    standin: LocalServer, model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_VARIABLE, raising=False)
    with front(model, target=f"127.0.0.1:{standin.grpc_port}", api_key="s3cret") as url:
        refused, _, said = run_json(capsys, "--api", "text", "--target", url.removeprefix("http://"), "--requests", "3")
        monkeypatch.setenv(API_KEY_VARIABLE, "s3cret")
        accepted, report, _ = run_json(
            capsys, "--api", "text", "--target", url.removeprefix("http://"), "--requests", "3"
        )

    assert refused == 1
    assert "most often HTTP 401" in said.strip().splitlines()[-1]
    assert (accepted, report["errors"]) == (0, 0)


def test_one_classification_names_every_label_and_sends_the_key(
    standin: LocalServer, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What make integ and make triton-check ask of a text front: one pair, its labels."""
    monkeypatch.setenv(API_KEY_VARIABLE, "s3cret")
    with front(model, target=f"127.0.0.1:{standin.grpc_port}", api_key="s3cret") as url:
        labels = classify(url, DEFAULT_TEXT, DEFAULT_PAIR, timeout=10)

    assert sorted(labels) == sorted(LABELS.values())


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ([{"label": "a", "score": 0.2}, {"label": "b", "score": 0.7}, {"label": "c", "score": 0.1}], ["b", "a", "c"]),
        ({"outputs": [[0.1, 0.9]]}, 'POST /predict answered {"outputs": [[0.1, 0.9]]}, not TEI\'s scores'),
        ([], "POST /predict answered [], not TEI's scores"),
    ],
    ids=["scores, best first", "not scores", "empty"],
)
def test_the_labels_come_best_first_and_any_other_answer_is_one_error(answer: Any, outcome: Any) -> None:
    sent: list[Any] = []

    async def predict(request: Request) -> JSONResponse:
        sent.append(await request.json())
        return JSONResponse(answer)

    with serving(Starlette(routes=[Route("/predict", predict, methods=["POST"])])) as url:
        try:
            result: Any = classify(url, "one sentence", timeout=10)
        except ValueError as error:
            result = str(error)

    assert result == outcome
    assert sent == [{"inputs": "one sentence"}]


def test_status_reads_the_fronts_health(standin: LocalServer, model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with front(model, target=f"127.0.0.1:{standin.grpc_port}") as url:
        code = cli.main(["status", "--api", "text", "--target", url.removeprefix("http://")])

    assert code == 0
    assert capsys.readouterr().out.strip() == "bert: READY"


def test_the_body_is_teis_a_pair_or_a_batch_of_pairs() -> None:
    assert json.loads(text_body(None, None, 1)) == {"inputs": [DEFAULT_TEXT, DEFAULT_PAIR]}
    assert json.loads(text_body("one text", None, 1)) == {"inputs": ["one text"]}
    assert json.loads(text_body("a", "b", 3)) == {"inputs": [["a", "b"]] * 3}


STACK_OUTPUTS = {
    outputs.GRPC_PORT: "8500",
    outputs.REST_PORT: "8501",
    outputs.MODEL_NAME: "bert",
    outputs.SERVICE_NAME: "svc",
    outputs.LOAD_BALANCER_DNS_NAME: "bert-nlb-123.elb.us-east-1.amazonaws.com",
    outputs.TEXT_URL: "https://bert-nlb-123.elb.us-east-1.amazonaws.com:8080",
    outputs.TENSOR_TLS: "true",
    outputs.model_output(outputs.MODEL_NAME, 1): "minilm",
    outputs.model_output(outputs.GRPC_PORT, 1): "8502",
    outputs.model_output(outputs.REST_PORT, 1): "8503",
    outputs.model_output(outputs.TEXT_URL, 1): "https://bert-nlb-123.elb.us-east-1.amazonaws.com:8081",
}


def test_the_stack_says_where_each_models_text_api_is_and_whether_its_ports_are_tls() -> None:
    first = resolve("BertInferentia", session=object(), outputs=STACK_OUTPUTS)
    second = resolve("BertInferentia", session=object(), model="minilm", outputs=STACK_OUTPUTS)

    assert first.text_url == "https://bert-nlb-123.elb.us-east-1.amazonaws.com:8080"
    assert second.text_url == "https://bert-nlb-123.elb.us-east-1.amazonaws.com:8081"
    assert first.tensor_tls is True


@pytest.mark.parametrize(
    ("argv", "target", "tls"),
    [
        (["--api", "text"], "https://api.example.com:8081", True),
        (["--api", "text", "--no-tls"], "http://api.example.com:8081", False),
        (["--api", "kserve", "--protocol", "rest"], "api.example.com:8503", True),
    ],
)
def test_with_a_certificate_the_client_connects_to_the_certificates_name(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], target: str, tls: bool
) -> None:
    found = resolve("BertInferentia", session=object(), model="minilm", outputs=STACK_OUTPUTS)
    monkeypatch.setattr("client.endpoint.resolve", lambda _name, model=None: found)
    load, _ = cli.build_parser()
    args = load.parse_args(["--stack", "BertInferentia", "--model", "minilm", "--host", "api.example.com", *argv])

    destination = cli._destination(args)

    assert (destination.target, destination.tls) == (target, tls)


def test_a_stack_without_a_text_api_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = StackEndpoint("10.0.0.5", 8500, 8501, "bert", "inf1.xlarge", "tfserving")
    monkeypatch.setattr("client.endpoint.resolve", lambda _name, model=None: found)

    code = cli.main(["--stack", "BertInferentia", "--api", "text", "--requests", "1"])

    assert code == 1
    assert "has no text API (TextUrl)" in capsys.readouterr().err


def test_tls_is_really_asked_for_over_grpc(standin: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    # A plain-text server cannot complete a TLS handshake: with --tls every request fails, none succeeds.
    code, _, said = run_json(
        capsys, "--target", f"127.0.0.1:{standin.grpc_port}", "--tls", "--requests", "2", "--warmup", "0",
        "--timeout", "2",
    )  # fmt: skip

    assert code == 1
    assert standin.counters.predicts == 0
    assert "requests failed" in said
