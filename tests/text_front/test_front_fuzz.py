"""No request body, however malformed, gets a 500 or a traceback: only an answer or TEI's JSON error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.text_front.harness import ScriptedServer, front, model_folder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
texts = st.text(max_size=60)
inputs = st.one_of(
    texts,
    st.lists(texts, min_size=0, max_size=3),
    st.lists(st.lists(texts, min_size=0, max_size=3), min_size=0, max_size=5),
    json_values,
)
documents = st.fixed_dictionaries(
    {"inputs": inputs},
    optional={"truncate": json_values, "raw_scores": json_values, "truncation_direction": json_values},
)
bodies = st.one_of(
    documents.map(lambda doc: json.dumps(doc).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One connection for every example: a client per request would spend most of the time on its set-up."""
    base = model_folder(Path(tmp_path_factory.mktemp("fuzz")) / "bert")
    with front(base, ScriptedServer(), max_client_batch_size=4) as served, httpx.Client(base_url=served) as session:
        yield session


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_body_gets_predictions_or_a_tei_error(client: httpx.Client, body: bytes) -> None:
    answer = client.post("/predict", content=body, headers={"Content-Type": "application/json"}, timeout=10)

    assert answer.status_code in {200, 400, 422}
    document = answer.json()
    if answer.status_code == 200:
        rows = document if document and isinstance(document[0], list) else [document]
        assert all(len(row) == 2 and row[0]["score"] >= row[1]["score"] for row in rows)
    else:
        assert set(document) == {"error", "error_type"}
        assert document["error_type"] in {"Validation", "Empty"}
        assert "Traceback" not in document["error"]
