"""The text front in a model's task: its image and its container, beside the model server."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from components.model_server.images import image_asset
from components.text_front.runtime import front_environment as front_env
from config.placement import ModelSettings
from contracts import containers

MEMORY_RESERVATION_MIB = 256
# The front answers 503 on /health until the model server is ready, which takes as long as the model load.
HEALTH_CHECK_START_PERIOD = Duration.seconds(300)


def health_command(port: int) -> str:
    """Docker's CMD-SHELL check: the front's /health over loopback with the image's own python (no curl
    there); an answer other than 2xx raises, and the exit status is 1."""
    url = f"http://127.0.0.1:{port}{front_env.HEALTH_PATH}"
    return f"python -c \"import urllib.request; urllib.request.urlopen('{url}', timeout=4)\""


HEALTH_COMMAND = health_command(front_env.CONTAINER_PORT)


class TextFront(Construct):
    """A container that takes text on ``CONTAINER_PORT`` (TEI's classification API), tokenizes it with the
    model's own tokenizer and asks the model server in the same task, over gRPC.

    ``link_alias`` is how the front reaches the server in bridge mode (a link to the server's container);
    None when the task has its own network interface (awsvpc), where the server is on ``localhost``.
    A model from S3 is read from ``model_volume``, which the model-sync container fills before the
    front starts; a baked model's
    tokenizer and labels are baked into the front's image too. With ``api_key`` ECS puts the secret's
    value in the front's environment when the task starts (the execution role may read that secret only).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_definition: ecs.TaskDefinition,
        model: ModelSettings,
        server: ecs.ContainerDefinition,
        server_api: str,
        link_alias: str | None,
        model_volume: tuple[str, str, ecs.ContainerDefinition] | None,
        logging: ecs.LogDriver,
        api_key: secretsmanager.ISecret | None,
        max_client_batch_size: int,
    ) -> None:
        """``model_volume``: (volume name, mount path, the container that fills it) for a model from S3."""
        super().__init__(scope, construct_id)
        self.asset = image_asset(
            self,
            "Image",
            dockerfile="text_front/runtime/Dockerfile",
            build_args={"MODEL_NAME": model.name},
        )
        server_host = link_alias or "localhost"
        environment = {
            front_env.MODEL_NAME: model.name,
            front_env.MODEL_SERVER: f"{server_host}:{model.grpc_port}",
            front_env.SERVER_API: server_api,
            front_env.PORT: str(front_env.CONTAINER_PORT),
            front_env.MAX_CLIENT_BATCH_SIZE: str(max_client_batch_size),
        }
        if model_volume is not None:
            environment[front_env.MODEL_BASE_PATH] = model_volume[1]
        self.container = task_definition.add_container(
            "TextFront",
            container_name=containers.TEXT_FRONT,
            image=ecs.ContainerImage.from_docker_image_asset(self.asset),
            essential=True,
            memory_reservation_mib=MEMORY_RESERVATION_MIB,
            port_mappings=[
                ecs.PortMapping(
                    container_port=front_env.CONTAINER_PORT,
                    host_port=0 if link_alias else front_env.CONTAINER_PORT,  # bridge: a dynamic host port
                    protocol=ecs.Protocol.TCP,
                    name="text",
                )
            ],
            environment=environment,
            secrets={front_env.API_KEY: ecs.Secret.from_secrets_manager(api_key)} if api_key else None,
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", HEALTH_COMMAND],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=HEALTH_CHECK_START_PERIOD,
            ),
            logging=logging,
            stop_timeout=Duration.seconds(30),
        )
        if link_alias:
            # Bridge mode: the server is reached by a link, which also starts the front after it
            # (amazon-ecs-agent agent/api/task/task.go, "Handle ordering for Links").
            self.container.add_link(server, link_alias)
        if model_volume is not None:
            volume, mount, filler = model_volume
            self.container.add_mount_points(ecs.MountPoint(source_volume=volume, container_path=mount, read_only=True))
            self.container.add_container_dependencies(
                ecs.ContainerDependency(container=filler, condition=ecs.ContainerDependencyCondition.SUCCESS)
            )
