"""The Neuron compile step, behind a seam: which packages compile for a family, and the call itself.

The packages and their versions are the release table's (``config.neuron_releases``), the same
release the server image that loads the model comes from. Inside the compile container they are
checked against what is installed before anything is traced, so an image built from an older table
stops with one line rather than producing a model the server cannot load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from config.engines import ServingEngine
from config.hardware import NeuronFamily
from config.neuron_releases import LIBNRT_RELEASES, TRITON_INF2, NeuronPackage
from modelbuild.options import Family, ModelBuildError

Forward = Callable[..., Mapping[str, Any]]
"""The model's forward pass: keyword tensors named as the signature's inputs -> {"logits": tensor}."""
Compiler = Callable[[Forward, Mapping[str, Any]], Any]
"""(forward, example inputs) -> a trackable callable taking the inputs as one dict."""

# The tracing API of each family: tensorflow.neuron.trace (tensorflow-neuron, Inf1) and
# tensorflow_neuronx.trace (tensorflow-neuronx, Inf2) (aws-neuron-sdk archive/tensorflow/
# tensorflow-neuron/api-tracing-python-api.rst, tensorflow-neuronx/tfneuronx-python-tracing-api.rst).
TRACE_MODULES = {Family.INF1: "tensorflow.neuron", Family.INF2: "tensorflow_neuronx"}
# torch_neuronx.trace(model, example_inputs) for Triton's model (aws-neuron-sdk, torch-neuronx tracing API).
TORCH_TRACE_MODULE = "torch_neuronx"
# "A flag to allow Neuron graphs to consume variable sized batches of data ... restricted to the 0th
# dimension" (the same pages): the compiled batch then runs any multiple of itself ("send a larger
# inference batch size ... equal to a multiple of the compiled batch size", archive/appnotes/perf/
# neuron-cc/performance-tuning.rst).
DYNAMIC_BATCH_FLAG = "--dynamic-batch-size"


@dataclass(frozen=True)
class NeuronToolchain:
    """The pip packages that compile for a family, from the release its server image comes from."""

    family: Family
    server: ServingEngine
    release: str
    packages: tuple[NeuronPackage, ...]
    trace_module: str
    dockerfile: str
    """The compile image's Dockerfile in modelbuild/compiler: TensorFlow's, or PyTorch's for Triton."""


def toolchain(family: Family, server: ServingEngine = ServingEngine.TFSERVING) -> NeuronToolchain:
    if family is Family.CPU:
        raise ValueError("cpu compiles nothing")
    if server is ServingEngine.TRITON:
        return NeuronToolchain(
            family=family,
            server=server,
            release=TRITON_INF2.framework_release,
            packages=TRITON_INF2.compiler,
            trace_module=TORCH_TRACE_MODULE,
            dockerfile="Dockerfile.torch",
        )
    releases = LIBNRT_RELEASES[NeuronFamily(family.value)]
    return NeuronToolchain(
        family=family,
        server=server,
        release=releases.framework_release,
        packages=releases.compiler,
        trace_module=TRACE_MODULES[family],
        dockerfile="Dockerfile",
    )


def check_installed(chain: NeuronToolchain, installed: Callable[[str], str] = importlib.metadata.version) -> None:
    """Every package of ``chain`` at the table's version, or one line naming the first that is not."""
    for package in chain.packages:
        try:
            found = installed(package.name)
        except importlib.metadata.PackageNotFoundError:
            found = "not installed"
        if found != package.version:
            raise ModelBuildError(
                f"The compile container has {package.name} {found}, but the {chain.family.value} server image "
                f"comes from Neuron {chain.release}, which ships {package.version}: rebuild it (make model "
                "builds it from config/neuron_releases.py)"
            )


def neuron_compiler(
    chain: NeuronToolchain,
    *,
    installed: Callable[[str], str] = importlib.metadata.version,
    import_module: Callable[[str], Any] = importlib.import_module,
) -> Compiler:
    """Checks the toolchain, then returns the compile step: Neuron's ``trace`` with dynamic batch size."""
    check_installed(chain, installed)

    def compile_with_neuron(forward: Forward, example_inputs: Mapping[str, Any]) -> Any:
        flags = os.environ.get("NEURON_CC_FLAGS", "").split()
        if DYNAMIC_BATCH_FLAG not in flags:
            os.environ["NEURON_CC_FLAGS"] = " ".join([*flags, DYNAMIC_BATCH_FLAG])
        trace = import_module(chain.trace_module).trace
        return trace(forward, dict(example_inputs))

    return compile_with_neuron


def neuron_trace(
    chain: NeuronToolchain,
    *,
    installed: Callable[[str], str] = importlib.metadata.version,
    import_module: Callable[[str], Any] = importlib.import_module,
) -> Callable[[Any, tuple[Any, ...]], Any]:
    """Triton's compile step: checks torch-neuronx and its compiler against the table, then returns
    ``torch_neuronx.trace(module, example_inputs)``.

    Neuron's compiler keeps float32 (``--auto-cast=none``, its default since Neuron 2.27); Neuron's
    published BERT figures use ``--auto-cast=matmult --auto-cast-type=bf16``, faster and within
    bf16's precision, which a build could opt into after checking its logits against the CPU's.
    """
    check_installed(chain, installed)

    def trace(module: Any, example: tuple[Any, ...]) -> Any:
        return import_module(chain.trace_module).trace(module, example)

    return trace
