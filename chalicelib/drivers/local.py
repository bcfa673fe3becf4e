"""The local driver: runs `command` deployables as processes on free loopback ports.

The driver of the local stack (and of the end-to-end tests). Each instance of a service version
is one process group started with `/bin/sh -c <definition>` and the service's environment plus
`PORT` (its first port) and `PORT_<NAME>` for every breed port, each on its own free
127.0.0.1 port that stays the same across restarts (so the gateways need no change).

State lives in a module-level registry, so it survives across API requests in one process; a
supervisor thread restarts processes that die (capped exponential backoff), and `atexit` kills
every process group left, so nothing leaks. The processes die with this one even when it is
killed (chalicelib.drivers.processes: a parent-death signal, and a record per process in
`<work dir>/run` that the local stack's guard and its next start find). The work dir
(`VAMP_LOCAL_WORK_DIR`, one per local stack; else <tmp>/vamp-local) holds their logs too.
Health: the breed's first health check (HTTP GET or TCP), else a TCP connect to the first
port, else "the process runs".
"""
from __future__ import annotations

import atexit
import http.client
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from chalicelib.drivers import job_arguments, processes
from chalicelib.drivers.base import (
    DaemonStatus,
    DriverError,
    Instance,
    JobResult,
    JobSpec,
    ServiceSpec,
    ServiceStatus,
    object_name,
    service_key,
)
from chalicelib.retry import PROCESS_RESTART
from chalicelib.settings import parse_port_range, settings

log = logging.getLogger(__name__)

COMMAND = "command"
HOST = "127.0.0.1"
STABLE_AFTER = 10.0  # a process that ran this long resets its backoff
_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


def _gateway_ports() -> range:
    try:
        return parse_port_range(settings().gateway_ports)
    except Exception:  # noqa: BLE001
        return range(0)


def free_port() -> int:
    """A free loopback port outside the range gateways get their ports from."""
    avoid = _gateway_ports()
    for _ in range(100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    return port


def _port_free(port: int) -> bool:
    """Free for a server that sets SO_REUSEADDR (as nearly all do): connections of the previous
    process lingering in TIME_WAIT do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def _env_name(port_name: str) -> str:
    return "PORT_" + re.sub(r"[^A-Za-z0-9]", "_", port_name).upper()


@dataclass
class _Process:
    index: int
    ports: dict[str, int]
    popen: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # consecutive quick exits
    restarts: int = 0
    next_start: float = 0.0
    last_exit: int | None = None
    record: str | None = None  # its record's name in run_dir()


@dataclass
class _Service:
    namespace: str
    spec: ServiceSpec
    digest: str
    processes: list[_Process] = field(default_factory=list)


_REGISTRY: dict[tuple[str, str], _Service] = {}
_LOCK = threading.RLock()
_SUPERVISOR: threading.Thread | None = None
_WAKE = threading.Event()


def work_dir() -> Path:
    return Path(settings().local_work_dir or Path(tempfile.gettempdir()) / "vamp-local")


def run_dir() -> Path:
    """Where each running process has its record (chalicelib.drivers.processes)."""
    return work_dir() / "run"


def _environment(spec: ServiceSpec, proc: _Process) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update({k: v for k, v in spec.env.items() if v is not None})
    if proc.ports:
        env["PORT"] = str(next(iter(proc.ports.values())))
    for name, port in proc.ports.items():
        env[_env_name(name)] = str(port)
    env["VAMP_INSTANCE"] = str(proc.index)
    env["VAMP_SERVICE"] = spec.service
    return env


def _start(service: _Service, proc: _Process) -> None:
    spec = service.spec
    for name, port in list(proc.ports.items()):
        if not _port_free(port):  # someone took it while the process was down
            proc.ports[name] = free_port()
    logs = work_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{service.namespace}-{object_name(spec.deployment, spec.cluster, spec.service)}-{proc.index}"
    with open(logs / f"{name}.log", "ab") as out:
        # Its own process group (undeploy kills the whole group), killed with this process.
        proc.popen = processes.spawn(
            ["/bin/sh", "-c", spec.definition],
            cwd=job_arguments.for_local(spec.arguments).get("cwd"),  # checked at deploy
            env=_environment(spec, proc),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
        )
    # Named by pid too: a redeploy racing another (see deploy) must not forget the winner's record.
    if proc.record:  # the record of the run before a restart
        processes.forget(run_dir(), proc.record)
    proc.record = f"{name}-{proc.popen.pid}"
    processes.ProcessRecord.of(proc.popen.pid, proc.record).write(run_dir())
    proc.started = time.monotonic()


def _terminate(proc: _Process) -> None:
    if proc.popen is not None:
        try:
            os.killpg(proc.popen.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _kill(proc: _Process, grace: float = 3.0) -> None:
    _terminate(proc)
    popen, proc.popen = proc.popen, None
    if popen is None:
        return
    deadline = time.monotonic() + grace
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    # The grace is the group's: `sh -c` exits at once on TERM while the service it started
    # still answers the requests in flight (a scale-in would cut them: 502s through HAProxy).
    while time.monotonic() < deadline and _group_alive(popen.pid):
        time.sleep(0.02)
    try:  # whatever is left of the group (children that ignored TERM)
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("process %s did not exit", popen.pid)
    if proc.record:
        processes.forget(run_dir(), proc.record)


def _new_process(spec: ServiceSpec, index: int) -> _Process:
    return _Process(index=index, ports={p.name: free_port() for p in spec.ports})


def _supervise_once(now: float) -> None:
    with _LOCK:
        services = list(_REGISTRY.values())
    for service in services:
        for proc in service.processes:
            with _LOCK:
                if _REGISTRY.get((service.namespace, service.spec.key)) is not service:
                    break
                if proc not in service.processes:  # scaled in meanwhile (the list read is the old one)
                    continue
                if proc.popen is not None:
                    code = proc.popen.poll()
                    if code is None:
                        if proc.failures and now - proc.started > STABLE_AFTER:
                            proc.failures = 0
                        continue
                    proc.last_exit, proc.popen = code, None
                    quick = now - proc.started < STABLE_AFTER
                    proc.failures = proc.failures + 1 if quick else 1
                    delay = PROCESS_RESTART.delay(proc.failures - 1)
                    proc.next_start = now + delay
                    log.warning("%s instance %d exited with %s; restart in %.2fs",
                                service.spec.key, proc.index, code, delay)
                if now >= proc.next_start:
                    proc.restarts += 1
                    try:
                        _start(service, proc)
                    except OSError as e:
                        proc.failures += 1
                        proc.next_start = now + PROCESS_RESTART.delay(proc.failures)
                        log.warning("cannot restart %s: %s", service.spec.key, e)


def _supervisor() -> None:
    while True:
        _WAKE.wait(0.1)
        _WAKE.clear()
        try:
            _supervise_once(time.monotonic())
        except Exception:  # noqa: BLE001 - the supervisor must outlive any one failure
            log.exception("local supervisor pass failed")


def _ensure_supervisor() -> None:
    global _SUPERVISOR
    with _LOCK:
        if _SUPERVISOR is None or not _SUPERVISOR.is_alive():
            _SUPERVISOR = threading.Thread(target=_supervisor, name="vamp-local-driver", daemon=True)
            _SUPERVISOR.start()


def _healthy(spec: ServiceSpec, proc: _Process) -> tuple[bool, str | None]:
    if proc.popen is None or proc.popen.poll() is not None:
        code = proc.last_exit if proc.popen is None else proc.popen.returncode
        wait = max(0.0, proc.next_start - time.monotonic())
        return False, f"exited with code {code}; restart #{proc.restarts + 1} in {wait:.1f}s"
    check = spec.health_checks[0] if spec.health_checks else None
    port = proc.ports.get(check.port) if check else next(iter(proc.ports.values()), None)
    if port is None:
        return True, None
    timeout = min(float(check.timeout), 1.0) if check and check.timeout else 1.0
    if check is not None and check.protocol in ("HTTP", "HTTPS"):
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
            conn.request("GET", check.path)
            status = conn.getresponse().status
            conn.close()
        except OSError as e:
            return False, f"health check GET {check.path} on port {port}: {e}"
        if 200 <= status < 400:
            return True, None
        return False, f"health check GET {check.path} on port {port} answered {status}"
    try:
        socket.create_connection((HOST, port), timeout=timeout).close()
        return True, None
    except OSError as e:
        return False, f"port {port}: {e.strerror or e}"


# A scaled-in instance leaves the status at once (the pass then publishes gateways without it)
# and keeps serving this long before its TERM: HAProxy applies the smaller gateway in well under
# a second, so no request is sent to an instance that is stopping (the preStop pattern).
SCALE_IN_DRAIN = 2.0
_DRAINING: list[_Process] = []


def _drain(proc: _Process) -> None:
    with _LOCK:
        _DRAINING.append(proc)

    def stop() -> None:
        with _LOCK:
            if proc not in _DRAINING:  # the stack's stop took it
                return
            _DRAINING.remove(proc)
        _kill(proc)

    timer = threading.Timer(SCALE_IN_DRAIN, stop)
    timer.daemon = True
    timer.start()


def _kill_all() -> None:
    with _LOCK:
        services = list(_REGISTRY.values())
        _REGISTRY.clear()
        draining = list(_DRAINING)
        _DRAINING.clear()
    procs = [proc for service in services for proc in service.processes] + draining
    for proc in procs:  # every group at once, then the waits: a stop takes one grace, not one each
        _terminate(proc)
    for proc in procs:
        _kill(proc, grace=1.0)


def stop_all() -> None:
    """Stop every process this driver runs (the local stack's stop)."""
    _kill_all()
    _stop_all_daemons()  # daemon workflows (0043)


atexit.register(_kill_all)


class LocalDriver:
    name = "local"

    def deploy(self, namespace: str, spec: ServiceSpec) -> None:
        refused = settings().local_driver_refusal()  # however this driver was reached (0026)
        if refused:
            raise DriverError(refused)
        try:  # Vamp's `arguments` (docker run options): the ones a process can take, else refused
            job_arguments.for_local(spec.arguments)
        except job_arguments.Refused as e:
            raise DriverError(f"local driver: {e}") from None
        if spec.deployable_type != COMMAND:
            raise DriverError(
                f"the local driver runs `command` deployables only, not {spec.deployable_type!r} "
                f"({spec.definition}); name kubernetes or ecs for the namespace for images"
            )
        digest = spec.digest()
        key = (namespace, spec.key)
        with _LOCK:
            current = _REGISTRY.get(key)
            if current is not None and current.digest == digest:
                return
            if current is not None and _same_but_instances(current.spec, spec):
                self._rescale(current, spec, digest)
                return
            old = _REGISTRY.pop(key, None)
        if old is not None:
            for proc in old.processes:
                _kill(proc)
        service = _Service(namespace, spec, digest, [_new_process(spec, i) for i in range(spec.instances)])
        try:
            for proc in service.processes:
                _start(service, proc)
        except OSError as e:
            for proc in service.processes:
                _kill(proc)
            raise DriverError(f"cannot start {spec.definition!r}: {e}") from e
        with _LOCK:
            # Two synchronisation passes (after a change, and the scheduled one) can deploy the
            # same service at once: one registration wins and the other's processes are killed,
            # never orphaned. Of the same spec, the first stays (its ports may be routed already).
            raced = _REGISTRY.get(key)
            if raced is not None and raced.digest == digest:
                loser = service
            else:
                _REGISTRY[key], loser = service, raced
        for proc in loser.processes if loser else ():
            _kill(proc)
        _ensure_supervisor()

    def _rescale(self, service: _Service, spec: ServiceSpec, digest: str) -> None:
        keep, drop = service.processes[: spec.instances], service.processes[spec.instances:]
        for i in range(len(keep), spec.instances):
            proc = _new_process(spec, i)
            service.spec = spec
            _start(service, proc)
            keep.append(proc)
        service.spec, service.digest, service.processes = spec, digest, keep
        for proc in drop:
            _drain(proc)

    def undeploy(self, namespace: str, deployment: str, cluster: str, service: str) -> None:
        with _LOCK:
            found = _REGISTRY.pop((namespace, service_key(deployment, cluster, service)), None)
        for proc in found.processes if found else ():
            _kill(proc)

    def status(self, namespace: str, keys: list[str]) -> dict[str, ServiceStatus]:
        out: dict[str, ServiceStatus] = {}
        for key in keys:
            with _LOCK:
                service = _REGISTRY.get((namespace, key))
                procs = list(service.processes) if service else []
            if service is None:
                out[key] = ServiceStatus(key=key, state="absent")
                continue
            instances, reasons = [], []
            for proc in procs:
                healthy, reason = _healthy(service.spec, proc)
                name = f"{object_name(service.spec.deployment, service.spec.cluster, service.spec.service)}-{proc.index}"
                instances.append(Instance(name, HOST, dict(proc.ports), healthy, reason))
                if reason:
                    reasons.append(f"instance {proc.index}: {reason}")
            up = sum(1 for i in instances if i.healthy)
            crashing = any(p.popen is None and p.failures >= 3 for p in procs)
            state = "running" if up >= len(procs) else ("failed" if crashing else "deploying")
            out[key] = ServiceStatus(key, state, tuple(instances), len(procs),
                                     "; ".join(reasons) or None, service.digest)
        return out

    def running(self, namespace: str) -> dict[str, str | None]:
        with _LOCK:
            return {key: s.digest for (ns, key), s in _REGISTRY.items() if ns == namespace}

    def run_job(self, namespace: str, spec: JobSpec, timeout: float) -> JobResult:
        """A one-off process (`/bin/sh -c <definition>`, its own process group, recorded like the
        services' so a crash leaves nothing behind), awaited: its whole group stopped at the
        timeout. Its output goes to a file under the work dir; the result carries the tail."""
        refused = settings().local_driver_refusal()
        if refused:
            raise DriverError(refused)
        if spec.deployable_type != COMMAND:
            raise DriverError(f"the local driver runs `command` breeds only, not {spec.deployable_type!r} "
                              f"({spec.definition}); name kubernetes or ecs for the namespace for images")
        try:  # Vamp's `arguments` (docker run options): the ones a process can take, else refused
            options = job_arguments.for_local(spec.arguments)
        except job_arguments.Refused as e:
            raise DriverError(f"local driver: {e}") from None
        jobs = work_dir() / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update({k: v for k, v in spec.env.items() if v is not None})
        name = f"job-{namespace}-{object_name(spec.name)}-{time.time_ns()}"
        path = jobs / f"{name}.log"
        with open(path, "wb") as out:
            try:
                popen = processes.spawn(["/bin/sh", "-c", spec.definition], run_dir=run_dir(), name=name, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True,
                                        **options)
            except OSError as e:
                raise DriverError(f"cannot start {spec.definition!r}: {e}") from e
        timed_out = False
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        processes.stop_groups([popen.pid], grace=1.0)  # what it left running in its group, too
        try:
            popen.wait(2.0)
        except subprocess.TimeoutExpired:
            log.warning("job %s did not exit", popen.pid)
        processes.forget(run_dir(), name)
        lines = _log_tail(path)
        path.unlink(missing_ok=True)
        if timed_out:
            return JobResult("failed", popen.returncode, lines, f"timeout: stopped after {timeout:g} s")
        code = popen.returncode
        return JobResult("succeeded" if code == 0 else "failed", code, lines,
                         None if code == 0 else f"exited with code {code}")

    # -- for tests and the local stack -------------------------------------------------------

    def pids(self, namespace: str, key: str) -> list[int]:
        with _LOCK:
            service = _REGISTRY.get((namespace, key))
            return [p.popen.pid for p in service.processes if p.popen] if service else []

    def undeploy_namespace(self, namespace: str) -> None:
        for key in list(self.running(namespace)):
            self.undeploy(namespace, *key.split("/", 2))

    # --- daemon workflows (0043) ---
    def run_daemon(self, namespace: str, spec: JobSpec) -> str:
        """`/bin/sh -c <definition>` in its own process group, supervised: started again with
        backoff whenever it exits, until `stop_daemon`. Replaces what ran for the workflow."""
        refused = settings().local_driver_refusal()
        if refused:
            raise DriverError(refused)
        if spec.deployable_type != COMMAND:
            raise DriverError(f"the local driver runs `command` breeds only, not {spec.deployable_type!r} "
                              f"({spec.definition}); name kubernetes or ecs for the namespace for images")
        try:  # Vamp's `arguments` (docker run options): the ones a process can take, else refused
            job_arguments.for_local(spec.arguments)
        except job_arguments.Refused as e:
            raise DriverError(f"local driver: {e}") from None
        key = (namespace, spec.name)
        with _LOCK:
            old = _DAEMONS.pop(key, None)
        if old is not None:  # stopped first: one instance, as ECS (maximumPercent 100) and Recreate
            _stop_daemon(old)
        daemon = _Daemon(namespace, spec)
        try:
            _start_daemon(daemon)
        except OSError as e:
            raise DriverError(f"cannot start {spec.definition!r}: {e}") from e
        with _LOCK:
            raced, _DAEMONS[key] = _DAEMONS.get(key), daemon
        if raced is not None:  # another start ran meanwhile: the last registered is the daemon
            _stop_daemon(raced)
        _ensure_daemon_supervisor()
        return daemon.handle

    def stop_daemon(self, namespace: str, name: str) -> None:
        with _LOCK:
            daemon = _DAEMONS.pop((namespace, name), None)
        if daemon is not None:
            _stop_daemon(daemon)

    def daemons(self, namespace: str) -> dict[str, DaemonStatus]:
        with _LOCK:
            found = [d for (ns, _), d in _DAEMONS.items() if ns == namespace]
        out = {}
        for d in found:
            with _LOCK:
                up = d.popen is not None and d.popen.poll() is None
                state = "running" if up else ("failed" if d.failures >= 3 else "starting")
                reason = None if up else f"exited with code {d.last_exit}; restart #{d.restarts + 1} pending"
                status = DaemonStatus(d.spec.name, state, d.handle, d.restarts, d.last_exit,
                                      _log_tail(d.log_path)[-DAEMON_LOG_LINES:], reason, d.spec.labels.get("token"))
            out[d.spec.name] = status
        return out

    def daemon_pid(self, namespace: str, name: str) -> int | None:
        """For tests: the pid (and process group) the daemon runs as now."""
        with _LOCK:
            d = _DAEMONS.get((namespace, name))
            return d.popen.pid if d is not None and d.popen is not None else None


LOG_TAIL_BYTES = 64 * 1024


def _log_tail(path: Path) -> tuple[str, ...]:
    """The last lines of a job's output, read from its last 64 KB only (it may have printed gigabytes)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return tuple(f.read().decode(errors="replace").splitlines())
    except OSError:
        return ()


def _same_but_instances(a: ServiceSpec, b: ServiceSpec) -> bool:
    return replace(a, instances=b.instances) == b


# --- daemon workflows (0043) ---
# Daemons are kept apart from the services' registry: synchronisation undeploys every service
# key it does not know, and a daemon is no deployment's. Their supervisor is a thread of its own.
DAEMON_LOG_LINES = 20  # the tail a daemon's status carries (as a run's events, 0039)


@dataclass
class _Daemon:
    namespace: str
    spec: JobSpec
    handle: str = ""
    popen: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # consecutive quick exits: the backoff's
    restarts: int = 0
    next_start: float = 0.0
    last_exit: int | None = None
    record: str | None = None
    stopped: bool = False

    @property
    def log_path(self) -> Path:
        return work_dir() / "daemons" / f"{self.handle}.log"


_DAEMONS: dict[tuple[str, str], _Daemon] = {}
_DAEMON_SUPERVISOR: threading.Thread | None = None


def _start_daemon(daemon: _Daemon) -> None:
    if not daemon.handle:
        daemon.handle = f"daemon-{daemon.namespace}-{object_name(daemon.spec.name)}-{time.time_ns()}"
    daemon.log_path.parent.mkdir(parents=True, exist_ok=True)
    _bound_log(daemon.log_path)
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update({k: v for k, v in daemon.spec.env.items() if v is not None})
    with open(daemon.log_path, "ab") as out:
        daemon.popen = processes.spawn(["/bin/sh", "-c", daemon.spec.definition], env=env, stdin=subprocess.DEVNULL,
                                       cwd=job_arguments.for_local(daemon.spec.arguments).get("cwd"),
                                       stdout=out, stderr=subprocess.STDOUT, close_fds=True)
    if daemon.record:
        processes.forget(run_dir(), daemon.record)
    daemon.record = f"{daemon.handle}-{daemon.popen.pid}"
    processes.ProcessRecord.of(daemon.popen.pid, daemon.record).write(run_dir())
    daemon.started = time.monotonic()


DAEMON_LOG_BYTES = 1024 * 1024  # a daemon's output kept across its restarts, at most about this


def _bound_log(path: Path) -> None:
    """Keep the last 64 KB of a log grown past DAEMON_LOG_BYTES."""
    try:
        if path.stat().st_size > DAEMON_LOG_BYTES:
            tail = "\n".join(_log_tail(path)).encode()
            path.write_bytes(tail + b"\n")
    except OSError:
        pass


def _stop_daemon(daemon: _Daemon, grace: float = 2.0) -> None:
    """Its whole process group (what the shell started too), then its record and log."""
    with _LOCK:
        daemon.stopped = True
        popen, daemon.popen = daemon.popen, None
    if popen is not None:
        processes.stop_groups([popen.pid], grace=grace)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("daemon %s did not exit", popen.pid)
    if daemon.record:
        processes.forget(run_dir(), daemon.record)
    daemon.log_path.unlink(missing_ok=True)


def _supervise_daemons(now: float) -> None:
    with _LOCK:
        daemons = list(_DAEMONS.values())
    for d in daemons:
        with _LOCK:
            if d.stopped:
                continue
            if d.popen is not None:
                code = d.popen.poll()
                if code is None:
                    if d.failures and now - d.started > STABLE_AFTER:
                        d.failures = 0
                    _bound_log(d.log_path)  # it appends (O_APPEND): a cut file is written on at its end
                    continue
                quick = now - d.started < STABLE_AFTER
                processes.stop_groups([d.popen.pid], grace=0.5)  # what its shell left running
                d.last_exit, d.popen = code, None
                d.failures = d.failures + 1 if quick else 1
                d.next_start = now + PROCESS_RESTART.delay(d.failures - 1)
                log.warning("daemon %s/%s exited with %s; restart in %.2fs", d.namespace, d.spec.name, code,
                            d.next_start - now)
            if now >= d.next_start:
                d.restarts += 1
                try:
                    _start_daemon(d)
                except OSError as e:
                    d.failures += 1
                    d.next_start = now + PROCESS_RESTART.delay(d.failures)
                    log.warning("cannot restart daemon %s/%s: %s", d.namespace, d.spec.name, e)


def _daemon_supervisor() -> None:
    while True:
        time.sleep(0.1)
        try:
            _supervise_daemons(time.monotonic())
        except Exception:  # noqa: BLE001 - the supervisor must outlive any one failure
            log.exception("local daemon supervisor pass failed")


def _ensure_daemon_supervisor() -> None:
    global _DAEMON_SUPERVISOR
    with _LOCK:
        if _DAEMON_SUPERVISOR is None or not _DAEMON_SUPERVISOR.is_alive():
            _DAEMON_SUPERVISOR = threading.Thread(target=_daemon_supervisor, name="vamp-local-daemons", daemon=True)
            _DAEMON_SUPERVISOR.start()


def _stop_all_daemons() -> None:
    with _LOCK:
        daemons = list(_DAEMONS.values())
        _DAEMONS.clear()
    for d in daemons:
        _stop_daemon(d, grace=1.0)


atexit.register(_stop_all_daemons)


# --- the demo's microscaling act (0045): a stopped group's children get their grace too ---

def _group_alive(pgid: int) -> bool:
    """Some process of the group still runs (zombies do not count: nobody may reap them)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: ask the kernel (zombies count there)
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
                state, _ppid, pgrp = f.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != b"Z":
            return True
    return False
