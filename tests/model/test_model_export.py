"""`make model` for real: a TINY BERT exported on CPU, and one through the Neuron path with Neuron's call
stood in for, each loaded with TensorFlow and asked what the project's own client sends.

Each export runs once per test session (a few seconds each); nothing is downloaded. TensorFlow is
imported by the fixtures, not at collection, so only the worker that runs these tests pays for it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from client.inputs import BertInputs, load_tokenizer, text_inputs, zero_inputs
from client.transport import predict_request
from components.model_server.runtime import model_signature as signature
from modelbuild import cli
from modelbuild.check import answer, check_command, load
from modelbuild.neuron import neuron_compiler, toolchain
from modelbuild.options import Family, ModelBuildError, parse_options
from tests.model.conftest import ROOT

BATCH_SIZES = ROOT / "components" / "model_server" / "runtime" / "batch_sizes.py"


def tensorflow() -> Any:
    """TensorFlow, set up as the model build sets it up (its module imports it): imported on first use."""
    import modelbuild.export  # noqa: PLC0415

    return modelbuild.export.tf


@dataclass(frozen=True)
class Exported:
    version_dir: Path
    batch: int
    sequence_length: int
    family: str


class StandInNeuron:
    """Neuron's ``trace`` as far as the export sees it: the forward pass frozen into one graph whose weights
    are constants and whose batch dimension is free (what ``--dynamic-batch-size`` gives)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, tuple[tuple[int, ...], str]]] = []

    def trace(self, forward: Any, example_inputs: Mapping[str, Any]) -> Any:
        from modelbuild.export import FrozenForward  # noqa: PLC0415

        self.calls.append({name: (tuple(value.shape), value.dtype.name) for name, value in example_inputs.items()})
        return FrozenForward(forward, example_inputs)


@pytest.fixture(scope="session")
def cpu_model(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """`make model FAMILY=cpu TINY=1 OUT=<dir>`, through the command's own entry point."""
    out = tmp_path_factory.mktemp("cpu-model")
    assert cli.main(["--family", "cpu", "--tiny", "1", "--out", str(out)]) == 0
    return Exported(out / "1", batch=1, sequence_length=signature.DEFAULT_SEQUENCE_LENGTH, family="cpu")


@pytest.fixture(scope="session")
def stand_in_neuron() -> StandInNeuron:
    return StandInNeuron()


@pytest.fixture(scope="session")
def inf2_model(tmp_path_factory: pytest.TempPathFactory, stand_in_neuron: StandInNeuron) -> Exported:
    """What the compile container runs for `make model FAMILY=inf2 TINY=1 BATCH=4 SEQ=32`, Neuron stood in for."""
    from modelbuild.export import export  # noqa: PLC0415

    out = tmp_path_factory.mktemp("inf2-model")
    options = parse_options(
        family="inf2", checkpoint="", out=str(out), version="3", batch="4", sequence_length="32", tiny="1"
    )
    chain = toolchain(Family.INF2)
    installed = {package.name: package.version for package in chain.packages}
    compiler = neuron_compiler(chain, installed=installed.__getitem__, import_module=lambda _name: stand_in_neuron)
    export(options, lambda _model: compiler, neuron_release=chain.release)
    return Exported(out / "3", batch=4, sequence_length=32, family="inf2")


@pytest.fixture(params=["cpu", "inf2"])
def exported(request: pytest.FixtureRequest) -> Exported:
    return request.getfixturevalue(f"{request.param}_model")  # type: ignore[no-any-return]


def serve_grpc(version_dir: Path, request_bytes: bytes) -> dict[str, Any]:
    """What TF Serving computes for the serialized request (modelbuild.check, which `make model-check` runs)."""
    return answer(version_dir, request_bytes)


def test_the_exported_signature_is_the_one_the_client_and_server_share(exported: Exported) -> None:
    function = load(exported.version_dir).signatures[signature.SIGNATURE_NAME]
    _, inputs = function.structured_input_signature

    assert sorted(inputs) == sorted(signature.INPUT_NAMES)
    for name, spec in inputs.items():
        assert spec.dtype.name == signature.INPUT_DTYPE, name
        assert spec.shape.as_list() == [None, exported.sequence_length], name
    (output,) = function.structured_outputs.items()
    assert output[0] == signature.OUTPUT_NAME
    assert output[1].shape.as_list() == [None, 2]


@pytest.mark.parametrize("multiple", [1, 2])
def test_it_answers_the_clients_request_for_the_compiled_batch_and_its_multiples(
    exported: Exported, multiple: int
) -> None:
    tokenizer = load_tokenizer(exported.version_dir)
    batch = exported.batch * multiple
    inputs = text_inputs("The company said", "profit rose", tokenizer, batch, exported.sequence_length)

    reply = serve_grpc(exported.version_dir, predict_request("bert", "", inputs).SerializeToString())

    logits = reply[signature.OUTPUT_NAME]
    assert logits.shape == (batch, 2)
    assert np.isfinite(logits).all()
    assert np.allclose(logits, logits[0])  # the same sentence pair in every row gets the same answer


def test_it_answers_the_walk_throughs_request(cpu_model: Exported) -> None:
    # The 2020 client: one row of zeros, 128 long, for each of the three inputs.
    request = predict_request("bert", "serving_default", zero_inputs(1, 128))

    reply = serve_grpc(cpu_model.version_dir, request.SerializeToString())

    assert reply[signature.OUTPUT_NAME].shape == (1, 2)


def test_make_model_check_asks_the_newest_version_a_sentence_pair_or_zeros(cpu_model: Exported) -> None:
    out = str(cpu_model.version_dir.parent)

    with_text = check_command(out=out, text="The company said", pair="profit rose")
    with_zeros = check_command(out=out, text="", pair="")

    assert re.fullmatch(
        rf"{re.escape(str(cpu_model.version_dir))}: 'The company said' / 'profit rose' -> "
        r"logits \[-?\d+\.\d{4}, -?\d+\.\d{4}\], class [01]",
        with_text,
    )
    assert "the walk-through's zeros" in with_zeros


def test_a_request_with_other_input_names_is_refused_as_tf_serving_refuses_it(cpu_model: Exported) -> None:
    inputs = zero_inputs(1, cpu_model.sequence_length)
    renamed = BertInputs({"attention_mask" if name == "input_mask" else name: v for name, v in inputs.tensors.items()})

    with pytest.raises(ModelBuildError, match="takes \\['input_ids', 'input_mask', 'segment_ids'\\]"):
        answer(cpu_model.version_dir, predict_request("bert", "", renamed).SerializeToString())


def test_the_neuron_call_gets_the_compiled_batch_and_sequence(
    inf2_model: Exported, stand_in_neuron: StandInNeuron
) -> None:
    shape = (inf2_model.batch, inf2_model.sequence_length)

    assert stand_in_neuron.calls == [{name: (shape, signature.INPUT_DTYPE) for name in signature.INPUT_NAMES}]


def test_the_tokenizer_beside_the_model_keeps_the_checkpoints_casing(cpu_model: Exported) -> None:
    from modelbuild.export import tiny_vocabulary  # noqa: PLC0415

    vocabulary = tiny_vocabulary()
    tokenizer = load_tokenizer(cpu_model.version_dir)

    ids = text_inputs("The the", None, tokenizer, 1, 8).tensors["input_ids"][0]

    assert ids[1] == vocabulary.index("The")
    assert ids[2] == vocabulary.index("the")
    assert ids[1] != ids[2]


def test_the_build_record_says_what_was_built(exported: Exported) -> None:
    record = json.loads((exported.version_dir / signature.BUILD_RECORD).read_text())

    assert record["batch"] == exported.batch
    assert record["sequenceLength"] == exported.sequence_length
    assert record["family"] == exported.family
    expected_release = None if exported.family == "cpu" else toolchain(Family(exported.family)).release
    assert record["neuronRelease"] == expected_release


@pytest.mark.parametrize(("max_batch_size", "allowed"), [(8, [4, 8]), (16, [4, 8, 12, 16]), (4, [4])])
def test_the_servers_batching_pads_to_multiples_of_the_compiled_batch(
    inf2_model: Exported, tmp_path: Path, max_batch_size: int, allowed: list[int]
) -> None:
    parameters = tmp_path / "batching.txt"
    parameters.write_text(f"max_batch_size {{ value: {max_batch_size} }}\nbatch_timeout_micros {{ value: 5000 }}\n")

    result = run_batch_sizes(inf2_model.version_dir.parent, parameters)

    assert result.returncode == 0, result.stderr
    lines = parameters.read_text().splitlines()
    assert [int(line.split(":")[1]) for line in lines if line.startswith("allowed_batch_sizes")] == allowed


def test_a_max_batch_that_is_no_multiple_of_the_compiled_batch_stops_the_server(
    inf2_model: Exported, tmp_path: Path
) -> None:
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 6 }\n")

    result = run_batch_sizes(inf2_model.version_dir.parent, parameters)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ERROR: batching maxBatchSize is 6, but the model was compiled for batch 4: set batching.maxBatchSize to a "
        "multiple of 4 (Neuron runs multiples of the compiled batch)"
    ]


def run_batch_sizes(base: Path, parameters: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BATCH_SIZES), str(base), str(parameters)], capture_output=True, text=True, check=False
    )


def test_a_failed_build_leaves_the_version_it_would_replace(tmp_path: Path) -> None:
    from modelbuild.export import export  # noqa: PLC0415

    out = tmp_path / "model"
    (out / "1").mkdir(parents=True)
    (out / "1" / "saved_model.pb").write_bytes(b"the old model")
    options = parse_options(
        family="cpu", checkpoint="", out=str(out), version="1", batch="", sequence_length="8", tiny="1"
    )

    def broken_compiler(_model: Any) -> Any:
        def compile_step(_forward: Any, _example: Any) -> Any:
            raise RuntimeError("compiler crashed")

        return compile_step

    with pytest.raises(RuntimeError, match="compiler crashed"):
        export(options, broken_compiler, neuron_release=None)

    assert (out / "1" / "saved_model.pb").read_bytes() == b"the old model"
    assert sorted(path.name for path in out.iterdir()) == ["1"]


def test_bert_inputs_of_the_client_are_the_signatures_inputs() -> None:
    inputs: BertInputs = zero_inputs(2, 16)

    assert tuple(inputs.tensors) == signature.INPUT_NAMES
    assert {array.dtype.name for array in inputs.tensors.values()} == {signature.INPUT_DTYPE}
