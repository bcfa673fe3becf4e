"""The container-driver interface: one small Protocol every backend implements.

Like Flagger's providers or Argo Rollouts' traffic routers, the core never talks to a scheduler
directly: synchronisation hands a driver a `ServiceSpec` per service version and asks back, for a
set of services, what runs and where (`ServiceStatus` with its `Instance`s). Specs are plain
dataclasses (no pydantic), so this module costs nothing at import time.

Every service version is addressed by (namespace, deployment, cluster, service), where `service`
is the breed name (`sava:1.0.0`); drivers derive their own object names from it (`object_name`).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

State = Literal["running", "deploying", "failed", "absent"]


class DriverError(Exception):
    """A driver could not do what was asked; the message is the reason users see in the status."""


@dataclass(frozen=True)
class PortSpec:
    name: str
    number: int  # the port the service listens on inside its container (local: assigned)
    protocol: str = "http"  # http | tcp


@dataclass(frozen=True)
class HealthCheckSpec:
    port: str  # a port name of the service
    path: str = "/"
    protocol: str = "HTTP"  # HTTP | HTTPS | TCP
    initial_delay: int = 0  # seconds
    timeout: int = 5
    interval: int = 10
    failures: int = 3


@dataclass(frozen=True)
class ServiceSpec:
    """What to run for one service version of a deployment cluster."""

    deployment: str
    cluster: str
    service: str  # the breed name, e.g. sava:1.0.0
    deployable_type: str  # container/docker | command | ...
    definition: str  # the image, or the command line
    ports: tuple[PortSpec, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never in a repr
    arguments: tuple[tuple[str, str], ...] = ()
    cpu: float = 1.0  # cores
    memory: float = 1000.0  # MB
    instances: int = 1
    health_checks: tuple[HealthCheckSpec, ...] = ()
    dialects: dict = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # `env` as the digest sees it when it holds secrets (their references and versions in place
    # of their values, deployments/secrets.py); None: `env` itself.
    sealed_env: dict[str, str] | None = field(default=None, repr=False, compare=False)
    # Variables of `env` whose whole value is a secret, as ECS's `valueFrom` names it (the ECS
    # driver lets the task read them, docs/decisions/0038); sealed_env already covers them.
    secret_sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> str:
        return service_key(self.deployment, self.cluster, self.service)

    def digest(self) -> str:
        """A short hash of everything that, changed, needs a redeploy (sync compares it)."""
        data = asdict(self)
        sealed = data.pop("sealed_env")  # popped always: specs without secrets keep their digests
        data.pop("secret_sources")  # the sealed env names the same secrets and versions
        if sealed is not None:
            data["env"] = sealed
        raw = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> "ServiceSpec":
        data = dict(data)
        data["ports"] = tuple(PortSpec(**p) for p in data.get("ports", ()))
        data["health_checks"] = tuple(HealthCheckSpec(**h) for h in data.get("health_checks", ()))
        data["arguments"] = tuple(tuple(a) for a in data.get("arguments", ()))
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Instance:
    name: str
    host: str
    ports: dict[str, int]  # port name -> port reachable from the gateways
    healthy: bool
    reason: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    """What a driver runs for one service version."""

    key: str
    state: State
    instances: tuple[Instance, ...] = ()
    desired: int = 0
    reason: str | None = None
    digest: str | None = None  # the digest of the spec it runs (None: unknown)

    @property
    def ready(self) -> bool:
        return self.state == "running"


@runtime_checkable
class Driver(Protocol):
    name: str

    def deploy(self, namespace: str, spec: ServiceSpec) -> None:
        """Create or update the service version so it runs `spec` (idempotent)."""

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        """Remove the service version; removing what is not there is not an error."""

    def status(self, namespace: str, keys: list[str]) -> dict[str, ServiceStatus]:
        """The state and instances of each service key (`service_key(...)`) asked for."""

    def running(self, namespace: str) -> dict[str, str | None]:
        """Cheap listing: every service key the driver runs in `namespace` -> its spec digest."""


JobState = Literal["succeeded", "failed", "started"]


@dataclass(frozen=True)
class JobSpec:
    """A one-off run (a workflow's script or container breed, docs/decisions/0039): what to run,
    with which environment, stopped at the run's timeout."""

    name: str  # who runs it (the workflow's name): drivers derive their object names from it
    deployable_type: str  # command | container/docker
    definition: str  # the command line, or the image
    env: dict[str, str] = field(default_factory=dict, repr=False)  # holds the run's token: never in a repr
    arguments: tuple[tuple[str, str], ...] = ()
    cpu: float = 0.25
    memory: float = 256.0  # MB
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    """`succeeded`/`failed`: the run is over (exit code, a log tail); `started`: the driver runs it
    on its own (a Kubernetes Job, an ECS task) and settles it itself (its deadline), `handle` naming it."""

    state: JobState
    exit_code: int | None = None
    log: tuple[str, ...] = ()
    reason: str | None = None
    handle: str | None = None


@dataclass(frozen=True)
class FinishedJob:
    """An asynchronous run the driver saw end (its outcome for the run's events)."""

    handle: str
    workflow: str
    exit_code: int | None
    reason: str | None
    duration: float | None = None
    succeeded: bool = False  # exit code 0 and not stopped at its deadline
    log: tuple[str, ...] = ()  # the last lines of its output, where the driver can read them


@runtime_checkable
class JobRunner(Protocol):
    def run_job(self, namespace: str, spec: JobSpec, timeout: float) -> JobResult:
        """Run `spec` once; stop it after `timeout` seconds (reported failed with "timeout")."""


def service_key(deployment: str, cluster: str, service: str) -> str:
    return f"{deployment}/{cluster}/{service}"


_UNSAFE = re.compile(r"[^a-z0-9-]+")


def object_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label for the parts (`sava`, `sava`, `sava:1.0.0` -> `sava-sava-sava-1-0-0-1a2b3c4d`):
    lowercase, `-` for anything else, a hash of the exact parts so distinct keys never collide."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("-", "-".join(parts).lower()).strip("-")
    readable = readable[: limit - len(digest) - 1].rstrip("-")
    return f"{readable}-{digest}" if readable else f"v-{digest}"


def label_value(value: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", value)[:63]
    return cleaned.strip("._-")


def failed(key: str, reason: str) -> ServiceStatus:
    return ServiceStatus(key=key, state="failed", reason=reason)


def merge_dialect(base: Any, extra: Any) -> Any:
    """Maps merge recursively; lists of maps with `name` merge item by item by name (containers,
    env, ports); any other value in `extra` replaces the base's."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = merge_dialect(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(extra, list)
            and all(isinstance(i, dict) and "name" in i for i in base + extra)):
        out = [dict(i) for i in base]
        index = {i["name"]: n for n, i in enumerate(out)}
        for item in extra:
            if item["name"] in index:
                out[index[item["name"]]] = merge_dialect(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(extra)


# --- daemon workflows (0043) ---
DaemonState = Literal["running", "starting", "failed"]


@dataclass(frozen=True)
class DaemonStatus:
    """A daemon workflow as its driver runs it (docs/decisions/0043). `restarts`: how often the
    driver started it again after it died since it was run (None: the driver does not say)."""

    name: str  # the workflow's
    state: DaemonState
    handle: str | None = None  # what the driver runs it as (a process group, a service, a Deployment)
    restarts: int | None = None
    exit_code: int | None = None  # its last exit, when it died
    log: tuple[str, ...] = ()  # the tail of its output, where the driver keeps it
    reason: str | None = None
    token_name: str | None = None  # the name of the API token it was started with (its spec's label `token`)


@runtime_checkable
class DaemonRunner(Protocol):
    def run_daemon(self, namespace: str, spec: JobSpec) -> str:
        """Run `spec` as a long-running service of one instance, restarted when it dies, replacing
        whatever ran for `spec.name` (its handle)."""

    def stop_daemon(self, namespace: str, name: str) -> None:
        """Stop and remove the daemon of workflow `name`; removing what is not there is not an error."""

    def daemons(self, namespace: str) -> dict[str, DaemonStatus]:
        """Every daemon the driver runs in `namespace`, by workflow name."""
