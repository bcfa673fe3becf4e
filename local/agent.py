"""The gateway agent (`python -m agent`) with its HAProxy, as a subprocess of the local stack."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

log = logging.getLogger("vamp.local")


class LocalAgent:
    def __init__(self, *, etcd_endpoint: str, api_url: str, api_token: str, work_dir: Path, listen_port: int,
                 log_file: Path, namespace: str = "default", node_id: str = "local-agent",
                 heartbeat_interval: float = 2.0) -> None:
        self.work_dir, self.log_file = work_dir, log_file
        self.url = f"http://127.0.0.1:{listen_port}"
        self.args = [sys.executable, "-m", "agent", "--etcd-endpoint", etcd_endpoint, "--namespace", namespace,
                     "--work-dir", str(work_dir), "--api-url", api_url, "--api-token", api_token,
                     "--listen", f"127.0.0.1:{listen_port}",
                     # The node it acknowledges as (docs/decisions/0018); a short heartbeat: releases wait on it.
                     "--node-id", node_id, "--heartbeat-interval", str(heartbeat_interval)]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "LocalAgent":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        with open(self.log_file, "ab") as out:
            # Own session: Ctrl-C reaches the stack, which stops the agent (and so HAProxy) in order.
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=root, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the gateway agent did not start; see {self.log_file}")
            time.sleep(0.05)
        log.info("gateway agent on %s (work dir %s)", self.url, self.work_dir)
        return self

    def _answers(self) -> bool:
        try:
            requests.get(self.url + "/healthz", timeout=1)
            return True
        except requests.RequestException:
            return False

    def health(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=2).json()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the agent soft-stops HAProxy itself
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
