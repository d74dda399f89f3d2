"""The text front speaks TEI's classification API: text in, labels out, TEI's errors for bad input."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from components.model_server.runtime.model_signature import BUILD_RECORD
from components.text_front.runtime.backend import BackendFailed, BackendUnavailable
from components.text_front.runtime.front import FrontConfigError, from_environment
from tests.conftest import ROOT
from tests.text_front.harness import ScriptedServer, front, model_folder
from tools.model_server_standin import Behaviour, LocalServer

PAIR = ["The company said profits rose.", "Profits went up, the firm said."]
# One client for the module: httpx.post builds a client (and its TLS context) per call.
HTTP = httpx.Client(timeout=10)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return model_folder(tmp_path / "bert")


def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return HTTP.post(f"{url}/predict", json=body, timeout=10, **kwargs)


def test_a_text_gets_every_class_best_first_with_the_checkpoints_labels(model: Path) -> None:
    server = ScriptedServer()
    with front(model, server) as url:
        answer = post(url, {"inputs": "The company said profits rose."})

    assert answer.status_code == 200
    predictions = answer.json()
    assert [p["label"] for p in predictions] == ["not_equivalent", "equivalent"]  # 8 tokens: logits [2, 1]
    assert predictions[0]["score"] > predictions[1]["score"]
    assert sum(p["score"] for p in predictions) == pytest.approx(1.0)
    assert predictions[0]["score"] == pytest.approx(float(np.exp(2) / (np.exp(2) + np.exp(1))), rel=1e-5)


def test_rows_are_the_pair_padded_to_the_compiled_length(model: Path) -> None:
    server = ScriptedServer()
    with front(model, server) as url:
        assert post(url, {"inputs": PAIR}).status_code == 200

    (rows,) = server.calls
    assert {name: array.shape for name, array in rows.items()} == {name: (1, 16) for name in rows}
    mask, segments, ids = rows["input_mask"][0], rows["segment_ids"][0], rows["input_ids"][0]
    length = int(mask.sum())
    assert ids[0] == 2  # [CLS]
    assert ids[length - 1] == 3  # [SEP]
    assert segments[:length].tolist().count(1) > 0  # the second text is segment 1
    assert ids[length:].tolist() == [0] * (16 - length)  # [PAD]


def test_a_batch_answers_a_list_per_input_each_sent_to_the_server_on_its_own(model: Path) -> None:
    server = ScriptedServer()
    with front(model, server) as url:
        answer = post(url, {"inputs": [["the company"], PAIR, ["shares fell"]]})

    assert answer.status_code == 200
    assert [len(predictions) for predictions in answer.json()] == [2, 2, 2]
    assert len(server.calls) == 3


def test_raw_scores_are_the_logits(model: Path) -> None:
    with front(model, ScriptedServer()) as url:
        predictions = post(url, {"inputs": "the company", "raw_scores": True}).json()

    assert predictions == [{"score": 1.0, "label": "not_equivalent"}, {"score": 1.0, "label": "equivalent"}]


def test_long_input_is_truncated_unless_truncate_is_false(model: Path) -> None:
    long_text = " ".join(["shares"] * 40)
    server = ScriptedServer()
    with front(model, server) as url:
        truncated = post(url, {"inputs": long_text})
        refused = post(url, {"inputs": long_text, "truncate": False})

    assert truncated.status_code == 200
    assert int(server.calls[0]["input_mask"].sum()) == 16
    assert refused.status_code == 422
    assert refused.json() == {
        "error": "`inputs` must have less than 16 tokens. Given: 42",
        "error_type": "Validation",
    }


def test_left_truncation_keeps_the_end(model: Path) -> None:
    server = ScriptedServer()
    with front(model, server) as url:
        post(url, {"inputs": "the " * 20 + "profits rose", "truncation_direction": "left"})

    ids = server.calls[0]["input_ids"][0].tolist()
    assert ids[-3:-1] == [5 + 3, 5 + 4]  # "profits", "rose", then [SEP]


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (b'{"inputs": ""}', 400, "Empty", "`inputs` cannot be empty"),
        (b'{"inputs": ["", ""]}', 400, "Empty", "`inputs` cannot be empty"),
        (b'{"inputs": []}', 422, "Validation", "`inputs`: expected a string"),
        (b'{"inputs": ["a", "b", "c"]}', 422, "Validation", "`inputs`: expected a string"),
        (b'{"inputs": [["a"], "b"]}', 422, "Validation", "`inputs`: expected a string"),
        (b'{"inputs": 7}', 422, "Validation", "`inputs`: expected a string"),
        (b'{"text": "a"}', 422, "Validation", "missing field `inputs`"),
        (b'{"inputs": "a"', 422, "Validation", "the request body is not JSON"),
        (b'{"inputs": "\xff"}', 422, "Validation", "the request body is not valid UTF-8"),
        (b'{"inputs": "a", "raw_scores": "yes"}', 422, "Validation", "`raw_scores`: expected true or false"),
        (b'{"inputs": "a", "truncate": 1}', 422, "Validation", "`truncate`: expected true, false or null"),
        (b'{"inputs": "a", "truncation_direction": "up"}', 422, "Validation", "`truncation_direction`"),
    ],
)
def test_bad_input_gets_teis_error_shape_and_status(
    model: Path, body: bytes, status: int, kind: str, message: str
) -> None:
    with front(model, ScriptedServer()) as url:
        answer = HTTP.post(f"{url}/predict", content=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == status
    assert answer.json()["error_type"] == kind
    assert answer.json()["error"].startswith(message)


def test_a_batch_over_the_limit_is_refused(model: Path) -> None:
    with front(model, ScriptedServer(), max_client_batch_size=2) as url:
        answer = post(url, {"inputs": [["a"], ["b"], ["c"]]})

    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "batch size 3 > maximum allowed batch size 2", "error_type": "Validation"},
    )


def test_a_body_over_the_payload_limit_is_refused_before_it_is_read(model: Path) -> None:
    with front(model, ScriptedServer()) as url:
        answer = HTTP.post(f"{url}/predict", content=b'{"inputs": "' + b"a" * 2_100_000 + b'"}', timeout=30)

    assert answer.status_code == 413
    assert answer.json()["error_type"] == "Validation"


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        (BackendUnavailable("the model server is unavailable"), 503, "Unhealthy"),
        (BackendFailed("boom"), 424, "Backend"),
    ],
)
def test_model_server_faults_are_503_or_424(model: Path, fault: Exception, status: int, kind: str) -> None:
    with front(model, ScriptedServer(fault)) as url:
        answer = post(url, {"inputs": "the company"})

    assert answer.status_code == status
    assert answer.json()["error_type"] == kind


def test_health_follows_the_model_servers_readiness(model: Path) -> None:
    server = ScriptedServer(ready=False)
    with front(model, server) as url:
        down = HTTP.get(f"{url}/health")
        server.is_ready = True
        asyncio.run(asyncio.sleep(1.1))  # past the cached answer
        up = HTTP.get(f"{url}/health")

    assert (down.status_code, down.json()) == (503, {"error": "unhealthy", "error_type": "Unhealthy"})
    assert up.status_code == 200


class SlowServer(ScriptedServer):
    async def logits(self, tensors: Any) -> Any:
        await asyncio.sleep(0.5)
        return await super().logits(tensors)


def test_requests_beyond_the_concurrency_limit_are_overloaded(model: Path) -> None:
    async def two(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            first = asyncio.create_task(client.post(f"{url}/predict", json={"inputs": "a"}))
            await asyncio.sleep(0.2)
            second = await client.post(f"{url}/predict", json={"inputs": "b"})
            return [await first, second]

    with front(model, SlowServer(), max_concurrent_requests=1) as url:
        first, second = asyncio.run(two(url))

    assert first.status_code == 200
    assert (second.status_code, second.json()) == (429, {"error": "Model is overloaded", "error_type": "Overloaded"})


def test_an_api_key_guards_everything_but_health_and_metrics(model: Path) -> None:
    with front(model, ScriptedServer(), api_key="s3cret") as url:
        missing = post(url, {"inputs": "a"})
        wrong = post(url, {"inputs": "a"}, headers={"Authorization": "Bearer s3cre7"})
        right = post(url, {"inputs": "a"}, headers={"Authorization": "Bearer s3cret"})
        info = HTTP.get(f"{url}/info")
        open_paths = [HTTP.get(f"{url}{path}").status_code for path in ("/health", "/", "/ping", "/metrics")]

    assert (missing.status_code, missing.content) == (401, b"")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert info.status_code == 401
    assert open_paths == [200, 200, 200, 200]


def test_info_describes_the_classifier_as_tei_does(model: Path) -> None:
    with front(model, ScriptedServer(), max_client_batch_size=8) as url:
        info = HTTP.get(f"{url}/info").json()

    assert info["model_type"] == {
        "classifier": {
            "id2label": {"0": "not_equivalent", "1": "equivalent"},
            "label2id": {"not_equivalent": 0, "equivalent": 1},
        }
    }
    assert (info["model_id"], info["served_model_name"]) == ("test/bert-mrpc", "bert")
    assert (info["max_input_length"], info["max_client_batch_size"], info["auto_truncate"]) == (16, 8, True)


def test_metrics_count_requests_and_failures(model: Path) -> None:
    with front(model, ScriptedServer()) as url:
        post(url, {"inputs": "a"})
        post(url, {"inputs": [["a"], ["b"]]})
        post(url, {"inputs": ""})
        page = HTTP.get(f"{url}/metrics").text

    assert 'te_request_count_total{method="single"} 2.0' in page
    assert 'te_request_count_total{method="batch"} 1.0' in page
    assert 'te_request_success_total{method="single"} 1.0' in page
    assert 'te_request_failure_total{err="empty"} 1.0' in page


def test_without_labels_the_classes_are_named_as_hugging_face_names_them(tmp_path: Path) -> None:
    with front(model_folder(tmp_path / "m", labels=None), ScriptedServer()) as url:
        predictions = post(url, {"inputs": "the company said"}).json()

    assert {p["label"] for p in predictions} == {"LABEL_0", "LABEL_1"}


@pytest.mark.parametrize(("api", "protocol"), [("tfserving", "grpc"), ("kserve", "kserve-grpc")])
def test_through_the_stand_in_over_grpc(model: Path, api: str, protocol: str) -> None:
    with LocalServer(Behaviour()) as server, front(model, target=f"127.0.0.1:{server.grpc_port}", api=api) as url:
        answer = post(url, {"inputs": PAIR})
        health = HTTP.get(f"{url}/health")
        received = server.received

    assert answer.status_code == 200
    assert {p["label"] for p in answer.json()} == {"not_equivalent", "equivalent"}
    assert health.status_code == 200
    (call,) = received
    assert call.protocol == protocol
    assert {name: shape for name, (_, shape) in call.inputs.items()} == {
        "input_ids": (1, 16),
        "input_mask": (1, 16),
        "segment_ids": (1, 16),
    }


def test_a_stopped_model_server_is_503_and_unhealthy(model: Path) -> None:
    with LocalServer(Behaviour()) as server:
        target = f"127.0.0.1:{server.grpc_port}"
    with front(model, target=target) as url:
        answer = post(url, {"inputs": "a"})
        health = HTTP.get(f"{url}/health")

    assert (answer.status_code, answer.json()["error_type"]) == (503, "Unhealthy")
    assert health.status_code == 503


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("MODEL_NAME", "", "MODEL_NAME is not set"),
        ("MODEL_SERVER", "localhost", "MODEL_SERVER='localhost': expected host:port"),
        ("SERVER_API", "grpc", "SERVER_API='grpc': expected one of tfserving, kserve"),
        ("MAX_CLIENT_BATCH_SIZE", "0", "MAX_CLIENT_BATCH_SIZE='0': expected a whole number of 1 or more"),
        ("TEXT_PORT", "http", "TEXT_PORT='http'"),
    ],
)
def test_each_bad_variable_is_named(variable: str, value: str, said: str) -> None:
    environ = {"MODEL_NAME": "bert", "MODEL_BASE_PATH": "/models/bert", "MODEL_SERVER": "localhost:8500"}
    with pytest.raises(FrontConfigError) as raised:
        from_environment({**environ, "SERVER_API": "tfserving", variable: value})

    assert str(raised.value).startswith(said)


def test_the_container_stops_in_one_line_without_a_model(tmp_path: Path) -> None:
    environ = {"MODEL_NAME": "bert", "MODEL_BASE_PATH": str(tmp_path), "MODEL_SERVER": "127.0.0.1:1"}
    result = subprocess.run(
        [sys.executable, "-m", "components.text_front.runtime.front"],
        env={**environ, "SERVER_API": "kserve", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == f"text-front: no version folder with a build record ({BUILD_RECORD}) in {tmp_path}: run make model"
