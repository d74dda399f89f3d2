"""Task: the model server and its sidecar, in either runtime layout."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.findings import acknowledge
from components.retention import retention
from config.hardware import InstanceSize
from config.settings import NeuronRuntime

SOCKET_VOLUME = "sock"
SOCKET_HOST_PATH = "/tmp/sock"
SOCKET_MOUNT = "/sock"
RTD_SOCKET = "unix:/sock/neuron-rtd.sock"
RTD_CONTAINER = "neuron-rtd"
MONITOR_CONTAINER = "neuron-monitor"
# The walk-through's soft memory limit for each of its two containers.
RTD_MEMORY_RESERVATION_MIB = 1000
SERVER_MEMORY_RESERVATION_MIB = 2048
MONITOR_MEMORY_RESERVATION_MIB = 128
METRICS_NAMESPACE = "NeuronMonitor"
# Loading a compiled BERT onto NeuronCores takes a while; ECS allows at most 300 s of grace.
HEALTH_CHECK_START_PERIOD = Duration.seconds(300)


def model_available_command(model_name: str, rest_port: int) -> list[str]:
    """A health check that passes only once TF Serving reports the model AVAILABLE.

    The status endpoint answers 200 while the model is still LOADING, so the HTTP code alone
    would call a server healthy before it can serve.
    """
    status_url = f"http://localhost:{rest_port}/v1/models/{model_name}"
    return ["CMD-SHELL", f"curl -fsS {status_url} | grep -q '\"AVAILABLE\"' || exit 1"]


def visible_cores(instance_size: InstanceSize) -> str:
    """The ``NEURON_RT_VISIBLE_CORES`` range covering every NeuronCore of the instance."""
    return f"0-{instance_size.neuron_cores - 1}"


class InferenceTaskDefinition(Construct):
    """An EC2 task definition (bridge networking, static host ports) with two containers.

    ``libnrt`` (today's Neuron): the model server owns every ``/dev/neuronN`` of the instance
    with ``IPC_LOCK``, and a non-essential ``neuron-monitor`` sidecar, sharing the task's PID
    namespace, turns runtime counters into CloudWatch metrics through its logs.

    ``rtd`` (the 2020 walk-through, unchanged): the model server reaches a ``neuron-rtd`` daemon
    through a Unix socket on a shared host volume; the daemon holds the devices.

    The task role stays empty: nothing in the task calls AWS. The execution role, created by
    CDK, only pulls the images and writes the logs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: NeuronRuntime,
        instance_size: InstanceSize,
        model_name: str,
        grpc_port: int,
        rest_port: int,
        server_image: ecs.ContainerImage,
        sidecar_image: ecs.ContainerImage,
        log_retention_days: int,
        cluster_name: str,
    ) -> None:
        super().__init__(scope, construct_id)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.task_definition = ecs.Ec2TaskDefinition(
            self,
            "TaskDefinition",
            network_mode=ecs.NetworkMode.BRIDGE,
            pid_mode=ecs.PidMode.TASK if runtime is NeuronRuntime.LIBNRT else None,
        )
        self.model_container_name = model_name
        port_mappings = [
            ecs.PortMapping(container_port=port, host_port=port, protocol=ecs.Protocol.TCP, name=name)
            for name, port in (("grpc", grpc_port), ("rest", rest_port))
        ]

        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only non-secret runtime settings (NeuronCore range, runtime "
            "socket, metrics namespace); nothing secret is passed to the containers",
        )
        if runtime is NeuronRuntime.RTD:
            self._add_rtd_containers(
                server_image=server_image,
                rtd_image=sidecar_image,
                model_name=model_name,
                port_mappings=port_mappings,
            )
        else:
            self._add_libnrt_containers(
                server_image=server_image,
                monitor_image=sidecar_image,
                model_name=model_name,
                rest_port=rest_port,
                port_mappings=port_mappings,
                instance_size=instance_size,
                cluster_name=cluster_name,
            )

        execution_policy = self.task_definition.obtain_execution_role().node.find_child("DefaultPolicy")
        acknowledge(
            execution_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource; image pulls are limited to the asset "
            "repository and log writes to the task's log group",
        )

    def _logging(self, prefix: str) -> ecs.LogDriver:
        return ecs.LogDrivers.aws_logs(stream_prefix=prefix, log_group=self.log_group)

    def _add_libnrt_containers(
        self,
        *,
        server_image: ecs.ContainerImage,
        monitor_image: ecs.ContainerImage,
        model_name: str,
        rest_port: int,
        port_mappings: list[ecs.PortMapping],
        instance_size: InstanceSize,
        cluster_name: str,
    ) -> None:
        server_linux = ecs.LinuxParameters(self, "ServerLinuxParameters")
        server_linux.add_capabilities(ecs.Capability.IPC_LOCK)
        server_linux.add_devices(
            *(
                ecs.Device(
                    host_path=path,
                    container_path=path,
                    permissions=[ecs.DevicePermission.READ, ecs.DevicePermission.WRITE],
                )
                for path in instance_size.device_paths
            )
        )
        self.task_definition.add_container(
            "ModelServer",
            container_name=model_name,
            image=server_image,
            essential=True,
            memory_reservation_mib=SERVER_MEMORY_RESERVATION_MIB,
            port_mappings=port_mappings,
            environment={"NEURON_RT_VISIBLE_CORES": visible_cores(instance_size)},
            linux_parameters=server_linux,
            health_check=ecs.HealthCheck(
                command=model_available_command(model_name, rest_port),
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=HEALTH_CHECK_START_PERIOD,
            ),
            logging=self._logging(model_name),
        )

        # Reads the devices' counters only; the NeuronCores stay the server's.
        monitor_linux = ecs.LinuxParameters(self, "MonitorLinuxParameters")
        monitor_linux.add_devices(
            *(
                ecs.Device(host_path=path, container_path=path, permissions=[ecs.DevicePermission.READ])
                for path in instance_size.device_paths
            )
        )
        self.task_definition.add_container(
            "NeuronMonitor",
            container_name=MONITOR_CONTAINER,
            image=monitor_image,
            # Metrics are worth having, not worth stopping inference for.
            essential=False,
            enable_restart_policy=True,
            memory_reservation_mib=MONITOR_MEMORY_RESERVATION_MIB,
            environment={"METRICS_NAMESPACE": METRICS_NAMESPACE, "CLUSTER_NAME": cluster_name},
            linux_parameters=monitor_linux,
            logging=self._logging(MONITOR_CONTAINER),
        )

    def _add_rtd_containers(
        self,
        *,
        server_image: ecs.ContainerImage,
        rtd_image: ecs.ContainerImage,
        model_name: str,
        port_mappings: list[ecs.PortMapping],
    ) -> None:
        self.task_definition.add_volume(name=SOCKET_VOLUME, host=ecs.Host(source_path=SOCKET_HOST_PATH))
        socket_mount = ecs.MountPoint(source_volume=SOCKET_VOLUME, container_path=SOCKET_MOUNT, read_only=False)

        server = self.task_definition.add_container(
            "ModelServer",
            container_name=model_name,
            image=server_image,
            essential=True,
            memory_reservation_mib=RTD_MEMORY_RESERVATION_MIB,
            port_mappings=port_mappings,
            environment={"NEURON_RTD_ADDRESS": RTD_SOCKET},
            logging=self._logging(model_name),
        )
        server.add_mount_points(socket_mount)

        rtd_linux = ecs.LinuxParameters(self, "RtdLinuxParameters")
        rtd_linux.add_capabilities(ecs.Capability.SYS_ADMIN, ecs.Capability.IPC_LOCK)
        rtd = self.task_definition.add_container(
            "NeuronRtd",
            container_name=RTD_CONTAINER,
            image=rtd_image,
            essential=True,
            memory_reservation_mib=RTD_MEMORY_RESERVATION_MIB,
            command=["neuron-rtd", "-g", RTD_SOCKET],
            environment={"AWS_NEURON_VISIBLE_DEVICES": "ALL"},
            linux_parameters=rtd_linux,
            logging=self._logging(RTD_CONTAINER),
        )
        rtd.add_mount_points(socket_mount)
