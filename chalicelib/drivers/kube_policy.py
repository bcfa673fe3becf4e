"""What a Vamp namespace may do on Kubernetes (docs/decisions/0026): pure, no client imported.

- `kube_namespace`: Vamp namespace `ns` is Kubernetes namespace `<prefix>ns` (`vamp-kube-system`,
  never `kube-system`); a name past the 63 characters of a DNS label is refused, never cut.
- `NamespacePolicy`: the operator's, per Vamp namespace (settings): the Pod Security Admission
  level its namespace is labelled with, whether pods get the restricted securityContext by
  default (`harden`), and the dialect rules it lifts (`allow`).
- `dialect_problems`: `dialects.kubernetes` is merged into the pod spec, so it is held to an
  allowlist of pod and container fields that cannot reach beyond the pod (no host namespaces,
  no privileged or root containers, no host paths, no service account, ...). Each refusal has
  the field's path and a rule, the path without list indices (`containers.securityContext.
  privileged`), which is what a namespace policy's `allow` names; a rule also lifts the rules
  under it, and `*` lifts them all.
- `harden`: the restricted securityContext filled in where the pod spec leaves it unset.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from chalicelib.settings import json_map_setting

LEVELS = ("restricted", "baseline", "privileged")
PSA = "pod-security.kubernetes.io"
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def kube_namespace(namespace: str, prefix: str) -> str:
    """The Kubernetes namespace of a Vamp namespace (ValueError with the reason when too long)."""
    name = f"{prefix}{namespace}"
    if len(name) > 63:
        raise ValueError(f"its Kubernetes namespace {name!r} would be {len(name)} characters, more than the 63 "
                         f"of a DNS label: use a namespace of at most {63 - len(prefix)} characters")
    if not _LABEL.match(name):
        raise ValueError(f"its Kubernetes namespace {name!r} is not a DNS label")
    return name


# -- the operator's policy ---------------------------------------------------------------------

@dataclass(frozen=True)
class NamespacePolicy:
    pod_security: str = "restricted"  # the namespace's Pod Security Admission level
    harden: bool = True  # pods get the restricted securityContext where they leave it unset
    allow: frozenset[str] = field(default_factory=frozenset)  # dialect rules lifted ("*": all)

    def allows(self, rule: str) -> bool:
        if "*" in self.allow:
            return True
        parts = rule.split(".")
        return any(".".join(parts[:n]) in self.allow for n in range(1, len(parts) + 1))


_POLICY_KEYS = {"pod_security", "harden", "allow"}


@lru_cache(maxsize=8)
def parse_policies(raw: str | None, default_level: str) -> dict[str, NamespacePolicy]:
    """VAMP_KUBE_NAMESPACE_POLICIES (JSON, or @<path> of a JSON file) -> namespace -> policy.
    ValueError with the reason for anything but the documented shape."""
    if default_level not in LEVELS:
        raise ValueError(f"VAMP_KUBE_POD_SECURITY must be one of {', '.join(LEVELS)}, not {default_level!r}")
    if not raw:
        return {}
    text = raw
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text()
        except OSError as e:
            raise ValueError(f"VAMP_KUBE_NAMESPACE_POLICIES: cannot read {raw[1:]}: {e.strerror}") from None
    data = json_map_setting("VAMP_KUBE_NAMESPACE_POLICIES", text, "a map of namespace -> policy expected")
    out: dict[str, NamespacePolicy] = {}
    for namespace, entry in data.items():
        where = f"VAMP_KUBE_NAMESPACE_POLICIES[{namespace!r}]"
        if not isinstance(entry, dict) or set(entry) - _POLICY_KEYS:
            raise ValueError(f"{where}: a map of {', '.join(sorted(_POLICY_KEYS))} expected")
        level = entry.get("pod_security", default_level)
        if level not in LEVELS:
            raise ValueError(f"{where}.pod_security must be one of {', '.join(LEVELS)}, not {level!r}")
        harden = entry.get("harden", True)
        if not isinstance(harden, bool):
            raise ValueError(f"{where}.harden must be true or false")
        allow = entry.get("allow", [])
        if not isinstance(allow, list) or not all(isinstance(a, str) and a for a in allow):
            raise ValueError(f"{where}.allow must be a list of rules (field paths such as 'hostAliases')")
        out[namespace] = NamespacePolicy(level, harden, frozenset(allow))
    return out


@dataclass(frozen=True)
class KubeRules:
    """The operator's Kubernetes settings for every namespace (chalicelib.settings)."""

    prefix: str = "vamp-"
    pod_security: str = "restricted"
    pod_security_version: str = "latest"
    policies: str | None = None  # VAMP_KUBE_NAMESPACE_POLICIES

    @classmethod
    def from_settings(cls, s: Any) -> "KubeRules":
        return cls(s.kube_namespace_prefix, s.kube_pod_security, s.kube_pod_security_version,
                   s.kube_namespace_policies)

    def namespace(self, namespace: str) -> str:
        return kube_namespace(namespace, self.prefix)

    def policy(self, namespace: str) -> NamespacePolicy:
        found = parse_policies(self.policies, self.pod_security).get(namespace)
        return found or NamespacePolicy(self.pod_security)

    def labels(self, namespace: str) -> dict[str, str]:
        return namespace_labels(namespace, self.policy(namespace), self.pod_security_version)


def namespace_labels(namespace: str, policy: NamespacePolicy, version: str) -> dict[str, str]:
    """The Pod Security Admission labels (enforce, audit and warn at the policy's level)."""
    labels = {"vamp.io/namespace": namespace}
    for mode in ("enforce", "audit", "warn"):
        labels[f"{PSA}/{mode}"] = policy.pod_security
        labels[f"{PSA}/{mode}-version"] = version
    return labels


# -- the dialect's allowlist ---------------------------------------------------------------------
# A schema is a dict: field -> check. A check is a schema (a map with those fields only), ANY
# (scheduling hints and the like: whatever they hold stays inside the pod), a ListOf, or a
# function (value -> None, or the reason it is refused).

Problem = tuple[str, str, str]  # (path, rule, reason)


class _Any:
    pass


ANY = _Any()


@dataclass(frozen=True)
class ListOf:
    item: Any
    named: bool = False  # items are maps with a `name` (merged by name into the base's)


def refused(reason: str) -> Callable[[Any], str | None]:
    return lambda value: reason


def only(allowed: Any, reason: str) -> Callable[[Any], str | None]:
    """Refused unless the value is `allowed` (False for host namespaces, True for runAsNonRoot)."""
    return lambda value: None if value == allowed and type(value) is type(allowed) else reason


def _uid(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return "must be a non-zero user id: 0 is root"
    return None


def _id(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return "must be a non-negative id"
    return None


def _ids(value: Any) -> str | None:
    if not isinstance(value, list) or any(_id(v) for v in value):
        return "must be a list of non-negative ids"
    return None


def _profile(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("type") not in ("RuntimeDefault", "Localhost") \
            or set(value) - {"type", "localhostProfile"}:
        return "only type RuntimeDefault or Localhost: Unconfined lifts the kernel's filter"
    return None


def _cap_add(value: Any) -> str | None:
    if not isinstance(value, list) or set(value) - {"NET_BIND_SERVICE"}:
        return "only NET_BIND_SERVICE may be added: other capabilities reach the node's kernel"
    return None


def _cap_drop(value: Any) -> str | None:
    if not isinstance(value, list) or "ALL" not in value:
        return "must drop ALL (replacing the list would keep the default capabilities)"
    return None


def _priority_class(value: Any) -> str | None:
    if not isinstance(value, str) or value.startswith("system-"):
        return "system-* priority classes preempt the cluster's own critical pods"
    return None


def _mount_propagation(value: Any) -> str | None:
    return None if value == "None" else "only None: propagation shares mounts with the node"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _number(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else \
        "must be a non-negative integer"


_NO_HOST = "the kubelet would connect to that host from the node: probes and hooks target the pod"
_PORT = {"port": ANY}
_HANDLER = {
    "exec": {"command": ANY},
    "httpGet": {"path": ANY, "port": ANY, "scheme": ANY, "httpHeaders": ANY, "host": refused(_NO_HOST)},
    "tcpSocket": {"port": ANY, "host": refused(_NO_HOST)},
    "grpc": {"port": ANY, "service": ANY},
}
_PROBE = {**_HANDLER, "initialDelaySeconds": _number, "timeoutSeconds": _number, "periodSeconds": _number,
          "successThreshold": _number, "failureThreshold": _number, "terminationGracePeriodSeconds": _number}
_LIFECYCLE_HANDLER = {**_HANDLER, "sleep": {"seconds": _number}}

_CONTAINER_SECURITY = {
    "privileged": only(False, "a privileged container is root on the node"),
    "allowPrivilegeEscalation": only(False, "lets a process gain more privileges than its parent (setuid)"),
    "runAsNonRoot": only(True, "containers run as non-root"),
    "runAsUser": _uid,
    "runAsGroup": _id,
    "readOnlyRootFilesystem": _boolean,
    "capabilities": {"add": _cap_add, "drop": _cap_drop},
    "seccompProfile": _profile,
    "appArmorProfile": _profile,
    "procMount": only("Default", "an unmasked /proc exposes the node's kernel settings"),
    "seLinuxOptions": refused("SELinux labels can make the container another domain, the node's included"),
    "windowsOptions": refused("hostProcess containers run on the node"),
}

_CONTAINER = {
    "name": ANY, "image": ANY, "imagePullPolicy": ANY, "command": ANY, "args": ANY, "workingDir": ANY,
    "env": ListOf({"name": ANY, "value": ANY, "valueFrom": {
        "configMapKeyRef": ANY, "secretKeyRef": ANY, "fieldRef": ANY, "resourceFieldRef": ANY}}, named=True),
    "envFrom": ListOf({"prefix": ANY, "configMapRef": ANY, "secretRef": ANY}),
    "ports": ListOf({"name": ANY, "containerPort": ANY, "protocol": ANY,
                     "hostPort": refused("binds a port on the node"),
                     "hostIP": refused("binds an address of the node")}, named=True),
    "resources": {"limits": ANY, "requests": ANY},
    "resizePolicy": ANY,
    "readinessProbe": _PROBE, "livenessProbe": _PROBE, "startupProbe": _PROBE,
    "lifecycle": {"postStart": _LIFECYCLE_HANDLER, "preStop": _LIFECYCLE_HANDLER, "stopSignal": ANY},
    "volumeMounts": ListOf({"name": ANY, "mountPath": ANY, "subPath": ANY, "subPathExpr": ANY, "readOnly": ANY,
                            "recursiveReadOnly": ANY, "mountPropagation": _mount_propagation}),
    "securityContext": _CONTAINER_SECURITY,
    "terminationMessagePath": ANY, "terminationMessagePolicy": ANY,
    "stdin": ANY, "stdinOnce": ANY, "tty": ANY,
    "restartPolicy": ANY,  # init containers: Always makes a sidecar
}

_PROJECTED_SOURCE = {"configMap": ANY, "secret": ANY, "downwardAPI": ANY,
                     "serviceAccountToken": refused("a token of the namespace's service account: pods get none")}
_VOLUME_OTHER = "only emptyDir, configMap, secret, downwardAPI and projected volumes"
_VOLUME = {
    "name": ANY, "emptyDir": ANY, "configMap": ANY, "secret": ANY, "downwardAPI": ANY,
    "projected": {"sources": ListOf(_PROJECTED_SOURCE), "defaultMode": ANY},
    "hostPath": refused("mounts the node's filesystem"),
}

_POD_SECURITY = {
    "runAsNonRoot": only(True, "containers run as non-root"),
    "runAsUser": _uid, "runAsGroup": _id, "fsGroup": _id, "supplementalGroups": _ids,
    "fsGroupChangePolicy": ANY, "supplementalGroupsPolicy": ANY,
    "seccompProfile": _profile, "appArmorProfile": _profile,
    "sysctls": refused("kernel parameters can reach beyond the pod"),
    "seLinuxOptions": refused("SELinux labels can make the pod another domain, the node's included"),
    "seLinuxChangePolicy": ANY,
    "windowsOptions": refused("hostProcess pods run on the node"),
}

_NO_SA = "pods run with no service account token: it would reach the Kubernetes API"
POD = {
    "containers": ListOf(_CONTAINER, named=True),
    "initContainers": ListOf(_CONTAINER, named=True),
    "volumes": ListOf(_VOLUME, named=True),
    "nodeSelector": ANY, "affinity": ANY, "tolerations": ANY, "topologySpreadConstraints": ANY,
    "priorityClassName": _priority_class, "preemptionPolicy": ANY,
    "terminationGracePeriodSeconds": _number,
    "dnsPolicy": ANY, "dnsConfig": ANY, "hostAliases": ANY, "hostname": ANY, "subdomain": ANY,
    "setHostnameAsFQDN": ANY, "enableServiceLinks": ANY, "imagePullSecrets": ANY, "readinessGates": ANY,
    "os": ANY,
    "securityContext": _POD_SECURITY,
    "automountServiceAccountToken": only(False, _NO_SA),
    "hostNetwork": only(False, "shares the node's network: its interfaces, and every port on them"),
    "hostPID": only(False, "shares the node's processes"),
    "hostIPC": only(False, "shares the node's IPC namespace"),
    "hostUsers": only(False, "false only: user namespaces isolate the pod further"),
    "shareProcessNamespace": only(False, "lets every container of the pod see and signal the others"),
    "serviceAccountName": refused(_NO_SA),
    "serviceAccount": refused(_NO_SA),
    "nodeName": refused("bypasses the scheduler: use nodeSelector or affinity"),
    "runtimeClassName": refused("another container runtime may isolate less"),
    "schedulerName": refused("another scheduler"),
}
_UNKNOWN = "not a field dialects.kubernetes may set"


def dialect_problems(dialect: Any, policy: NamespacePolicy) -> list[tuple[str, str]]:
    """What of `dialects.kubernetes` the namespace refuses: [(path below it, reason)]."""
    found: list[Problem] = []
    if not isinstance(dialect, dict):
        found.append(("", "", "a map of pod spec fields expected"))
    else:
        _walk(dialect, POD, "", "", found)
    return [(path, f"{reason} (rule {rule!r}; a namespace policy may allow it)" if rule else reason)
            for path, rule, reason in found if not (rule and policy.allows(rule))]


def _walk(value: Any, check: Any, path: str, rule: str, found: list[Problem]) -> None:
    if check is ANY:
        return
    if callable(check):
        reason = check(value)
        if reason:
            found.append((path, rule, reason))
        return
    if isinstance(check, ListOf):
        if not isinstance(value, list):
            found.append((path, rule, "a list expected"))
            return
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if check.named and not (isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]):
                found.append((where, rule, "a map with a name expected"))
                continue
            _walk(item, check.item, where, rule, found)
        return
    if not isinstance(value, dict):
        found.append((path, rule, "a map expected"))
        return
    for key, sub in value.items():
        where, sub_rule = f"{path}.{key}", f"{rule}.{key}" if rule else str(key)
        if key not in check:
            reason = _VOLUME_OTHER if check is _VOLUME else _UNKNOWN
            found.append((where, sub_rule, reason))
            continue
        _walk(sub, check[key], where, sub_rule, found)


# -- the pods' defaults ------------------------------------------------------------------------

RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _fill(target: dict, defaults: dict) -> None:
    for key, value in defaults.items():
        if key not in target:
            target[key] = json.loads(json.dumps(value))
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _fill(target[key], value)


def harden(pod_spec: dict, policy: NamespacePolicy) -> dict:
    """The pod spec with no service account token and, unless the policy says otherwise, the
    restricted securityContext wherever it is left unset (every container, sidecars included)."""
    pod_spec.setdefault("automountServiceAccountToken", False)
    if policy.harden:
        if isinstance(pod_spec.setdefault("securityContext", {}), dict):
            _fill(pod_spec["securityContext"], RESTRICTED_POD)
        for key in ("containers", "initContainers"):
            for container in pod_spec.get(key) or []:
                if isinstance(container, dict) and isinstance(container.setdefault("securityContext", {}), dict):
                    _fill(container["securityContext"], RESTRICTED_CONTAINER)
    return pod_spec
