"""Images: the model server (with the model baked in) and its sidecar, each built from its unit's ``runtime/``
folder, with ``components/`` as the build context (so every image can take ``neuron_packages/``)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components import model_server
from config.neuron_releases import os_pins, pip_pins
from config.placement import ModelSettings
from config.profile import RuntimeProfile, Sidecar

# Resolved from this file, not the working directory, so synth works from anywhere.
CONTEXT_DIR = Path(__file__).resolve().parent.parent
RUNTIME_DIR = CONTEXT_DIR / "model_server" / "runtime"
SIDECAR_DOCKERFILES = {
    Sidecar.NEURON_MONITOR: "neuron_monitor/runtime/Dockerfile",
    Sidecar.NEURON_RTD: "neuron_rtd/runtime/Dockerfile",
}


def image_asset(
    scope: Construct, construct_id: str, *, dockerfile: str, build_args: dict[str, str]
) -> ecr_assets.DockerImageAsset:
    """An image built from ``components/<dockerfile>`` with components/ as its context, holding only what
    ``<dockerfile>.dockerignore`` beside it admits (as Docker's BuildKit reads that file too)."""
    ignore_file = CONTEXT_DIR / f"{dockerfile}.dockerignore"
    patterns = [line for line in ignore_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(CONTEXT_DIR),
        file=dockerfile,
        exclude=patterns,
        ignore_mode=IgnoreMode.DOCKER,
        platform=ecr_assets.Platform.LINUX_AMD64,
        build_args=build_args,
    )


def has_saved_model(model_dir: Path, model_file: str = "saved_model.pb") -> bool:
    """Whether ``model_dir`` holds a model for the server: ``<version>/<model_file>``."""
    return any(model_dir.glob(f"*/{model_file}"))


class ModelServerImages(Construct):
    """The container images of the task, as CDK image assets staged at synth and built at deploy.

    ``server_image`` is TensorFlow Serving for Neuron with the model inside (or, for a model loaded
    from S3, without it: the task copies it in at start). ``sidecar_image`` is the profile's sidecar
    (``neuron-monitor`` or the ``neuron-rtd`` daemon). Every Neuron version is the profile's release
    set's, passed as a build argument.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: RuntimeProfile,
        model: ModelSettings,
        model_dir: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        model_in_image = model.s3 is None
        model_dir = model_dir or model_server.MODEL_DIR  # read at synth: the tests point it elsewhere
        model_server.refuse_unfit_baked_model(model, profile, model_dir)
        releases = profile.releases

        self.server_asset = image_asset(
            self,
            "ServerImage",
            dockerfile=f"model_server/runtime/{profile.engine.dockerfile}",
            build_args={
                "BASE_IMAGE": profile.base_image,
                "NEURON_OS_PACKAGES": os_pins(releases.server),
                **({"NEURON_PIP_PACKAGES": pip_pins(releases.server)} if pip_pins(releases.server) else {}),
                "MODEL_NAME": model.name,
                "MODEL_FAMILY": profile.family.value,
                "GRPC_PORT": str(model.grpc_port),
                "REST_PORT": str(model.rest_port),
                "MODEL_IN_IMAGE": "true" if model_in_image else "false",
            },
        )
        self.sidecar_asset = image_asset(
            self,
            "SidecarImage",
            dockerfile=SIDECAR_DOCKERFILES[profile.sidecar],
            build_args={"NEURON_OS_PACKAGES": os_pins(releases.monitor)},
        )
        self.server_image = ecs.ContainerImage.from_docker_image_asset(self.server_asset)
        self.sidecar_image = ecs.ContainerImage.from_docker_image_asset(self.sidecar_asset)

        model_file = profile.engine.model_file
        if model_in_image and not has_saved_model(model_dir, model_file):
            Annotations.of(self).add_warning_v2(
                "bert-inferentia:no-model",
                f"No {profile.engine.model_kind} in {model_dir} (expected <version>/{model_file}). "
                "Synth is fine; `cdk deploy` will stop at the image build. See docs/model.md.",
            )
