"""A fake Kubernetes API server: a real HTTP server on 127.0.0.1 speaking the subset of the API
the kubernetes driver calls, so tests drive the REAL `kubernetes` client against it.

No kube-apiserver, k3s or kind can run on these machines. This keeps objects in memory with
the semantics the driver relies on: `metadata.resourceVersion` bumped on every write, a PUT
with a stale resourceVersion answers 409 Conflict, a POST of an existing name 409
AlreadyExists, a missing object or namespace 404 NotFound (Status bodies as the API server
sends them), label selectors `a=b,c=d` on lists, `generation` bumped on spec changes, a
Service's clusterIP assigned once and immutable, a namespace name that is no DNS label (63
characters at most) 422 Invalid, and a Deployment's status made "all replicas ready" at once
unless a test sets it (`set_status`). Pod Security Admission as the API server applies it to a
Deployment: the Deployment is stored, but when its pod template breaks its namespace's
`pod-security.kubernetes.io/enforce` level (the checks of `baseline` and `restricted` that
matter here) the ReplicaSet cannot create pods, so its status is a ReplicaFailure with the
API server's reason.

    fake = FakeKubernetes().start()         # fake.url -> "http://127.0.0.1:<port>"
    fake.objects("deployments", "ns")        # stored bodies
    fake.set_status("ns", "name", {...})     # a deployment's status from now on
    fake.fail_next(503)                      # the next request answers 503
    fake.requests                            # [(method, path)]

Endpoints: /api/v1/namespaces[/<ns>]; /apis/apps/v1/namespaces/<ns>/deployments[/<name>];
/api/v1/namespaces/<ns>/services[/<name>]: GET (one, list), POST, PUT, DELETE.
"""
from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_KINDS = {"deployments": ("apps/v1", "Deployment"), "services": ("v1", "Service"), "namespaces": ("v1", "Namespace")}


_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A Service's name is a DNS-1035 label (a letter first); a port name an IANA_SVC_NAME (at most
# 15 of [a-z0-9-], a letter among them, no '-' at either end or twice in a row), unique in its
# container or Service (apimachinery's validation, as the API server applies it).
_DNS_1035 = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def _port_name_problem(where: str, ports: list) -> str | None:
    seen = set()
    for i, port in enumerate(ports or []):
        name = port.get("name")
        if name is None:
            continue
        if not _IANA_SVC_NAME.match(name) or "--" in name or not any(c.isalpha() for c in name):
            return f"{where}[{i}].name: Invalid value: {name!r}: must be no more than 15 characters, " \
                   "contain only [-a-z0-9], at least one letter, and not begin, end or repeat '-'"
        if name in seen:
            return f"{where}[{i}].name: Duplicate value: {name!r}"
        seen.add(name)
    return None


def _object_problem(kind: str, name: str, body: dict) -> str | None:
    """What the API server's validation refuses in a Service or Deployment this fake stores."""
    if kind == "services":
        if not _DNS_1035.match(name):
            return (f'Service "{name}" is invalid: metadata.name: Invalid value: "{name}": a DNS-1035 label must '
                    "consist of lower case alphanumeric characters or '-', start with an alphabetic character")
        return _port_name_problem("spec.ports", (body.get("spec") or {}).get("ports"))
    if kind == "deployments":
        containers = (((body.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        for c, container in enumerate(containers):
            problem = _port_name_problem(f"spec.template.spec.containers[{c}].ports", container.get("ports"))
            if problem:
                return f'Deployment "{name}" is invalid: {problem}'
    return None


def pod_security_violations(pod: dict, level: str) -> list[str]:
    """The Pod Security Standards checks (baseline, then restricted) a pod spec breaks."""
    if level not in ("baseline", "restricted"):
        return []
    out: list[str] = []
    containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
    contexts = [c.get("securityContext") or {} for c in containers]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"host namespaces ({field}=true)")
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


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeKubernetes:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str | None], dict[str, dict]] = {}  # (kind, ns) -> name -> body
        self.statuses: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._versions = itertools.count(1000)
        self._ips = itertools.count(10)
        self._fail: list[int] = []
        self._lock = threading.Lock()
        # Set: every request waits until it is cleared (a hung API server: accepts, never answers).
        self.hung = threading.Event()
        self._answer = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> "FakeKubernetes":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if fake.hung.is_set():
                    fake._answer.wait(60)
                code, reply = fake.handle(self.command, self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def objects(self, kind: str, namespace: str | None = None) -> dict[str, dict]:
        with self._lock:
            return copy.deepcopy(self.store.get((kind, namespace), {}))

    def set_status(self, namespace: str, name: str, status: dict) -> None:
        with self._lock:
            self.statuses[(namespace, name)] = status

    def hang(self) -> None:
        """From now on, requests are accepted and never answered (until `answer()`)."""
        self._answer.clear()
        self.hung.set()

    def answer(self) -> None:
        self.hung.clear()
        self._answer.set()

    def fail_next(self, code: int) -> None:
        with self._lock:
            self._fail.append(code)

    # -- the API ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: dict | None) -> tuple[int, dict]:
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        with self._lock:
            self.requests.append((method, url.path))
            if self._fail:
                code = self._fail.pop(0)
                return code, _status(code, "ServiceUnavailable", "injected failure")
            if parts[:2] == ["api", "v1"]:
                rest = parts[2:]
            elif parts[:3] == ["apis", "apps", "v1"]:
                rest = parts[3:]
            else:
                return 404, _status(404, "NotFound", f"the server could not find {url.path}")
            if rest[:1] != ["namespaces"]:
                return 404, _status(404, "NotFound", f"the server could not find {url.path}")
            if len(rest) <= 2:
                return self._op("namespaces", None, rest[1] if len(rest) == 2 else None, method, body, query)
            namespace, kind = rest[1], rest[2]
            if kind not in ("deployments", "services") or len(rest) > 4:
                return 404, _status(404, "NotFound", f"the server could not find {url.path}")
            if namespace not in self.store.get(("namespaces", None), {}):
                if method == "GET" and len(rest) == 3:
                    return 200, self._list(kind, namespace, query)  # listing an absent namespace: empty
                return 404, _status(404, "NotFound", f'namespaces "{namespace}" not found')
            return self._op(kind, namespace, rest[3] if len(rest) == 4 else None, method, body, query)

    def _list(self, kind: str, namespace: str | None, query: dict) -> dict:
        api, k = _KINDS[kind]
        wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
        items = [self._view(kind, namespace, o) for o in self.store.get((kind, namespace), {}).values()
                 if all((o["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())]
        return {"kind": f"{k}List", "apiVersion": api, "metadata": {"resourceVersion": str(next(self._versions))},
                "items": items}

    def _view(self, kind: str, namespace: str | None, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if kind == "deployments":
            replicas = obj["spec"].get("replicas", 1)
            ns = self.store.get(("namespaces", None), {}).get(namespace) or {}
            level = (ns.get("metadata", {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce", "privileged")
            broken = pod_security_violations(obj["spec"]["template"].get("spec") or {}, level)
            if broken and (namespace, obj["metadata"]["name"]) not in self.statuses:
                obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "replicas": 0, "conditions": [
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                     "message": f'pods is forbidden: violates PodSecurity "{level}:latest": {", ".join(broken)}'}]}
                return obj
            obj["status"] = self.statuses.get((namespace, obj["metadata"]["name"])) or {
                "observedGeneration": obj["metadata"]["generation"], "replicas": replicas,
                "readyReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                "message": "ok"}]}
        return obj

    def _op(self, kind: str, namespace: str | None, name: str | None, method: str, body: dict | None,
            query: dict) -> tuple[int, dict]:
        objects = self.store.setdefault((kind, namespace), {})
        label = kind[:-1] if kind != "namespaces" else "namespace"
        if name is None and method == "GET":
            return 200, self._list(kind, namespace, query)
        if name is None and method == "POST":
            name = (body or {}).get("metadata", {}).get("name")
            if not name:
                return 422, _status(422, "Invalid", "metadata.name: Required value")
            if not _DNS_LABEL.match(name) and kind in ("namespaces", "services"):
                return 422, _status(422, "Invalid", f'{kind[:-1]} "{name}" is invalid: metadata.name: Invalid value: '
                                    "a lowercase RFC 1123 label must be at most 63 characters")
            if problem := _object_problem(kind, name, body or {}):
                return 422, _status(422, "Invalid", problem)
            if name in objects:
                return 409, _status(409, "AlreadyExists", f'{kind} "{name}" already exists')
            obj = self._stamp(kind, copy.deepcopy(body), None)
            obj["metadata"]["namespace"] = namespace
            objects[name] = obj
            return 201, self._view(kind, namespace, obj)
        if name is None:
            return 405, _status(405, "MethodNotAllowed", "method not allowed")
        current = objects.get(name)
        if current is None:
            return 404, _status(404, "NotFound", f'{label}s "{name}" not found')
        if method == "GET":
            return 200, self._view(kind, namespace, current)
        if method == "DELETE":
            del objects[name]
            if kind == "namespaces":
                for key in [k for k in self.store if k[1] == name]:
                    del self.store[key]
            if kind == "deployments":  # as the API server answers: a Status for these, the object for others
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            return 200, self._view(kind, namespace, current)
        if method == "PUT":
            if problem := _object_problem(kind, name, body or {}):
                return 422, _status(422, "Invalid", problem)
            given = (body or {}).get("metadata", {}).get("resourceVersion")
            if given is not None and given != current["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": '
                                    "the object has been modified; please apply your changes to the latest version")
            if kind == "services":
                ip = (body.get("spec") or {}).get("clusterIP")
                if ip not in (None, "", current["spec"]["clusterIP"]):
                    return 422, _status(422, "Invalid", "spec.clusterIP: Invalid value: field is immutable")
                if not ip:
                    return 422, _status(422, "Invalid", 'spec.clusterIP: Invalid value: "": field is immutable')
            obj = self._stamp(kind, copy.deepcopy(body), current)
            obj["metadata"]["namespace"] = namespace
            objects[name] = obj
            return 200, self._view(kind, namespace, obj)
        return 405, _status(405, "MethodNotAllowed", f"{method} is not supported by this fake")

    def _stamp(self, kind: str, obj: dict, current: dict | None) -> dict:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        meta["uid"] = current["metadata"]["uid"] if current else str(uuid.uuid4())
        meta["creationTimestamp"] = (current["metadata"]["creationTimestamp"] if current else
                                     datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if kind == "deployments":
            changed = current is None or current.get("spec") != obj.get("spec")
            meta["generation"] = (current["metadata"]["generation"] if current else 0) + (1 if changed else 0)
        if kind == "services":
            spec = obj.setdefault("spec", {})
            if current is None:
                spec["clusterIP"] = f"10.96.0.{next(self._ips)}"
                spec["clusterIPs"] = [spec["clusterIP"]]
        if kind == "namespaces":
            obj["status"] = {"phase": "Active"}
        return obj
