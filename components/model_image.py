"""Images: the model server (with the model baked in) and its sidecar, built from ``docker/``."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from config.neuron_releases import NeuronPackage, NeuronReleaseSet
from config.settings import NeuronRuntime

# Resolved from this file, not the working directory, so synth works from anywhere.
DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
MODEL_DIR = DOCKER_DIR / "model-server" / "model"

AL2023_BASE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
AL2_BASE = "public.ecr.aws/amazonlinux/amazonlinux:2"


def version_build_arg(package: NeuronPackage) -> str:
    """The Dockerfiles' build argument for a package's version, e.g. ``AWS_NEURONX_TOOLS_VERSION``."""
    return package.name.upper().replace("-", "_") + "_VERSION"


def neuron_build_args(
    *, server: tuple[NeuronPackage, ...] = (), others: tuple[NeuronPackage, ...] = ()
) -> dict[str, str]:
    """Build arguments carrying the release table's versions into a Dockerfile.

    The first ``server`` package is the model server, whose name differs between layouts
    (``SERVER_PACKAGE``/``SERVER_VERSION``); every other package has its own version argument.
    """
    args: dict[str, str] = {}
    if server:
        args |= {"SERVER_PACKAGE": server[0].name, "SERVER_VERSION": server[0].version}
    for package in (*server[1:], *others):
        args[version_build_arg(package)] = package.version
    return args


def has_saved_model(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a TF Serving model: ``<version>/saved_model.pb``."""
    return any(model_dir.glob("*/saved_model.pb"))


class ModelServerImages(Construct):
    """The container images of the task, as CDK image assets staged at synth and built at deploy.

    ``server_image`` is TensorFlow Serving for Neuron with the model inside (or, with
    ``model_in_image`` false, without it: the task then loads it from S3). ``sidecar_image`` is
    ``neuron-monitor`` (libnrt) or the ``neuron-rtd`` daemon (rtd).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: NeuronRuntime,
        releases: NeuronReleaseSet,
        model_name: str,
        grpc_port: int,
        rest_port: int,
        model_in_image: bool = True,
        model_dir: Path = MODEL_DIR,
    ) -> None:
        super().__init__(scope, construct_id)

        base_image = AL2_BASE if runtime is NeuronRuntime.RTD else AL2023_BASE

        self.server_asset = ecr_assets.DockerImageAsset(
            self,
            "ServerImage",
            directory=str(DOCKER_DIR / "model-server"),
            platform=ecr_assets.Platform.LINUX_AMD64,
            build_args={
                "BASE_IMAGE": base_image,
                **neuron_build_args(server=releases.server),
                "MODEL_NAME": model_name,
                "GRPC_PORT": str(grpc_port),
                "REST_PORT": str(rest_port),
                "MODEL_IN_IMAGE": "true" if model_in_image else "false",
            },
        )
        sidecar_dir = "neuron-rtd" if runtime is NeuronRuntime.RTD else "neuron-monitor"
        self.sidecar_asset = ecr_assets.DockerImageAsset(
            self,
            "SidecarImage",
            directory=str(DOCKER_DIR / sidecar_dir),
            platform=ecr_assets.Platform.LINUX_AMD64,
            build_args=neuron_build_args(others=releases.monitor),
        )
        self.server_image = ecs.ContainerImage.from_docker_image_asset(self.server_asset)
        self.sidecar_image = ecs.ContainerImage.from_docker_image_asset(self.sidecar_asset)

        if model_in_image and not has_saved_model(model_dir):
            Annotations.of(self).add_warning_v2(
                "bert-inferentia:no-model",
                f"No SavedModel in {model_dir} (expected <version>/saved_model.pb). "
                "Synth is fine; `cdk deploy` will stop at the image build. See README, 'Providing the model'.",
            )
