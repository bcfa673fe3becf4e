"""The Kubernetes driver: a Deployment and a Service per service version, in the Kubernetes
namespace of the Vamp namespace: `<prefix><namespace>` (`vamp-` by default: `/kube-system/...`
deploys into `vamp-kube-system`), created with Pod Security Admission labels at the
namespace policy's level (`restricted` by default) and refused when it exists but is not
vamp's (drivers/kube_policy.py, docs/decisions/0026).

Objects are named `kube_object_name(deployment, cluster, service)` (a DNS-1035 label with a hash
of the exact names), labelled `app.kubernetes.io/managed-by: vamp` and `vamp.io/{deployment,cluster,
service,name}`, and annotated with the exact service key and the digest of the spec they run,
so `running()` is one list call per kind; a service runs a digest only when its Deployment and its
Service both carry it (a failed Service write is written again on the next pass). Both are
written by server-side apply as field manager `vamp` (forced), so what other tools add is kept
and what vamp no longer sets is removed. The pod gets resources from the scale (requests =
limits, Vamp's decimal MB as `M`), env (names every API server accepts, `$` escaped so values are
literal), ports, the first health check as the readiness probe and a more tolerant liveness
probe (a check on a port the breed lacks is refused), and `dialects.kubernetes`
deep-merged into the pod spec (maps merged, lists of named items merged by name) once the
namespace policy's allowlist admits it (a refusal sends nothing to the API server); then no
service account token and, unless the policy relaxes it, the restricted securityContext
(non-root, seccomp RuntimeDefault, no privilege escalation, every capability dropped) wherever
the pod spec leaves it unset. A service is running once the controller observed its generation
and every replica is updated and available (no old pod serving); a namespace found deleted is
created again, one Terminating is a reason until it is gone (docs/decisions/0027).

A workflow's script or container run is a Job (`run_job`, docs/decisions/0039): Kubernetes stops it
at its deadline; `finished_jobs` reports the Jobs whose Complete or Failed condition holds, with
the pod's exit code and log tail; `forget_job` deletes a reported one with its pod.

Reaching the API server: an EKS cluster by name (describe_cluster's endpoint and CA, a token
presigned through STS exactly as `aws eks get-token` does), else the in-cluster service account,
else a kubeconfig (`KUBECONFIG`, optional context). `kubernetes` is imported here only, and
this module only when the driver is used (Lambda cold start).
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
import os
import re
import tempfile
import threading
import time
from typing import Any, Callable

import boto3
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from chalicelib.aws import EKS_TOKEN_TTL as TOKEN_TTL
from chalicelib.aws import eks_token
from chalicelib.drivers.base import (
    DaemonStatus,
    DriverError,
    FinishedJob,
    Instance,
    JobResult,
    JobSpec,
    ServiceSpec,
    ServiceStatus,
    label_value,
    merge_dialect,
    object_name,
    service_key,
)
from chalicelib.drivers.job_arguments import Refused, kubernetes_pod
from chalicelib.drivers.kube_policy import KubeRules, NamespacePolicy, dialect_problems, harden
from chalicelib.settings import settings

log = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by"
KEY_ANNOTATION = "vamp.io/key"
DIGEST_ANNOTATION = "vamp.io/digest"
TEMPLATE_DIGEST_ANNOTATION = "vamp.io/template-digest"  # the pod's: the digest without the instances
PORTS_ANNOTATION = "vamp.io/ports"  # the breed's port names -> numbers, as JSON
NAME_LABEL = "vamp.io/name"
SELECTOR = f"{MANAGED_BY}=vamp"
FIELD_MANAGER = "vamp"  # server-side apply's owner of the fields vamp writes
APPLY_PATCH = "application/apply-patch+yaml"


# -- EKS authentication ----------------------------------------------------------------------
# The token itself is chalicelib/aws.py's `eks_token` (shared with the publisher function's
# discovery of etcd's members, which must not import the kubernetes client).


def eks_configuration(cluster_name: str, region: str, endpoint_url: str | None = None) -> Any:
    """A kubernetes client Configuration for an EKS cluster (its endpoint, CA and a fresh token)."""
    eks = boto3.client("eks", region_name=region, endpoint_url=endpoint_url)
    cluster = eks.describe_cluster(name=cluster_name)["cluster"]
    # STS regional endpoint, as `aws eks get-token` uses; its own client (event handlers are per client).
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint_url or f"https://sts.{region}.amazonaws.com")
    lock = threading.Lock()
    issued: list[float | None] = [None]  # monotonic time of the last token; None: none yet

    config = client.Configuration()
    config.host = cluster["endpoint"]
    ca = cluster.get("certificateAuthority", {}).get("data")
    if ca:
        handle = tempfile.NamedTemporaryFile("wb", prefix="eks-ca-", suffix=".crt", delete=False)
        handle.write(base64.b64decode(ca))
        handle.close()
        config.ssl_ca_cert = handle.name
    config.api_key_prefix = {"authorization": "Bearer"}

    def refresh(cfg: Any) -> None:
        with lock:
            # Never `monotonic() - 0.0`: on a host up less than TOKEN_TTL that is never "expired".
            if issued[0] is None or time.monotonic() - issued[0] > TOKEN_TTL:
                cfg.api_key = {"authorization": eks_token(cluster_name, sts)}
                issued[0] = time.monotonic()

    refresh(config)
    config.refresh_api_key_hook = refresh
    return config


def api_client_from_settings() -> Any:
    s = settings()
    if s.eks_cluster:
        return client.ApiClient(eks_configuration(s.eks_cluster, s.region, s.aws_endpoint))
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    # KUBECONFIG as it is now: the client's own default is read once, when it is imported.
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG") or None, context=s.kube_context)


# -- manifests (pure) ------------------------------------------------------------------------

def _labels(spec: ServiceSpec, name: str) -> dict[str, str]:
    labels = {k: label_value(v) for k, v in spec.labels.items()}
    labels.update({
        MANAGED_BY: "vamp",
        "vamp.io/deployment": label_value(spec.deployment),
        "vamp.io/cluster": label_value(spec.cluster),
        "vamp.io/service": label_value(spec.service),
        NAME_LABEL: name,
    })
    return labels


_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _port_names(ports) -> list[str]:
    """The breed's port names as Kubernetes takes them (IANA_SVC_NAME: at most 15 of [a-z0-9-], a
    letter among them, no '-' at either end or twice), unique within the pod: a name that
    cannot be kept, or that truncation or normalisation made collide (`web_port` and `web-port`,
    `management-port-a` and `-b`), becomes `port-<index>`. Services and probes use numbers, and
    the breed's names travel in the ports annotation, so the names are only labels here."""
    names: list[str] = []
    for index, port in enumerate(ports):
        cleaned = "".join(c if c in _ASCII_ALNUM else "-" for c in port.name.lower())
        while "--" in cleaned:
            cleaned = cleaned.replace("--", "-")
        cleaned = cleaned.strip("-")[:15].strip("-")
        if not cleaned or not any(c.isalpha() for c in cleaned) or cleaned in names:
            cleaned = f"port-{index}"
        while cleaned in names:  # a breed port literally named port-<n>
            cleaned = f"p{len(names)}-{cleaned}"[:15].strip("-")
        names.append(cleaned)
    return names


def kube_object_name(deployment: str, cluster: str, service: str) -> str:
    """object_name as a DNS-1035 label, which a Service's name must be: a letter first (a
    blueprint named `2024-promo` gets `v-2024-promo-...`)."""
    name = object_name(deployment, cluster, service)
    return name if name[0].isalpha() else "v-" + object_name(deployment, cluster, service, limit=61)


def _probe(spec: ServiceSpec, check: Any) -> dict:
    """The readiness probe of a health check: the check as the breed states it."""
    port = next((p.number for p in spec.ports if p.name == check.port), None)
    if port is None:  # Kubernetes would take `port: null` as 0 and refuse the Deployment (422)
        raise DriverError(f"health check on port {check.port!r}: the breed has no such port "
                          f"(its ports: {', '.join(p.name for p in spec.ports) or 'none'})")
    probe: dict[str, Any] = {
        "initialDelaySeconds": check.initial_delay,
        "timeoutSeconds": max(1, check.timeout),
        "periodSeconds": max(1, check.interval),
        "failureThreshold": max(1, check.failures),
    }
    if check.protocol == "TCP":
        probe["tcpSocket"] = {"port": port}
    else:
        probe["httpGet"] = {"path": check.path, "port": port, "scheme": check.protocol}
    return probe


# The liveness probe is the readiness probe made more tolerant (docs/decisions/0027): readiness
# takes a pod out of the gateways' routes after `failures` misses; liveness restarts it only after
# LIVENESS_TOLERANCE times as many, and starts counting once readiness could have given up once, so
# a slow start or a short overload drains traffic instead of killing pods that would recover.
LIVENESS_TOLERANCE = 3


def _liveness(readiness: dict) -> dict:
    probe = copy.deepcopy(readiness)
    probe["failureThreshold"] = readiness["failureThreshold"] * LIVENESS_TOLERANCE
    probe["initialDelaySeconds"] = readiness["initialDelaySeconds"] + (
        readiness["periodSeconds"] * readiness["failureThreshold"])
    return probe


# IsEnvVarName (apimachinery's validation): the rule of every API server without the
# RelaxedEnvironmentVariableValidation gate. The relaxed rule (printable ASCII but '=') is on by
# default only from Kubernetes 1.32 and GA in 1.34, so the strict one is what every cluster
# accepts (docs/decisions/0027).
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _env(spec: ServiceSpec) -> list[dict]:
    """The container's env: names every API server accepts, values as literal as on the other
    drivers (Kubernetes expands `$(VAR)` and reads `$$` as `$` in values: every `$` doubled)."""
    bad = [k for k in sorted(spec.env) if not _ENV_NAME.match(k) or k in (".", "..") or k.startswith("..")]
    if bad:
        raise DriverError(f"environment variable name {bad[0]!r} is refused by Kubernetes: letters, digits, "
                          "'_', '-' and '.', not a digit first (and not '.', '..' or '..' first)")
    return [{"name": k, "value": v.replace("$", "$$")} for k, v in sorted(spec.env.items()) if v is not None]


def _memory(megabytes: float) -> str:
    """Vamp's MB are decimal (its MegaByte reader: MB and M x1, KB /1000, GB x1000; its own
    Kubernetes driver wrote `<n>M`): `256MB` is `256M`, never `256Mi` (5 % more)."""
    kilobytes = max(1, round(megabytes * 1000))
    return f"{kilobytes // 1000}M" if kilobytes % 1000 == 0 else f"{kilobytes}k"


def deployment_manifest(namespace: str, spec: ServiceSpec, policy: NamespacePolicy | None = None) -> dict:
    """The Deployment in Kubernetes namespace `namespace`, under the Vamp namespace's `policy`
    (None: the default, restricted); DriverError when the policy refuses the dialect."""
    if spec.deployable_type != "container/docker":
        raise DriverError(f"the kubernetes driver runs container images, not {spec.deployable_type!r} deployables")
    policy = policy or NamespacePolicy()
    name = kube_object_name(spec.deployment, spec.cluster, spec.service)
    labels = _labels(spec, name)
    container: dict[str, Any] = {
        "name": "service",
        "image": spec.definition,
        "env": _env(spec),
        "ports": [{"name": port_name, "containerPort": p.number, "protocol": "TCP"}
                  for port_name, p in zip(_port_names(spec.ports), spec.ports)],
        "resources": {
            "requests": {"cpu": f"{max(1, round(spec.cpu * 1000))}m", "memory": _memory(spec.memory)},
            "limits": {"cpu": f"{max(1, round(spec.cpu * 1000))}m", "memory": _memory(spec.memory)},
        },
    }
    for check in spec.health_checks[1:]:
        _probe(spec, check)  # refused like the first: only the first becomes the probes
    if spec.health_checks:
        container["readinessProbe"] = _probe(spec, spec.health_checks[0])
        container["livenessProbe"] = _liveness(container["readinessProbe"])
    pod_spec: dict[str, Any] = {"containers": [container]}
    dialect = spec.dialects.get("kubernetes")
    if dialect is not None:
        problems = dialect_problems(dialect, policy)
        if problems:
            raise DriverError("refused by the namespace's policy: " + "; ".join(
                f"dialects.kubernetes{path}: {reason}" for path, reason in problems))
        pod_spec = merge_dialect(pod_spec, dialect)
    try:  # Vamp's `arguments` (docker run options), held to the namespace's policy as dialects are
        fragment, argument_labels = kubernetes_pod(spec.arguments, "service", policy)
    except Refused as e:
        raise DriverError(f"kubernetes driver: {e}") from None
    pod_spec = harden(merge_dialect(pod_spec, fragment), policy)
    labels = {**argument_labels, **labels}  # ours win: the selector's label is never an argument's
    annotations = {KEY_ANNOTATION: spec.key, DIGEST_ANNOTATION: spec.digest()}
    # The pod template's digest leaves the number of instances out: a change of scale alone
    # changes `replicas`, never the template, so Kubernetes scales without rolling any pod.
    template_annotations = {KEY_ANNOTATION: spec.key,
                            TEMPLATE_DIGEST_ANNOTATION: dataclasses.replace(spec, instances=0).digest()}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": spec.instances,
            "selector": {"matchLabels": {NAME_LABEL: name}},
            "template": {"metadata": {"labels": labels, "annotations": template_annotations}, "spec": pod_spec},
        },
    }


def service_manifest(namespace: str, spec: ServiceSpec) -> dict:
    name = kube_object_name(spec.deployment, spec.cluster, spec.service)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(spec, name),
                     "annotations": {KEY_ANNOTATION: spec.key, DIGEST_ANNOTATION: spec.digest(),
                                     PORTS_ANNOTATION: json.dumps({p.name: p.number for p in spec.ports})}},
        "spec": {
            "type": "ClusterIP",
            "selector": {NAME_LABEL: name},
            "ports": [{"name": port_name, "port": p.number, "targetPort": p.number, "protocol": "TCP"}
                      for port_name, p in zip(_port_names(spec.ports), spec.ports)]
            or [{"name": "none", "port": 1, "targetPort": 1}],
        },
    }


JOB_TTL_AFTER_FINISHED = 600  # seconds a finished Job (and its pod's log) stays to be read
WORKFLOW_LABEL = "vamp.io/workflow"
WORKFLOW_ANNOTATION = "vamp.io/workflow"  # the exact name (the label's value is cleaned to 63 characters)
JOB_CONTAINER = "workflow"
JOB_LOG_LINES = 20  # the log tail a run's event carries (workflows/runs.TAIL_LINES)


def job_manifest(namespace: str, spec: JobSpec, timeout: float, policy: NamespacePolicy | None = None,
                 suffix: str = "") -> dict:
    """A workflow's one-off run as a Job (docs/decisions/0039): Kubernetes stops it at the
    timeout (activeDeadlineSeconds: every pod killed, the Job failed `DeadlineExceeded`), never
    retries it (a run is reported, not repeated), and removes it 10 minutes after it ends."""
    if spec.deployable_type != "container/docker":
        raise DriverError(f"the kubernetes driver runs container images, not {spec.deployable_type!r} breeds")
    policy = policy or NamespacePolicy()
    try:  # Vamp's `arguments` (docker run options), held to the namespace's policy as dialects are
        fragment, argument_labels = kubernetes_pod(spec.arguments, JOB_CONTAINER, policy)
    except Refused as e:
        raise DriverError(f"kubernetes driver: {e}") from None
    name = object_name("workflow", spec.name, suffix)
    labels = {**argument_labels, MANAGED_BY: "vamp", WORKFLOW_LABEL: label_value(spec.name),
              **{k: label_value(v) for k, v in spec.labels.items() if k != "workflow"}}
    cpu = f"{max(1, round(spec.cpu * 1000))}m"
    container = {"name": JOB_CONTAINER, "image": spec.definition, "env": _env(spec),
                 "resources": {"requests": {"cpu": cpu, "memory": _memory(spec.memory)},
                               "limits": {"cpu": cpu, "memory": _memory(spec.memory)}}}
    pod_spec = merge_dialect({"containers": [container], "restartPolicy": "Never"}, fragment)
    pod_spec = harden(pod_spec, policy)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {WORKFLOW_ANNOTATION: spec.name}},
        "spec": {
            "activeDeadlineSeconds": max(1, int(timeout)),
            "ttlSecondsAfterFinished": JOB_TTL_AFTER_FINISHED,
            "backoffLimit": 0,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


# -- the driver ------------------------------------------------------------------------------

# (connect, read) seconds for every API call: the client has none by default, and one hung API
# server would stall the whole synchronisation pass (every namespace after it) until Lambda's own
# timeout. A timed-out call is an error like any other: the service is retried on the next pass.
REQUEST_TIMEOUT = (3.05, 15.0)


def _unanswered(error: Exception) -> DriverError:
    return DriverError(f"kubernetes API unreachable or not answering: {type(error).__name__}")


class _Timed:
    """An API object whose every call carries the request timeout unless it names its own."""

    def __init__(self, api: Any, timeout: tuple[float, float]):
        self._api, self._timeout = api, timeout

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("_request_timeout", self._timeout)
            return attr(*args, **kwargs)
        return call


class KubernetesDriver:
    name = "kubernetes"

    def __init__(self, api_client_factory: Callable[[], Any], rules: KubeRules | None = None,
                 request_timeout: tuple[float, float] = REQUEST_TIMEOUT):
        self._factory = api_client_factory
        self._timeout = request_timeout
        self._rules = rules  # None: the settings' (read on every call, as they are cached)
        self._client: Any = None
        self._namespaces: set[str] = set()
        self._lock = threading.Lock()

    @property
    def rules(self) -> KubeRules:
        return self._rules or KubeRules.from_settings(settings())

    def kube_namespace(self, namespace: str) -> str:
        """The Kubernetes namespace of a Vamp namespace (DriverError when it cannot have one)."""
        try:
            return self.rules.namespace(namespace)
        except ValueError as e:
            raise DriverError(f"namespace {namespace!r}: {e}") from None

    @classmethod
    def from_settings(cls) -> "KubernetesDriver":
        return cls(api_client_from_settings)

    def _apis(self) -> tuple[Any, Any]:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
        return (_Timed(client.CoreV1Api(self._client), self._timeout),
                _Timed(client.AppsV1Api(self._client), self._timeout))

    @staticmethod
    def _status_of(e: Exception) -> int | None:
        return getattr(e, "status", None)

    def _reason(self, e: Exception) -> str:
        body = getattr(e, "body", None)
        try:
            message = json.loads(body).get("message") if body else None
        except (ValueError, AttributeError):
            message = None
        status = self._status_of(e)
        return f"kubernetes API {status}: {message or getattr(e, 'reason', e)}" if status else f"kubernetes: {e}"

    def _ensure_namespace(self, core: Any, name: str, labels: dict[str, str]) -> None:
        """Kubernetes namespace `name` exists, is vamp's, is not being deleted, and carries
        `labels` (Pod Security). Remembered once so; forgotten when a write finds it gone."""
        wanted = {MANAGED_BY: "vamp", **labels}
        if (name, tuple(sorted(wanted.items()))) in self._namespaces:
            return
        for _ in range(3):
            try:
                current = core.read_namespace(name)
            except ApiException as e:
                if e.status != 404:
                    raise
                try:
                    core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": name, "labels": wanted}})
                    break
                except ApiException as e2:
                    if e2.status != 409:
                        raise
                    continue  # created meanwhile, or still being deleted: check it
            if current.metadata.deletion_timestamp or (current.status and current.status.phase == "Terminating"):
                raise DriverError(_terminating(name))
            have = dict(current.metadata.labels or {})
            if have.get(MANAGED_BY) != "vamp":
                raise DriverError(f"kubernetes namespace {name!r} exists and is not managed by vamp "
                                  f"(label {MANAGED_BY}=vamp): refusing to deploy into it")
            if all(have.get(k) == v for k, v in wanted.items()):
                break
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": name, "labels": {**have, **wanted}, "resourceVersion": current.metadata.resource_version}}
            try:
                core.replace_namespace(name, body)  # the operator changed the namespace's level
                break
            except ApiException as e:
                if e.status != 409:
                    raise
        else:
            raise DriverError(f"kubernetes: namespace {name} kept changing under us; retrying later")
        with self._lock:
            self._namespaces.add((name, tuple(sorted(wanted.items()))))

    def _forget_namespace(self, name: str) -> None:
        with self._lock:
            self._namespaces = {entry for entry in self._namespaces if entry[0] != name}

    @staticmethod
    def _apply(patch: Callable, namespace: str, body: dict) -> None:
        """Server-side apply as field manager `vamp`: the fields vamp sets are vamp's (forced: vamp
        is the source of truth for them), the ones it no longer sets are removed, and whatever
        other tools add (`kubectl rollout restart`'s annotation, a mesh's labels) is kept."""
        patch(body["metadata"]["name"], namespace, body, field_manager=FIELD_MANAGER, force=True,
              _content_type=APPLY_PATCH)

    def deploy(self, namespace: str, spec: ServiceSpec) -> None:
        rules = self.rules
        kube = self.kube_namespace(namespace)
        try:
            policy, labels = rules.policy(namespace), rules.labels(namespace)
        except ValueError as e:
            raise DriverError(f"kubernetes namespace policy: {e}") from None
        # Built (and checked against the policy) before any call: a refusal sends nothing.
        deployment = deployment_manifest(kube, spec, policy)
        service = service_manifest(kube, spec)
        try:
            core, apps = self._apis()
            for attempt in range(2):
                self._ensure_namespace(core, kube, labels)
                try:
                    # The Deployment first, the Service after: a failure between them leaves a
                    # Deployment whose Service is missing or older, which running() reports as not
                    # running this digest, so the next pass writes both again.
                    self._apply(apps.patch_namespaced_deployment, kube, deployment)
                    self._apply(core.patch_namespaced_service, kube, service)
                    return
                except ApiException as e:
                    gone = _namespace_gone(e)
                    if gone is None:
                        raise
                    self._forget_namespace(kube)
                    if gone == "terminating":
                        raise DriverError(_terminating(kube)) from e
                    if attempt:
                        raise
                    # deleted since we last saw it: create it again, then write once more
        except ApiException as e:
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:  # refused, reset, or no answer within the timeout
            raise _unanswered(e) from e

    def run_job(self, namespace: str, spec: JobSpec, timeout: float) -> JobResult:
        """Create the run's Job and return at once (`started`): Kubernetes enforces the timeout
        and removes the Job; the workflow_run function never waits for it (0039)."""
        kube = self.kube_namespace(namespace)
        try:
            policy, labels = self.rules.policy(namespace), self.rules.labels(namespace)
        except ValueError as e:
            raise DriverError(f"kubernetes namespace policy: {e}") from None
        job = job_manifest(kube, spec, timeout, policy, suffix=str(time.time_ns()))
        try:
            core, _ = self._apis()
            self._ensure_namespace(core, kube, labels)
            _Timed(client.BatchV1Api(self._client), self._timeout).create_namespaced_job(kube, job)
        except ApiException as e:
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e
        return JobResult("started", handle=f"{kube}/{job['metadata']['name']}")

    def _batch(self) -> Any:
        self._apis()  # the client, made once
        return _Timed(client.BatchV1Api(self._client), self._timeout)

    def finished_jobs(self, namespace: str) -> list[FinishedJob]:
        """The namespace's workflow Jobs that ended (condition Complete or Failed), with their
        pod's exit code and the last lines of its log while the pod is there (0039). Kubernetes
        enforces the deadline itself (DeadlineExceeded: its pod killed, so no exit code)."""
        kube = self.kube_namespace(namespace)
        core, _ = self._apis()
        try:
            jobs = self._batch().list_namespaced_job(kube, label_selector=f"{SELECTOR},{WORKFLOW_LABEL}").items
            out = []
            for job in jobs:
                ended = _job_ended(job)
                if ended is None:
                    continue
                succeeded, condition, end = ended
                code, lines = self._job_pod(core, kube, job)
                started = job.status.start_time
                duration = (end - started).total_seconds() if started and end else None
                workflow = (job.metadata.annotations or {}).get(WORKFLOW_ANNOTATION) or \
                    job.metadata.labels[WORKFLOW_LABEL]
                out.append(FinishedJob(f"{kube}/{job.metadata.name}", workflow, code,
                                       None if succeeded else _job_failure(job, condition, code), duration,
                                       succeeded=succeeded and code in (0, None), log=lines))
            return out
        except ApiException as e:
            if e.status == 404 and _namespace_gone(e) is not None:
                return []
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e

    def _job_pod(self, core: Any, kube: str, job: Any) -> tuple[int | None, tuple[str, ...]]:
        """The exit code of the Job's last pod and its log's tail; (None, ()) once the pod is gone
        (killed at the deadline, or removed)."""
        pods = core.list_namespaced_pod(kube, label_selector=f"controller-uid={job.metadata.uid}").items
        ended = [(p, s.state.terminated) for p in pods for s in (p.status.container_statuses or [])
                 if s.name == JOB_CONTAINER and s.state and s.state.terminated]
        if not ended:
            return None, ()
        pod, terminated = max(ended, key=lambda e: e[1].finished_at or e[0].metadata.creation_timestamp)
        try:
            text = core.read_namespaced_pod_log(pod.metadata.name, kube, container=JOB_CONTAINER,
                                                tail_lines=JOB_LOG_LINES)
        except ApiException as e:  # the node's log is gone (pod being removed): the exit code still counts
            log.info("no log of %s/%s: %s", kube, pod.metadata.name, self._reason(e))
            text = ""
        return terminated.exit_code, tuple(str(text or "").splitlines()[-JOB_LOG_LINES:])

    def forget_job(self, namespace: str, handle: str) -> None:
        """Delete a reported Job and its pods (Background: the Job API's default would orphan
        them); ttlSecondsAfterFinished removes those never reported."""
        kube, _, name = handle.partition("/")
        if kube != self.kube_namespace(namespace) or not name:
            raise DriverError(f"kubernetes: {handle!r} is no Job of namespace {namespace!r}")
        try:
            self._batch().delete_namespaced_job(name, kube, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        name = kube_object_name(deployment, cluster, service)
        kube = self.kube_namespace(namespace)
        core, apps = self._apis()
        # The Service first: while the Deployment is there running() lists the service, so a
        # failure between the two deletes is undeployed again on the next pass, never orphaned.
        for delete in (core.delete_namespaced_service, apps.delete_namespaced_deployment):
            try:
                delete(name, kube)
            except ApiException as e:
                if e.status != 404:
                    raise DriverError(self._reason(e)) from e
            except urllib3.exceptions.HTTPError as e:
                raise _unanswered(e) from e

    def _list(self, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
        kube = self.kube_namespace(namespace)
        core, apps = self._apis()
        try:
            deployments = apps.list_namespaced_deployment(kube, label_selector=SELECTOR).items
            services = core.list_namespaced_service(kube, label_selector=SELECTOR).items
        except ApiException as e:
            if e.status == 404:
                return {}, {}
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e

        def by_key(items: list) -> dict[str, Any]:
            return {(i.metadata.annotations or {}).get(KEY_ANNOTATION): i for i in items
                    if (i.metadata.annotations or {}).get(KEY_ANNOTATION)}

        return by_key(deployments), by_key(services)

    def running(self, namespace: str) -> dict[str, str | None]:
        """Every service vamp runs -> the digest both its objects were written with; None when
        the Service is missing or was written for another digest (the write between them failed)."""
        deployments, services = self._list(namespace)
        return {k: _written_digest(d, services.get(k)) for k, d in deployments.items()}

    def status(self, namespace: str, keys: list[str]) -> dict[str, ServiceStatus]:
        deployments, services = self._list(namespace)
        out = {}
        for key in keys:
            d = deployments.get(key)
            if d is None:
                out[key] = ServiceStatus(key=key, state="absent")
                continue
            out[key] = _deployment_status(key, d, services.get(key))
        return out


    # --- daemon workflows (0043) ---
    # A Deployment of one replica per daemon (Kubernetes restarts its container when it dies,
    # restartPolicy Always), labelled vamp.io/daemon and without the key annotation:
    # synchronisation's listing keys Deployments by that annotation, so it never sees (nor
    # undeploys) a daemon. The same calls as services (apply, list, delete): the ClusterRole holds.
    def run_daemon(self, namespace: str, spec: JobSpec) -> str:
        kube = self.kube_namespace(namespace)
        try:
            policy, labels = self.rules.policy(namespace), self.rules.labels(namespace)
        except ValueError as e:
            raise DriverError(f"kubernetes namespace policy: {e}") from None
        body = daemon_manifest(kube, spec, policy)  # checked before any call
        try:
            core, apps = self._apis()
            for attempt in range(2):
                self._ensure_namespace(core, kube, labels)
                try:
                    self._apply(apps.patch_namespaced_deployment, kube, body)
                    return f"{kube}/{body['metadata']['name']}"
                except ApiException as e:
                    gone = _namespace_gone(e)
                    if gone is None:
                        raise
                    self._forget_namespace(kube)
                    if gone == "terminating":
                        raise DriverError(_terminating(kube)) from e
                    if attempt:
                        raise
                    # deleted since we last saw it: create it again, then write once more
        except ApiException as e:
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e
        raise DriverError(f"kubernetes: namespace {kube} kept disappearing")

    def stop_daemon(self, namespace: str, name: str) -> None:
        kube = self.kube_namespace(namespace)
        _, apps = self._apis()
        try:
            apps.delete_namespaced_deployment(daemon_object_name(name), kube)
        except ApiException as e:
            if e.status != 404:
                raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e

    def daemons(self, namespace: str) -> dict[str, DaemonStatus]:
        """One list call. Restarts are not counted: they are the pod's (`restartCount`), and
        listing pods is a permission the control plane does not have."""
        kube = self.kube_namespace(namespace)
        _, apps = self._apis()
        try:
            items = apps.list_namespaced_deployment(kube, label_selector=f"{SELECTOR},{DAEMON_LABEL}=true").items
        except ApiException as e:
            if e.status == 404:
                return {}
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise _unanswered(e) from e
        out = {}
        for d in items:
            annotations = d.metadata.annotations or {}
            workflow = annotations.get(DAEMON_ANNOTATION)
            if not workflow:
                continue
            st = d.status
            observed = (st.observed_generation or 0) if st else 0
            available = (st.available_replicas or 0) if st else 0
            failing = [c for c in (st.conditions or []) if st and (
                (c.type == "Progressing" and c.status == "False") or (c.type == "ReplicaFailure" and c.status == "True"))]
            if observed >= (d.metadata.generation or 0) and failing:
                state, reason = "failed", f"{failing[0].reason}: {failing[0].message}"
            elif observed >= (d.metadata.generation or 0) and available >= 1:
                state, reason = "running", None
            else:
                state, reason = "starting", f"{available}/1 replicas available"
            out[workflow] = DaemonStatus(workflow, state, f"{kube}/{d.metadata.name}", reason=reason,
                                         token_name=annotations.get(TOKEN_NAME_ANNOTATION))
        return out


def _terminating(namespace: str) -> str:
    return (f"kubernetes namespace {namespace} is being deleted (Terminating): nothing can be created in it "
            "until it is gone; deploying again on a later pass")


def _namespace_gone(e: ApiException) -> str | None:
    """'deleted' when a write found its namespace missing, 'terminating' when being deleted."""
    try:
        body = json.loads(e.body) if e.body else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or "")
    if e.status == 403 and "being terminated" in message:
        return "terminating"
    if e.status == 404 and ((body.get("details") or {}).get("kind") == "namespaces" or message.startswith("namespaces ")):
        return "deleted"
    return None


def _job_ended(job: Any) -> tuple[bool, Any, Any] | None:
    """(succeeded, the condition, when it ended) of a Job whose Complete or Failed condition is
    True; None while it runs (Kubernetes sets them only once its pods are gone)."""
    st = job.status
    for c in (st.conditions or []) if st else []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            end = (st.completion_time if c.type == "Complete" else None) or c.last_transition_time
            return c.type == "Complete", c, end
    return None


def _job_failure(job: Any, condition: Any, code: int | None) -> str:
    if condition.reason == "DeadlineExceeded":
        return (f"timeout: stopped after {job.spec.active_deadline_seconds} s "
                f"(kubernetes: DeadlineExceeded: {condition.message})")
    if condition.reason == "BackoffLimitExceeded" and code is not None:
        return f"exited with code {code}"
    return f"kubernetes: {condition.reason}: {condition.message}"


def _digest_of(obj: Any) -> str | None:
    return (obj.metadata.annotations or {}).get(DIGEST_ANNOTATION) if obj is not None else None


def _written_digest(d: Any, svc: Any) -> str | None:
    digest = _digest_of(d)
    return digest if digest is not None and _digest_of(svc) == digest else None


def _deployment_status(key: str, d: Any, svc: Any) -> ServiceStatus:
    """Running only once the controller has seen this generation and every replica runs it:
    updated == replicas == available == desired (no old pod still serving). The status's
    conditions speak of the generation it observed: trusted only when that is this one."""
    desired = d.spec.replicas if d.spec and d.spec.replicas is not None else 1
    st = d.status
    ready = (st.ready_replicas or 0) if st else 0
    available = (st.available_replicas or 0) if st else 0
    updated = (st.updated_replicas or 0) if st else 0
    total = (st.replicas or 0) if st else 0
    observed = (st.observed_generation or 0) if st else 0
    generation = d.metadata.generation or 0
    digest = _written_digest(d, svc)
    instances: tuple[Instance, ...] = ()
    if svc is not None and svc.spec and svc.spec.cluster_ip and svc.spec.cluster_ip != "None":
        try:
            ports = json.loads((svc.metadata.annotations or {}).get(PORTS_ANNOTATION) or "{}")
        except ValueError:
            ports = {}
        instances = (Instance(svc.metadata.name, svc.spec.cluster_ip, ports, ready > 0,
                              None if ready > 0 else "no ready pod"),)
    if observed < generation:
        return ServiceStatus(key, "deploying", instances, desired,
                             f"waiting for the deployment controller to observe generation {generation}", digest)
    for c in (st.conditions or []) if st else []:
        if (c.type == "Progressing" and c.status == "False") or (c.type == "ReplicaFailure" and c.status == "True"):
            return ServiceStatus(key, "failed", instances, desired, f"{c.reason}: {c.message}", digest)
    if svc is None or digest is None:
        missing = "service missing" if svc is None else "service not yet written for this version"
        return ServiceStatus(key, "deploying", instances, desired, f"{ready}/{desired} replicas ready; {missing}",
                             digest)
    if updated == total == available == desired:
        return ServiceStatus(key, "running", instances, desired, None, digest)
    reason = f"{updated}/{desired} replicas updated, {available} available"
    if total > updated:
        reason += f", {total - updated} old still running"
    return ServiceStatus(key, "deploying", instances, desired, reason, digest)


# --- daemon workflows (0043) ---
DAEMON_LABEL = "vamp.io/daemon"
DAEMON_ANNOTATION = "vamp.io/daemon-of"  # the workflow's exact name (a label value may not hold it)
TOKEN_NAME_ANNOTATION = "vamp.io/token-name"  # the name (never the value) of the API token it runs with


def daemon_object_name(workflow: str) -> str:
    return kube_object_name("workflow", workflow, "daemon")


def daemon_manifest(namespace: str, spec: JobSpec, policy: NamespacePolicy | None = None) -> dict:
    """A daemon workflow as a Deployment of one replica: `Recreate` (never two at once: a daemon
    is one instance), restartPolicy Always (Kubernetes restarts it when it dies), the pod
    hardened as the services' and the runs' (restricted, no service account token). Its token is
    a plain `env` value, as a run's (whoever may read Deployments there sees it until revoked)."""
    if spec.deployable_type != "container/docker":
        raise DriverError(f"the kubernetes driver runs container images, not {spec.deployable_type!r} breeds")
    name = daemon_object_name(spec.name)
    labels = {MANAGED_BY: "vamp", WORKFLOW_LABEL: label_value(spec.name), DAEMON_LABEL: "true", NAME_LABEL: name}
    cpu = f"{max(1, round(spec.cpu * 1000))}m"
    container = {"name": "workflow", "image": spec.definition, "env": _env(spec),
                 "resources": {"requests": {"cpu": cpu, "memory": _memory(spec.memory)},
                               "limits": {"cpu": cpu, "memory": _memory(spec.memory)}}}
    policy = policy or NamespacePolicy()
    try:  # Vamp's `arguments` (docker run options), held to the namespace's policy as a run's
        fragment, argument_labels = kubernetes_pod(spec.arguments, "workflow", policy)
    except Refused as e:
        raise DriverError(f"kubernetes driver: {e}") from None
    labels = {**argument_labels, **labels}
    pod_spec = harden(merge_dialect({"containers": [container], "restartPolicy": "Always"}, fragment), policy)
    annotations = {DAEMON_ANNOTATION: spec.name}
    if spec.labels.get("token"):
        annotations[TOKEN_NAME_ANNOTATION] = spec.labels["token"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {NAME_LABEL: name}},
            "template": {"metadata": {"labels": labels, "annotations": {DAEMON_ANNOTATION: spec.name}},
                         "spec": pod_spec},
        },
    }

__all__ = ["KubernetesDriver", "deployment_manifest", "eks_configuration", "eks_token", "service_manifest",
           "service_key"]
