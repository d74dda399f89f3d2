"""The command behind `make model` and `make model-upload`: one line on bad input, never a traceback.

python -m modelbuild [--family inf1|inf2|cpu] [--checkpoint ID|DIR] [--out DIR] [--version N]
                     [--batch N] [--seq N] [--tiny 1]
python -m modelbuild upload --s3 s3://bucket/prefix [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from config.engines import ServingEngine
from modelbuild.options import BuildOptions, Family, ModelBuildError, parse_options


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modelbuild", description="Build the BERT SavedModel TF Serving loads."
    )
    for flag in ("--family", "--server", "--checkpoint", "--out", "--version", "--batch", "--seq", "--tiny"):
        parser.add_argument(flag, default="")
    parser.add_argument("--in-container", action="store_true", help=argparse.SUPPRESS)
    return parser


def _upload_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelbuild upload", description="Upload every built version.")
    parser.add_argument("--s3", default="")
    parser.add_argument("--out", default="")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelbuild check", description="Ask the newest built version.")
    for flag in ("--out", "--text", "--pair"):
        parser.add_argument(flag, default="")
    return parser


def build(options: BuildOptions, *, in_container: bool) -> str:
    """Here for cpu (TensorFlow for TF Serving, PyTorch for Triton); in the compile container for Neuron."""
    triton = options.server is ServingEngine.TRITON
    if options.family is Family.CPU:
        if triton:
            # One build per process: keep transformers from importing TensorFlow (seconds) for a PyTorch
            # trace (transformers reads USE_TF once, at import; its "Installation" docs).
            os.environ.setdefault("USE_TF", "0")
            from modelbuild.torch_export import build as trace_here  # noqa: PLC0415  (PyTorch loads only now)

            return str(trace_here(options))
        from modelbuild.export import build as export_here  # noqa: PLC0415  (TensorFlow loads only now)

        return str(export_here(options))
    if in_container:
        from modelbuild.neuron import neuron_compiler, toolchain  # noqa: PLC0415

        chain = toolchain(options.family, options.server)
        if triton:
            from modelbuild.torch_export import export_traced, neuron_trace  # noqa: PLC0415

            return str(export_traced(options, neuron_trace(chain), neuron_release=chain.release))
        from modelbuild.export import export  # noqa: PLC0415

        compiler = neuron_compiler(chain)
        return str(export(options, lambda _model: compiler, neuron_release=chain.release))
    from modelbuild.container import compile_in_container  # noqa: PLC0415

    return str(compile_in_container(options))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["upload"]:
            from modelbuild.upload import upload_command  # noqa: PLC0415

            upload_args = _upload_parser().parse_args(arguments[1:])
            print(upload_command(s3=upload_args.s3, out=upload_args.out))
            return 0
        if arguments[:1] == ["check"]:
            from modelbuild.check import check_command  # noqa: PLC0415

            check_args = _check_parser().parse_args(arguments[1:])
            print(check_command(out=check_args.out, text=check_args.text, pair=check_args.pair))
            return 0
        args = _build_parser().parse_args(arguments)
        options = parse_options(
            family=args.family,
            checkpoint=args.checkpoint,
            out=args.out,
            version=args.version,
            batch=args.batch,
            sequence_length=args.seq,
            tiny=args.tiny,
            server=args.server,
        )
        written = build(options, in_container=args.in_container)
    except ModelBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    shape = f"batch {options.batch}, sequence {options.sequence_length}"
    print(f"Model written to {written} ({options.family.value} for {options.server.value}, {shape})")
    return 0
