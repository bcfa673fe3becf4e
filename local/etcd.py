"""A real etcd for the local stack: loopback ports picked free, data under <state dir>/etcd.

It dies with the stack (a parent-death signal) and is recorded in the stack's run dir, so a
crashed stack's etcd, which would hold the data dir's lock, is stopped before the next starts.

The key gateway configurations are signed with (docs/decisions/0023) lives next to the data, in
`<state dir>/gateway-signing.key` (made on the first start, mode 0600): what etcd holds is
signed with it, so they go together. `start` points VAMP_GATEWAY_SIGNING_KEY_FILE at it for the
control plane of this process, and the local agent reads the same file."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import requests

from chalicelib.drivers import processes

log = logging.getLogger("vamp.local")


class LocalEtcd:
    def __init__(self, data_dir: Path, client_port: int, peer_port: int, log_file: Path,
                 run_dir: Path | None = None) -> None:
        self.data_dir, self.client_port, self.peer_port, self.log_file = data_dir, client_port, peer_port, log_file
        self.run_dir = run_dir
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def signing_key_file(self) -> Path:
        return self.data_dir.parent / "gateway-signing.key"

    def ensure_signing_key(self) -> Path:
        """The stack's signing key file, made (256 random bits, hex) if there is none."""
        path = self.signing_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return path

    def start(self, timeout: float = 20.0) -> "LocalEtcd":
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
        url, peer = f"http://127.0.0.1:{self.client_port}", f"http://127.0.0.1:{self.peer_port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # This process's control plane signs with the stack's key (a file wins over a value).
        os.environ["VAMP_GATEWAY_SIGNING_KEY_FILE"] = str(self.ensure_signing_key())
        with open(self.log_file, "ab") as out:
            # A restart keeps the data but gets new peer ports: --force-new-cluster lets a
            # one-member cluster forget the old peer URL.
            self.proc = processes.spawn(
                [binary, "--name", "vamp-local", "--data-dir", str(self.data_dir),
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"vamp-local={peer}", "--force-new-cluster", "--log-level", "warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, run_dir=self.run_dir, name="etcd")
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd did not start; see {self.log_file}")
            time.sleep(0.05)
        log.info("etcd on %s (data in %s)", self.endpoint, self.data_dir)
        return self

    def healthy(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.client_port}/health", timeout=1).json().get("health") == "true"
        except (requests.RequestException, ValueError):
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.run_dir is not None:
            processes.forget(self.run_dir, "etcd")
