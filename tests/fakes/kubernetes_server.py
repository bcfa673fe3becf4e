"""A fake Kubernetes API server: a real HTTP server on 127.0.0.1 speaking the subset of the API
the kubernetes driver calls, so tests drive the REAL `kubernetes` client against it.

No kube-apiserver, k3s or kind can run on these machines, so this one refuses what a real one
refuses and moves as a real one moves:

- Authentication: every request carries `Authorization: Bearer <fake.token>`, else 401.
- Validation of every object written (POST, PUT, every PATCH type) against the official
  OpenAPI schemas (`kubernetes-validate`, strict: unknown fields refused), then the API server's
  own rules the schemas do not hold: names (a namespace and a Service a DNS label, DNS-1035 for
  a Service, a Deployment a DNS subdomain), label keys and values, annotation keys and their
  256 KiB, container and Service port names (IANA_SVC_NAME, unique) and numbers, env names
  (the strict rule, `IsEnvVarName`: a server without RelaxedEnvironmentVariableValidation),
  quantities, requests not above limits, probes with one handler and a port, a Deployment's
  selector matching its template and immutable, a Service's clusterIP immutable: 422 Invalid
  with the field's path, as the API server words it.
- Writes: `resourceVersion` bumped on each, a stale one 409 Conflict, a POST of an existing name
  409 AlreadyExists, a missing object or namespace 404, `generation` bumped on spec changes.
  PATCH as `application/apply-patch+yaml` (server-side apply: `fieldManager` required, owned
  fields, conflicts unless `force=true`, `metadata.managedFields`), `strategic-merge-patch+json`,
  `merge-patch+json`, `json-patch+json` (tests/fakes/kubernetes_patches.py); any other content
  type 415.
- Deployments roll over time, as the deployment controller rolls them: `observedGeneration` lags
  one step behind `generation`, a new template makes a new ReplicaSet whose pods become ready a
  step after they are created while the old ones are scaled down within maxSurge and
  maxUnavailable (25 %), so old and new pods serve side by side; conditions Available,
  Progressing (ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded after
  `deadline_steps` steps without progress when `fail_rollout` says the new pods never become
  ready), ReplicaFailure when Pod Security (the namespace's `enforce` level) refuses the pods.
  A background controller steps every `tick` seconds; tests that look at one moment `pause()`
  it and `advance()` it themselves, or `settle()` until nothing moves.
- Namespaces: DELETE (or `terminate`) makes one Terminating; creating anything in it is 403
  Forbidden "... because it is being terminated", creating it again 409; the controller then
  deletes its contents and the namespace (unless `stuck=True`: a finalizer that never finishes).
- Failures on any chosen request: `fail(code, method=..., path=<glob>, nth=..., times=...,
  when=<predicate>)`, `fail_next(code)`; `hang()` / `answer()`: accepted, never answered.

    fake = FakeKubernetes().start()         # fake.url, fake.token
    fake.objects("deployments", "ns")        # stored bodies
    fake.requests                            # [(method, path)]

Endpoints: /api/v1/namespaces[/<ns>]; /apis/apps/v1/namespaces/<ns>/deployments[/<name>];
/api/v1/namespaces/<ns>/services[/<name>]; /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices[/<name>]
(what the EndpointSlice controller writes; a test writes them as it would, validated the same way):
GET (one, list by label), POST, PUT, PATCH, DELETE.
/apis/batch/v1/namespaces/<ns>/jobs[/<name>], /api/v1/namespaces/<ns>/pods[/<name>[/log]]: workflow runs'
Jobs and their pods, with the Job controller (`fake.jobs`: tests/fakes/kubernetes_jobs.py).

`FakeKubernetes(tls=(cert, key))` serves HTTPS; `eks=EksIdentity(...)` accepts exactly the EKS
tokens of one identity and cluster (a presigned STS GetCallerIdentity URL, its SigV4 signature
recomputed, at most 15 minutes old), as the cluster's authenticator would, and 401 otherwise.
"""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import itertools
import json
import math
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

from tests.fakes.kubernetes_jobs import JOB_GROUPS, JOB_KINDS, JOB_RESOURCES, FakeJobs
from tests.fakes.kubernetes_patches import (
    PatchError,
    apply,
    fields_v1,
    json_patch,
    kind_schema,
    merge_patch,
    strategic_merge,
    updated_by,
    validator,
)

# plural -> (group path, apiVersion, kind, namespaced)
_KINDS = {"deployments": ("apis/apps/v1", "apps/v1", "Deployment"), "services": ("api/v1", "v1", "Service"),
          "namespaces": ("api/v1", "v1", "Namespace"),
          "endpointslices": ("apis/discovery.k8s.io/v1", "discovery.k8s.io/v1", "EndpointSlice")}
_RESOURCE = {"deployments": "deployments.apps", "services": "services", "namespaces": "namespaces",
             "endpointslices": "endpointslices.discovery.k8s.io"}
_GROUPS = {("api", "v1"): "api/v1", ("apis", "apps", "v1"): "apis/apps/v1",
           ("apis", "discovery.k8s.io", "v1"): "apis/discovery.k8s.io/v1"}
# --- batch/v1 Jobs (workflow runs): jobs and pods are served by tests/fakes/kubernetes_jobs.py ---
_KINDS.update(JOB_KINDS)
_RESOURCE.update(JOB_RESOURCES)
_GROUPS.update(JOB_GROUPS)
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
_PATCH_TYPES = ("application/apply-patch+yaml", "application/strategic-merge-patch+json",
                "application/merge-patch+json", "application/json-patch+json")

# apimachinery's validation (k8s.io/apimachinery/pkg/util/validation), as the API server applies it.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # IsEnvVarName
_QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def _status(code: int, message: str, reason: str | None = None, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or _REASONS.get(code, "InternalError"), "code": code}
    if details:
        body["details"] = details
    return body


def quantity(text: Any) -> float | None:
    """A resource quantity's value (None: not one, as `resource.ParseQuantity` would refuse)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _QUANTITY.match(text) if isinstance(text, str) else None
    if not m:
        return None
    number, suffix = float(text[: m.start(3)] if m.group(3) else text), m.group(3) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number  # an exponent: part of the number


# -- what the API server's validation refuses beyond the schemas ---------------------------------

def _name_problems(where: str, name: Any, rule: str) -> list[str]:
    if not isinstance(name, str) or not name:
        return [f"{where}: Required value: name or generateName is required"]
    if rule == "label" and (len(name) > 63 or not _DNS_LABEL.match(name)):
        return [f'{where}: Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                "(at most 63 characters)"]
    if rule == "1035" and (len(name) > 63 or not _DNS_1035.match(name)):
        return [f'{where}: Invalid value: "{name}": a DNS-1035 label must consist of lower case alphanumeric '
                "characters or '-', start with an alphabetic character, and end with an alphanumeric character"]
    if rule == "subdomain" and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        return [f'{where}: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"]
    return []


def _key_problems(where: str, key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    out = []
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        out.append(f'{where}: Invalid value: "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        out.append(f'{where}: Invalid value: "{key}": name part must consist of alphanumeric characters, '
                   "'-', '_' or '.', and must start and end with an alphanumeric character (at most 63)")
    return out


def _meta_problems(meta: dict) -> list[str]:
    out = []
    for key, value in (meta.get("labels") or {}).items():
        out += _key_problems("metadata.labels", key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            out.append(f'metadata.labels: Invalid value: "{value}": a valid label must be an empty string or '
                       "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character (at most 63)")
    annotations = meta.get("annotations") or {}
    for key in annotations:
        out += _key_problems("metadata.annotations", key)
    if sum(len(k) + len(v or "") for k, v in annotations.items()) > 256 * 1024:
        out.append("metadata.annotations: Too long: must have at most 262144 bytes")
    return out


def port_name_problem(where: str, name: Any) -> str | None:
    """IsValidPortName: at most 15 of [-a-z0-9], a letter among them, no '-' at an end or twice."""
    if not isinstance(name, str) or (len(name) > 15 or not _IANA_SVC_NAME.match(name) or "--" in name
                                     or name[0] == "-" or name[-1] == "-" or not any(c.isalpha() for c in name)):
        return (f"{where}: Invalid value: {name!r}: must be no more than 15 characters, contain only "
                "[-a-z0-9], at least one letter, and not begin, end or repeat '-'")
    return None


def _number_problem(where: str, number: Any) -> str | None:
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
        return f"{where}: Invalid value: {number!r}: must be between 1 and 65535, inclusive"
    return None


def _probe_problems(where: str, probe: dict, port_names: set[str]) -> list[str]:
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(h) is not None]
    if len(handlers) != 1:
        return [f"{where}: Required value: must specify exactly one handler type"]
    out = []
    handler = probe[handlers[0]]
    if handlers[0] in ("httpGet", "tcpSocket"):
        port = handler.get("port")
        if isinstance(port, str):
            if port not in port_names:
                out.append(f"{where}.{handlers[0]}.port: Invalid value: {port!r}: must contain the name of a "
                           "container port")
        elif problem := _number_problem(f"{where}.{handlers[0]}.port", port):
            out.append(problem)
    for key in ("periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"):
        if key in probe and probe[key] is not None and probe[key] < 1:
            out.append(f"{where}.{key}: Invalid value: {probe[key]}: must be greater than or equal to 1")
    return out


def _container_problems(where: str, c: dict) -> list[str]:
    out = _name_problems(f"{where}.name", c.get("name"), "label")
    seen_names, seen_numbers = set(), set()
    for i, port in enumerate(c.get("ports") or []):
        at = f"{where}.ports[{i}]"
        if port.get("name") is not None:
            if problem := port_name_problem(f"{at}.name", port["name"]):
                out.append(problem)
            elif port["name"] in seen_names:
                out.append(f"{at}.name: Duplicate value: {port['name']!r}")
            seen_names.add(port.get("name"))
        if problem := _number_problem(f"{at}.containerPort", port.get("containerPort")):
            out.append(problem)
        key = (port.get("containerPort"), port.get("protocol") or "TCP")
        if key in seen_numbers:
            out.append(f"{at}: Duplicate value: {key}")
        seen_numbers.add(key)
    for i, env in enumerate(c.get("env") or []):
        name = env.get("name")
        if not isinstance(name, str) or not _ENV_NAME.match(name) or name in (".", "..") or name.startswith(".."):
            out.append(f'{where}.env[{i}].name: Invalid value: "{name}": a valid environment variable name must '
                       "consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a "
                       "digit (e.g. 'my.env-name', or 'MY_ENV.NAME', or 'MyEnvName1', regex used for validation "
                       "is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
    resources = c.get("resources") or {}
    for part in ("requests", "limits"):
        for name, value in (resources.get(part) or {}).items():
            if quantity(value) is None:
                out.append(f'{where}.resources.{part}[{name}]: Invalid value: "{value}": quantities must match '
                           "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    for name, value in (resources.get("requests") or {}).items():
        limit = (resources.get("limits") or {}).get(name)
        if limit is not None and quantity(value) is not None and quantity(limit) is not None \
                and quantity(value) > quantity(limit):
            out.append(f'{where}.resources.requests: Invalid value: "{value}": must be less than or equal to '
                       f"{name} limit of {limit}")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if c.get(probe) is not None:
            out += _probe_problems(f"{where}.{probe}", c[probe], seen_names)
    return out


def object_problems(kind: str, obj: dict, current: dict | None) -> list[str]:
    """What the API server's validation refuses in an object of `kind` (current: the stored one)."""
    meta = obj.get("metadata") or {}
    rule = {"namespaces": "label", "services": "1035", "deployments": "subdomain", "endpointslices": "subdomain"}[kind]
    out = _name_problems("metadata.name", meta.get("name"), rule) + _meta_problems(meta)
    if kind == "endpointslices":
        return out + _endpoint_slice_problems(obj, current)
    spec = obj.get("spec") or {}
    if kind == "services":
        ports = spec.get("ports") or []
        if not ports and spec.get("type", "ClusterIP") != "ExternalName":
            out.append("spec.ports: Required value")
        names, keys = set(), set()
        for i, port in enumerate(ports):
            if len(ports) > 1 and not port.get("name"):
                out.append(f"spec.ports[{i}].name: Required value")
            elif port.get("name"):
                if problem := port_name_problem(f"spec.ports[{i}].name", port["name"]):
                    out.append(problem)
                elif port["name"] in names:
                    out.append(f"spec.ports[{i}].name: Duplicate value: {port['name']!r}")
                names.add(port["name"])
            if problem := _number_problem(f"spec.ports[{i}].port", port.get("port")):
                out.append(problem)
            key = (port.get("port"), port.get("protocol") or "TCP")
            if key in keys:
                out.append(f"spec.ports[{i}]: Duplicate value: {key}")
            keys.add(key)
        if current is not None:
            was = (current.get("spec") or {}).get("clusterIP")
            if spec.get("clusterIP") not in (None, was):
                out.append(f'spec.clusterIP: Invalid value: "{spec.get("clusterIP")}": field is immutable')
    if kind == "deployments":
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector:
            out.append("spec.selector: Required value")
        elif any(labels.get(k) != v for k, v in selector.items()):
            out.append(f"spec.template.metadata.labels: Invalid value: {labels!r}: `selector` does not match "
                       "template `labels`")
        if current is not None and (current.get("spec") or {}).get("selector") != spec.get("selector"):
            out.append(f"spec.selector: Invalid value: {spec.get('selector')!r}: field is immutable")
        out += _meta_problems(template.get("metadata") or {})
        pod = template.get("spec") or {}
        containers = pod.get("containers") or []
        if not containers:
            out.append("spec.template.spec.containers: Required value")
        names = set()
        for group in ("initContainers", "containers"):
            for i, c in enumerate(pod.get(group) or []):
                out += _container_problems(f"spec.template.spec.{group}[{i}]", c)
                if c.get("name") in names:
                    out.append(f"spec.template.spec.{group}[{i}].name: Duplicate value: {c.get('name')!r}")
                names.add(c.get("name"))
        if spec.get("replicas") is not None and spec["replicas"] < 0:
            out.append(f"spec.replicas: Invalid value: {spec['replicas']}: must be greater than or equal to 0")
        # --- daemon workflows (0043): apps/v1's rules for a Deployment's pods and strategy
        if pod.get("restartPolicy", "Always") != "Always":
            out.append(f'spec.template.spec.restartPolicy: Unsupported value: "{pod["restartPolicy"]}": '
                       'supported values: "Always"')
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate") is not None:
            out.append("spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
                       "'Recreate'")
    return out


def _endpoint_slice_problems(obj: dict, current: dict | None) -> list[str]:
    """ValidateEndpointSlice (pkg/apis/discovery/validation): addresses of the slice's type, at
    most 1000 endpoints of 1 to 100 addresses, at most 100 ports, each named by a DNS label (or
    not at all) and unique, addressType immutable."""
    import ipaddress

    out = []
    kind = obj.get("addressType")
    if current is not None and current.get("addressType") != kind:
        out.append(f'addressType: Invalid value: "{kind}": field is immutable')
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        out.append(f"endpoints: Too many: {len(endpoints)}: must have at most 1000 items")
    for i, endpoint in enumerate(endpoints):
        addresses = endpoint.get("addresses") or []
        if not 1 <= len(addresses) <= 100:
            out.append(f"endpoints[{i}].addresses: Invalid value: must have 1 to 100 addresses")
        for j, address in enumerate(addresses):
            where = f'endpoints[{i}].addresses[{j}]: Invalid value: "{address}"'
            if kind == "FQDN":
                if _name_problems("", address, "subdomain"):
                    out.append(f"{where}: must be a valid FQDN")
                continue
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                out.append(f"{where}: must be a valid IP address")
                continue
            if parsed.version != (4 if kind == "IPv4" else 6) or str(parsed) != address:
                out.append(f"{where}: must be a valid {kind} address in canonical form")
    ports = obj.get("ports") or []
    if len(ports) > 100:
        out.append(f"ports: Too many: {len(ports)}: must have at most 100 items")
    names = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if name and (len(name) > 63 or not _DNS_LABEL.match(name)):
            out.append(f'ports[{i}].name: Invalid value: "{name}": a lowercase RFC 1123 label')
        if name in names:
            out.append(f'ports[{i}].name: Duplicate value: "{name}"')
        names.add(name)
        if port.get("port") is not None and (problem := _number_problem(f"ports[{i}].port", port["port"])):
            out.append(problem)
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def schema_problem(obj: dict) -> tuple[int, str] | None:
    """The official schema's refusal, with the field's path: a wrong type or an unknown field is
    what the API server cannot decode (400; unknown fields as `fieldValidation=Strict` answers,
    stricter than its default of dropping them with a warning), a missing required field 422."""
    try:  # a null is decoded as the field unset
        validator(obj["kind"], obj["apiVersion"]).validate(_without_nulls(obj))
    except jsonschema.ValidationError as e:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path).lstrip(".")
        code = 400 if e.validator in ("type", "additionalProperties", "oneOf") else 422
        return code, f"{path or '<root>'}: {e.message.splitlines()[0]}"
    return None


def pod_security_violations(pod: dict, level: str) -> list[str]:
    """The Pod Security Standards checks (baseline, then restricted) a pod spec breaks."""
    if level not in ("baseline", "restricted"):
        return []
    out: list[str] = []
    containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
    contexts = [c.get("securityContext") or {} for c in containers]
    for name in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(name):
            out.append(f"host namespaces ({name}=true)")
    if any(ctx.get("privileged") for ctx in contexts):
        out.append("privileged")
    if any(v.get("hostPath") for v in pod.get("volumes") or []):
        out.append("hostPath volumes")
    if any(p.get("hostPort") for c in containers for p in c.get("ports") or []):
        out.append("hostPort")
    baseline_caps = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                     "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
    if any(set((ctx.get("capabilities") or {}).get("add") or []) - baseline_caps for ctx in contexts):
        out.append("non-default capabilities")
    if level == "baseline":
        return out
    pod_ctx = pod.get("securityContext") or {}
    if any(ctx.get("allowPrivilegeEscalation") is not False for ctx in contexts):
        out.append("allowPrivilegeEscalation != false")
    if any("ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []) for ctx in contexts) or any(
            set((ctx.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"} for ctx in contexts):
        out.append("unrestricted capabilities")
    if not all(ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True for ctx in contexts):
        out.append("runAsNonRoot != true")
    if pod_ctx.get("runAsUser") == 0 or any(ctx.get("runAsUser") == 0 for ctx in contexts):
        out.append("runAsUser=0")
    seccomp = lambda ctx: (ctx.get("seccompProfile") or {}).get("type")  # noqa: E731
    if not all((seccomp(ctx) or seccomp(pod_ctx)) in ("RuntimeDefault", "Localhost") for ctx in contexts):
        out.append("seccompProfile")
    allowed_volumes = {"name", "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    if any(set(v) - allowed_volumes for v in pod.get("volumes") or []):
        out.append("restricted volume types")
    return out


# -- the deployment controller, one step at a time -----------------------------------------------

@dataclass
class _ReplicaSet:
    name: str
    pods: int = 0
    ready: int = 0


@dataclass
class _Rollout:
    observed: int = 0
    sets: list[_ReplicaSet] = field(default_factory=list)  # oldest first; the last is the template's
    stalled: int = 0  # steps without progress
    timed_out: bool = False
    failing: tuple[str, str] | None = None  # (replica set, why): its pods never become ready
    refused: str | None = None  # Pod Security refuses the pods


@dataclass
class _Failure:
    code: int
    method: str | None
    path: str
    nth: int
    times: int
    when: Callable[[str, str, Any], bool] | None
    message: str
    seen: int = 0


def _template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class EksIdentity:
    """Whom an EKS cluster's authenticator accepts: tokens `aws eks get-token` makes for `cluster`
    (k8s-aws-v1. + a presigned STS GetCallerIdentity URL signing `x-k8s-aws-id: <cluster>`),
    signed with these credentials for `region`'s STS, at most 15 minutes old."""

    cluster: str
    access_key: str
    secret_key: str
    region: str

    def refusal(self, token: str) -> str | None:
        import base64

        from tests.fakes.sigv4 import verify_presigned

        if not token.startswith("k8s-aws-v1."):
            return "not an EKS token"
        raw = token[len("k8s-aws-v1."):]
        try:
            url = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        except ValueError:
            return "not base64url"
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme != "https" or parts.netloc not in ("sts.amazonaws.com", f"sts.{self.region}.amazonaws.com"):
            return f"unexpected STS host {parts.netloc!r}"
        if parts.path not in ("", "/") or query.get("Action") != "GetCallerIdentity" or query.get("Version") != "2011-06-15":
            return "not a GetCallerIdentity request"
        if "x-k8s-aws-id" not in query.get("X-Amz-SignedHeaders", "").split(";"):
            return "the x-k8s-aws-id header is not signed"
        return verify_presigned((self.access_key, self.secret_key, self.region, "sts"), "GET", url,
                                {"x-k8s-aws-id": self.cluster}, lifetime=900)


class FakeKubernetes:
    def __init__(self, tick: float | None = 0.02, deadline_steps: int = 5, tls: tuple[str, str] | None = None,
                 eks: EksIdentity | None = None) -> None:
        self.store: dict[tuple[str, str | None], dict[str, dict]] = {}  # (kind, ns) -> name -> body
        self.managers: dict[tuple[str, str | None, str], dict[str, set]] = {}  # object -> manager -> fields
        self.operations: dict[tuple[str, str | None, str], dict[str, str]] = {}  # object -> manager -> Apply|Update
        self.statuses: dict[tuple[str, str], dict] = {}
        self.rollouts: dict[tuple[str, str], _Rollout] = {}
        self.requests: list[tuple[str, str]] = []
        self.token = secrets.token_urlsafe(16)
        # tls: (certificate file, key file): served over HTTPS. eks: only that identity's EKS
        # tokens are accepted (fake.token then is not).
        self.tls, self.eks = tls, eks
        self.tick, self.deadline_steps = tick, deadline_steps
        self._versions = itertools.count(1000)
        self._ips = itertools.count(10)
        self._failures: list[_Failure] = []
        self._stuck: set[str] = set()
        self._lock = threading.RLock()
        self._running = threading.Event()  # the background controller steps while set
        self._stopped = threading.Event()
        # Set: every request waits until it is cleared (a hung API server: accepts, never answers).
        self.hung = threading.Event()
        self._answer = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.jobs = FakeJobs()  # --- batch/v1 Jobs (workflow runs): their store is `store`, their controller this

    # -- control ------------------------------------------------------------------------------

    def start(self) -> "FakeKubernetes":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if fake.hung.is_set():
                    fake._answer.wait(60)
                try:
                    code, reply = fake.serve(self.command, self.path, raw, self.headers.get("Content-Type"),
                                             self.headers.get("Authorization"))
                except Exception as e:  # noqa: BLE001 - a bug of the fake is a 500 the test sees, not a hang
                    code, reply = 500, _status(500, f"the fake API server failed: {type(e).__name__}: {e}")
                text = isinstance(reply, str)  # a pod's log (kubernetes_jobs.LogText)
                data = reply.encode() if text else json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        if self.tick:
            self._running.set()
            threading.Thread(target=self._control, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._running.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _control(self) -> None:
        while not self._stopped.wait(self.tick):
            self._running.wait()
            with self._lock:  # checked under the lock: after pause() returns, no step starts
                if self._running.is_set() and not self._stopped.is_set():
                    self._step()

    def pause(self) -> None:
        """The background controller stops stepping (tests then `advance()` it themselves)."""
        self._running.clear()
        with self._lock:  # a step under way finishes first
            pass

    def resume(self) -> None:
        self._running.set()

    @property
    def url(self) -> str:
        assert self._server
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def objects(self, kind: str, namespace: str | None = None) -> dict[str, dict]:
        with self._lock:
            return {n: self._view(kind, namespace, o) for n, o in self.store.get((kind, namespace), {}).items()}

    def set_status(self, namespace: str, name: str, status: dict) -> None:
        """A deployment's status from now on, whatever the controller would say."""
        with self._lock:
            self.statuses[(namespace, name)] = status

    def fail_rollout(self, namespace: str, name: str, message: str = "back-off restarting failed container") -> None:
        """The pods of the deployment's current template never become ready (an image that
        crashes): its progress deadline passes; a new template rolls again."""
        with self._lock:
            template = self.store[("deployments", namespace)][name]["spec"]["template"]
            self.rollouts.setdefault((namespace, name), _Rollout()).failing = (
                f"{name}-{_template_hash(template)}", message)

    def terminate(self, namespace: str, stuck: bool = False) -> None:
        """As `DELETE /api/v1/namespaces/<ns>`: Terminating, then gone (never, when stuck)."""
        with self._lock:
            if stuck:
                self._stuck.add(namespace)
            self._begin_termination(namespace)

    def finish_termination(self, namespace: str) -> None:
        with self._lock:
            self._stuck.discard(namespace)

    def hang(self) -> None:
        """From now on, requests are accepted and never answered (until `answer()`)."""
        self._answer.clear()
        self.hung.set()

    def answer(self) -> None:
        self.hung.clear()
        self._answer.set()

    def fail(self, code: int, method: str | None = None, path: str = "*", nth: int = 1, times: int = 1,
             when: Callable[[str, str, Any], bool] | None = None, message: str = "injected failure") -> None:
        """Answer `code` to the `nth` (and the `times - 1` after it) requests that match `method`,
        the glob `path` (on the URL's path) and `when(method, path, body)`."""
        with self._lock:
            self._failures.append(_Failure(code, method, path, nth, times, when, message))

    def fail_next(self, code: int) -> None:
        self.fail(code)

    # -- HTTP ---------------------------------------------------------------------------------

    def serve(self, method: str, raw_path: str, raw: bytes, content_type: str | None,
              authorization: str | None) -> tuple[int, dict]:
        with self._lock:
            self.requests.append((method, urlsplit(raw_path).path))
        if self.eks is not None:
            given = (authorization or "")[len("Bearer "):] if (authorization or "").startswith("Bearer ") else ""
            if not given or self.eks.refusal(given) is not None:
                return 401, _status(401, "Unauthorized")
        elif authorization != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized")
        # A POST or PUT without a Content-Type is JSON (the API server's first serializer), as the
        # client's create and replace calls send them; a PATCH must name its patch type.
        media = (content_type or "").split(";")[0].strip().lower()
        body: Any = None
        if raw:
            if method == "PATCH" and media not in _PATCH_TYPES:
                return 415, _status(415, f'the body of the request was in an unknown format - accepted media '
                                         f'types include: {", ".join(_PATCH_TYPES)}')
            if method in ("POST", "PUT") and media not in ("", "application/json", "application/yaml"):
                return 415, _status(415, "the body of the request was in an unknown format - accepted media "
                                         "types include: application/json, application/yaml")
            try:
                body = yaml.safe_load(raw) if media.endswith("yaml") else json.loads(raw)
            except (ValueError, yaml.YAMLError) as e:
                return 400, _status(400, f"the body of the request could not be decoded: {e}")
        return self.handle(method, raw_path, body, media or None, recorded=True)

    def _injected(self, method: str, path: str, body: Any) -> tuple[int, dict] | None:
        for rule in self._failures:
            if (rule.method in (None, method) and fnmatch.fnmatchcase(path, rule.path)
                    and (rule.when is None or rule.when(method, path, body))):
                rule.seen += 1
                if rule.nth <= rule.seen < rule.nth + rule.times:
                    return rule.code, _status(rule.code, rule.message)
        return None

    # -- the API ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any, content_type: str | None = None,
               recorded: bool = False) -> tuple[int, dict]:
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        not_found = 404, _status(404, f"the server could not find the requested resource ({url.path})")
        with self._lock:
            if not recorded:
                self.requests.append((method, url.path))
            if injected := self._injected(method, url.path, body):
                return injected
            if tuple(parts[:2]) in _GROUPS:
                group, rest = _GROUPS[tuple(parts[:2])], parts[2:]
            elif tuple(parts[:3]) in _GROUPS:
                group, rest = _GROUPS[tuple(parts[:3])], parts[3:]
            else:
                return not_found
            if rest[:1] != ["namespaces"]:
                return not_found
            if len(rest) <= 2:
                if group != "api/v1":
                    return not_found
                return self._op("namespaces", None, rest[1] if len(rest) == 2 else None, method, body, query,
                                content_type)
            namespace, kind = rest[1], rest[2]
            if kind in JOB_KINDS:  # --- batch/v1 Jobs (workflow runs) ---
                return self.jobs.serve(self, group, namespace, kind, rest[3:], method, body, query)
            if kind not in ("deployments", "services", "endpointslices") or len(rest) > 4 or _KINDS[kind][0] != group:
                return not_found
            if namespace not in self.store.get(("namespaces", None), {}):
                if method == "GET" and len(rest) == 3:
                    return 200, self._list(kind, namespace, query)  # listing an absent namespace: empty
                return 404, _status(404, f'namespaces "{namespace}" not found',
                                    details={"name": namespace, "kind": "namespaces"})
            return self._op(kind, namespace, rest[3] if len(rest) == 4 else None, method, body, query, content_type)

    def _list(self, kind: str, namespace: str | None, query: dict) -> dict:
        _, api, k = _KINDS[kind]
        wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
        items = [self._view(kind, namespace, o) for o in self.store.get((kind, namespace), {}).values()
                 if all((o["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())]
        return {"kind": f"{k}List", "apiVersion": api, "metadata": {"resourceVersion": str(next(self._versions))},
                "items": items}

    def _terminating(self, namespace: str | None) -> bool:
        ns = self.store.get(("namespaces", None), {}).get(namespace) or {}
        return (ns.get("status") or {}).get("phase") == "Terminating"

    def _op(self, kind: str, namespace: str | None, name: str | None, method: str, body: Any, query: dict,
            content_type: str | None) -> tuple[int, dict]:
        objects = self.store.setdefault((kind, namespace), {})
        resource = _RESOURCE[kind]
        if name is None and method == "GET":
            return 200, self._list(kind, namespace, query)
        if name is None and method == "POST":
            if not isinstance(body, dict):
                return 400, _status(400, "the body of the request must be an object")
            name = (body.get("metadata") or {}).get("name")
            if name in objects:
                if kind == "namespaces" and self._terminating(name):
                    return 409, _status(409, f'object is being deleted: namespaces "{name}" already exists',
                                        "AlreadyExists")
                return 409, _status(409, f'{resource} "{name}" already exists', "AlreadyExists")
            if kind != "namespaces" and self._terminating(namespace):
                return self._being_terminated(resource, name, namespace)
            return self._write(kind, namespace, name, None, body, query.get("fieldManager") or "unknown", "Update",
                               201)
        if name is None:
            return 405, _status(405, f"{method} is not allowed on a collection")
        current = objects.get(name)
        if method == "GET":
            if current is None:
                return 404, _status(404, f'{resource} "{name}" not found', details={"name": name, "kind": kind})
            return 200, self._view(kind, namespace, current)
        if method == "DELETE":
            if current is None:
                return 404, _status(404, f'{resource} "{name}" not found', details={"name": name, "kind": kind})
            if kind == "namespaces":
                self._begin_termination(name)
                return 200, self._view(kind, namespace, objects[name])
            del objects[name]
            self.managers.pop((kind, namespace, name), None)
            self.rollouts.pop((namespace, name), None)
            if kind == "deployments":  # as the API server answers: a Status for these, the object for others
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, "group": "apps", "kind": "deployments"}}
            return 200, self._view(kind, namespace, current)
        if method == "PUT":
            if current is None:
                return 404, _status(404, f'{resource} "{name}" not found', details={"name": name, "kind": kind})
            if not isinstance(body, dict):
                return 400, _status(400, "the body of the request must be an object")
            if (body.get("metadata") or {}).get("name") != name:
                return 400, _status(400, f"the name of the object ({(body.get('metadata') or {}).get('name')}) "
                                         f"does not match the name on the URL ({name})")
            given = (body.get("metadata") or {}).get("resourceVersion")
            if given is not None and given != current["metadata"]["resourceVersion"]:
                return 409, _status(409, f'Operation cannot be fulfilled on {resource} "{name}": the object has '
                                         "been modified; please apply your changes to the latest version")
            if kind == "services" and not (body.get("spec") or {}).get("clusterIP"):
                body = copy.deepcopy(body)  # an update without it keeps it (the API server's default)
                body.setdefault("spec", {})["clusterIP"] = current["spec"].get("clusterIP")
                body["spec"]["clusterIPs"] = current["spec"].get("clusterIPs")
            return self._write(kind, namespace, name, current, body, query.get("fieldManager") or "unknown",
                               "Update", 200)
        if method == "PATCH":
            return self._patch(kind, namespace, name, current, body, query, content_type)
        return 405, _status(405, f"{method} is not supported by this fake")

    def _being_terminated(self, resource: str, name: str, namespace: str | None) -> tuple[int, dict]:
        return 403, _status(403, f'{resource} "{name}" is forbidden: unable to create new content in namespace '
                                 f"{namespace} because it is being terminated",
                            details={"name": name, "kind": resource.split(".")[0],
                                     "causes": [{"reason": "NamespaceTerminating",
                                                 "message": f"namespace {namespace} is being terminated",
                                                 "field": "metadata.namespace"}]})

    def _patch(self, kind: str, namespace: str | None, name: str, current: dict | None, body: Any, query: dict,
               content_type: str | None) -> tuple[int, dict]:
        resource = _RESOURCE[kind]
        manager = query.get("fieldManager")
        is_apply = content_type == "application/apply-patch+yaml"
        if manager is not None and (len(manager) > 128 or not manager.isprintable()):
            return 422, _status(422, "fieldManager: Invalid value: must be at most 128 printable characters")
        if "force" in query and not is_apply:
            return 422, _status(422, "force: Forbidden: may not be specified for non-apply patch")
        if body is None:
            return 400, _status(400, "the body of the request is empty")
        try:
            if is_apply:
                if not manager:
                    return 400, _status(400, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                                             "value: is required for apply patch")
                if not isinstance(body, dict):
                    return 400, _status(400, "the body of an apply patch must be an object")
                _, api, k = _KINDS[kind]
                if body.get("apiVersion") != api or body.get("kind") != k:
                    return 400, _status(400, f"the apiVersion and kind of an apply patch must be {api} {k}, "
                                             f"not {body.get('apiVersion')} {body.get('kind')}")
                if (body.get("metadata") or {}).get("name") != name:
                    return 400, _status(400, f"the name of the object ({(body.get('metadata') or {}).get('name')}) "
                                             f"does not match the name on the URL ({name})")
                if current is None and kind != "namespaces" and self._terminating(namespace):
                    return self._being_terminated(resource, name, namespace)
                key = (kind, namespace, name)
                merged, managers = apply(kind, self._bare(current), body, manager,
                                         self.managers.get(key, {}), query.get("force") == "true")
                return self._write(kind, namespace, name, current, merged, manager, "Apply", 201 if current is None
                                   else 200, managers)
            if current is None:
                return 404, _status(404, f'{resource} "{name}" not found', details={"name": name, "kind": kind})
            base = self._bare(current)
            if content_type == "application/json-patch+json":
                merged = json_patch(base, body)
            elif content_type == "application/merge-patch+json":
                merged = merge_patch(base, body)
            else:
                merged = strategic_merge(base, body, kind_schema(base["kind"], base["apiVersion"]))
        except PatchError as e:
            return e.code, _status(e.code, e.message, e.reason)
        if not isinstance(merged, dict) or (merged.get("metadata") or {}).get("name") != name:
            return 422, _status(422, "metadata.name: Invalid value: a patch may not change the name")
        return self._write(kind, namespace, name, current, merged, manager or "unknown", "Update", 200)

    @staticmethod
    def _bare(obj: dict | None) -> dict | None:
        """What a client may set: the stored object without status and server-set metadata."""
        if obj is None:
            return None
        out = copy.deepcopy(obj)
        out.pop("status", None)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "deletionTimestamp"):
            out["metadata"].pop(key, None)
        return out

    def _write(self, kind: str, namespace: str | None, name: str, current: dict | None, body: dict, manager: str,
               operation: str, code: int, managers: dict[str, set] | None = None) -> tuple[int, dict]:
        _, api, k = _KINDS[kind]
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        obj["apiVersion"], obj["kind"] = obj.get("apiVersion") or api, obj.get("kind") or k
        if (obj["apiVersion"], obj["kind"]) != (api, k):
            return 400, _status(400, f"the object's apiVersion and kind must be {api} {k}")
        meta = obj.setdefault("metadata", {})
        for key in ("managedFields", "deletionTimestamp"):
            meta.pop(key, None)
        if kind != "namespaces":
            if meta.get("namespace") not in (None, namespace):
                return 400, _status(400, "the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            meta["namespace"] = namespace
        if decoded := schema_problem(obj):
            code, problem = decoded
            if code == 400:
                return 400, _status(400, f"strict decoding error: {problem}")
            return 422, _status(422, f'{k} "{name}" is invalid: {problem}', details={
                "name": name, "kind": kind, "causes": [{"reason": "FieldValueRequired", "message": problem}]})
        problems = object_problems(kind, obj, current)
        if problems:
            return 422, _status(422, f'{k} "{name}" is invalid: ' + ", ".join(problems),
                                details={"name": name, "kind": kind,
                                         "causes": [{"reason": "FieldValueInvalid", "message": p} for p in problems]})
        key = (kind, namespace, name)
        if managers is None:
            managers = updated_by(kind, self._bare(current), obj, manager, self.managers.get(key, {}))
        self.managers[key] = managers
        operations = {m: o for m, o in self.operations.get(key, {}).items() if m in managers}
        operations[manager] = operation
        self.operations[key] = operations
        stored = self._stamp(kind, obj, current)
        self.store.setdefault((kind, namespace), {})[name] = stored
        return code, self._view(kind, namespace, stored)

    def _stamp(self, kind: str, obj: dict, current: dict | None) -> dict:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        meta["uid"] = current["metadata"]["uid"] if current else str(uuid.uuid4())
        meta["creationTimestamp"] = (current["metadata"]["creationTimestamp"] if current else
                                     datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if kind == "deployments":
            changed = current is None or current.get("spec") != obj.get("spec")
            meta["generation"] = (current["metadata"]["generation"] if current else 0) + (1 if changed else 0)
        if kind == "services":
            spec = obj.setdefault("spec", {})
            if current is None and not spec.get("clusterIP"):
                spec["clusterIP"] = f"10.96.0.{next(self._ips)}"
                spec["clusterIPs"] = [spec["clusterIP"]]
            elif current is not None:
                spec["clusterIP"], spec["clusterIPs"] = current["spec"]["clusterIP"], current["spec"]["clusterIPs"]
        if kind == "namespaces":
            obj["status"] = (current or {}).get("status") or {"phase": "Active"}
            if current and current["metadata"].get("deletionTimestamp"):
                meta["deletionTimestamp"] = current["metadata"]["deletionTimestamp"]
        return obj

    def _view(self, kind: str, namespace: str | None, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        key = (kind, namespace, obj["metadata"]["name"])
        operations = self.operations.get(key, {})
        obj["metadata"]["managedFields"] = [
            {"manager": m, "operation": operations.get(m, "Update"), "apiVersion": obj["apiVersion"],
             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            for m, paths in sorted(self.managers.get(key, {}).items())]
        if kind == "deployments":
            obj["status"] = self.statuses.get((namespace, obj["metadata"]["name"])) or self._deployment_status(
                namespace, obj)
        return obj

    # -- the controllers --------------------------------------------------------------------------

    def _begin_termination(self, namespace: str) -> None:
        ns = self.store.get(("namespaces", None), {}).get(namespace)
        if ns is None:
            return
        ns["status"] = {"phase": "Terminating"}
        ns["metadata"].setdefault("deletionTimestamp", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        ns["metadata"]["resourceVersion"] = str(next(self._versions))

    def advance(self, steps: int = 1) -> None:
        """Step the namespace and deployment controllers."""
        for _ in range(steps):
            with self._lock:
                self._step()

    def settle(self, limit: int = 200) -> None:
        """Step until nothing moves (every rollout done, failed or stuck; terminations over)."""
        for _ in range(limit):
            with self._lock:
                if not self._step():
                    return

    def _step(self) -> bool:
        moved = False
        for namespace in [n for n in self.store.get(("namespaces", None), {}) if self._terminating(n)]:
            if namespace in self._stuck:
                continue
            contents = [k for k in self.store if k[1] == namespace and self.store[k]]
            for key in contents:
                for name in list(self.store[key]):
                    self.managers.pop((key[0], namespace, name), None)
                    self.rollouts.pop((namespace, name), None)
                del self.store[key]
            if not contents:
                del self.store[("namespaces", None)][namespace]
                self.managers.pop(("namespaces", None, namespace), None)
            moved = True
        for (kind, namespace), objects in list(self.store.items()):
            if kind == "deployments":
                for name, obj in objects.items():
                    moved = self._roll(namespace, name, obj) or moved
        moved = self.jobs.step(self) or moved  # --- batch/v1 Jobs (workflow runs) ---
        return moved

    def _roll(self, namespace: str, name: str, obj: dict) -> bool:
        r = self.rollouts.setdefault((namespace, name), _Rollout())
        generation = obj["metadata"]["generation"]
        template = obj["spec"]["template"]
        wanted = obj["spec"].get("replicas", 1)
        rs_name = f"{name}-{_template_hash(template)}"
        if r.observed < generation:  # the controller sees the new generation
            r.observed, r.stalled, r.timed_out = generation, 0, False
            if not r.sets or r.sets[-1].name != rs_name:
                previous = next((s for s in r.sets if s.name == rs_name), None)
                r.sets = [s for s in r.sets if s.name != rs_name] + [previous or _ReplicaSet(rs_name)]
            ns = self.store.get(("namespaces", None), {}).get(namespace) or {}
            level = (ns["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce", "privileged") \
                if ns else "privileged"
            broken = pod_security_violations(template.get("spec") or {}, level)
            r.refused = (f'pods "{rs_name}-" is forbidden: violates PodSecurity "{level}:latest": '
                         + ", ".join(broken)) if broken else None
            return True
        if r.refused or r.timed_out:
            return False
        new, old = r.sets[-1], r.sets[:-1]
        before = [(s.pods, s.ready) for s in r.sets]
        if r.failing is None or r.failing[0] != new.name:
            new.ready = new.pods  # the pods created a step ago are ready now
        surge, unavailable = math.ceil(wanted * 0.25), math.floor(wanted * 0.25)
        if surge == 0 and unavailable == 0:
            surge = 1
        for s in old:  # old pods that are not ready go first, then ready ones within maxUnavailable
            s.pods = s.ready
        ready = sum(s.ready for s in r.sets)
        removable = max(0, ready - (wanted - unavailable))
        for s in old:
            cut = min(s.pods, removable)
            s.pods, s.ready, removable = s.pods - cut, s.ready - cut, removable - cut
        if new.pods > wanted:
            new.pods, new.ready = wanted, min(new.ready, wanted)
        total = sum(s.pods for s in r.sets)
        new.pods += max(0, min(wanted - new.pods, wanted + surge - total))
        r.sets = [s for s in old if s.pods] + [new]
        moved = before != [(s.pods, s.ready) for s in r.sets]
        complete = new.pods == new.ready == wanted and len(r.sets) == 1
        r.stalled = 0 if moved or complete else r.stalled + 1
        if r.stalled >= self.deadline_steps:
            r.timed_out = True
        return moved or not complete  # a rollout that waits is still moving toward its deadline

    def _deployment_status(self, namespace: str, obj: dict) -> dict:
        name = obj["metadata"]["name"]
        r = self.rollouts.get((namespace, name)) or _Rollout()
        wanted = obj["spec"].get("replicas", 1)
        pods = sum(s.pods for s in r.sets)
        ready = sum(s.ready for s in r.sets)
        updated = r.sets[-1].pods if r.sets else 0
        status: dict[str, Any] = {"observedGeneration": r.observed} if r.observed else {}
        for key, value in (("replicas", pods), ("updatedReplicas", updated), ("readyReplicas", ready),
                           ("availableReplicas", ready), ("unavailableReplicas", max(0, wanted - ready))):
            if value:  # omitempty, as the API server serialises them
                status[key] = value
        if not r.observed:
            return status
        rs = r.sets[-1].name if r.sets else name
        unavailable = math.floor(wanted * 0.25)
        conditions = [{"type": "Available", "status": "True" if ready >= wanted - unavailable else "False",
                       "reason": "MinimumReplicasAvailable" if ready >= wanted - unavailable
                       else "MinimumReplicasUnavailable",
                       "message": "Deployment has minimum availability." if ready >= wanted - unavailable
                       else "Deployment does not have minimum availability."}]
        if r.timed_out:
            conditions.append({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                               "message": f'ReplicaSet "{rs}" has timed out progressing: {(r.failing or ("", ""))[1]}'})
        elif updated == ready == wanted and len(r.sets) == 1:
            conditions.append({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                               "message": f'ReplicaSet "{rs}" has successfully progressed.'})
        else:
            conditions.append({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                               "message": f'ReplicaSet "{rs}" is progressing.'})
        if r.refused:
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                               "message": r.refused})
        status["conditions"] = conditions
        return status
