"""Hugging Face's own client, unchanged, against the front: InferenceClient(base_url=..., api_key=...)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import InferenceClient, TextClassificationOutputElement
from huggingface_hub.errors import HfHubHTTPError

from tests.text_front.harness import ScriptedServer, front, model_folder


def test_text_classification_gets_the_top_label_with_the_key(tmp_path: Path) -> None:
    server = ScriptedServer()
    with front(model_folder(tmp_path / "bert"), server, api_key="hf-key") as url:
        client = InferenceClient(base_url=url, api_key="hf-key")
        answer = client.text_classification("The company said profits rose.")

    # TEI answers one input with a flat list; huggingface_hub 1.33 reads its first element, the best class.
    assert isinstance(answer, TextClassificationOutputElement)
    assert answer.label == "not_equivalent"
    assert answer.score == pytest.approx(0.7310586, rel=1e-5)  # softmax of logits [2, 1]
    assert len(server.calls) == 1


def test_the_client_is_refused_without_the_key(tmp_path: Path) -> None:
    with front(model_folder(tmp_path / "bert"), ScriptedServer(), api_key="hf-key") as url:
        client = InferenceClient(base_url=url, api_key="another-key")
        with pytest.raises(HfHubHTTPError) as raised:
            client.text_classification("The company said profits rose.")

    assert raised.value.response is not None
    assert raised.value.response.status_code == 401
