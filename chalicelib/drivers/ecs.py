"""The ECS driver: a task definition per service version and an ECS service running it.

Family and service are both named `object_name(namespace, deployment, cluster, service)` (letters,
digits and `-`, with a hash of the exact names); the service is tagged with the exact key, the
namespace and the spec's digest, so `running()` is a listing plus one describe per 10 services.
Tasks run `awsvpc` in the configured subnets and security groups (`VAMP_ECS_SUBNETS`,
`VAMP_ECS_SECURITY_GROUPS`, a public address unless `VAMP_ECS_ASSIGN_PUBLIC_IP=DISABLED`) on
`VAMP_ECS_LAUNCH_TYPE` (FARGATE by default: the task size is the smallest Fargate size that fits
the scale; the container gets exactly the scale). The task definition names the execution role
(`VAMP_ECS_EXECUTION_ROLE_ARN`: image pulls, logs, the secrets a variable is wholly made of,
which go in `secrets` rather than as values) and sends the container's output to the
`awslogs` group `VAMP_ECS_LOG_GROUP`, under a stream prefix of its own (docs/decisions/0038).
A changed spec registers a new revision and updates the service to it; ECS rolls the tasks.

Status: running when the primary deployment has all desired tasks running and no other
deployment is left; instances are the running tasks' private IPs (moto simulates no tasks, so
there its counts say "0/N tasks running").
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.drivers.base import (
    DaemonStatus,
    DriverError,
    FinishedJob,
    Instance,
    JobResult,
    JobSpec,
    ServiceSpec,
    ServiceStatus,
    merge_dialect,
    object_name,
)
from chalicelib.drivers.job_arguments import Refused, for_ecs
from chalicelib.settings import settings

log = logging.getLogger(__name__)

ASSIGN_PUBLIC_IP = ("ENABLED", "DISABLED")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
_LOG_GROUP = re.compile(r"^[A-Za-z0-9_/.#-]{1,512}$")

KEY_TAG, NAMESPACE_TAG, DIGEST_TAG = "vamp:key", "vamp:namespace", "vamp:digest"
# Workflow runs (docs/decisions/0039): tasks started by `run_job`, each tagged with its deadline
# (epoch seconds), which `stop_overdue_jobs` stops when it has passed: ECS has no task timeout.
JOB_STARTED_BY, WORKFLOW_TAG, DEADLINE_TAG = "vamp-workflow", "vamp:workflow", "vamp:deadline"
TIMEOUT_REASON = "timeout:"
JOB_LOG_LINES = 20  # the log tail a run's event carries (workflows/runs.TAIL_LINES)
# Daemon workflows (0043): their services' tags, and one task at a time.
DAEMON_TAG, TOKEN_NAME_TAG = "vamp:daemon", "vamp:token-name"
DAEMON_DEPLOYMENT = {"maximumPercent": 100, "minimumHealthyPercent": 0}
# Fargate task sizes: cpu units -> allowed memory (MiB).
_FARGATE = [
    (256, [512, 1024, 2048]),
    (512, list(range(1024, 4097, 1024))),
    (1024, list(range(2048, 8193, 1024))),
    (2048, list(range(4096, 16385, 1024))),
    (4096, list(range(8192, 30721, 1024))),
    (8192, list(range(16384, 61441, 4096))),
    (16384, list(range(32768, 122881, 8192))),
]


def fargate_size(cpu: float, memory: float) -> tuple[int, int]:
    """The smallest Fargate (cpu units, memory MiB) that holds `cpu` cores and `memory` MB."""
    units = cpu * 1024
    for size, memories in _FARGATE:
        if size >= units:
            for m in memories:
                if m >= memory:
                    return size, m
    raise DriverError(f"no Fargate task size holds cpu {cpu} and memory {memory}MB")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def container_definition(spec: ServiceSpec) -> dict:
    if spec.deployable_type != "container/docker":
        raise DriverError(f"the ecs driver runs container images, not {spec.deployable_type!r} deployables")
    container: dict[str, Any] = {
        "name": "service",
        "image": spec.definition,
        "essential": True,
        "cpu": max(1, round(spec.cpu * 1024)),
        "memory": max(4, round(spec.memory)),
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.env.items()) if v is not None],
        "portMappings": [{"containerPort": p.number, "hostPort": p.number, "protocol": "tcp", "name": f"p{p.number}"}
                         for p in spec.ports],
        "dockerLabels": {"vamp.deployment": spec.deployment, "vamp.cluster": spec.cluster,
                         "vamp.service": spec.service, **spec.labels},
    }
    if spec.health_checks:
        check = spec.health_checks[0]
        port = next((p.number for p in spec.ports if p.name == check.port), None)
        if check.protocol == "TCP":
            probe = f"nc -z localhost {port} || exit 1"
        else:
            scheme = check.protocol.lower()
            probe = f"curl -fsk {scheme}://localhost:{port}{check.path} || exit 1"
        container["healthCheck"] = {
            "command": ["CMD-SHELL", probe],
            "interval": _clamp(check.interval, 5, 300),
            "timeout": _clamp(check.timeout, 2, 60),
            "retries": _clamp(check.failures, 1, 10),
            "startPeriod": _clamp(check.initial_delay, 0, 300),
        }
    dialect = spec.dialects.get("ecs")
    if isinstance(dialect, dict):
        container = merge_dialect(container, dialect)
    return container


def _check(values: list[str], pattern: re.Pattern, setting: str, what: str) -> None:
    wrong = [v for v in values if not pattern.match(v)]
    if wrong:
        raise DriverError(f"{setting} must hold {what}, not {', '.join(map(repr, wrong))}")


class EcsDriver:
    name = "ecs"

    def __init__(self, cluster: str, subnets: list[str], security_groups: list[str], launch_type: str = "FARGATE",
                 client: Any = None, region: str | None = None, endpoint_url: str | None = None, *,
                 assign_public_ip: str = "ENABLED", execution_role_arn: str | None = None,
                 log_group: str | None = None, logs_client: Any = None):
        _check(subnets, _SUBNET, "VAMP_ECS_SUBNETS", "subnet ids (subnet-0123abcd...)")
        _check(security_groups, _SECURITY_GROUP, "VAMP_ECS_SECURITY_GROUPS", "security group ids (sg-0123abcd...)")
        if assign_public_ip not in ASSIGN_PUBLIC_IP:
            raise DriverError(f"VAMP_ECS_ASSIGN_PUBLIC_IP must be one of {', '.join(ASSIGN_PUBLIC_IP)}, "
                              f"not {assign_public_ip!r}")
        if execution_role_arn is not None:
            _check([execution_role_arn], _ROLE_ARN, "VAMP_ECS_EXECUTION_ROLE_ARN", "an IAM role ARN")
        if log_group is not None:
            _check([log_group], _LOG_GROUP, "VAMP_ECS_LOG_GROUP", "a CloudWatch Logs group name")
            if execution_role_arn is None:  # Fargate's awslogs writes with the execution role
                raise DriverError("VAMP_ECS_LOG_GROUP needs VAMP_ECS_EXECUTION_ROLE_ARN: "
                                  "the execution role writes the tasks' logs")
        self.cluster, self.subnets, self.security_groups = cluster, subnets, security_groups
        self.launch_type, self.assign_public_ip = launch_type, assign_public_ip
        self.execution_role_arn, self.log_group = execution_role_arn, log_group
        self._client, self._region, self._endpoint = client, region, endpoint_url
        self._logs = logs_client

    @classmethod
    def from_settings(cls) -> "EcsDriver":
        s = settings()
        split = lambda v: [x.strip() for x in (v or "").split(",") if x.strip()]  # noqa: E731
        return cls(s.ecs_cluster, split(s.ecs_subnets), split(s.ecs_security_groups), s.ecs_launch_type,
                   region=s.region, endpoint_url=s.aws_endpoint, assign_public_ip=s.ecs_assign_public_ip,
                   execution_role_arn=s.ecs_execution_role_arn, log_group=s.ecs_log_group)

    def network(self) -> dict:
        return {"awsvpcConfiguration": {"subnets": self.subnets, "securityGroups": self.security_groups,
                                        "assignPublicIp": self.assign_public_ip}}

    def task_definition(self, name: str, spec: ServiceSpec, tags: list[dict]) -> dict:
        """RegisterTaskDefinition's arguments for a spec (family `name`)."""
        container = container_definition(spec)
        try:  # Vamp's `arguments` (docker run options) as the container definition's fields
            container = merge_dialect(container, for_ecs(spec.arguments, fargate=self.launch_type == "FARGATE"))
        except Refused as e:
            raise DriverError(f"ecs driver: {e}") from None
        if self.execution_role_arn and spec.secret_sources:
            # The task reads these secrets itself as it starts (the execution role may, under
            # SecretsPrefix): their values stay out of the task definition, which any
            # ecs:DescribeTaskDefinition shows. Without the role they stay values, as before.
            sources = spec.secret_sources
            container["environment"] = [e for e in container.get("environment", []) if e.get("name") not in sources]
            container["secrets"] = [*container.get("secrets", []),
                                    *({"name": n, "valueFrom": v} for n, v in sorted(sources.items()))]
        if self.log_group:
            # Set after the dialect merge on purpose: a service may not send its logs elsewhere
            # with the stack's execution role. The prefix names the service's streams:
            # <family>/service/<task id>.
            container["logConfiguration"] = {"logDriver": "awslogs", "options": {
                "awslogs-group": self.log_group, "awslogs-region": self._region or settings().region,
                "awslogs-stream-prefix": name}}
        task: dict[str, Any] = {
            "family": name,
            "networkMode": "awsvpc",
            "containerDefinitions": [container],
            "tags": tags,
        }
        if self.execution_role_arn:
            task["executionRoleArn"] = self.execution_role_arn
        if self.launch_type == "FARGATE":
            cpu, memory = fargate_size(spec.cpu, spec.memory)
            task.update(requiresCompatibilities=["FARGATE"], cpu=str(cpu), memory=str(memory))
        return task

    @property
    def ecs(self) -> Any:
        if self._client is None:
            self._client = boto3.client("ecs", region_name=self._region, endpoint_url=self._endpoint)
        return self._client

    def _reason(self, e: Exception) -> str:
        response = getattr(e, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return f"ecs: {response['Error'].get('Code')}: {response['Error'].get('Message')}"
        return f"ecs: {e}"

    def _name(self, namespace: str, deployment: str, cluster: str, service: str) -> str:
        return object_name(namespace, deployment, cluster, service, limit=255)

    def deploy(self, namespace: str, spec: ServiceSpec) -> None:
        name = self._name(namespace, spec.deployment, spec.cluster, spec.service)
        digest = spec.digest()
        tags = [{"key": KEY_TAG, "value": spec.key}, {"key": NAMESPACE_TAG, "value": namespace},
                {"key": DIGEST_TAG, "value": digest}]
        task = self.task_definition(name, spec, tags)
        if not self.subnets:
            raise DriverError("ecs: VAMP_ECS_SUBNETS names no subnet: ECS services run awsvpc in the operator's subnets")
        try:
            arn = self.ecs.register_task_definition(**task)["taskDefinition"]["taskDefinitionArn"]
            current = self._describe([name]).get(name)
            if current is not None and current.get("status") == "ACTIVE":
                self.ecs.update_service(cluster=self.cluster, service=name, taskDefinition=arn,
                                        desiredCount=spec.instances, networkConfiguration=self.network())
                self.ecs.tag_resource(resourceArn=current["serviceArn"], tags=tags)
                return
            self.ecs.create_service(
                cluster=self.cluster, serviceName=name, taskDefinition=arn, desiredCount=spec.instances,
                launchType=self.launch_type, networkConfiguration=self.network(), tags=tags, propagateTags="SERVICE",
                enableECSManagedTags=True,
            )
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e

    def run_job(self, namespace: str, spec: JobSpec, timeout: float) -> JobResult:
        """RunTask with the task definition deploy would build (family per workflow), returning at
        once (`started`): the task is stopped at its deadline by `stop_overdue_jobs`."""
        import time

        if not self.subnets:
            raise DriverError("ecs: VAMP_ECS_SUBNETS names no subnet: ECS tasks run awsvpc in the operator's subnets")
        family = object_name("workflow", namespace, spec.name, limit=255)  # workflow-*: what IAM lets RunTask run
        # The environment (the run's token and event among it) goes in RunTask's overrides, not
        # the task definition: revisions stay readable (DescribeTaskDefinition) for good.
        as_service = ServiceSpec(deployment="workflow", cluster=namespace, service=spec.name,
                                 deployable_type=spec.deployable_type, definition=spec.definition, env={},
                                 cpu=spec.cpu, memory=spec.memory, labels={"vamp.workflow": spec.name})
        overrides = {"containerOverrides": [{"name": "service", "environment": [
            {"name": k, "value": v} for k, v in sorted(spec.env.items()) if v is not None]}]}
        tags = [{"key": NAMESPACE_TAG, "value": namespace}, {"key": WORKFLOW_TAG, "value": spec.name[:256]}]
        task = self.task_definition(family, as_service, tags)
        try:  # Vamp's `arguments` (docker run options) as the container definition's fields
            extra = for_ecs(spec.arguments, fargate=self.launch_type == "FARGATE")
        except Refused as e:
            raise DriverError(f"ecs driver: {e}") from None
        task["containerDefinitions"][0] = merge_dialect(task["containerDefinitions"][0], extra)
        deadline = math.ceil(time.time() + timeout)
        try:
            arn = self.ecs.register_task_definition(**task)["taskDefinition"]["taskDefinitionArn"]
            started = self.ecs.run_task(
                cluster=self.cluster, taskDefinition=arn, count=1, launchType=self.launch_type,
                networkConfiguration=self.network(), startedBy=JOB_STARTED_BY, enableECSManagedTags=True,
                overrides=overrides,
                tags=[*tags, {"key": DEADLINE_TAG, "value": str(deadline)}])
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e
        if started.get("failures") or not started.get("tasks"):
            failure = (started.get("failures") or [{}])[0]
            raise DriverError(f"ecs: RunTask: {failure.get('reason', 'no task started')} {failure.get('detail', '')}".strip())
        return JobResult("started", handle=started["tasks"][0]["taskArn"])

    def stop_overdue_jobs(self, namespace: str, now: float | None = None) -> list[str]:
        """Stop the namespace's workflow tasks past their deadline (the timeout enforced); their ARNs."""
        import time

        now = time.time() if now is None else now
        try:
            arns = self.ecs.list_tasks(cluster=self.cluster, startedBy=JOB_STARTED_BY,
                                       desiredStatus="RUNNING").get("taskArns", [])
            stopped = []
            for first in range(0, len(arns), 100):  # DescribeTasks takes 100 at most
                tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[first:first + 100],
                                                include=["TAGS"]).get("tasks", [])
                for t in tasks:
                    tags = {x["key"]: x["value"] for x in t.get("tags", [])}
                    deadline = tags.get(DEADLINE_TAG, "")
                    if tags.get(NAMESPACE_TAG) == namespace and deadline.isdigit() and int(deadline) <= now:
                        self.ecs.stop_task(cluster=self.cluster, task=t["taskArn"],
                                           reason=f"{TIMEOUT_REASON} the workflow run's deadline {deadline} passed")
                        stopped.append(t["taskArn"])
            return stopped
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e

    def finished_jobs(self, namespace: str) -> list[FinishedJob]:
        """The namespace's workflow tasks that have stopped (ECS keeps them listed about an hour):
        exit code of the container, else the reason ECS stopped the task."""
        try:
            arns = self.ecs.list_tasks(cluster=self.cluster, startedBy=JOB_STARTED_BY,
                                       desiredStatus="STOPPED").get("taskArns", [])
            out = []
            for first in range(0, len(arns), 100):
                for t in self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[first:first + 100],
                                                 include=["TAGS"]).get("tasks", []):
                    tags = {x["key"]: x["value"] for x in t.get("tags", [])}
                    if tags.get(NAMESPACE_TAG) != namespace or WORKFLOW_TAG not in tags:
                        continue
                    code = next((c.get("exitCode") for c in t.get("containers", []) if "exitCode" in c), None)
                    started, stopped = t.get("startedAt"), t.get("stoppedAt")
                    duration = (stopped - started).total_seconds() if started and stopped else None
                    reason = t.get("stoppedReason")
                    # a task stopped at its deadline failed whatever its container's exit code says
                    timed_out = bool(reason) and reason.startswith(TIMEOUT_REASON)
                    out.append(FinishedJob(t["taskArn"], tags[WORKFLOW_TAG], code, reason, duration,
                                           succeeded=code == 0 and not timed_out, log=self._log_tail(t)))
            return out
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e

    def _log_tail(self, task: dict) -> tuple[str, ...]:
        """The last lines a workflow task wrote to CloudWatch Logs (awslogs, 0038): the stream
        `<family>/service/<task id>` of the log group; () without a log group or a stream (a
        task stopped before its container started writes none), or when Logs cannot be read
        (the outcome is reported anyway)."""
        if not self.log_group:
            return ()
        family = task.get("taskDefinitionArn", "").rsplit("/", 1)[-1].rsplit(":", 1)[0]
        stream = f"{family}/service/{task['taskArn'].rsplit('/', 1)[-1]}"
        if self._logs is None:
            self._logs = boto3.client("logs", region_name=self._region, endpoint_url=self._endpoint)
        try:
            events = self._logs.get_log_events(logGroupName=self.log_group, logStreamName=stream,
                                               limit=JOB_LOG_LINES, startFromHead=False).get("events", [])
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                log.warning("cannot read the log of %s: %s", task["taskArn"], self._reason(e))
            return ()
        except BotoCoreError as e:
            log.warning("cannot read the log of %s: %s", task["taskArn"], e)
            return ()
        lines = [line for e in events for line in str(e.get("message", "")).splitlines()]
        return tuple(lines[-JOB_LOG_LINES:])

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        name = self._name(namespace, deployment, cluster, service)
        try:
            self.ecs.delete_service(cluster=self.cluster, service=name, force=True)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("ServiceNotFoundException", "ServiceNotActiveException"):
                raise DriverError(self._reason(e)) from e
        except BotoCoreError as e:
            raise DriverError(self._reason(e)) from e

    def _describe(self, names: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for i in range(0, len(names), 10):
            out = self.ecs.describe_services(cluster=self.cluster, services=names[i:i + 10], include=["TAGS"])
            for s in out.get("services", []):
                found[s["serviceName"]] = s
        return found

    def _services(self, namespace: str) -> dict[str, dict]:
        """key -> described service, for every active vamp service of the namespace."""
        try:
            arns: list[str] = []
            for page in self.ecs.get_paginator("list_services").paginate(cluster=self.cluster):
                arns += page.get("serviceArns", [])
            described = self._describe([a.rsplit("/", 1)[-1] for a in arns])
        except ClientError as e:
            if e.response["Error"]["Code"] == "ClusterNotFoundException":
                raise DriverError(f"ecs: cluster {self.cluster!r} not found") from e
            raise DriverError(self._reason(e)) from e
        except BotoCoreError as e:
            raise DriverError(self._reason(e)) from e
        out = {}
        for s in described.values():
            tags = {t["key"]: t["value"] for t in s.get("tags") or []}
            if tags.get(NAMESPACE_TAG) == namespace and KEY_TAG in tags and s.get("status") == "ACTIVE":
                s["_digest"] = tags.get(DIGEST_TAG)
                out[tags[KEY_TAG]] = s
        return out

    def running(self, namespace: str) -> dict[str, str | None]:
        return {k: s["_digest"] for k, s in self._services(namespace).items()}

    def status(self, namespace: str, keys: list[str]) -> dict[str, ServiceStatus]:
        services = self._services(namespace)
        out = {}
        for key in keys:
            s = services.get(key)
            if s is None:
                out[key] = ServiceStatus(key=key, state="absent")
                continue
            out[key] = self._status(key, s)
        return out

    def _status(self, key: str, s: dict) -> ServiceStatus:
        desired, running = s.get("desiredCount", 0), s.get("runningCount", 0)
        deployments = s.get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        failed = primary.get("rolloutState") == "FAILED"
        instances = self._instances(s) if running else ()
        if failed:
            return ServiceStatus(key, "failed", instances, desired,
                                 f"rollout failed: {primary.get('rolloutStateReason', 'unknown')}", s["_digest"])
        if running >= desired and len(deployments) <= 1 and primary.get("runningCount", running) >= desired:
            return ServiceStatus(key, "running", instances, desired, None, s["_digest"])
        events = s.get("events") or []
        last = f"; {events[0]['message']}" if events else ""
        return ServiceStatus(key, "deploying", instances, desired,
                             f"{running}/{desired} tasks running, {len(deployments)} deployment(s){last}", s["_digest"])

    def _instances(self, s: dict) -> tuple[Instance, ...]:
        arns = self.ecs.list_tasks(cluster=self.cluster, serviceName=s["serviceName"],
                                   desiredStatus="RUNNING").get("taskArns", [])
        if not arns:
            return ()
        tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[:100]).get("tasks", [])
        out = []
        for t in tasks:
            ip = next((d["value"] for a in t.get("attachments") or [] for d in a.get("details") or []
                       if d.get("name") == "privateIPv4Address"), None)
            if ip is None:
                continue
            ports = {}
            for c in t.get("containers") or []:
                for b in c.get("networkBindings") or []:
                    ports[str(b.get("containerPort"))] = b.get("hostPort") or b.get("containerPort")
            healthy = t.get("healthStatus") in ("HEALTHY", "UNKNOWN", None) and t.get("lastStatus") == "RUNNING"
            out.append(Instance(t["taskArn"].rsplit("/", 1)[-1], ip, ports, healthy,
                                None if healthy else f"task {t.get('lastStatus')} {t.get('healthStatus')}"))
        return tuple(out)

    # --- daemon workflows (0043) ---
    # An ECS service of one task per daemon, named and its task definition family `workflow-...-
    # daemon`, tagged with its namespace and workflow (never `vamp:key`: synchronisation lists
    # only the services that carry one, so it never undeploys a daemon). ECS restarts a task that
    # stops. At most one task at a time (maximumPercent 100, minimumHealthyPercent 0): a daemon
    # is one instance, replaced rather than doubled. Services have no container overrides: its
    # environment, its token among it, is in the task definition (DescribeTaskDefinition shows
    # it; the token is revoked when the daemon stops or is replaced).
    def _daemon_name(self, namespace: str, name: str) -> str:
        return object_name("workflow", namespace, name, "daemon", limit=255)

    def run_daemon(self, namespace: str, spec: JobSpec) -> str:
        if not self.subnets:
            raise DriverError("ecs: VAMP_ECS_SUBNETS names no subnet: ECS services run awsvpc in the operator's subnets")
        name = self._daemon_name(namespace, spec.name)
        as_service = ServiceSpec(deployment="workflow", cluster=namespace, service=spec.name,
                                 deployable_type=spec.deployable_type, definition=spec.definition, env=dict(spec.env),
                                 arguments=spec.arguments, cpu=spec.cpu, memory=spec.memory,
                                 labels={"vamp.workflow": spec.name})
        tags = [{"key": NAMESPACE_TAG, "value": namespace}, {"key": DAEMON_TAG, "value": spec.name[:256]}]
        if spec.labels.get("token"):
            tags.append({"key": TOKEN_NAME_TAG, "value": spec.labels["token"]})
        task = self.task_definition(name, as_service, tags)
        try:
            current = self._describe([name]).get(name)
            if current is not None and current.get("status") == "DRAINING":
                raise DriverError(f"ecs: the daemon's previous service {name} is still draining (stopped moments "
                                  "ago): start it again once ECS has removed it")
            arn = self.ecs.register_task_definition(**task)["taskDefinition"]["taskDefinitionArn"]
            if current is not None and current.get("status") == "ACTIVE":
                self.ecs.update_service(cluster=self.cluster, service=name, taskDefinition=arn, desiredCount=1,
                                        networkConfiguration=self.network(), forceNewDeployment=True,
                                        deploymentConfiguration=DAEMON_DEPLOYMENT)
                self.ecs.tag_resource(resourceArn=current["serviceArn"], tags=tags)
                return current["serviceArn"]
            created = self.ecs.create_service(
                cluster=self.cluster, serviceName=name, taskDefinition=arn, desiredCount=1,
                launchType=self.launch_type, networkConfiguration=self.network(), tags=tags, propagateTags="SERVICE",
                enableECSManagedTags=True, deploymentConfiguration=DAEMON_DEPLOYMENT)
            return created["service"]["serviceArn"]
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e

    def stop_daemon(self, namespace: str, name: str) -> None:
        try:
            self.ecs.delete_service(cluster=self.cluster, service=self._daemon_name(namespace, name), force=True)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("ServiceNotFoundException", "ServiceNotActiveException"):
                raise DriverError(self._reason(e)) from e
        except BotoCoreError as e:
            raise DriverError(self._reason(e)) from e

    def daemons(self, namespace: str) -> dict[str, DaemonStatus]:
        """The namespace's daemon services (one listing, one describe per 10 services); restarts
        counted from the service's events (`daemon_restarts`), per deployment (the handle's `#...`)."""
        try:
            arns: list[str] = []
            for page in self.ecs.get_paginator("list_services").paginate(cluster=self.cluster):
                arns += page.get("serviceArns", [])
            described = self._describe([a.rsplit("/", 1)[-1] for a in arns])
        except (ClientError, BotoCoreError) as e:
            raise DriverError(self._reason(e)) from e
        out = {}
        for s in described.values():
            tags = {t["key"]: t["value"] for t in s.get("tags") or []}
            if tags.get(NAMESPACE_TAG) != namespace or DAEMON_TAG not in tags or s.get("status") != "ACTIVE":
                continue
            primary = next((d for d in s.get("deployments") or [] if d.get("status") == "PRIMARY"), {})
            events = s.get("events") or []
            if primary.get("rolloutState") == "FAILED":
                state, reason = "failed", f"rollout failed: {primary.get('rolloutStateReason', 'unknown')}"
            elif s.get("runningCount", 0) >= 1:
                state, reason = "running", None
            else:
                state, reason = "starting", events[0]["message"] if events else "no task running yet"
            out[tags[DAEMON_TAG]] = DaemonStatus(
                tags[DAEMON_TAG], state, f"{s['serviceArn']}#{primary.get('id', '')}", restarts=daemon_restarts(s),
                reason=reason, token_name=tags.get(TOKEN_NAME_TAG))
        return out


_STARTED = re.compile(r"^\(service [^)]{1,255}\) has started ([0-9]{1,4}) tasks?:")


def daemon_restarts(service: dict) -> int | None:
    """How often ECS started a task again for the primary deployment, from the service's events
    (the last 100, newest first, which DescribeServices returns anyway): its "has started N
    tasks" messages since the deployment was created, less the first task. None: nothing to go by."""
    primary = next((d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), None)
    if primary is None or primary.get("createdAt") is None:
        return None
    started = 0
    for e in service.get("events") or []:
        match = _STARTED.match(e.get("message") or "")
        if match and e.get("createdAt") is not None and e["createdAt"] >= primary["createdAt"]:
            started += int(match.group(1))
    return max(0, started - 1)
