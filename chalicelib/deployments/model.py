"""The deployment, as stored: Vamp's blueprint shape with every breed and scale inline, and a
status per service: `{intention: deployment|undeployment, since, phase: {name: initiated|
updating|done|failed, since, notification}}`.

Models in the DSL's style (strict, pydantic v2, reusing the DSL's own types); plain dicts go in
and out through `load` and `dump`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from chalicelib.dsl import dump as dsl_dump
from chalicelib.dsl.base import (
    Arguments,
    Artifact,
    Dialects,
    EnvironmentVariables,
    MapOf,
    Model,
    Name,
    SafeText,
)
from chalicelib.dsl.blueprint import BlueprintGateways, ClusterGateway
from chalicelib.dsl.breed import Breed, OptionalHealthChecks
from chalicelib.dsl.scale import Scale
from chalicelib.dsl.sla import SlaOrRef

KIND = "deployments"
Intention = Literal["deployment", "undeployment"]
PhaseName = Literal["initiated", "updating", "done", "failed"]


class Phase(Model):
    name: PhaseName = "initiated"
    since: str
    notification: str | None = None


class ServiceStatus(Model):
    intention: Intention = "deployment"
    since: str
    phase: Phase


class DeployedInstance(Model):
    name: str
    host: str
    ports: dict[str, int] = {}
    healthy: bool = True


class DeploymentService(Model):
    breed: Breed
    scale: Scale
    environment_variables: EnvironmentVariables = {}
    arguments: Arguments = []
    health_checks: OptionalHealthChecks = None
    network: SafeText | None = None
    dialects: Dialects = {}
    status: ServiceStatus
    instances: list[DeployedInstance] = []
    # What synchronisation last deployed (the driver spec's digest), and its retry state.
    digest: str | None = None
    attempts: int = Field(0, ge=0)
    retry_at: str | None = None

    @property
    def name(self) -> str:
        return self.breed.name  # type: ignore[return-value]

    @property
    def deploying(self) -> bool:
        return self.status.intention == "deployment"


class DeploymentCluster(Model):
    services: list[DeploymentService] = []
    gateways: MapOf(str, ClusterGateway) = {}
    sla: SlaOrRef | None = None
    health_checks: OptionalHealthChecks = None
    network: SafeText | None = None
    dialects: Dialects = {}

    def service(self, breed_name: str) -> DeploymentService | None:
        return next((s for s in self.services if s.name == breed_name), None)

    def ports(self) -> dict[str, str]:
        """Port name -> port (`8080/http`) of the breeds of the services being deployed."""
        return {n: p for s in self.services if s.deploying for n, p in s.breed.ports.items()}


class Deployment(Artifact):
    kind: ClassVar[str] = KIND
    name: Name
    gateways: BlueprintGateways = {}
    clusters: MapOf(Name, DeploymentCluster) = {}
    environment_variables: EnvironmentVariables = {}
    dialects: Dialects = {}

    @model_validator(mode="before")
    @classmethod
    def _no_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == KIND:
            data = {k: v for k, v in data.items() if k != "kind"}
        return data

    def services(self):
        for cname, cluster in self.clusters.items():
            for service in cluster.services:
                yield cname, cluster, service


def load(doc: dict) -> Deployment:
    return Deployment.model_validate(doc)


def dump(deployment: Deployment) -> dict:
    return dsl_dump(deployment)


def new_status(now: str, intention: Intention = "deployment", notification: str | None = None) -> ServiceStatus:
    return ServiceStatus(intention=intention, since=now, phase=Phase(name="initiated", since=now,
                                                                       notification=notification))


def set_phase(service: DeploymentService, name: PhaseName, now: str, notification: str | None = None) -> bool:
    """Move a service to a phase; False (and nothing changed) when already there with that notification."""
    phase = service.status.phase
    if phase.name == name and phase.notification == notification:
        return False
    since = phase.since if phase.name == name else now
    service.status = service.status.model_copy(update={"phase": Phase(name=name, since=since, notification=notification)})
    return True
