"""HAProxy in master-worker mode: start, supervise, check, reload through the master CLI, stop."""
from __future__ import annotations

import collections
import itertools
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.backoff import CAP, HAPROXY, Backoff
from chalicelib.contract.log_format import LOG_SOCKET_ENV, NODE_ADDRESS_ENV

log = logging.getLogger("agent.haproxy")

PIDFILE = "haproxy.pid"  # in the work dir: the master's pid (`haproxy -p`), for tools that stop it
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ProcState:
    """What the master CLI's `show proc` says."""
    master_pid: int = 0
    reloads: int = 0
    failed: int = 0
    workers: list[tuple[int, int]] = field(default_factory=list)  # (pid, reloads survived)

    @property
    def current_workers(self) -> list[int]:
        return [pid for pid, reloads in self.workers if reloads == 0]


_MASTER = re.compile(r"^(\d+)\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?")
_WORKER = re.compile(r"^(\d+)\s+worker\s+(\d+)")


def parse_show_proc(text: str) -> ProcState:
    state = ProcState()
    section = ""
    for line in text.splitlines():
        if line.startswith("# "):
            section = line[2:].strip()
            continue
        if m := _MASTER.match(line):
            state.master_pid, state.reloads, state.failed = int(m[1]), int(m[2]), int(m[3] or 0)
        elif section == "workers" and (m := _WORKER.match(line)):
            state.workers.append((int(m[1]), int(m[2])))
    return state


def master_cli(path: Path, command: str, timeout: float = 5.0) -> str:
    """One command on the master CLI. The half-close tells HAProxy the command is complete;
    without it HAProxy waits for more input and the exchange hangs."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


BOOTSTRAP = """\
# Written by vamp agent: serves nothing until the first configuration arrives from etcd.
# HAProxy refuses to run without a listener, hence one unix socket nobody connects to.
global
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend vamp-agent-idle
    bind unix@{idle_socket}
"""


class HAProxy:
    def __init__(self, binary: str, work_dir: Path, log_socket: Path, *, on_restart=None,
                 backoff_max: float = CAP, node_address: str = "127.0.0.1") -> None:
        # An absolute path: HAProxy's master re-executes argv[0] on every reload, and its PATH is
        # its own minimal one (env()).
        self.binary = shutil.which(binary) or binary
        self.work_dir = work_dir
        self.config = work_dir / "haproxy.cfg"
        self.master_socket = work_dir / "master.sock"
        self.log_socket = log_socket
        self.node_address = node_address
        self.on_restart = on_restart
        self.backoff_max = backoff_max
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # one of start/reload/restart at a time
        self._supervisor: threading.Thread | None = None
        # HAProxy's recent output, numbered: what a failed reload said (output_since)
        self._output: collections.deque[tuple[int, str]] = collections.deque(maxlen=200)
        self._lines = itertools.count(1)

    # -- process -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """HAProxy's whole environment: the log socket, the node's address and a PATH, nothing of the agent's (its API
        token, signing key, cloud credentials): a configuration can read variables ("${X}",
        env()), and a process's environment is readable in /proc by its user."""
        # The node's address always set: HAProxy would read an unset one as "", every address.
        return {"PATH": SYSTEM_PATH, LOG_SOCKET_ENV: str(self.log_socket), NODE_ADDRESS_ENV: self.node_address}

    def write_bootstrap(self) -> None:
        if not self.config.exists():
            tmp = self.config.with_suffix(".tmp")
            tmp.write_text(BOOTSTRAP.format(idle_socket=self.work_dir / "idle.sock"))
            os.replace(tmp, self.config)

    def start(self, timeout: float = 10.0) -> None:
        """Start the master on the config on disk (the last good one, or the bootstrap)."""
        with self._lock:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self.write_bootstrap()
            self._stop_leftover()
            self._launch(timeout)
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="haproxy-supervisor", daemon=True)
            self._supervisor.start()

    def _launch(self, timeout: float) -> None:
        self.master_socket.unlink(missing_ok=True)
        cmd = [self.binary, "-W", "-S", f"{self.master_socket},level,admin", "-p", str(self.work_dir / PIDFILE),
               "-f", str(self.config)]
        # Own session: a Ctrl-C meant for the agent must not reach HAProxy, and HAProxy outlives an
        # agent that dies (traffic goes on; the restarted agent stops this master and starts its
        # own, _stop_leftover). The agent stops it when it stops.
        self._proc = subprocess.Popen(cmd, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._pump_output, args=(self._proc,), name="haproxy-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"haproxy exited at start with code {self._proc.returncode}")
            state = self.state()
            if state and state.current_workers:
                log.info("haproxy master %s up, workers %s", state.master_pid, state.current_workers)
                return
            time.sleep(0.02)
        raise RuntimeError("haproxy master did not come up")

    def _stop_leftover(self) -> None:
        """A master left by a previous agent run holds the ports; stop it before starting ours."""
        if self._proc is None and self.master_socket.exists():
            state = self.state()
            if state and state.master_pid:
                log.warning("stopping leftover haproxy master %s", state.master_pid)
                try:
                    os.kill(state.master_pid, signal.SIGTERM)
                    for _ in range(250):
                        os.kill(state.master_pid, 0)
                        time.sleep(0.02)
                except ProcessLookupError:
                    pass

    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._output.append((next(self._lines), line))
            log.info("%s", line)

    def output_mark(self) -> int:
        """A mark in HAProxy's output: output_since(mark) is what it said after."""
        return self._output[-1][0] if self._output else 0

    def output_since(self, mark: int) -> list[str]:
        return [line for n, line in list(self._output) if n > mark]

    def alerts_since(self, mark: int, wait: float = 1.0) -> list[str]:
        """HAProxy's [ALERT] lines since the mark (after a failed reload: they may still be on
        their way through the pipe, hence a short wait for the first)."""
        deadline = time.monotonic() + wait
        while True:
            alerts = [line for line in self.output_since(mark) if "[ALERT]" in line]
            if alerts or time.monotonic() > deadline:
                return alerts
            time.sleep(0.02)

    def _supervise(self) -> None:
        retry = Backoff(HAPROXY, self.backoff_max)
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is None:
                self._stopping.wait(0.2)
                retry.reset()
                continue
            if self._stopping.is_set():
                return
            log.error("haproxy master died (code %s); restarting on the last good config",
                      proc.returncode if proc else None)
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._launch(timeout=10.0)
                    if self.on_restart:
                        self.on_restart()
                except Exception:
                    pause = retry.pause()
                    log.exception("haproxy restart failed; retrying in %.1fs", pause)
                    self._stopping.wait(pause)

    def stop(self, grace: float = 5.0) -> None:
        """Soft-stop (SIGUSR1: finish in-flight requests), then SIGTERM, then SIGKILL."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            for sig, wait in ((signal.SIGUSR1, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
                try:
                    proc.send_signal(sig)
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self.master_socket.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    # -- master CLI ----------------------------------------------------------------------------
    def state(self, timeout: float = 2.0) -> ProcState | None:
        try:
            return parse_show_proc(master_cli(self.master_socket, "show proc", timeout))
        except OSError:
            return None

    def running(self) -> bool:
        state = self.state(timeout=1.0)
        return bool(self.pid and state and state.current_workers)

    def check(self, path: Path) -> tuple[bool, str]:
        """`haproxy -c`: (passed, HAProxy's own words)."""
        try:
            done = subprocess.run([self.binary, "-c", "-f", str(path)], env=self.env(), capture_output=True,
                                  timeout=60)
        except subprocess.TimeoutExpired:
            return False, "haproxy -c timed out"
        text = (done.stdout + done.stderr).decode(errors="replace")
        message = "\n".join(l for l in text.splitlines() if "[NOTICE]" not in l).strip()
        return done.returncode == 0, message

    def reload(self, timeout: float = 10.0) -> bool:
        """Seamless reload via the master CLI; True once a new worker runs the config on disk.

        The master re-executes itself and hands the listening sockets to the new worker, so no
        connection is refused; old workers finish their requests and exit. Done = `show proc`
        answers again with one more reload and a new current worker.
        """
        with self._lock:
            before = self.state()
            if before is None:
                return False
            try:
                master_cli(self.master_socket, "reload", timeout)
            except OSError:
                pass  # the master may close the CLI as it re-executes
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                after = self.state(timeout=1.0)
                if after and after.reloads > before.reloads:
                    if after.failed > before.failed:
                        return False
                    fresh = set(after.current_workers) - set(before.current_workers)
                    if fresh:
                        return True
                time.sleep(0.01)
            return False
