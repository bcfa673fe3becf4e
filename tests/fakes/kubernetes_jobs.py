"""batch/v1 Jobs (workflow runs) in the fake Kubernetes API server (tests/fakes/kubernetes_server.py
imports this and routes `jobs` and `pods` here), as strict as the real API and its controllers:

- Create (POST) only, as the driver writes Jobs: validated by the official schema (kubernetes-
  validate, strict) and the API server's Job rules the schema does not hold: the name a DNS
  subdomain of at most 63 characters (it becomes the pods' `job-name` label), labels,
  `restartPolicy` Never or OnFailure (unset is Always: refused), containers as the server checks
  them, `activeDeadlineSeconds` > 0, `backoffLimit`/`ttlSecondsAfterFinished`/`completions`/
  `parallelism` >= 0, no `selector` without `manualSelector`. The server then defaults
  (backoffLimit 6, completions and parallelism 1, completionMode NonIndexed, suspend false) and
  adds its labels (`batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`,
  `controller-uid`, `job-name`) to the template and the selector. PUT and PATCH of a Job: 405
  here (not served: the driver never updates a Job).
- GET one, list by label selector (`=`, `==`, `!=`, `key`, `!key`, `in (...)`, `notin (...)`;
  a selector it cannot parse is a 400, never ignored), DELETE with `propagationPolicy` (query or
  DeleteOptions body): `Background` deletes the pods after the Job (the garbage collector),
  `Foreground` deletes them first, and without one a batch/v1 Job's pods are ORPHANED, as the
  real API does for Jobs (kubectl passes Background; a client that does not leaks pods).
- The Job controller, one step at a time with the server's other controllers: a step after
  creation the Job gets `status.startTime` and a pod (unless the namespace's Pod Security
  `enforce` level refuses it: then no pod, and the Job waits for its deadline), Pending with its
  container ContainerCreating; a step later Running; after the outcome's `steps` it terminates
  with the outcome's exit code: the Job `succeeded: 1`, conditions SuccessCriteriaMet and
  Complete, `completionTime`; or `failed: 1` and, past `backoffLimit` retries (each a new pod),
  FailureTarget and Failed `BackoffLimitExceeded`. Past `startTime + activeDeadlineSeconds` (the
  fake's clock) the active pod is deleted and counted failed, conditions FailureTarget and Failed
  `DeadlineExceeded`. `ttlSecondsAfterFinished` after it finished, the TTL controller deletes the
  Job (Background). `active`, `succeeded` and `failed` are omitted when zero, as the API serialises them.
- Pods: GET one, list by selector, and `pods/<name>/log` (`container`, `tailLines`) as text: a
  container still waiting to start is a 400 as the kubelet words it. Pods are only the
  controller's here: creating, updating or deleting one is a 405.

    fake.jobs.outcome("workflow-report-*", exit_code=3, log=["a", "b"])  # per job name (glob)
    fake.jobs.outcome("workflow-slow-*", exit_code=None)                 # runs until its deadline
    fake.jobs.skip(31)                                                   # the clock moves on
"""
from __future__ import annotations

import copy
import fnmatch
import itertools
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# plural -> (group path, apiVersion, kind), as kubernetes_server._KINDS
JOB_KINDS = {"jobs": ("apis/batch/v1", "batch/v1", "Job"), "pods": ("api/v1", "v1", "Pod")}
JOB_RESOURCES = {"jobs": "jobs.batch", "pods": "pods"}
JOB_GROUPS = {("apis", "batch", "v1"): "apis/batch/v1"}

CONTROLLER_UID, JOB_NAME = "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"
_PROPAGATION = ("Orphan", "Background", "Foreground")

# A selector requirement: `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`.
_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_REQUIREMENT = re.compile(rf"^\s*(?:(?P<not>!)\s*(?P<absent>{_KEY})|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*"
                          rf"(?P<value>{_VALUE})|\s(?P<set>in|notin)\s*\((?P<values>[-A-Za-z0-9_., ]*)\))?)\s*$")


class SelectorError(ValueError):
    pass


def parse_selector(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """A label selector as the API server parses it: [(key, op, values)], op one of exists,
    absent, in, notin (`=`/`==` are `in` of one value, `!=` `notin`)."""
    parts, depth, current = [], 0, ""
    for c in text:  # commas separate requirements, except inside a set's parentheses
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    parts.append(current)
    out = []
    for part in parts:
        if not part.strip() and len(parts) == 1:
            return []
        m = _REQUIREMENT.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        if m.group("absent"):
            out.append((m.group("absent"), "absent", ()))
        elif m.group("op"):
            out.append((m.group("key"), "notin" if m.group("op") == "!=" else "in", (m.group("value"),)))
        elif m.group("set"):
            values = tuple(v.strip() for v in m.group("values").split(",") if v.strip())
            if not values:
                raise SelectorError(f"unable to parse requirement: {part.strip()!r}: for 'in', 'notin' "
                                    "operators, values set can't be empty")
            out.append((m.group("key"), m.group("set"), values))
        else:
            out.append((m.group("key"), "exists", ()))
    return out


def selected(labels: dict, requirements: list[tuple[str, str, tuple[str, ...]]]) -> bool:
    for key, op, values in requirements:
        if op == "exists" and key not in labels:
            return False
        if op == "absent" and key in labels:
            return False
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and key in labels and labels[key] in values:
            return False
    return True


@dataclass
class Outcome:
    """How a Job's container ends: `exit_code` after `steps` controller steps running (None: it
    never ends on its own, so its deadline ends it), having printed `log`."""

    exit_code: int | None = 0
    log: tuple[str, ...] = ()
    steps: int = 2


@dataclass
class _Run:
    """The Job controller's memory of one Job (by uid)."""

    outcome: Outcome
    pod: str | None = None  # the active pod's name
    left: int = 0  # steps its container still runs
    refused: str | None = None  # Pod Security refused the pod


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _condition(kind: str, reason: str, message: str, now: float) -> dict:
    return {"type": kind, "status": "True", "lastProbeTime": _stamp(now), "lastTransitionTime": _stamp(now),
            "reason": reason, "message": message}


def job_problems(obj: dict) -> list[str]:
    """What the API server's Job validation refuses beyond the schema (pkg/apis/batch/validation)."""
    from tests.fakes.kubernetes_server import _container_problems, _meta_problems, _name_problems

    meta = obj.get("metadata") or {}
    name = meta.get("name")
    out = _name_problems("metadata.name", name, "subdomain") + _meta_problems(meta)
    if isinstance(name, str) and len(name) > 63:  # the pods' job-name label holds it
        out.append(f'spec.template.labels: Invalid value: "{name}": must be no more than 63 characters')
    spec = obj.get("spec") or {}
    for key, low in (("activeDeadlineSeconds", 1), ("backoffLimit", 0), ("ttlSecondsAfterFinished", 0),
                     ("completions", 0), ("parallelism", 0)):
        if spec.get(key) is not None and spec[key] < low:
            out.append(f"spec.{key}: Invalid value: {spec[key]}: must be greater than or equal to {low}")
    if spec.get("selector") is not None and not spec.get("manualSelector"):
        out.append("spec.selector: Invalid value: `selector` will be auto-generated")
    template = spec.get("template") or {}
    out += _meta_problems(template.get("metadata") or {})
    pod = template.get("spec") or {}
    policy = pod.get("restartPolicy") or "Always"
    if policy not in ("OnFailure", "Never"):
        out.append(f'spec.template.spec.restartPolicy: Unsupported value: "{policy}": supported values: '
                   '"OnFailure", "Never"')
    if not pod.get("containers"):
        out.append("spec.template.spec.containers: Required value")
    names: set = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(pod.get(group) or []):
            out += _container_problems(f"spec.template.spec.{group}[{i}]", c)
            if c.get("name") in names:
                out.append(f"spec.template.spec.{group}[{i}].name: Duplicate value: {c.get('name')!r}")
            names.add(c.get("name"))
    return out


class FakeJobs:
    """The Jobs and pods of a FakeKubernetes, their controllers and the tests' controls."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, Outcome]] = []  # (job name glob, outcome), the last match wins
        self.offset = 0.0  # seconds the fake's clock is ahead of the wall clock
        self.runs: dict[str, _Run] = {}  # job uid -> its run
        self._suffixes = itertools.count()

    # -- the tests' controls ----------------------------------------------------------------

    def outcome(self, name: str = "*", exit_code: int | None = 0, log: tuple[str, ...] | list[str] = (),
                steps: int = 2) -> None:
        """Jobs named like the glob `name` (created from now on) end so."""
        self.outcomes.append((name, Outcome(exit_code, tuple(log), max(1, steps))))

    def skip(self, seconds: float) -> None:
        """The fake's clock (deadlines, TTLs, timestamps) moves `seconds` on."""
        self.offset += seconds

    def now(self) -> float:
        return time.time() + self.offset

    def _outcome_of(self, name: str) -> Outcome:
        found = [o for glob, o in self.outcomes if fnmatch.fnmatchcase(name, glob)]
        return found[-1] if found else Outcome()

    # -- HTTP ---------------------------------------------------------------------------------

    def serve(self, fake: Any, group: str, namespace: str, kind: str, rest: list[str], method: str, body: Any,
              query: dict) -> tuple[int, Any]:
        from tests.fakes.kubernetes_server import _status

        resource = JOB_RESOURCES[kind]
        if JOB_KINDS[kind][0] != group or len(rest) > 2 or (len(rest) == 2 and (kind, rest[1]) != ("pods", "log")):
            return 404, _status(404, "the server could not find the requested resource")
        if namespace not in fake.store.get(("namespaces", None), {}):
            if method == "GET" and not rest:
                return 200, self._list(fake, kind, namespace, query)
            return 404, _status(404, f'namespaces "{namespace}" not found',
                                details={"name": namespace, "kind": "namespaces"})
        objects = fake.store.setdefault((kind, namespace), {})
        if not rest:
            if method == "GET":
                try:
                    return 200, self._list(fake, kind, namespace, query)
                except SelectorError as e:
                    return 400, _status(400, str(e))
            if method == "POST" and kind == "jobs":
                return self._create(fake, namespace, body, query)
            return 405, _status(405, f"{method} on {resource} is not served by this fake")
        name = rest[0]
        current = objects.get(name)
        if current is None:
            return 404, _status(404, f'{resource} "{name}" not found', details={"name": name, "kind": kind})
        if len(rest) == 2:
            return self._log(current, query) if method == "GET" else (
                405, _status(405, f"{method} on pods/log is not allowed"))
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE" and kind == "jobs":
            given = query.get("propagationPolicy") or (body.get("propagationPolicy") if isinstance(body, dict)
                                                        else None)
            if given is not None and given not in _PROPAGATION:
                return 400, _status(400, f'propagationPolicy: Unsupported value: "{given}": supported values: '
                                         '"Foreground", "Background", "Orphan"')
            return 200, self._delete(fake, namespace, name, given or "Orphan")
        return 405, _status(405, f"{method} on {resource} is not served by this fake"
                                 + (" (pods are the Job controller's)" if kind == "pods" else ""))

    def _list(self, fake: Any, kind: str, namespace: str, query: dict) -> dict:
        _, api, k = JOB_KINDS[kind]
        requirements = parse_selector(query.get("labelSelector", ""))
        items = [copy.deepcopy(o) for o in fake.store.get((kind, namespace), {}).values()
                 if selected(o["metadata"].get("labels") or {}, requirements)]
        return {"kind": f"{k}List", "apiVersion": api, "metadata": {"resourceVersion": str(next(fake._versions))},
                "items": items}

    def _create(self, fake: Any, namespace: str, body: Any, query: dict) -> tuple[int, dict]:
        from tests.fakes.kubernetes_server import _status, schema_problem

        if not isinstance(body, dict):
            return 400, _status(400, "the body of the request must be an object")
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        obj["apiVersion"], obj["kind"] = obj.get("apiVersion") or "batch/v1", obj.get("kind") or "Job"
        if (obj["apiVersion"], obj["kind"]) != ("batch/v1", "Job"):
            return 400, _status(400, "the object's apiVersion and kind must be batch/v1 Job")
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, namespace):
            return 400, _status(400, "the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        meta["namespace"] = namespace
        name = meta.get("name")
        if name in fake.store[("jobs", namespace)]:
            return 409, _status(409, f'jobs.batch "{name}" already exists', "AlreadyExists")
        if fake._terminating(namespace):
            return fake._being_terminated("jobs.batch", name, namespace)
        if decoded := schema_problem(obj):
            code, problem = decoded
            if code == 400:
                return 400, _status(400, f"strict decoding error: {problem}")
            return 422, _status(422, f'Job.batch "{name}" is invalid: {problem}', details={
                "name": name, "kind": "jobs", "causes": [{"reason": "FieldValueRequired", "message": problem}]})
        if problems := job_problems(obj):
            return 422, _status(422, f'Job.batch "{name}" is invalid: ' + ", ".join(problems),
                                details={"name": name, "group": "batch", "kind": "jobs",
                                         "causes": [{"reason": "FieldValueInvalid", "message": p} for p in problems]})
        uid = str(uuid.uuid4())
        meta.update(uid=uid, resourceVersion=str(next(fake._versions)), generation=1,
                    creationTimestamp=_stamp(self.now()))
        spec = obj["spec"]
        for key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1),
                           ("completionMode", "NonIndexed"), ("suspend", False),
                           ("podReplacementPolicy", "TerminatingOrFailed"), ("manualSelector", None)):
            if value is not None:
                spec.setdefault(key, value)
        added = {CONTROLLER_UID: uid, JOB_NAME: name, "controller-uid": uid, "job-name": name}
        template_meta = spec["template"].setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), **added}
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
        if not meta.get("labels"):
            meta["labels"] = dict(template_meta["labels"])
        obj["status"] = {}
        fake.store[("jobs", namespace)][name] = obj
        self.runs[uid] = _Run(self._outcome_of(name))
        return 201, copy.deepcopy(obj)

    def _delete(self, fake: Any, namespace: str, name: str, propagation: str) -> dict:
        job = fake.store[("jobs", namespace)][name]
        uid = job["metadata"]["uid"]
        if propagation == "Foreground":  # the pods go first (next step), then the Job
            job["metadata"]["deletionTimestamp"] = _stamp(self.now())
            job["metadata"]["finalizers"] = ["foregroundDeletion"]
            return copy.deepcopy(job)
        if propagation == "Orphan":  # the pods stay, no longer owned
            for pod in fake.store.get(("pods", namespace), {}).values():
                refs = pod["metadata"].get("ownerReferences") or []
                pod["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
        del fake.store[("jobs", namespace)][name]
        self.runs.pop(uid, None)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": "batch", "kind": "jobs", "uid": uid}}

    def _log(self, pod: dict, query: dict) -> tuple[int, Any]:
        from tests.fakes.kubernetes_server import _status

        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container") or (containers[0] if len(containers) == 1 else None)
        if container is None:
            return 400, _status(400, f"a container name must be specified for pod {name}, choose one of: "
                                     f"[{' '.join(containers)}]")
        if container not in containers:
            return 400, _status(400, f"container {container} is not valid for pod {name}")
        state = next(s["state"] for s in pod["status"]["containerStatuses"] if s["name"] == container)
        if "waiting" in state:
            return 400, _status(400, f'container "{container}" in pod "{name}" is waiting to start: '
                                     f'{state["waiting"]["reason"]}')
        lines = list(pod["metadata"].get("annotations", {}).get("fake.log", "").splitlines())
        if "tailLines" in query:
            try:
                tail = int(query["tailLines"])
            except ValueError:
                return 400, _status(400, f"tailLines: Invalid value: {query['tailLines']!r}")
            if tail < 0:
                return 422, _status(422, f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
            lines = lines[-tail:] if tail else []
        return 200, LogText("".join(f"{line}\n" for line in lines))

    # -- the controllers ------------------------------------------------------------------------

    def step(self, fake: Any) -> bool:
        """One step of the Job, TTL and garbage controllers; whether anything moved."""
        moved = False
        now = self.now()
        live = set()
        for (kind, namespace), jobs in list(fake.store.items()):
            if kind != "jobs" or fake._terminating(namespace):
                continue
            for name, job in list(jobs.items()):
                uid = job["metadata"]["uid"]
                live.add(uid)
                run = self.runs.setdefault(uid, _Run(self._outcome_of(name)))
                moved = self._sync(fake, namespace, job, run, now) or moved
        for uid in [u for u in self.runs if u not in live]:
            del self.runs[uid]
        for (kind, namespace), pods in list(fake.store.items()):  # the garbage collector
            if kind != "pods":
                continue
            for name, pod in list(pods.items()):
                refs = pod["metadata"].get("ownerReferences") or []
                if refs and not any(r.get("uid") in live for r in refs):
                    del pods[name]
                    moved = True
        return moved

    def _sync(self, fake: Any, namespace: str, job: dict, run: _Run, now: float) -> bool:
        meta, spec, status = job["metadata"], job["spec"], job["status"]
        pods = fake.store.setdefault(("pods", namespace), {})
        if meta.get("deletionTimestamp"):  # foreground deletion: the pods, then the Job
            for name in [n for n, p in pods.items() if any(r.get("uid") == meta["uid"] for r in
                                                            p["metadata"].get("ownerReferences") or [])]:
                del pods[name]
            del fake.store[("jobs", namespace)][meta["name"]]
            return True
        finished = next((c for c in status.get("conditions", []) if c["type"] in ("Complete", "Failed")
                         and c["status"] == "True"), None)
        if finished is not None:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None and now >= _seconds(finished["lastTransitionTime"]) + ttl:
                self._delete(fake, namespace, meta["name"], "Background")
                return True
            return False
        if spec.get("suspend"):
            return False
        if "startTime" not in status:
            status["startTime"] = _stamp(now)
            self._start_pod(fake, namespace, job, run, now)
            self._bump(fake, job)
            return True
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and now >= _seconds(status["startTime"]) + deadline:
            if run.pod is not None:
                pods.pop(run.pod, None)  # killed
                status["failed"] = status.get("failed", 0) + 1
                run.pod = None
            status.pop("active", None)
            status["ready"] = 0
            status["conditions"] = [
                _condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", now),
                _condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", now)]
            self._bump(fake, job)
            return True
        pod = pods.get(run.pod) if run.pod else None
        if pod is None:
            return False  # refused by Pod Security (or deleted by someone): the deadline ends it
        container = pod["status"]["containerStatuses"][0]
        if pod["status"]["phase"] == "Pending":
            pod["status"].update(phase="Running", startTime=pod["status"]["startTime"], conditions=[
                {"type": "Ready", "status": "True", "lastTransitionTime": _stamp(now)}])
            container.update(state={"running": {"startedAt": _stamp(now)}}, ready=True, started=True,
                             imageID=f"fake.registry/{container['image']}@sha256:{'0' * 64}")
            pod["metadata"].setdefault("annotations", {})["fake.log"] = "\n".join(run.outcome.log)
            status["ready"] = 1
            self._bump(fake, job)
            return True
        if run.outcome.exit_code is None:
            return False  # runs until its deadline
        run.left -= 1
        if run.left > 0:
            return True
        code = run.outcome.exit_code
        container.update(ready=False, started=False, state={"terminated": {
            "exitCode": code, "reason": "Completed" if code == 0 else "Error",
            "startedAt": container["state"]["running"]["startedAt"], "finishedAt": _stamp(now)}})
        pod["status"].update(phase="Succeeded" if code == 0 else "Failed", conditions=[
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": _stamp(now)}])
        run.pod = None
        status.pop("active", None)
        status["ready"] = 0
        if code == 0:
            status["succeeded"] = status.get("succeeded", 0) + 1
            status["completionTime"] = _stamp(now)
            status["conditions"] = [
                _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods",
                           now),
                _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now)]
        else:
            status["failed"] = status.get("failed", 0) + 1
            if status["failed"] > spec.get("backoffLimit", 6):
                status["conditions"] = [
                    _condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                               now),
                    _condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now)]
            else:
                self._start_pod(fake, namespace, job, run, now)  # a retry: a new pod
        self._bump(fake, job)
        return True

    def _start_pod(self, fake: Any, namespace: str, job: dict, run: _Run, now: float) -> None:
        from tests.fakes.kubernetes_server import pod_security_violations

        template = job["spec"]["template"]
        ns = fake.store.get(("namespaces", None), {}).get(namespace) or {}
        level = ((ns.get("metadata") or {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce",
                                                                      "privileged")
        name = f"{job['metadata']['name']}-{secrets.token_hex(3)[:5]}"
        broken = pod_security_violations(template.get("spec") or {}, level)
        if broken:  # the Job controller's create is refused: events only, no pod
            run.refused = (f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
                           + ", ".join(broken))
            return
        pod_spec = copy.deepcopy(template["spec"])
        pod_spec.setdefault("nodeName", "fake-node")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "resourceVersion": str(next(fake._versions)), "creationTimestamp": _stamp(now),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                 "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": pod_spec,
            "status": {"phase": "Pending", "startTime": _stamp(now), "containerStatuses": [
                {"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
                 "started": False,
                 "state": {"waiting": {"reason": "ContainerCreating"}}} for c in pod_spec["containers"]]}}
        fake.store.setdefault(("pods", namespace), {})[name] = pod
        run.pod, run.left, run.refused = name, run.outcome.steps, None
        job["status"]["active"] = 1
        job["status"].setdefault("ready", 0)
        job["status"].setdefault("terminating", 0)
        job["status"].setdefault("uncountedTerminatedPods", {})

    @staticmethod
    def _bump(fake: Any, job: dict) -> None:
        job["metadata"]["resourceVersion"] = str(next(fake._versions))


class LogText(str):
    """A reply served as text/plain (a pod's log), not as JSON."""
