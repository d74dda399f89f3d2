"""Task: the model server and its sidecar, in the profile's runtime layout."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.findings import acknowledge
from components.log_retention import retention
from components.model_server.runtime import task_environment as env
from components.neuron_monitor.runtime import metric_names as metrics
from components.neuron_monitor.runtime import monitor_environment as monitor_env
from config.batching import BatchingSettings
from config.hardware import InstanceSize
from config.placement import ModelSettings, S3Location
from config.profile import RuntimeProfile, Sidecar
from config.triton_memory import shared_memory_plan
from contracts import containers

SOCKET_VOLUME = "sock"
SOCKET_HOST_PATH = "/tmp/sock"
SOCKET_MOUNT = "/sock"
RTD_SOCKET = "unix:/sock/neuron-rtd.sock"
# The walk-through's soft memory limit for each of its two containers.
RTD_MEMORY_RESERVATION_MIB = 1000
SERVER_MEMORY_RESERVATION_MIB = 2048
MONITOR_MEMORY_RESERVATION_MIB = 128
# How the sidecar names the model server in bridge mode (a container link)
SERVER_LINK_ALIAS = "model-server"
# Host directory whose lock files hand out NeuronCore slots to the tasks of one instance.
SLOT_VOLUME = "neuron-slots"
SLOT_HOST_PATH = "/var/run/neuron-core-slots"
SLOT_MOUNT = "/run/neuron-slots"
# "Supported values are between 0.125 vCPUs and 10 vCPUs" (task definition parameters for Managed Instances).
MANAGED_TASK_MAX_CPU_UNITS = 10 * 1024
# Copies the model from S3 into the task before the server starts (modelS3Uri).
MODEL_SYNC_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.15.0"
MODEL_VOLUME = "model"
MODEL_MOUNT = "/model"
# After SIGTERM the server finishes what it holds (milliseconds per request); with the load balancer's
# deregistration delay this fits a spot interruption notice (components/load_balancer.py).
SERVER_STOP_TIMEOUT = Duration.seconds(30)
# Loading a compiled BERT onto NeuronCores takes a while; ECS allows at most 300 s of grace.
HEALTH_CHECK_START_PERIOD = Duration.seconds(300)


def neuron_devices(instance_size: InstanceSize, *permissions: ecs.DevicePermission) -> list[ecs.Device]:
    """Every ``/dev/neuronN`` of the instance, mapped at the same path with ``permissions``."""
    return [
        ecs.Device(host_path=path, container_path=path, permissions=list(permissions))
        for path in instance_size.device_paths
    ]


def cpu_share(instance_sizes: Sequence[InstanceSize], cores_per_task: int) -> int:
    """CPU units reserved per task, in proportion to its NeuronCores, on the smallest size the group launches.

    The shares of all the tasks an instance can hold add up to its CPU, so ECS places no more tasks
    on an instance than it has core slots. (Sizes of other vCPU counts are allowed only where one
    task takes the whole instance and a distinct-instance constraint keeps it alone: config/fleet.py.)
    """
    smallest = min(instance_sizes, key=lambda size: size.vcpus)
    return smallest.schedulable_cpu_units * cores_per_task // smallest.neuron_cores


def managed_task_cpu(size: InstanceSize) -> int:
    """A Managed Instances task's CPU: the instance's, up to the 10 vCPUs such a task may ask for."""
    return min(size.schedulable_cpu_units, MANAGED_TASK_MAX_CPU_UNITS)


def core_slot_environment(model: ModelSettings) -> dict[str, str]:
    """What ``serve.sh`` and ``neuron_slot.py`` need to claim one of the model's core slots."""
    slots = {
        env.NEURON_CORES_PER_TASK: str(model.cores_per_task),
        env.NEURON_CORE_SLOTS: str(model.tasks_per_instance),
        env.NEURON_SLOT_DIR: SLOT_MOUNT,
    }
    if model.core_stride != model.cores_per_task:  # rows of several models
        slots |= {env.NEURON_CORE_OFFSET: str(model.core_offset), env.NEURON_CORE_STRIDE: str(model.core_stride)}
    return slots


class InferenceTaskDefinition(Construct):
    """An EC2 task definition (bridge networking) with two containers, laid out as the profile says.

    Shared instances (``libnrt``): ``tasks_per_instance`` tasks share an instance, each holding
    ``cores_per_task`` NeuronCores. A task claims the first free core slot at start (a lock file
    on a host volume, see runtime/neuron_slot.py) and sets ``NEURON_RT_VISIBLE_CORES``
    from it; its CPU reservation, a 1/N share of the instance, keeps ECS from placing more tasks
    than slots. Host ports are dynamic: the load balancer finds each task. The server maps every
    ``/dev/neuronN`` with ``IPC_LOCK``; a non-essential ``neuron-monitor`` sidecar, sharing the
    task's PID namespace, turns runtime counters into CloudWatch metrics through its logs.

    One task per instance (``rtd``, the 2020 walk-through, unchanged): static host ports; the
    model server reaches a ``neuron-rtd`` daemon through a Unix socket on a shared host volume.

    A model from S3 gets a first container that copies it into a task volume; the server starts
    only once that has succeeded, and the task role may read that prefix and nothing else.
    Otherwise the task role stays empty: nothing in the task calls AWS. The execution role, created
    by CDK, only pulls the images and writes the logs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: RuntimeProfile,
        model: ModelSettings,
        instance_sizes: Sequence[InstanceSize],
        server_image: ecs.ContainerImage,
        sidecar_image: ecs.ContainerImage,
        log_retention_days: int,
        cluster_name: str,
        batching: BatchingSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._model = model
        self.model_volume: tuple[str, str, ecs.ContainerDefinition] | None = None
        """(volume, mount path, the container that fills it) when the model comes from S3."""

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._profile = profile
        self.task_definition = self._task_definition(profile, instance_sizes[0])
        port_mappings = [
            ecs.PortMapping(
                container_port=port,
                host_port=port if profile.static_host_ports else 0,
                protocol=ecs.Protocol.TCP,
                name=name,
            )
            for name, port in (("grpc", model.grpc_port), ("rest", model.rest_port))
        ]

        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only non-secret runtime settings (NeuronCore slots, runtime "
            "socket, metrics namespace); nothing secret is passed to the containers",
        )
        if profile.sidecar is Sidecar.NEURON_RTD:
            self._add_rtd_containers(server_image=server_image, rtd_image=sidecar_image, port_mappings=port_mappings)
        else:
            self._add_libnrt_containers(
                server_image=server_image,
                monitor_image=sidecar_image,
                port_mappings=port_mappings,
                instance_sizes=instance_sizes,
                cluster_name=cluster_name,
                batching=batching,
            )
        if model.s3 is not None:
            self._load_model_from_s3(model.s3)

        execution_policy = self.task_definition.obtain_execution_role().node.find_child("DefaultPolicy")
        acknowledge(
            execution_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource; image pulls are limited to the asset "
            "repository and log writes to the task's log group",
        )

    def _task_definition(self, profile: RuntimeProfile, size: InstanceSize) -> ecs.TaskDefinition:
        pid_mode = ecs.PidMode.TASK if profile.shared_pid_namespace else None
        if not profile.task_networking:
            return ecs.Ec2TaskDefinition(self, "TaskDefinition", network_mode=ecs.NetworkMode.BRIDGE, pid_mode=pid_mode)
        # ECS Managed Instances: awsvpc, and MANAGED_INSTANCES compatibility. CDK's Ec2Service accepts
        # only EC2-compatible definitions, so the template is narrowed to MANAGED_INSTANCES here: a
        # NeuronDevice request is valid on Managed Instances only (ECS API, ResourceRequirement).
        # Sized at task level, as AWS's Neuron example for Managed Instances is ("cpu": "8192",
        # "memory": "16384", no container-level size; ECS developer guide, "Amazon ECS task definitions for
        # AWS Neuron machine learning workloads"): what the instance can schedule, within the 10 vCPUs a
        # Managed Instances task may ask for (task definition parameters for Managed Instances).
        task_definition = ecs.TaskDefinition(
            self,
            "TaskDefinition",
            compatibility=ecs.Compatibility.EC2_AND_MANAGED_INSTANCES,
            network_mode=ecs.NetworkMode.AWS_VPC,
            pid_mode=pid_mode,
            cpu=str(managed_task_cpu(size)),
            memory_mib=str(size.schedulable_memory_mib),
        )
        resource = task_definition.node.default_child
        assert isinstance(resource, ecs.CfnTaskDefinition)
        resource.add_property_override("RequiresCompatibilities", ["MANAGED_INSTANCES"])
        return task_definition

    @property
    def server(self) -> ecs.ContainerDefinition:
        server = self.task_definition.find_container(self._model.name)
        assert server is not None
        return server

    def _load_model_from_s3(self, location: S3Location) -> None:
        """A first container copies the model into a task volume; the server starts only if it succeeded."""
        self.task_definition.add_volume(name=MODEL_VOLUME)
        sync = self.task_definition.add_container(
            "ModelSync",
            container_name=containers.MODEL_SYNC,
            image=ecs.ContainerImage.from_registry(MODEL_SYNC_IMAGE),
            essential=False,
            memory_reservation_mib=MONITOR_MEMORY_RESERVATION_MIB,
            command=["s3", "sync", "--only-show-errors", f"{location.uri}/", f"{MODEL_MOUNT}/"],
            # A task has no instance metadata (IMDSv2, hop limit 1): the CLI takes its credentials from
            # the task role endpoint, but its region only from the environment.
            environment={env.AWS_REGION: Stack.of(self).region},
            logging=self._logging(containers.MODEL_SYNC),
        )
        sync.add_mount_points(ecs.MountPoint(source_volume=MODEL_VOLUME, container_path=MODEL_MOUNT, read_only=False))
        server = self.server
        server.add_container_dependencies(
            ecs.ContainerDependency(container=sync, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )
        server.add_mount_points(ecs.MountPoint(source_volume=MODEL_VOLUME, container_path=MODEL_MOUNT, read_only=True))
        server.add_environment(env.MODEL_BASE_PATH, MODEL_MOUNT)
        self.model_volume = (MODEL_VOLUME, MODEL_MOUNT, sync)

        # Read-only, and only under the model's prefix.
        partition = Stack.of(self).partition
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="ReadTheModel",
                actions=["s3:GetObject"],
                resources=[f"arn:{partition}:s3:::{location.bucket}/{location.prefix}/*"],
            )
        )
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                sid="ListTheModel",
                actions=["s3:ListBucket"],
                resources=[f"arn:{partition}:s3:::{location.bucket}"],
                conditions={"StringLike": {"s3:prefix": [location.prefix, f"{location.prefix}/*"]}},
            )
        )
        acknowledge(
            self.task_definition.task_role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{location.bucket}/{location.prefix}/*]",
            "The model is a folder of objects (saved_model.pb, variables/...): reading it needs every object "
            "under the model's own prefix, and nothing else in the bucket",
        )

    @property
    def server_link_alias(self) -> str | None:
        """How the task's other containers reach the server: a link in bridge mode, else localhost (None)."""
        return None if self._profile.task_networking else SERVER_LINK_ALIAS

    def logging(self, prefix: str) -> ecs.LogDriver:
        """The task's log group, under ``prefix``."""
        return self._logging(prefix)

    def _logging(self, prefix: str) -> ecs.LogDriver:
        return ecs.LogDrivers.aws_logs(stream_prefix=prefix, log_group=self.log_group)

    def _add_libnrt_containers(
        self,
        *,
        server_image: ecs.ContainerImage,
        monitor_image: ecs.ContainerImage,
        port_mappings: list[ecs.PortMapping],
        instance_sizes: Sequence[InstanceSize],
        cluster_name: str,
        batching: BatchingSettings | None,
    ) -> None:
        model = self._model
        managed_devices = self._profile.managed_neuron_devices
        triton = self._profile.engine.instances_per_core
        shm = self.shared_memory = (
            shared_memory_plan(
                instances=model.cores_per_task,
                max_batch=batching.max_batch_size if batching else None,
                size_settable=self._profile.own_instances,
            )
            if triton
            else None
        )
        server_linux = ecs.LinuxParameters(
            self,
            "ServerLinuxParameters",
            # Triton's Python backend: one shared-memory region per model instance (config/triton_memory.py)
            shared_memory_size=shm.shm_mib if shm and shm.task_sets_size else None,
        )
        server_linux.add_capabilities(ecs.Capability.IPC_LOCK)
        if not managed_devices:
            # Each model keeps its own slot locks: its slots are its own core ranges.
            self.task_definition.add_volume(
                name=SLOT_VOLUME, host=ecs.Host(source_path=f"{SLOT_HOST_PATH}/{model.name}")
            )
            # Every size the group launches has the same chips (config/fleet.py).
            server_linux.add_devices(
                *neuron_devices(instance_sizes[0], ecs.DevicePermission.READ, ecs.DevicePermission.WRITE)
            )
        server = self.task_definition.add_container(
            "ModelServer",
            container_name=model.name,
            image=server_image,
            essential=True,
            # Managed Instances size the task, not its containers (see _task_definition)
            cpu=None if managed_devices else cpu_share(instance_sizes, model.cores_per_task),
            memory_reservation_mib=SERVER_MEMORY_RESERVATION_MIB,
            port_mappings=port_mappings,
            environment={
                # With every device its own, the task uses every core: no slot to claim.
                **({} if managed_devices else core_slot_environment(model)),
                # serve.sh writes it to a file and turns on TF Serving's dynamic batching
                **({env.BATCHING_PARAMETERS: batching.parameters_file()} if batching else {}),
                # Triton runs one model instance per NeuronCore of the task, each with a region for a full batch
                **(
                    {
                        env.TRITON_INSTANCES: str(model.cores_per_task),
                        env.TRITON_SHM_REGION_BYTES: str(shm.region_bytes),
                        env.TRITON_MAX_BATCH: str(shm.max_batch),
                    }
                    if shm
                    else {}
                ),
            },
            linux_parameters=server_linux,
            health_check=ecs.HealthCheck(
                command=self._profile.engine.health_command(model.name, model.rest_port),
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=HEALTH_CHECK_START_PERIOD,
            ),
            logging=self._logging(model.name),
            # Time for in-flight requests after SIGTERM; the load balancer stops sending first.
            stop_timeout=SERVER_STOP_TIMEOUT,
        )
        if managed_devices:
            # ECS assigns the instance's Neuron devices to the one container that asks (ECS developer
            # guide, "Managed Neuron device allocation"); CDK has no property for it yet.
            resource = self.task_definition.node.default_child
            assert isinstance(resource, ecs.CfnTaskDefinition)
            resource.add_property_override(
                "ContainerDefinitions.0.ResourceRequirements", [{"Type": "NeuronDevice", "Value": "ALL"}]
            )
        else:
            server.add_mount_points(
                ecs.MountPoint(source_volume=SLOT_VOLUME, container_path=SLOT_MOUNT, read_only=False)
            )

        # The sidecar scrapes the server's own metrics where it has them: over localhost when the task
        # has its own network interface, else through a link (bridge mode gives each container its own).
        server_host = "localhost" if self._profile.task_networking else SERVER_LINK_ALIAS
        metrics_url = self._profile.engine.metrics_url(server_host) if self._profile.server_metrics else None
        monitor = self.task_definition.add_container(
            "NeuronMonitor",
            container_name=containers.NEURON_MONITOR,
            image=monitor_image,
            # Metrics are worth having, not worth stopping inference for.
            essential=False,
            enable_restart_policy=True,
            memory_reservation_mib=MONITOR_MEMORY_RESERVATION_MIB,
            environment={
                monitor_env.METRICS_NAMESPACE: metrics.NAMESPACE,
                monitor_env.CLUSTER_NAME: cluster_name,
                **({monitor_env.TRITON_METRICS_URL: metrics_url} if metrics_url else {}),
            },
            # Neuron's own deployment of neuron-monitor runs it privileged (aws-neuron-sdk
            # src/k8/k8s-neuron-monitor-daemonset.yml) and documents no smaller set; it reads every
            # device's counters and the runtimes in the task's PID namespace. It holds no secret, opens
            # no port, and the task role grants it nothing.
            privileged=True,
            logging=self._logging(containers.NEURON_MONITOR),
        )
        if metrics_url and not self._profile.task_networking:
            # The ECS agent turns a link into a START dependency on the linked container, so the
            # sidecar starts after the server (amazon-ecs-agent agent/api/task/task.go, "Handle
            # ordering for Links"); the scraper also retries until Triton answers.
            monitor.add_link(server, SERVER_LINK_ALIAS)

    def _add_rtd_containers(
        self,
        *,
        server_image: ecs.ContainerImage,
        rtd_image: ecs.ContainerImage,
        port_mappings: list[ecs.PortMapping],
    ) -> None:
        self.task_definition.add_volume(name=SOCKET_VOLUME, host=ecs.Host(source_path=SOCKET_HOST_PATH))
        socket_mount = ecs.MountPoint(source_volume=SOCKET_VOLUME, container_path=SOCKET_MOUNT, read_only=False)

        server = self.task_definition.add_container(
            "ModelServer",
            container_name=self._model.name,
            image=server_image,
            essential=True,
            memory_reservation_mib=RTD_MEMORY_RESERVATION_MIB,
            port_mappings=port_mappings,
            environment={env.NEURON_RTD_ADDRESS: RTD_SOCKET},
            logging=self._logging(self._model.name),
        )
        server.add_mount_points(socket_mount)

        rtd_linux = ecs.LinuxParameters(self, "RtdLinuxParameters")
        rtd_linux.add_capabilities(ecs.Capability.SYS_ADMIN, ecs.Capability.IPC_LOCK)
        rtd = self.task_definition.add_container(
            "NeuronRtd",
            container_name=containers.NEURON_RTD,
            image=rtd_image,
            essential=True,
            memory_reservation_mib=RTD_MEMORY_RESERVATION_MIB,
            command=["neuron-rtd", "-g", RTD_SOCKET],
            environment={"AWS_NEURON_VISIBLE_DEVICES": "ALL"},
            linux_parameters=rtd_linux,
            logging=self._logging(containers.NEURON_RTD),
        )
        rtd.add_mount_points(socket_mount)
