"""The Kubernetes driver: a Deployment and a Service per service version, in the Kubernetes
namespace of the Vamp namespace: `<prefix><namespace>` (`vamp-` by default: `/kube-system/...`
deploys into `vamp-kube-system`), created with Pod Security Admission labels at the
namespace policy's level (`restricted` by default) and refused when it exists but is not
vamp's (drivers/kube_policy.py, docs/decisions/0026).

Objects are named `kube_object_name(deployment, cluster, service)` (a DNS-1035 label with a hash
of the exact names), labelled `app.kubernetes.io/managed-by: vamp` and `vamp.io/{deployment,cluster,
service,name}`, and annotated with the exact service key and the digest of the spec they run,
so `running()` is one list call. The pod gets resources from the scale (requests = limits),
env, ports, the health checks as readiness and liveness probes, and `dialects.kubernetes`
deep-merged into the pod spec (maps merged, lists of named items merged by name) once the
namespace policy's allowlist admits it (a refusal sends nothing to the API server); then no
service account token and, unless the policy relaxes it, the restricted securityContext
(non-root, seccomp RuntimeDefault, no privilege escalation, every capability dropped) wherever
the pod spec leaves it unset.

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
import tempfile
import threading
import time
from typing import Any, Callable

import boto3
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from chalicelib.drivers.base import (
    DriverError,
    Instance,
    ServiceSpec,
    ServiceStatus,
    label_value,
    merge_dialect,
    object_name,
    service_key,
)
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
TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_TTL = 600  # refresh the EKS token after 10 of its 15 minutes


# -- EKS authentication ----------------------------------------------------------------------

def eks_token(cluster_name: str, sts_client: Any) -> str:
    """What `aws eks get-token` prints as `status.token`: `k8s-aws-v1.` + the unpadded base64url
    of a presigned STS GetCallerIdentity URL that signs the `x-k8s-aws-id: <cluster>` header."""

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    events = sts_client.meta.events
    events.register_first("before-sign.sts.GetCallerIdentity", add_cluster_header, unique_id="vamp-eks-token")
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
        )
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", unique_id="vamp-eks-token")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


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
    port = next((p.number for p in spec.ports if p.name == check.port), None)
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
        "env": [{"name": k, "value": v} for k, v in sorted(spec.env.items()) if v is not None],
        "ports": [{"name": port_name, "containerPort": p.number, "protocol": "TCP"}
                  for port_name, p in zip(_port_names(spec.ports), spec.ports)],
        "resources": {
            "requests": {"cpu": f"{max(1, round(spec.cpu * 1000))}m", "memory": f"{max(1, round(spec.memory))}Mi"},
            "limits": {"cpu": f"{max(1, round(spec.cpu * 1000))}m", "memory": f"{max(1, round(spec.memory))}Mi"},
        },
    }
    if spec.health_checks:
        container["readinessProbe"] = _probe(spec, spec.health_checks[0])
        container["livenessProbe"] = _probe(spec, spec.health_checks[0])
    pod_spec: dict[str, Any] = {"containers": [container]}
    dialect = spec.dialects.get("kubernetes")
    if dialect is not None:
        problems = dialect_problems(dialect, policy)
        if problems:
            raise DriverError("refused by the namespace's policy: " + "; ".join(
                f"dialects.kubernetes{path}: {reason}" for path, reason in problems))
        pod_spec = merge_dialect(pod_spec, dialect)
    pod_spec = harden(pod_spec, policy)
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
        """Kubernetes namespace `name` exists, is vamp's, and carries `labels` (Pod Security)."""
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
                    continue  # created meanwhile: check it
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
        self._namespaces.add((name, tuple(sorted(wanted.items()))))

    def _upsert(self, read: Callable, create: Callable, replace: Callable, namespace: str, body: dict,
                keep: Callable[[Any, dict], None] | None = None) -> None:
        name = body["metadata"]["name"]
        for _ in range(3):
            try:
                current = read(name, namespace)
            except ApiException as e:
                if e.status != 404:
                    raise
                try:
                    create(namespace, body)
                    return
                except ApiException as e2:
                    if e2.status == 409:
                        continue  # created meanwhile: replace it
                    raise
            new = copy.deepcopy(body)
            new["metadata"]["resourceVersion"] = current.metadata.resource_version
            if keep:
                keep(current, new)
            try:
                replace(name, namespace, new)
                return
            except ApiException as e:
                if e.status != 409:
                    raise
        raise DriverError(f"kubernetes: {name} kept changing under us; retrying later")

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

        def keep_cluster_ip(current: Any, new: dict) -> None:  # immutable once assigned
            if current.spec and current.spec.cluster_ip:
                new["spec"]["clusterIP"] = current.spec.cluster_ip
                new["spec"]["clusterIPs"] = current.spec.cluster_ips or [current.spec.cluster_ip]

        try:
            core, apps = self._apis()
            self._ensure_namespace(core, kube, labels)
            self._upsert(apps.read_namespaced_deployment, apps.create_namespaced_deployment,
                         apps.replace_namespaced_deployment, kube, deployment)
            self._upsert(core.read_namespaced_service, core.create_namespaced_service,
                         core.replace_namespaced_service, kube, service, keep_cluster_ip)
        except ApiException as e:
            raise DriverError(self._reason(e)) from e
        except urllib3.exceptions.HTTPError as e:  # refused, reset, or no answer within the timeout
            raise _unanswered(e) from e

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        name = kube_object_name(deployment, cluster, service)
        kube = self.kube_namespace(namespace)
        core, apps = self._apis()
        for delete in (apps.delete_namespaced_deployment, core.delete_namespaced_service):
            try:
                delete(name, kube)
            except ApiException as e:
                if e.status != 404:
                    raise DriverError(self._reason(e)) from e

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
        deployments, _ = self._list(namespace)
        return {k: (d.metadata.annotations or {}).get(DIGEST_ANNOTATION) for k, d in deployments.items()}

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


def _deployment_status(key: str, d: Any, svc: Any) -> ServiceStatus:
    desired = d.spec.replicas if d.spec and d.spec.replicas is not None else 1
    st = d.status
    ready = (st.ready_replicas or 0) if st else 0
    updated = (st.updated_replicas or 0) if st else 0
    observed = (st.observed_generation or 0) if st else 0
    digest = (d.metadata.annotations or {}).get(DIGEST_ANNOTATION)
    failure = None
    for c in (st.conditions or []) if st else []:
        if c.type == "Progressing" and c.status == "False":
            failure = f"{c.reason}: {c.message}"
        if c.type == "ReplicaFailure" and c.status == "True":
            failure = f"{c.reason}: {c.message}"
    instances: tuple[Instance, ...] = ()
    if svc is not None and svc.spec and svc.spec.cluster_ip and svc.spec.cluster_ip != "None":
        try:
            ports = json.loads((svc.metadata.annotations or {}).get(PORTS_ANNOTATION) or "{}")
        except ValueError:
            ports = {}
        instances = (Instance(svc.metadata.name, svc.spec.cluster_ip, ports, ready > 0,
                              None if ready > 0 else "no ready pod"),)
    done = ready >= desired and updated >= desired and observed >= (d.metadata.generation or 0)
    if failure:
        return ServiceStatus(key, "failed", instances, desired, failure, digest)
    if done and (svc is not None or desired == 0):
        return ServiceStatus(key, "running", instances, desired, None, digest)
    reason = f"{ready}/{desired} replicas ready" + ("" if svc is not None else "; service missing")
    return ServiceStatus(key, "deploying", instances, desired, reason, digest)


__all__ = ["KubernetesDriver", "deployment_manifest", "eks_configuration", "eks_token", "service_manifest",
           "service_key"]
