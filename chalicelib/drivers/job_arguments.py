"""A workflow run's `arguments` on each driver (docs/decisions/0039, "Script and container runs"):
pure, no client imported (the API checks them at a workflow's write, the drivers at its run).

Vamp's breed and workflow `arguments` are `docker run` options (`privileged: true`,
`security-opt: no-new-privileges`, ...), which Vamp handed to Docker. Each driver applies those it
has an equivalent for and refuses the others with the reason (`Refused`, naming the argument):
never dropped silently.

| argument | kubernetes (the container, the pod) | ecs (the container definition) | local |
|---|---|---|---|
| `privileged` | securityContext.privileged (the namespace policy decides) | privileged (EC2 only) | refused |
| `user` (uid[:gid]) | securityContext.runAsUser/runAsGroup (numeric) | user | refused |
| `workdir` | workingDir | workingDirectory | the process's directory |
| `read-only` | securityContext.readOnlyRootFilesystem | readonlyRootFilesystem | refused |
| `cap-add`/`cap-drop` | securityContext.capabilities (the policy decides) | linuxParameters.capabilities (Fargate: add SYS_PTRACE only) | refused |
| `security-opt` | no-new-privileges, seccomp=, apparmor= as securityContext | dockerSecurityOptions (EC2 only) | refused |
| `init` | refused (no init process option) | linuxParameters.initProcessEnabled | refused |
| `ulimit` (name=soft[:hard]) | refused (no per-pod ulimits) | ulimits | refused |
| `stop-timeout` (s) | terminationGracePeriodSeconds | stopTimeout (Fargate: at most 120) | refused |
| `label` (k=v) | a pod label | dockerLabels | refused |
Anything else (`network`, `volume`, `env`, `hostname`, ...) is refused everywhere: runs get the
driver's network, no host paths, and their environment from `environment_variables`.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

Arguments = Iterable[tuple[str, str]]

_CAPABILITY = re.compile(r"^(CAP_)?[A-Z_]{2,32}$")
_UID = re.compile(r"^[0-9]{1,10}(:[0-9]{1,10})?$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$")
_ULIMIT = re.compile(r"^([a-z]{2,12})=(-?[0-9]{1,12})(:(-?[0-9]{1,12}))?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_PROFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,252}$")
_ECS_ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                "rtprio", "rttime", "sigpending", "stack"}
_EVERYWHERE = {
    "network": "runs get the driver's network", "net": "runs get the driver's network",
    "volume": "runs mount no host paths", "v": "runs mount no host paths", "mount": "runs mount no host paths",
    "env": "set environment_variables instead", "e": "set environment_variables instead",
    "publish": "a run publishes no ports", "p": "a run publishes no ports",
}


class Refused(ValueError):
    """An argument a driver cannot apply: which (its position and name) and why."""

    def __init__(self, index: int, key: str, reason: str):
        super().__init__(f"argument {key!r}: {reason}")
        self.index, self.key, self.reason = index, key, reason


def _bool(index: int, key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise Refused(index, key, f"`true` or `false`, not {value!r}")
    return value.lower() == "true"


def _capabilities(index: int, key: str, value: str) -> list[str]:
    names = [v.strip().upper() for v in value.split(",") if v.strip()]
    if not names or not all(n == "ALL" or _CAPABILITY.match(n) for n in names):
        raise Refused(index, key, f"capability names separated by commas (NET_ADMIN,SYS_TIME), not {value!r}")
    return [n.removeprefix("CAP_") for n in names]


def _label(index: int, key: str, value: str) -> tuple[str, str]:
    name, _, text = value.partition("=")
    if not _LABEL_KEY.match(name) or not _LABEL_VALUE.match(text):
        raise Refused(index, key, f"`key=value`, a Kubernetes-style label, not {value!r}")
    return name, text


def _seconds(index: int, key: str, value: str, most: int) -> int:
    if not value.isdigit() or not 0 <= int(value) <= most:
        raise Refused(index, key, f"whole seconds, 0 to {most}, not {value!r}")
    return int(value)


def _common(index: int, key: str) -> None:
    if key in _EVERYWHERE:
        raise Refused(index, key, f"not applied on any driver: {_EVERYWHERE[key]}")


def _merge(target: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        elif isinstance(v, list) and isinstance(target.get(k), list):
            target[k] = target[k] + [x for x in v if x not in target[k]]
        else:
            target[k] = v


# -- local ---------------------------------------------------------------------------------------

def for_local(arguments: Arguments) -> dict[str, str]:
    """{"cwd": ...} (a `workdir`); any other argument refused: a local run is a process of the
    control plane's own user, with no container around it."""
    out: dict[str, str] = {}
    for index, (key, value) in enumerate(arguments):
        _common(index, key)
        if key == "workdir":
            if not value.startswith("/"):
                raise Refused(index, key, f"an absolute path, not {value!r}")
            out["cwd"] = value
            continue
        raise Refused(index, key, "the local driver runs a process as the control plane's user, with no "
                                  "container: it cannot apply it (run the namespace on kubernetes or ecs)")
    return out


# -- ECS -----------------------------------------------------------------------------------------

def for_ecs(arguments: Arguments, fargate: bool = True) -> dict[str, Any]:
    """The container definition's fields for the arguments (merged into the run's container)."""
    out: dict[str, Any] = {}
    on = "Fargate" if fargate else "EC2"
    for index, (key, value) in enumerate(arguments):
        _common(index, key)
        if key == "privileged":
            if _bool(index, key, value) and fargate:
                raise Refused(index, key, "Fargate runs no privileged containers (VAMP_ECS_LAUNCH_TYPE=EC2 does)")
            extra: dict[str, Any] = {"privileged": _bool(index, key, value)}
        elif key == "user":
            if not _USER.match(value):
                raise Refused(index, key, f"a user or uid, optionally :group or :gid, not {value!r}")
            extra = {"user": value}
        elif key == "workdir":
            if not value.startswith("/"):
                raise Refused(index, key, f"an absolute path, not {value!r}")
            extra = {"workingDirectory": value}
        elif key == "read-only":
            extra = {"readonlyRootFilesystem": _bool(index, key, value)}
        elif key == "init":
            extra = {"linuxParameters": {"initProcessEnabled": _bool(index, key, value)}}
        elif key in ("cap-add", "cap-drop"):
            names = _capabilities(index, key, value)
            if key == "cap-add" and fargate and set(names) - {"SYS_PTRACE"}:
                raise Refused(index, key, "Fargate adds only SYS_PTRACE")
            extra = {"linuxParameters": {"capabilities": {key.removeprefix("cap-"): names}}}
        elif key == "security-opt":
            if fargate:
                raise Refused(index, key, "Fargate takes no docker security options (VAMP_ECS_LAUNCH_TYPE=EC2 does)")
            option = value.replace("=", ":", 1) if value.startswith(("apparmor=", "label=")) else value
            if option not in ("no-new-privileges", "no-new-privileges:true") and not option.startswith(
                    ("apparmor:", "label:")):
                raise Refused(index, key, f"ECS takes no-new-privileges, apparmor= and label= only, not {value!r}")
            extra = {"dockerSecurityOptions": ["no-new-privileges" if option.startswith("no-new") else option]}
        elif key == "ulimit":
            m = _ULIMIT.match(value)
            if not m or m.group(1) not in _ECS_ULIMITS:
                raise Refused(index, key, f"name=soft[:hard] with a name ECS knows ({', '.join(sorted(_ECS_ULIMITS))}), "
                                          f"not {value!r}")
            soft = int(m.group(2))
            extra = {"ulimits": [{"name": m.group(1), "softLimit": soft, "hardLimit": int(m.group(4) or soft)}]}
        elif key == "stop-timeout":
            extra = {"stopTimeout": _seconds(index, key, value, 120 if fargate else 86400)}
        elif key == "label":
            name, text = _label(index, key, value)
            extra = {"dockerLabels": {name: text}}
        else:
            raise Refused(index, key, f"ECS ({on}) has no container setting for it")
        _merge(out, extra)
    return out


# -- Kubernetes ----------------------------------------------------------------------------------

def for_kubernetes(arguments: Arguments, container: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(a pod spec fragment for the container named `container` and the pod, the pod's labels)."""
    security: dict[str, Any] = {}
    box: dict[str, Any] = {"name": container}
    pod: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for index, (key, value) in enumerate(arguments):
        _common(index, key)
        if key == "privileged":
            if _bool(index, key, value):  # a privileged container may escalate (the API server requires it)
                _merge(security, {"privileged": True, "allowPrivilegeEscalation": True})
            else:
                security["privileged"] = False
        elif key == "user":
            if not _UID.match(value):
                raise Refused(index, key, f"a numeric uid[:gid] on Kubernetes (no user names), not {value!r}")
            uid, _, gid = value.partition(":")
            security["runAsUser"] = int(uid)
            if gid:
                security["runAsGroup"] = int(gid)
        elif key == "workdir":
            if not value.startswith("/"):
                raise Refused(index, key, f"an absolute path, not {value!r}")
            box["workingDir"] = value
        elif key == "read-only":
            security["readOnlyRootFilesystem"] = _bool(index, key, value)
        elif key in ("cap-add", "cap-drop"):
            _merge(security, {"capabilities": {key.removeprefix("cap-"): _capabilities(index, key, value)}})
        elif key == "security-opt":
            name, _, setting = value.partition("=")
            if value in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
                security["allowPrivilegeEscalation"] = False
            elif name in ("seccomp", "apparmor") and setting:
                if setting == "unconfined":
                    profile = {"type": "Unconfined"}
                elif _PROFILE.match(setting):
                    profile = {"type": "Localhost", "localhostProfile": setting}
                else:
                    raise Refused(index, key, f"a profile name or `unconfined`, not {setting!r}")
                security["seccompProfile" if name == "seccomp" else "appArmorProfile"] = profile
            else:
                raise Refused(index, key, f"Kubernetes takes no-new-privileges, seccomp= and apparmor= only, "
                                          f"not {value!r}")
        elif key == "stop-timeout":
            pod["terminationGracePeriodSeconds"] = _seconds(index, key, value, 86400)
        elif key == "label":
            name, text = _label(index, key, value)
            labels[name] = text
        elif key == "init":
            raise Refused(index, key, "Kubernetes has no init process option for a container")
        elif key == "ulimit":
            raise Refused(index, key, "Kubernetes sets no ulimits per pod (the node's runtime does)")
        else:
            raise Refused(index, key, "Kubernetes has no pod or container setting for it")
    if security:
        box["securityContext"] = security
    fragment: dict[str, Any] = {**pod}
    if len(box) > 1:
        fragment["containers"] = [box]
    return fragment, labels


def kubernetes_pod(arguments: Arguments, container: str, policy: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(pod spec fragment, pod labels) for the arguments, each held to the namespace's policy
    as `dialects.kubernetes` is (kube_policy.dialect_problems): one the policy refuses is
    Refused with the policy's reason. Under a hardening policy every capability stays dropped
    (`cap-drop` adds to ALL)."""
    from chalicelib.drivers.kube_policy import dialect_problems

    pairs = list(arguments)
    for index, pair in enumerate(pairs):
        try:
            alone, _ = for_kubernetes([pair], container)
        except Refused as e:  # at its place in the whole list
            raise Refused(index, e.key, e.reason) from None
        _keep_all_dropped(alone, policy)
        refused = dialect_problems(alone, policy)
        if refused:
            raise Refused(index, pair[0], "the namespace's Kubernetes policy refuses it: " + "; ".join(
                f"{where.lstrip('.')}: {why}" for where, why in refused))
    fragment, labels = for_kubernetes(pairs, container)
    _keep_all_dropped(fragment, policy)
    return fragment, labels


def _keep_all_dropped(fragment: dict, policy: Any) -> None:
    for box in fragment.get("containers", []):
        drop = ((box.get("securityContext") or {}).get("capabilities") or {}).get("drop")
        if drop is not None and policy.harden and "ALL" not in drop:
            drop.insert(0, "ALL")


# -- checked at a workflow's write ------------------------------------------------------------------

def problems(namespace: str, arguments: list[tuple[str, tuple[str, str]]]) -> list[tuple[str, str]]:
    """What the namespace's driver (as configured now) refuses of a workflow's arguments, as
    [(path, reason)]; `arguments` are (path, (key, value)). The driver checks again at each run
    (the operator may move the namespace to another driver)."""
    from chalicelib.settings import settings

    if not arguments:
        return []
    s = settings()
    try:
        kind = s.driver_for(namespace)
    except ValueError as e:
        return [("namespace", str(e))]
    pairs = [pair for _, pair in arguments]
    try:
        if kind == "local":
            for_local(pairs)
        elif kind == "ecs":
            for_ecs(pairs, fargate=s.ecs_launch_type == "FARGATE")
        elif kind == "kubernetes":
            from chalicelib.drivers.kube_policy import KubeRules

            kubernetes_pod(pairs, "workflow", KubeRules.from_settings(s).policy(namespace))
    except Refused as e:
        return [(arguments[e.index][0], f"{kind} driver: {e}")]
    except ValueError as e:  # the namespace's policy itself
        return [("namespace", str(e))]
    return []
