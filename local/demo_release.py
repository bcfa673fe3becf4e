"""`make demo`, the main act: two canary releases of a real service through the local HAProxy.

Version 1 of examples/canary/service.py is deployed (the local driver runs it as a process)
behind an external gateway on a free loopback port; a traffic thread keeps steady requests on
that gateway and counts who answered. Version 2 (healthy) is merged in at 0% and released with a
stored `release-policies` artifact: the state machine shifts weight step by step, judging the
metric windows the gateway agent posts, and promotes it, which removes version 1 from the
deployment. Version 3 fails ~30% of its requests: its release is rolled back by itself and
version 3 sliced off, version 2 still serving everything. A summary closes; the run succeeds
only when the first release was promoted and the second rolled back.
"""
from __future__ import annotations

import shlex
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import requests
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from local.stack import free_port_in

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "canary" / "service.py"
DEPLOYMENT, CLUSTER, PORT_NAME = "canary", "web", "port"
INTERNAL = f"{DEPLOYMENT}/{CLUSTER}/{PORT_NAME}"  # the cluster's gateway: one route per version
POLICY = "canary-demo"


@dataclass(frozen=True)
class Profile:
    """The demo's knobs. The agent's metric window (VAMP_AGENT_AGGREGATE_INTERVAL) should be
    about half the interval, so every check sees about two windows."""

    steps: tuple[str, ...] = ("20%", "50%", "80%")
    interval: int = 4  # seconds between checks
    failures: int = 2  # failed checks before rollback
    minimum_requests: int = 15  # canary requests a check needs (20% of 50/s over 4 s: ~40)
    success_minimum: str = "95%"
    latency_maximum: str = "250ms"  # p99
    rate: float = 50.0  # requests/s on the gateway
    fail_rate: float = 0.3  # version 3's share of 500s
    timeout: float = 90.0  # per release, to a decision

    def policy(self) -> dict:
        return {"name": POLICY, "kind": "release-policies", "steps": list(self.steps),
                "interval": f"{self.interval}s", "failures": self.failures,
                "minimum_requests": self.minimum_requests, "inconclusive_limit": 3,
                "metrics": {"success_rate": {"minimum": self.success_minimum},
                            "latency": {"percentile": 99, "maximum": self.latency_maximum}}}


class DemoFailed(Exception):
    pass


def route(version: str) -> str:
    return f"{DEPLOYMENT}/{CLUSTER}/{CLUSTER}:{version}/{PORT_NAME}"


def blueprint(version: str, *, port: int | None = None, fail_rate: float = 0.0) -> dict:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVICE))}"
    env = {"VERSION": version}
    if fail_rate:
        env["FAIL_RATE"] = str(fail_rate)
    doc: dict[str, Any] = {"name": DEPLOYMENT, "clusters": {CLUSTER: {"services": [{"breed": {
        "name": f"{CLUSTER}:{version}", "deployable": {"type": "command", "definition": command},
        "ports": {PORT_NAME: "8080/http"}, "environment_variables": env}}]}}}
    if port:
        doc["gateways"] = {f"{port}/http": f"{CLUSTER}/{PORT_NAME}"}
    return doc


def demo_port(first: int = 25000, last: int = 25999) -> int:
    """A free loopback port for the external gateway, below the ephemeral range (a port an
    outgoing connection holds cannot be bound) and outside the gateways' assignment range."""
    try:
        return free_port_in(first, last, tries=50)
    except RuntimeError as e:
        raise DemoFailed(str(e)) from None


# -- the API -----------------------------------------------------------------------------------

class Api:
    def __init__(self, url: str, token: str):
        self.v1 = f"{url}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw) -> requests.Response:
        r = self.http.request(method, self.v1 + path, timeout=kw.pop("timeout", 30), **kw)
        if r.status_code not in expect:
            raise DemoFailed(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r

    def get(self, path: str, **kw) -> Any:
        return self.call("GET", path, **kw).json()

    def deployment(self) -> dict | None:
        r = self.call("GET", f"/deployments/{DEPLOYMENT}", expect=(200, 404))
        return r.json() if r.status_code == 200 else None

    def gateway_weights(self) -> dict[str, int]:
        doc = self.get(f"/gateways/{quote(INTERNAL, safe='')}")
        return {k: int(str(v.get("weight", "0%")).rstrip("%")) for k, v in (doc.get("routes") or {}).items()}

    def events(self, tag: str, n: int = 8) -> list[dict]:
        try:
            return self.get("/events", params={"tag": tag, "per_page": n})
        except (DemoFailed, requests.RequestException):
            return []


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, DemoFailed, KeyError, ValueError) as e:
            last_error = e
        time.sleep(interval)
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


# -- traffic -----------------------------------------------------------------------------------

@dataclass
class Sample:
    at: float  # monotonic
    version: str  # what answered: "1", "2", ... or "haproxy"/"error" when no version did
    ok: bool
    latency: float  # ms


@dataclass
class Figures:
    requests: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def success(self) -> float | None:
        return 100.0 * self.ok / self.requests if self.requests else None

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _send(url: str, rate: float, workers: int, index: int, out: list, lock: threading.Lock, stop) -> None:
    """One worker of the traffic process: a request every workers/rate seconds."""
    # A new connection per request: HAProxy's Tt (the latency the release judges) then measures
    # the request alone, not a keep-alive connection's idle time, and a reload never races a
    # reused connection.
    session = requests.Session()
    session.headers["Connection"] = "close"
    period = workers / rate
    next_at = time.monotonic() + index * period / workers
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        next_at = max(next_at + period, time.monotonic() - period)
        started = time.monotonic()
        try:
            r = session.get(url, timeout=2)
            body = r.text.split()
            version = body[1] if len(body) == 2 and body[0] in ("ok", "error") else "haproxy"
            sample = (started, version, r.status_code < 500, (time.monotonic() - started) * 1000)
        except requests.RequestException:
            sample = (started, "error", False, (time.monotonic() - started) * 1000)
        with lock:
            out.append(sample)
    session.close()


def _traffic_process(url: str, rate: float, workers: int, queue, stop) -> None:
    """The traffic generator's own process (so the stack's threads do not slow its requests or
    skew their latencies): samples go to the parent in batches every 100 ms."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    out: list = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_send, args=(url, rate, workers, i, out, lock, stop), daemon=True)
               for i in range(workers)]
    for t in threads:
        t.start()
    while not stop.wait(0.1):
        with lock:
            batch, out[:] = list(out), []
        if batch:
            queue.put(batch)
    for t in threads:
        t.join(timeout=3)
    with lock:
        queue.put(list(out))
    queue.put(None)


class Traffic:
    """Steady requests on the gateway from a process of its own (a few threads there); every
    answer kept here as a Sample (monotonic clock: the same for both processes)."""

    def __init__(self, port: int, rate: float, workers: int = 3):
        import multiprocessing

        self.url = f"http://127.0.0.1:{port}/"
        self.rate, self.workers = rate, workers
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._ctx = multiprocessing.get_context("spawn")  # never fork a process full of threads
        self._stop = self._ctx.Event()
        self._queue = self._ctx.Queue()
        self._proc = None
        self._collector: threading.Thread | None = None

    def start(self) -> "Traffic":
        self._proc = self._ctx.Process(target=_traffic_process, name="demo-traffic", daemon=True,
                                       args=(self.url, self.rate, self.workers, self._queue, self._stop))
        self._proc.start()
        self._collector = threading.Thread(target=self._collect, name="demo-traffic-collector", daemon=True)
        self._collector.start()
        return self

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
            self._collector.join(timeout=8)
        if self._proc is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(timeout=5)
        self._queue.close()

    def window(self, since: float, until: float | None = None) -> dict[str, Figures]:
        until = time.monotonic() if until is None else until
        with self._lock:
            chosen = [s for s in self.samples if since <= s.at <= until]
        out: dict[str, Figures] = defaultdict(Figures)
        for s in chosen:
            f = out[s.version]
            f.requests += 1
            f.ok += s.ok
            f.latencies.append(s.latency)
        return dict(out)


def haproxy_applied(api: Api, agent_url: str | None) -> bool:
    """The agent serves what the API last published."""
    if not agent_url:
        return True
    import hashlib

    published = api.get("/vga/haproxy/2.6/configuration")["configuration"]
    digest = "sha256:" + hashlib.sha256(published.encode()).hexdigest()
    return requests.get(f"{agent_url}/healthz", timeout=2).json().get("config_checksum") == digest


def through_haproxy(port: int, n: int = 5) -> Counter:
    seen: Counter = Counter()
    for _ in range(n):
        try:
            r = requests.get(f"http://127.0.0.1:{port}/", timeout=2, headers={"Connection": "close"})
            body = r.text.split()
            seen[body[1] if len(body) == 2 and r.ok else f"HTTP {r.status_code}"] += 1
        except requests.RequestException as e:
            seen[type(e).__name__] += 1
    return seen


# -- the demo ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    name: str
    stable: str
    canary: str
    phase: str = "?"
    reason: str = ""
    checks: list[dict] = field(default_factory=list)
    seconds: float | None = None  # start to decision (the release's own timestamps)
    weights: dict[str, int] = field(default_factory=dict)
    traffic: dict[str, Figures] = field(default_factory=dict)
    removed: str = ""

    def verdicts(self) -> Counter:
        return Counter(c.get("verdict") for c in self.checks)


def _pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def _seconds_between(a: str | None, b: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds()
    except (AttributeError, TypeError, ValueError):
        return None


def _check_line(c: dict) -> str:
    canary = c.get("canary") or {}
    figures = ""
    if canary:
        figures = (f" canary {canary.get('requests', 0)} req, success {_pct(canary.get('success_rate'), 2)}, "
                   f"p99 {_ms(canary.get('latency'))} (HAProxy);")
    return (f"check {c.get('number')} at {c.get('weight', 0)}%: {str(c.get('verdict', '?')).upper()}"
            f"{figures} {c.get('reason', '')} -> {c.get('decision_reason') or c.get('decision')}")


class Demo:
    def __init__(self, api: Api, console: Console, profile: Profile, agent_url: str | None = None):
        self.api, self.console, self.profile, self.agent_url = api, console, profile, agent_url
        self.live = console.is_terminal
        self.traffic: Traffic | None = None
        self.port: int | None = None
        self.outcomes: list[Outcome] = []
        self._t0 = time.monotonic()

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self._t0:6.1f}s[/dim] {message}", highlight=False)

    # -- deployment ---------------------------------------------------------------------------

    def _services(self) -> dict[str, dict]:
        dep = self.api.deployment()
        if dep is None:
            return {}
        return {s["breed"]["name"]: s for c in dep["clusters"].values() for s in c["services"]}

    def _settled(self, versions: set[str]) -> bool:
        services = self._services()
        names = {f"{CLUSTER}:{v}" for v in versions}
        if set(services) != names:
            return False
        return all(s["status"]["phase"]["name"] == "done" and s.get("instances") for s in services.values())

    def _applied(self) -> bool:
        return haproxy_applied(self.api, self.agent_url)

    def _until_deployed(self, versions: set[str], what: str, timeout: float = 45.0) -> None:
        wait_for(what, lambda: self._settled(versions), timeout)
        wait_for("HAProxy applying the deployment's gateways", self._applied, 20)

    def cleanup_earlier(self) -> None:
        if self.api.deployment() is not None:
            self.say(f"removing deployment {DEPLOYMENT} left by an earlier run")
            self.api.call("DELETE", f"/deployments/{DEPLOYMENT}", expect=(202, 204, 404), params={"force": "true"})
            wait_for("the earlier deployment to go", lambda: self.api.deployment() is None, 30)

    def deploy_v1(self, port: int) -> None:
        self.port = port
        started = time.monotonic()
        self.api.call("POST", "/deployments", expect=(202,), json=blueprint("1", port=port))
        self.say(f"POST /deployments {DEPLOYMENT}: {CLUSTER}:1 (examples/canary/service.py, run by the local driver), "
                 f"external gateway 127.0.0.1:{port}")
        self._until_deployed({"1"}, "version 1 to run")
        wait_for("version 1 answering through HAProxy", lambda: through_haproxy(port, 3) == Counter({"1": 3}), 20)
        self.say(f"version 1 answers through HAProxy on :{port} ({time.monotonic() - started:.1f} s after the POST)")

    def merge(self, version: str, fail_rate: float = 0.0) -> None:
        started = time.monotonic()
        self.api.call("PUT", f"/deployments/{DEPLOYMENT}", expect=(202,), json=blueprint(version, fail_rate=fail_rate))
        running = {s.removeprefix(f"{CLUSTER}:") for s in self._services()}
        self._until_deployed(running | {version}, f"version {version} to run")
        weights = self.api.gateway_weights()
        knobs = f" with FAIL_RATE={fail_rate}" if fail_rate else ""
        self.say(f"PUT /deployments/{DEPLOYMENT}: {CLUSTER}:{version}{knobs} merged in, running after "
                 f"{time.monotonic() - started:.1f} s; gateway {INTERNAL}: "
                 + ", ".join(f"{k.split('/')[2]} {w}%" for k, w in weights.items()))
        if weights.get(route(version)) != 0:
            raise DemoFailed(f"version {version} did not enter at 0%: {weights}")

    def slice(self, version: str) -> None:
        started = time.monotonic()
        self.api.call("DELETE", f"/deployments/{DEPLOYMENT}", expect=(202,), json=blueprint(version))
        remaining = {s.removeprefix(f"{CLUSTER}:") for s in self._services()} - {version}
        self._until_deployed(remaining, f"version {version} to be removed")
        self.say(f"DELETE /deployments/{DEPLOYMENT} with {CLUSTER}:{version}: sliced off, its process gone "
                 f"after {time.monotonic() - started:.1f} s")

    def undeploy(self) -> None:
        if self.api.deployment() is None:
            return
        self.api.call("DELETE", f"/deployments/{DEPLOYMENT}", expect=(202, 204, 404))
        wait_for("the deployment to be removed", lambda: self.api.deployment() is None, 30)

    # -- releases -----------------------------------------------------------------------------

    def store_policy(self) -> None:
        self.api.call("PUT", f"/release-policies/{POLICY}", expect=(200, 201), json=self.profile.policy())
        p = self.profile
        self.say(f"PUT /release-policies/{POLICY}: steps {', '.join(p.steps)}, every {p.interval} s, success >= "
                 f"{p.success_minimum}, p99 <= {p.latency_maximum}, at least {p.minimum_requests} canary requests "
                 f"a check, rollback at {p.failures} failed checks")

    def release(self, name: str, stable: str, canary: str, expect: str) -> Outcome:
        assert self.traffic is not None
        outcome = Outcome(name, stable, canary)
        self.outcomes.append(outcome)
        body = {"name": name, "gateway": INTERNAL, "stable": route(stable), "canary": route(canary), "policy": POLICY}
        started = time.monotonic()
        self.api.call("POST", "/releases", expect=(202,), json=body)
        self.say(f"POST /releases {name}: {CLUSTER}:{stable} -> {CLUSTER}:{canary} with policy {POLICY} "
                 f"(expected: {expect.replace('_', ' ')})")
        status = self._watch(name, started, outcome)
        decided = time.monotonic()
        outcome.phase, outcome.reason = status["phase"], status.get("reason") or ""
        outcome.checks = status.get("checks") or []
        outcome.seconds = _seconds_between(status.get("started"), status.get("finished"))
        outcome.weights = {k.split("/")[2]: w for k, w in self.api.gateway_weights().items()}
        outcome.traffic = self.traffic.window(started, decided)
        self.say(f"release {name}: [bold]{outcome.phase}[/bold] ({outcome.reason}) after "
                 f"{outcome.seconds or decided - started:.1f} s; gateway weights "
                 + ", ".join(f"{k} {w}%" for k, w in outcome.weights.items()))
        if outcome.phase != expect:
            self.failure_report(name, status)
            raise DemoFailed(f"release {name} ended {outcome.phase}, expected {expect}")
        return outcome

    def _watch(self, name: str, started: float, outcome: Outcome) -> dict:
        deadline = started + self.profile.timeout
        status: dict = {}
        seen_checks, last_line, last_phase = 0, 0.0, None
        live = Live(console=self.console, refresh_per_second=4, transient=False) if self.live else None
        if live:
            live.start()
        try:
            while True:
                status = self.api.get(f"/releases/{quote(name, safe='')}")
                checks = status.get("checks") or []
                if live:
                    live.update(self._panel(name, status, started))
                else:
                    for c in checks[seen_checks:]:
                        self.say("  " + _check_line(c))
                    now = time.monotonic()
                    if status["phase"] != last_phase or now - last_line >= 4:
                        self.say("  " + self._progress_line(status, started))
                        last_line, last_phase = now, status["phase"]
                seen_checks = len(checks)
                if status["phase"] in ("promoted", "rolled_back", "failed"):
                    break
                if time.monotonic() > deadline:
                    self.failure_report(name, status)
                    raise DemoFailed(f"release {name} undecided after {self.profile.timeout:.0f} s (phase {status['phase']})")
                time.sleep(0.5)
        finally:
            if live:
                live.stop()
        if live:
            for c in status.get("checks") or []:
                self.say("  " + _check_line(c))
        return status

    def _recent(self, seconds: float = 4.0) -> dict[str, Figures]:
        assert self.traffic is not None
        return self.traffic.window(time.monotonic() - seconds)

    def _progress_line(self, status: dict, started: float) -> str:
        recent = self._recent()
        total = sum(f.requests for f in recent.values()) or 1
        parts = [f"{status['phase']} step {status['step']}/{status['steps']}, canary weight {status['weight']}%;"]
        for version, f in sorted(recent.items()):
            parts.append(f"v{version} {f.requests / 4:.0f} req/s ({100 * f.requests / total:.0f}%) "
                         f"ok {_pct(f.success)} p99 {_ms(f.percentile(99))} (client);")
        return " ".join(parts).rstrip(";")

    def _panel(self, name: str, status: dict, started: float) -> Group:
        recent = self._recent()
        total = sum(f.requests for f in recent.values()) or 1
        try:
            weights = {k.split("/")[2].removeprefix(f"{CLUSTER}:"): w for k, w in self.api.gateway_weights().items()}
        except (DemoFailed, requests.RequestException):
            weights = {}
        title = (f"release {name}: {status['phase']}, step {status['step']}/{status['steps']}, canary weight "
                 f"{status['weight']}%, {time.monotonic() - started:.0f} s")
        traffic = Table("version", "gateway weight", "req/s", "share", "success", "p50 (client)", "p99 (client)",
                        title=title + "\ntraffic seen through HAProxy, last 4 s", title_justify="left")
        for version in sorted(set(weights) | set(recent)):
            f = recent.get(version, Figures())
            sr = f.success
            style = "red" if sr is not None and sr < 95 else ""
            traffic.add_row(version, f"{weights[version]}%" if version in weights else "-", f"{f.requests / 4:.1f}",
                            f"{100 * f.requests / total:.0f}%", Text(_pct(sr), style=style),
                            _ms(f.percentile(50)), _ms(f.percentile(99)))
        checks = Table("#", "weight", "canary req", "success", "p99 (HAProxy)", "verdict", "decision",
                       title="checks (release status: the agent's metric windows)",
                       title_justify="left")
        for c in (status.get("checks") or [])[-8:]:
            canary = c.get("canary") or {}
            verdict = str(c.get("verdict", "?"))
            colour = {"pass": "green", "fail": "red"}.get(verdict, "yellow")
            checks.add_row(str(c.get("number")), f"{c.get('weight', 0)}%", str(canary.get("requests", "-")),
                           _pct(canary.get("success_rate"), 2), _ms(canary.get("latency")),
                           Text(verdict, style=colour), c.get("decision_reason") or c.get("decision") or "")
        return Group(traffic, checks)

    def failure_report(self, name: str, status: dict) -> None:
        self.console.print(f"[red]release {name} status:[/red]")
        self.console.print_json(data={k: status.get(k) for k in ("phase", "step", "steps", "weight", "failures",
                                                                 "reason", "started", "finished")})
        for c in (status.get("checks") or [])[-5:]:
            self.console.print("  " + _check_line(c), highlight=False)
        self.console.print(f"[red]last events of releases:{name}:[/red]")
        for e in self.api.events(f"releases:{name}"):
            value = e.get("value") if isinstance(e.get("value"), dict) else {}
            what = " ".join(t for t in e.get("tags", []) if t.startswith(("release:", "archive:"))) or e.get("type")
            check = value.get("check") or {}
            detail = value.get("reason") or (f"check {check.get('number')}: {check.get('verdict')} {check.get('reason', '')}"
                                             if check else "")
            self.console.print(f"  {e.get('timestamp')} {what} {detail}", highlight=False)

    # -- the whole act ------------------------------------------------------------------------

    def run(self, port: int) -> bool:
        p = self.profile
        self.console.rule("a canary release on the local stack: version 1 -> 2 (healthy) -> 3 (fails 30%)")
        self.cleanup_earlier()
        self.store_policy()
        self.deploy_v1(port)
        self.traffic = Traffic(port, p.rate).start()
        self.say(f"traffic: {p.rate:.0f} requests/s on 127.0.0.1:{port} from a process of its own, counted per "
                 f"version and status")

        self.console.rule("release 1: version 2, healthy")
        self.merge("2")
        r1 = self.release("canary-v2", "1", "2", expect="promoted")
        started = time.monotonic()
        self._until_deployed({"2"}, "the promotion to remove version 1")
        self.say(f"promotion removed version 1 from the deployment by itself: its process gone after "
                 f"{time.monotonic() - started:.1f} s")
        r1.removed = "v1 removed by the promotion"

        self.console.rule(f"release 2: version 3, fails {p.fail_rate:.0%} of its requests")
        self.merge("3", fail_rate=p.fail_rate)
        r2 = self.release("canary-v3", "2", "3", expect="rolled_back")
        self.slice("3")
        r2.removed = "v3 sliced"
        after = through_haproxy(port, 20)
        self.say("after the rollback, 20 requests through HAProxy: " + ", ".join(f"v{k} {n}" for k, n in after.items()))
        if after != Counter({"2": 20}):
            raise DemoFailed(f"version 2 is not serving 100% after the rollback: {dict(after)}")
        return True

    def summary(self) -> bool:
        table = Table("release", "outcome", "checks\npass/fail/inc.", "decided\nafter", "final weights",
                      "stable: traffic share,\nsuccess (seen)", "canary: traffic share,\nsuccess (seen)", "then",
                      title="summary", title_justify="left")
        for o in self.outcomes:
            v = o.verdicts()
            total = sum(f.requests for f in o.traffic.values()) or 1

            def seen(version: str) -> str:
                f = o.traffic.get(version, Figures())
                return f"v{version} {100 * f.requests / total:.0f}%, {_pct(f.success)}"

            colour = "green" if o.phase in ("promoted", "rolled_back") else "red"
            table.add_row(o.name, Text(o.phase, style=colour), f"{v['pass']}/{v['fail']}/{v['inconclusive']}",
                          "-" if o.seconds is None else f"{o.seconds:.1f} s",
                          ", ".join(f"{k} {w}%" for k, w in o.weights.items()), seen(o.stable), seen(o.canary),
                          o.removed)
        self.console.print(table)
        phases = [o.phase for o in self.outcomes]
        ok = phases == ["promoted", "rolled_back"]
        self.console.rule("[green]release 1 promoted, release 2 rolled back[/green]" if ok else
                          f"[red]expected promoted, rolled_back; got {', '.join(phases) or 'no releases'}[/red]")
        return ok


@contextmanager
def isolated_stack(state_dir: Path, window: float = 1.0, **env: str):
    """A whole local stack of its own (moto on a table of its own, the API on a free port, etcd,
    the agent with `window`-second metric windows, synchronisation every second) for the test
    and the bench; the process environment is put back as it was afterwards."""
    import os
    import uuid

    from chalicelib.drivers import local as local_driver
    from chalicelib.settings import settings
    from chalicelib.store import table
    from local.stack import LocalStack, free_port

    saved = dict(os.environ)
    for key in ("VAMP_RELEASE_STATE_MACHINE", "VAMP_AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    os.environ.update({"VAMP_AGENT_AGGREGATE_INTERVAL": str(window), "VAMP_LOCAL_SCHEDULE_SECONDS": "1",
                       "VAMP_TABLE_NAME": f"vamp-demo-{uuid.uuid4().hex[:12]}", **env})
    os.environ.setdefault("VAMP_GATEWAY_PORTS", "20000-24999")
    settings.cache_clear()
    stack = LocalStack(api_port=free_port(), state_dir=state_dir, persist=False, quiet=True)
    try:
        yield stack.start()
    finally:
        stack.stop()
        local_driver._kill_all()
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()
        table.reset_clients()


def run_release_demo(api_url: str, token: str, agent_url: str | None, port: int, *,
                     profile: Profile | None = None, console: Console | None = None) -> tuple[bool, Demo]:
    """The release act; always undeploys and stops its traffic. (ok, the demo with its outcomes)."""
    console = console or Console(width=None if Console().is_terminal else 120)
    demo = Demo(Api(api_url, token), console, profile or Profile(), agent_url)
    ok = False
    try:
        demo.run(port)
        ok = True
    except (DemoFailed, requests.RequestException) as e:
        console.print(f"[red]demo failed: {e}[/red]")
    finally:
        if demo.traffic:
            demo.traffic.stop()
        try:
            demo.undeploy()
        except (DemoFailed, requests.RequestException) as e:
            console.print(f"[red]could not undeploy {DEPLOYMENT}: {e}[/red]")
    ok = demo.summary() and ok
    return ok, demo
