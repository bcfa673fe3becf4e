"""`make demo`, the last act: microscaling by an SLA, judged from HAProxy's own figures.

A cluster of examples/canary/service.py with a capacity (WORKERS=1, LATENCY_MS=50: one request
at a time, 50 ms each, the others wait their turn, as a worker pool would) runs under calm load;
then a `response_time_sliding_window` SLA with `scale_instances` between 1 and 3 is put on it
(PUT .../clusters/web/sla). A load process of its own sends back-to-back requests through the
external gateway from a number of users:

- 2 users on 1 instance: about 100 ms (one served, one waiting), inside the SLA's band;
- 8 users: about 400 ms on 1 instance, 200 ms on 2, 133 ms on 3 (users x 50 ms / instances);
  the scheduled pass (every second here) reads the agents' response-time windows of the
  cluster's internal gateway, finds them over `upper`, publishes `sla:escalate`, and its
  escalation adds an instance; after interval + cooldown it judges again;
- back to 2 users: about 50 ms on 3 instances, under `lower`: `sla:deescalate` removes one at a
  time, down to the minimum.

Nothing is faked: the figures are the agents' metric windows of the requests HAProxy served,
the instances are processes the local driver starts and stops, and the share of requests per
instance is counted from the `X-Instance` header of every answer the load process got. The act
fails (DemoFailed) unless the cluster grows to the maximum with traffic spread over every
instance, then shrinks back to the minimum with one instance answering.
"""
from __future__ import annotations

import shlex
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import requests
from rich.console import Console
from rich.table import Table

from local.demo_release import SERVICE, Api, DemoFailed, haproxy_applied, wait_for

DEPLOYMENT, CLUSTER, PORT_NAME = "scaling", "web", "port"
SERVICE_NAME = f"{CLUSTER}:1"
INTERNAL = f"{DEPLOYMENT}/{CLUSTER}/{PORT_NAME}"
ANSWERED_RECENTLY = 2.0  # seconds: "answering" means answered requests within this long


@dataclass(frozen=True)
class Profile:
    """The act's knobs. The agent's metric window (VAMP_AGENT_AGGREGATE_INTERVAL, 2 s in the
    demo) should be at most half the SLA's interval, so every check averages whole windows, and
    the cooldown covers a new instance's start and HAProxy's reload (about 1-2 s here)."""

    latency_ms: int = 50  # per request, one at a time per instance
    calm_users: int = 2
    busy_users: int = 8
    upper_ms: int = 170  # between 8 users on 2 instances (200 ms) and on 3 (133 ms)
    lower_ms: int = 80  # between 2 users on 1 instance (100 ms) and on 2 or 3 (50 ms)
    interval: int = 4  # seconds of metric windows an SLA check averages
    cooldown: int = 4  # seconds after an SLA event before the next check's window starts
    minimum: int = 1
    maximum: int = 3
    # seconds of calm load before the SLA is put on the cluster: at least the agent's window +
    # `interval`, so the first check does not average the load's first, partial window in
    calm: float = 6.0
    hold: float = 6.0  # seconds at the maximum, showing the spread (and that nothing more happens)
    timeout: float = 45.0  # to reach the maximum, then the minimum

    def sla(self) -> dict:
        return {"type": "response_time_sliding_window",
                "threshold": {"upper": f"{self.upper_ms}ms", "lower": f"{self.lower_ms}ms"},
                "window": {"interval": self.interval, "cooldown": self.cooldown},
                "escalations": [{"type": "scale_instances", "minimum": self.minimum, "maximum": self.maximum,
                                 "scale_by": 1}]}


def blueprint(port: int, profile: Profile) -> dict:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVICE))}"
    env = {"VERSION": "1", "LATENCY_MS": str(profile.latency_ms), "WORKERS": "1"}
    return {"name": DEPLOYMENT, "gateways": {f"{port}/http": f"{CLUSTER}/{PORT_NAME}"},
            "clusters": {CLUSTER: {
                "services": [{"breed": {"name": SERVICE_NAME, "deployable": {"type": "command", "definition": command},
                                        "ports": {PORT_NAME: "8080/http"}, "environment_variables": env},
                              "scale": {"instances": profile.minimum, "cpu": 0.1, "memory": "64MB"}}]}}}


# -- load: users sending back-to-back requests, from a process of their own --------------------

def _user(url: str, index: int, active, out: list, lock: threading.Lock, stop) -> None:
    # A new connection per request (as the release act's traffic): HAProxy balances each one.
    session = requests.Session()
    session.headers["Connection"] = "close"
    while not stop.is_set():
        if index >= active.value:
            stop.wait(0.05)
            continue
        started = time.monotonic()
        try:
            r = session.get(url, timeout=5)
            # no X-Instance: HAProxy answered itself (a 503 when no server took the request)
            sample = (started, r.headers.get("X-Instance", f"HTTP {r.status_code}"), r.status_code < 500,
                      (time.monotonic() - started) * 1000)
        except requests.RequestException:
            sample = (started, "error", False, (time.monotonic() - started) * 1000)
        with lock:
            out.append(sample)
    session.close()


def _load_process(url: str, users: int, active, queue, stop) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    out: list = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_user, args=(url, i, active, out, lock, stop), daemon=True)
               for i in range(users)]
    for t in threads:
        t.start()
    while not stop.wait(0.1):
        with lock:
            batch, out[:] = list(out), []
        if batch:
            queue.put(batch)
    for t in threads:
        t.join(timeout=6)
    with lock:
        queue.put(list(out))
    queue.put(None)


@dataclass
class Sample:
    at: float  # monotonic (the same clock in both processes)
    instance: str  # X-Instance of the answer, or "HTTP <status>" (HAProxy's own) / "error"
    ok: bool
    latency: float  # ms, as the user saw it


class Load:
    """`users` threads in a process of their own; `set_users(n)` makes the first n send."""

    def __init__(self, port: int, users: int):
        import multiprocessing

        self.url = f"http://127.0.0.1:{port}/"
        self.users = users
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._ctx = multiprocessing.get_context("spawn")  # never fork a process full of threads
        self._active = self._ctx.Value("i", 0)
        self._stop = self._ctx.Event()
        self._queue = self._ctx.Queue()
        self._proc = None
        self._collector: threading.Thread | None = None

    def start(self, active: int) -> "Load":
        self._active.value = active
        self._proc = self._ctx.Process(target=_load_process, name="demo-load", daemon=True,
                                       args=(self.url, self.users, self._active, self._queue, self._stop))
        self._proc.start()
        self._collector = threading.Thread(target=self._collect, name="demo-load-collector", daemon=True)
        self._collector.start()
        return self

    def set_users(self, n: int) -> None:
        self._active.value = n

    @property
    def active(self) -> int:
        return self._active.value

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _collect(self) -> None:
        import queue

        while True:
            try:
                batch = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._proc is None or not self._proc.is_alive():
                    return
                continue
            if batch is None:
                return
            with self._lock:
                self.samples.extend(Sample(*t) for t in batch)

    def stop(self) -> None:
        self._stop.set()
        if self._collector:
            self._collector.join(timeout=10)
        if self._proc is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(timeout=5)
        self._queue.close()

    def window(self, since: float, until: float | None = None) -> list[Sample]:
        until = time.monotonic() if until is None else until
        with self._lock:
            return [s for s in self.samples if since <= s.at < until]


def shares(samples: list[Sample]) -> Counter:
    return Counter(s.instance for s in samples)


def share_text(samples: list[Sample]) -> str:
    counted = shares(samples)
    total = sum(counted.values())
    if not total:
        return "-"
    return " ".join(f"{_label(k)} {100 * n / total:.0f}%" for k, n in sorted(counted.items()))


def _label(instance: str) -> str:
    return f"#{instance}" if instance.isdigit() else instance


def _mean(samples: list[Sample]) -> float | None:
    return sum(s.latency for s in samples) / len(samples) if samples else None


# -- the act -----------------------------------------------------------------------------------

@dataclass
class Row:
    at: float  # monotonic
    event: str
    figures: str
    instances: str  # running, or before -> after


@dataclass
class Outcome:
    grew_to: int = 0  # instances running (and answering) at the top
    shrank_to: int | None = None
    escalations: list[dict] = field(default_factory=list)  # escalation:* events, oldest first
    sla_events: list[dict] = field(default_factory=list)
    spread: Counter = field(default_factory=Counter)  # answers per instance while at the top
    rows: list[Row] = field(default_factory=list)

    def actions(self, direction: str) -> list[tuple[int, int]]:
        return [(e["value"]["before"], e["value"]["after"]) for e in self.escalations
                if "escalation:scale_instances" in e["tags"] and e["value"].get("direction") == direction]


class LoadStopped(DemoFailed):
    pass


def _direction(tags: set[str]) -> str:
    return "sla:escalate" if "sla:escalate" in tags else "sla:deescalate"


def _figures(sla: dict) -> str:
    """An SLA event's figure against the bound it passed."""
    if not sla.get("threshold") or sla.get("response_time") is None:
        return ""
    value, t = sla["response_time"], sla["threshold"]
    over = value > t["upper"]
    bound = t["upper"] if over else t["lower"]
    shown = f"{value:.0f}" if f"{value:.0f}" != str(bound) else f"{value:.1f}"  # never "80 < 80"
    return f"{shown} {'> upper' if over else '< lower'} {bound} ms"


def _stamp(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


class Act:
    def __init__(self, api: Api, console: Console, profile: Profile, agent_url: str | None, started: float | None = None):
        self.api, self.console, self.profile, self.agent_url = api, console, profile, agent_url
        self.load: Load | None = None
        self.outcome = Outcome()
        self._t0 = time.monotonic() if started is None else started
        self._wall = time.time() - time.monotonic()  # event timestamps (wall clock) -> monotonic
        self._seen: set[str] = set()
        self._answered: set[str] = set()
        self._instances = (0, 0)  # (desired, running)
        self._last_line = 0.0
        self._scaled_at: float | None = None

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self._t0:6.1f}s[/dim] {message}", highlight=False)

    def row(self, event: str, figures: str = "", at: float | None = None, instances: str | None = None) -> None:
        self.outcome.rows.append(Row(time.monotonic() if at is None else at, event, figures,
                                     str(self._instances[1]) if instances is None else instances))

    # -- the deployment -----------------------------------------------------------------------

    def deployment(self) -> dict | None:
        r = self.api.call("GET", f"/deployments/{DEPLOYMENT}", expect=(200, 404))
        return r.json() if r.status_code == 200 else None

    def instances(self) -> tuple[int, int]:
        """(instances asked for, instances running) of the cluster's service."""
        dep = self.deployment() or {}
        for s in (dep.get("clusters") or {}).get(CLUSTER, {}).get("services", []):
            if s["breed"]["name"] == SERVICE_NAME:
                desired = int((s.get("scale") or {}).get("instances", 0))
                return desired, len(s.get("instances") or [])
        return 0, 0

    def _done(self, desired: int) -> bool:
        dep = self.deployment() or {}
        services = (dep.get("clusters") or {}).get(CLUSTER, {}).get("services", [])
        return bool(services) and all(s["status"]["phase"]["name"] == "done" and len(s.get("instances") or []) == desired
                                      for s in services)

    def cleanup_earlier(self) -> None:
        if self.deployment() is not None:
            self.say(f"removing deployment {DEPLOYMENT} left by an earlier run")
            self.api.call("DELETE", f"/deployments/{DEPLOYMENT}", expect=(202, 204, 404), params={"force": "true"})
            wait_for("the earlier deployment to go", lambda: self.deployment() is None, 30)

    def deploy(self, port: int) -> None:
        p = self.profile
        started = time.monotonic()
        self.api.call("POST", "/deployments", expect=(202,), json=blueprint(port, p))
        self.say(f"POST /deployments {DEPLOYMENT}: {SERVICE_NAME} (examples/canary/service.py, {p.latency_ms} ms a "
                 f"request, one at a time: WORKERS=1), {p.minimum} instance, external gateway 127.0.0.1:{port}")
        wait_for(f"{SERVICE_NAME} to run", lambda: self._done(p.minimum), 45)
        wait_for("HAProxy applying the deployment's gateways", lambda: haproxy_applied(self.api, self.agent_url), 20)
        self._instances = (p.minimum, p.minimum)
        self.say(f"{SERVICE_NAME} runs ({time.monotonic() - started:.1f} s after the POST)")

    def put_sla(self) -> None:
        p = self.profile
        self.api.call("PUT", f"/deployments/{DEPLOYMENT}/clusters/{CLUSTER}/sla", expect=(202,), json=p.sla())
        self.say(f"PUT /deployments/{DEPLOYMENT}/clusters/{CLUSTER}/sla: response_time_sliding_window, upper "
                 f"{p.upper_ms} ms, lower {p.lower_ms} ms, over {p.interval} s of the agents' windows of gateway "
                 f"{INTERNAL}, cooldown {p.cooldown} s; escalation scale_instances by 1 within "
                 f"[{p.minimum}, {p.maximum}]; the scheduled pass checks it every second here")

    # -- watching -----------------------------------------------------------------------------

    def _new_events(self) -> list[dict]:
        found: dict[str, dict] = {}
        for tags in (["sla", f"deployments:{DEPLOYMENT}"], ["escalations", f"deployments:{DEPLOYMENT}"]):
            for e in self.api.get("/events", params={"tag": tags, "per_page": 50}):
                found[e["id"]] = e
        fresh = [e for e in found.values() if e["id"] not in self._seen]
        self._seen |= set(found)
        # an SLA event and the escalation it caused share the pass's timestamp: the SLA event first
        return sorted(fresh, key=lambda e: (e["timestamp"], "sla" not in e["tags"], e["id"]))

    def _report(self, e: dict) -> None:
        tags, v = set(e["tags"]), e.get("value") or {}
        at = _stamp(e) - self._wall
        if "sla" in tags:
            self.outcome.sla_events.append(e)
            self.say(f"  [bold]{_direction(tags)}[/bold]: response time {_figures(v)} (the mean of "
                     f"{sum((v.get('samples') or {}).values())} agent windows of {INTERNAL} over the last "
                     f"{v['window']['interval']} s)")
            return
        self.outcome.escalations.append(e)
        sla = v.get("sla") or {}  # the SLA event that asked, with its figures
        asked = f"sla:{v.get('direction')}"
        if "escalation:none" in tags:
            why = "; ".join(str(r.get("why") if isinstance(r, dict) else r) for r in v.get("why") or []) \
                or "nothing to change"
            self.say(f"  [bold]escalation:none[/bold]: {why}")
            self.row(f"{asked}: none", _figures(sla), at)
            return
        kind = next((t for t in e["tags"] if t.startswith("escalation:")), "escalation")
        self.say(f"  [bold]{kind}[/bold]: {v.get('service')} {v.get('field')} {v.get('before')} -> {v.get('after')} "
                 f"(within [{v.get('minimum')}, {v.get('maximum')}]); the next check judges the "
                 f"{self.profile.interval} s after a {self.profile.cooldown} s cooldown")
        self._scaled_at = at
        self.row(f"{asked}: {kind.removeprefix('escalation:')}", _figures(sla), at,
                 instances=f"{v.get('before')} -> {v.get('after')}")

    def _poll(self) -> None:
        for e in self._new_events():
            self._report(e)
        desired, running = self.instances()
        if (desired, running) != self._instances and running != self._instances[1]:
            self.say(f"  instances: {running} running ({desired} asked for)")
        self._instances = (desired, running)
        assert self.load is not None
        if not self.load.alive:
            raise LoadStopped(f"the load process ended (exit code {self.load._proc.exitcode})")
        recent = self.load.window(time.monotonic() - ANSWERED_RECENTLY)
        for instance in sorted(shares(recent)):
            if instance.isdigit() and instance not in self._answered:
                self._answered.add(instance)
                after = f", {time.monotonic() - self._scaled_at:.1f} s after the escalation" if self._scaled_at else ""
                if len(self._answered) > 1:
                    self.say(f"  instance {_label(instance)} answers through HAProxy{after}")
        now = time.monotonic()
        if now - self._last_line >= 2.0:
            self._last_line = now
            last = self.load.window(now - 2.0)
            mean = _mean(last)
            errors = sum(not s.ok for s in last)
            self.say(f"  {self.load.active} users, {running} instance{'s' if running != 1 else ''}: "
                     f"{len(last) / 2:.0f} req/s, mean {mean or 0:.0f} ms (client), "
                     f"{errors} errors; answered by {share_text(last)}")

    def answering(self) -> set[str]:
        assert self.load is not None
        return {k for k in shares(self.load.window(time.monotonic() - ANSWERED_RECENTLY)) if k.isdigit()}

    def watch(self, until: Callable[[], bool] | None, timeout: float, what: str) -> None:
        """Poll (events, instances, the load's figures) until `until` holds, or for `timeout`
        seconds when there is no `until`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._poll()
            except LoadStopped:
                raise
            except (requests.RequestException, DemoFailed, KeyError, ValueError) as e:
                self.say(f"  [yellow]could not read the stack: {e}[/yellow]")
            if until is not None and until():
                return
            if time.monotonic() >= deadline:
                if until is None:
                    return
                raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what} (instances asked for / "
                                 f"running: {self._instances}, answering: {sorted(self.answering())})")
            time.sleep(0.5)

    # -- the whole act ------------------------------------------------------------------------

    def run(self, port: int) -> Outcome:
        p = self.profile
        self.console.rule(f"microscaling: an SLA keeps {CLUSTER}'s response time between {p.lower_ms} and "
                          f"{p.upper_ms} ms with {p.minimum} to {p.maximum} instances")
        self.cleanup_earlier()
        self.deploy(port)
        self.load = Load(port, max(p.busy_users, p.calm_users)).start(p.calm_users)
        self.say(f"load: {p.calm_users} users sending requests back to back through 127.0.0.1:{port} (a process of "
                 f"its own); every answer counted by the instance that gave it (X-Instance)")
        self.row("calm load", f"{p.calm_users} users")
        self.watch(None, p.calm, "calm")
        self.put_sla()
        self.row("SLA put", f"{p.lower_ms}-{p.upper_ms} ms")
        self.watch(None, 2.0, "calm, with the SLA")

        self.console.rule(f"load rises: {p.busy_users} users")
        self.load.set_users(p.busy_users)
        self.row("load rises", f"{p.busy_users} users")
        self.say(f"{p.busy_users} users: one instance serves {1000 // p.latency_ms} requests/s; the others wait")
        self.watch(lambda: self._instances == (p.maximum, p.maximum) and len(self.answering()) == p.maximum,
                   p.timeout, f"{p.maximum} instances answering")
        self.outcome.grew_to = self._instances[1]
        top = time.monotonic()
        self.say(f"[green]{p.maximum} instances answer[/green]; holding the load {p.hold:.0f} s")
        self.watch(None, p.hold, "hold")
        self.outcome.spread = shares(self.load.window(top))
        self._spread_or_fail()

        self.console.rule(f"load falls: {p.calm_users} users")
        self.load.set_users(p.calm_users)
        self.row("load falls", f"{p.calm_users} users")
        self.watch(lambda: self._instances == (p.minimum, p.minimum) and len(self.answering()) == p.minimum,
                   p.timeout, f"{p.minimum} instance answering")
        self.outcome.shrank_to = self._instances[1]
        self.say(f"[green]back to {p.minimum} instance[/green]")
        self.watch(None, 2.0, "the end")
        self.row("end", f"{self.load.active} users")
        return self.outcome

    def _spread_or_fail(self) -> None:
        spread, p = self.outcome.spread, self.profile
        total = sum(spread.values()) or 1
        self.say(f"at the top, {total} requests answered by " +
                 ", ".join(f"{_label(k)} {n} ({100 * n / total:.0f}%)" for k, n in sorted(spread.items())))
        low = [k for k in map(str, range(p.maximum)) if spread.get(k, 0) < total / p.maximum / 2]
        if low:
            raise DemoFailed(f"traffic did not spread over the {p.maximum} instances: {dict(spread)}")

    def undeploy(self) -> None:
        if self.deployment() is None:
            return
        self.api.call("DELETE", f"/deployments/{DEPLOYMENT}", expect=(202, 204, 404))
        wait_for("the deployment to be removed", lambda: self.deployment() is None, 30)

    def summary(self, ok: bool) -> bool:
        rows = self.outcome.rows
        table = Table(title="microscaling: what happened, and who answered (mean: the users' response time)",
                      title_justify="left")
        for name in ("time", "event", "SLA figure", "instances", "requests"):
            table.add_column(name, no_wrap=True)
        table.add_column("answered by (until the next row)")
        table.add_column("mean", no_wrap=True)
        for i, r in enumerate(rows):
            until = rows[i + 1].at if i + 1 < len(rows) else r.at
            samples = self.load.window(r.at, until) if self.load and until > r.at else []
            mean = _mean(samples)
            table.add_row(f"{r.at - self._t0:.1f}s", r.event, r.figures, r.instances, str(len(samples) or "-"),
                          share_text(samples), "-" if mean is None else f"{mean:.0f} ms")
        self.console.print(table)
        p, o = self.profile, self.outcome
        up, down = o.actions("escalate"), o.actions("deescalate")
        ok = ok and o.grew_to == p.maximum and o.shrank_to == p.minimum
        steps = " ".join(f"{a}->{b}" for a, b in up + down)
        self.console.rule(f"[green]grew {p.minimum} -> {p.maximum} and shrank back to {p.minimum} by the SLA's "
                          f"escalations ({steps})[/green]" if ok else
                          f"[red]microscaling failed: grew to {o.grew_to}, shrank to {o.shrank_to} "
                          f"(escalations: {steps or 'none'})[/red]")
        return ok


def run_microscaling_demo(api_url: str, token: str, agent_url: str | None, port: int, *,
                          profile: Profile | None = None, console: Console | None = None) -> tuple[bool, Act]:
    """The microscaling act; always stops its load and undeploys. (ok, the act with its outcome)."""
    console = console or Console(width=None if Console().is_terminal else 120)
    act = Act(Api(api_url, token), console, profile or Profile(), agent_url)
    ok = False
    try:
        act.run(port)
        ok = True
    except (DemoFailed, requests.RequestException) as e:
        console.print(f"[red]microscaling failed: {e}[/red]")
    finally:
        if act.load:
            act.load.stop()
        try:
            act.undeploy()
        except (DemoFailed, requests.RequestException) as e:
            console.print(f"[red]could not undeploy {DEPLOYMENT}: {e}[/red]")
    return act.summary(ok), act
