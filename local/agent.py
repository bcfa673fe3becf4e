"""The gateway agent (`python -m agent`) with its HAProxy, as a supervised subprocess of the local stack.

The agent runs in its own process group with a parent-death signal, and is recorded in the
stack's run dir (chalicelib.drivers.processes): it dies with the stack, and a crashed stack's
agent is stopped before the next one starts. Its work dir (HAProxy's config, master socket, log
socket) belongs to one stack. If it exits while the stack runs, a supervisor thread restarts it
on the same port and work dir (HAProxy's last good config is there) after a capped backoff.

Its secrets never go on its command line (ps shows it to every user): the API token is written
to a file only its user can read, next to the work dir (`<work dir>-secrets/api-token`), and the
signing key is the stack's key file (local/etcd.py); the agent gets their paths.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from chalicelib.drivers import processes
from chalicelib.retry import PROCESS_RESTART

log = logging.getLogger("vamp.local")

RECORD = "agent"
STABLE_AFTER = 10.0  # an agent that ran this long before it exited restarts without delay


# The stack's own secrets in its environment (the API's token, the signing key by value, AWS's):
# the agent gets what it needs by file, and nothing else of them.
_SECRET_NAMES = ("VAMP_API_TOKEN", "VAMP_GATEWAY_SIGNING_KEY", "VAMP_AGENT_SIGNING_KEY", "VAMP_AGENT_API_TOKEN",
                 "VAMP_ETCD_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _is_secret(name: str) -> bool:
    return name in _SECRET_NAMES


def write_secret(path: Path, value: str) -> None:
    """`value` in a file only this user can read (its directory too), replaced atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)


class LocalAgent:
    def __init__(self, *, etcd_endpoint: str, api_url: str, api_token: str, work_dir: Path, listen_port: int,
                 log_file: Path, namespace: str = "default", run_dir: Path | None = None,
                 node_id: str = "local-agent", heartbeat_interval: float = 2.0,
                 signing_key_file: Path | None = None) -> None:
        self.work_dir, self.log_file, self.run_dir = work_dir, log_file, run_dir
        self.url = f"http://127.0.0.1:{listen_port}"
        key_file = signing_key_file or os.environ.get("VAMP_GATEWAY_SIGNING_KEY_FILE")
        if not key_file:
            raise RuntimeError("the gateway agent needs the stack's signing key file (VAMP_GATEWAY_SIGNING_KEY_FILE, "
                               "written by local/etcd.py)")
        self.secrets_dir = work_dir.with_name(work_dir.name + "-secrets")
        self.token_file = self.secrets_dir / "api-token"
        self._api_token = api_token
        self.args = [sys.executable, "-m", "agent", "--etcd-endpoint", etcd_endpoint, "--namespace", namespace,
                     "--work-dir", str(work_dir), "--api-url", api_url, "--api-token-file", str(self.token_file),
                     "--signing-key-file", str(key_file), "--listen", f"127.0.0.1:{listen_port}",
                     # The node it acknowledges as (docs/decisions/0018); a short heartbeat: releases wait on it.
                     "--node-id", node_id, "--heartbeat-interval", str(heartbeat_interval)]
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._started = 0.0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> "LocalAgent":
        self._stopping.clear()
        self._launch(timeout)
        self._supervisor = threading.Thread(target=self._supervise, name="vamp-agent-supervisor", daemon=True)
        self._supervisor.start()
        log.info("gateway agent on %s (work dir %s)", self.url, self.work_dir)
        return self

    def _launch(self, timeout: float) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        write_secret(self.token_file, self._api_token)
        root = Path(__file__).resolve().parent.parent
        env = {k: v for k, v in os.environ.items() if not _is_secret(k)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        with open(self.log_file, "ab") as out:
            # Own process group: Ctrl-C reaches the stack, which stops the agent (and so HAProxy) in order.
            self.proc = processes.spawn(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=root, env=env, run_dir=self.run_dir, name=RECORD)
        self._started = time.monotonic()
        deadline = self._started + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(f"the gateway agent did not start; see {self.log_file}")
            time.sleep(0.05)

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.wait(0.2):
            proc = self.proc
            if proc is None or proc.poll() is None:
                continue
            if time.monotonic() - self._started > STABLE_AFTER:
                failures = 0
            failures += 1
            delay = PROCESS_RESTART.delay(failures - 1)
            log.warning("gateway agent exited with code %s; restart #%d in %.2f s (see %s)",
                        proc.returncode, self.restarts + 1, delay, self.log_file)
            if self._stopping.wait(delay):
                return
            try:
                self._launch(timeout=20.0)
                self.restarts += 1
                log.warning("gateway agent restarted (pid %d)", self.proc.pid)
            except Exception as e:  # noqa: BLE001 - the next round tries again, later
                log.warning("gateway agent restart failed: %s", e)

    def _answers(self) -> bool:
        try:
            requests.get(self.url + "/healthz", timeout=1)
            return True
        except requests.RequestException:
            return False

    def health(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=2).json()

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the agent soft-stops HAProxy itself
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stop_supervising(self) -> None:
        """The agent runs on, but nothing restarts it if it dies (until `start`): a fault test's
        agent that stays dead."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=25)

    def stop(self) -> None:
        self.stop_supervising()
        self._kill()
        if self.run_dir is not None:
            processes.forget(self.run_dir, RECORD)
