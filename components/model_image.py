"""Images: the model server (with the model baked in) and its sidecar, built from ``docker/``."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from config.neuron_releases import NeuronPackage
from config.placement import ModelSettings
from config.profile import RuntimeProfile

# Resolved from this file, not the working directory, so synth works from anywhere.
DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
MODEL_DIR = DOCKER_DIR / "model-server" / "model"


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
        model_dir: Path = MODEL_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        model_in_image = model.s3 is None
        releases = profile.releases

        self.server_asset = ecr_assets.DockerImageAsset(
            self,
            "ServerImage",
            directory=str(DOCKER_DIR / "model-server"),
            # the TF Serving image's Dockerfile is the default one: no file property, no asset hash change
            file=profile.engine.dockerfile if profile.engine.dockerfile != "Dockerfile" else None,
            platform=ecr_assets.Platform.LINUX_AMD64,
            build_args={
                "BASE_IMAGE": profile.base_image,
                **neuron_build_args(server=releases.server),
                "MODEL_NAME": model.name,
                "GRPC_PORT": str(model.grpc_port),
                "REST_PORT": str(model.rest_port),
                "MODEL_IN_IMAGE": "true" if model_in_image else "false",
            },
        )
        self.sidecar_asset = ecr_assets.DockerImageAsset(
            self,
            "SidecarImage",
            directory=str(DOCKER_DIR / profile.sidecar.value),
            platform=ecr_assets.Platform.LINUX_AMD64,
            build_args=neuron_build_args(others=releases.monitor),
        )
        self.server_image = ecs.ContainerImage.from_docker_image_asset(self.server_asset)
        self.sidecar_image = ecs.ContainerImage.from_docker_image_asset(self.sidecar_asset)

        model_file = profile.engine.model_file
        if model_in_image and not has_saved_model(model_dir, model_file):
            Annotations.of(self).add_warning_v2(
                "bert-inferentia:no-model",
                f"No {profile.engine.model_kind} in {model_dir} (expected <version>/{model_file}). "
                "Synth is fine; `cdk deploy` will stop at the image build. See README, 'Providing the model'.",
            )
