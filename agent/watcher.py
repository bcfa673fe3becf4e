"""Watch a namespace's etcd prefix through etcd3gw (etcd's HTTP/JSON gateway), forever, tolerating outages.

The prefix holds the configuration, its generation and its signature (chalicelib/contract/
kv_keys.py). The publisher writes them in one transaction (only generation and signature when
the text is unchanged), so a watch message carries all three or the last two; the watcher hands
on the configuration with the generation and signature etcd held with it, once per message
(the applier verifies them: the watcher trusts nothing it reads).

TLS and etcd v3 authentication come from the settings (contract/etcd_access.py): the client's
session carries the CA, the client certificate and the token, for reads and the stream alike.

etcd3gw's own `watch()` runs the stream in a pool thread and drops its exceptions, so a dead
stream looks like a quiet key forever. The agent therefore uses the client for reads and opens
the watch stream itself on the client's session, where a broken stream is an exception it can
act on (reconnect with capped exponential backoff).

Resuming: on every (re)connection the prefix is read at the current revision and handed on only
if a key's mod_revision is newer than the last one seen; the watch then starts right after that read's
revision, so no change is missed and none is applied twice. While etcd is away nothing is
handed on, so HAProxy keeps serving its current config.
"""
from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests
import urllib3
from etcd3gw.client import Etcd3Client

from agent.backoff import CAP, ETCD, Backoff
from agent.metrics import AgentMetrics
from chalicelib.contract.envelope import parse_generation
from chalicelib.contract.etcd_access import EtcdAccess

log = logging.getLogger("agent.watcher")

# (configuration, its generation (None: no generation key), mod_revision, monotonic time received,
#  its signature (None: no signature key))
OnChange = Callable[[bytes, "int | None", int, float, "bytes | None"], None]


@dataclass
class WatchState:
    connected: bool = False
    last_revision: int = 0  # newest mod_revision handed on (either key)
    header_revision: int = 0  # newest store revision seen
    configuration: bytes | None = None  # the newest configuration seen, its generation and signature
    generation: int | None = None
    signature: bytes | None = None


class EtcdWatcher:
    def __init__(self, access: EtcdAccess, prefix: str, on_change: OnChange, metrics: AgentMetrics, *,
                 backoff_max: float = CAP, idle_timeout: float = 60.0) -> None:
        self.client = Etcd3Client(**access.client_options(), api_path="/v3/", timeout=5)
        access.configure(self.client.session)
        self.prefix = prefix
        self.config_key, self.generation_key = prefix + "configuration", prefix + "generation"
        self.signature_key = prefix + "signature"
        self.on_change = on_change
        self.metrics = metrics
        self.backoff_max = backoff_max
        self.idle_timeout = idle_timeout  # renew a silent stream after this long (half-open TCP)
        self.state = WatchState()
        self._stop = threading.Event()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, name="etcd-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._abort_stream()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        retry = Backoff(ETCD, self.backoff_max)
        failed = False
        while not self._stop.is_set():
            try:
                if failed:
                    self.metrics.etcd_reconnects.inc()
                revision = self._sync()
                self._set_connected(True)
                retry.reset()
                failed = False
                self._stream(revision + 1)
            except Exception as exc:  # any failure means: etcd unreachable, try again later
                if self._stop.is_set():
                    break
                if _idle_timeout(exc):
                    log.debug("watch idle for %.0fs; renewing it", self.idle_timeout)
                    continue
                if not failed:
                    log.warning("etcd unavailable (%s); HAProxy keeps its current config", exc)
                self._set_connected(False)
                failed = True
                self._stop.wait(retry.pause())
        self._set_connected(False)

    def _set_connected(self, value: bool) -> None:
        self.state.connected = value
        self.metrics.etcd_connected.set(1 if value else 0)

    def _sync(self) -> int:
        """Read the prefix now; hand it on if newer than what was seen. Returns the store revision."""
        payload = {"key": _b64(self.prefix), "range_end": _b64(_prefix_end(self.prefix))}
        result = self.client.post(self.client.get_url("/kv/range"), json=payload)
        revision = int(result["header"]["revision"])
        self.state.header_revision = revision
        self._offer(result.get("kvs", []))
        return revision

    def _stream(self, start_revision: int) -> None:
        create = {"create_request": {"key": _b64(self.prefix), "range_end": _b64(_prefix_end(self.prefix)),
                                     "start_revision": start_revision}}
        response = self.client.session.post(self.client.get_url("/watch"), json=create, stream=True,
                                            timeout=(5, self.idle_timeout))
        self._response = response
        try:
            response.raise_for_status()
            buffer = b""
            for chunk in response.iter_content(chunk_size=None):
                if self._stop.is_set():
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._handle(json.loads(line))
            raise ConnectionError("watch stream closed by etcd")
        finally:
            self._response = None
            response.close()

    def _handle(self, message: dict) -> None:
        if "error" in message:
            raise ConnectionError(f"watch error: {message['error']}")
        result = message.get("result", {})
        if "header" in result and "revision" in result["header"]:
            self.state.header_revision = max(self.state.header_revision, int(result["header"]["revision"]))
        if result.get("canceled"):
            # e.g. compaction past our start revision: resync by reading the key afresh
            raise ConnectionError(f"watch canceled: {result.get('cancel_reason') or result}")
        kvs = []
        for event in result.get("events", []):
            if event.get("type") == "DELETE":
                log.warning("key %s deleted; keeping the current HAProxy config",
                            base64.b64decode(event.get("kv", {}).get("key", "")).decode(errors="replace"))
                continue
            kvs.append(event["kv"])
        self._offer(kvs)

    def _offer(self, kvs: list[dict]) -> None:
        """Take the newer of the keys (one message or read: one transaction's puts) and hand the
        configuration on with its generation, once."""
        newer = False
        for kv in kvs:
            mod_revision = int(kv.get("mod_revision", 0))
            if mod_revision <= self.state.last_revision:
                continue
            key, value = base64.b64decode(kv.get("key", "")).decode(errors="replace"), base64.b64decode(kv.get("value", ""))
            if key == self.config_key:
                self.state.configuration, newer = value, True
            elif key == self.generation_key:
                self.state.generation, newer = parse_generation(value), True
            elif key == self.signature_key:
                self.state.signature, newer = value, True
        if not newer:
            return
        self.state.last_revision = max(int(kv.get("mod_revision", 0)) for kv in kvs)
        if self.state.configuration is not None:
            self.on_change(self.state.configuration, self.state.generation, self.state.last_revision, time.monotonic(),
                           self.state.signature)

    def _abort_stream(self) -> None:
        """Unblock a thread reading the stream (closing the response alone does not)."""
        response = self._response
        if response is None:
            return
        try:
            sock = socket.fromfd(response.raw._fp.fileno(), socket.AF_INET, socket.SOCK_STREAM)
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        except Exception:  # the stream may already be gone
            pass


def _idle_timeout(exc: BaseException) -> bool:
    """requests reports a read timeout inside a stream as a ConnectionError wrapping urllib3's."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and bool(exc.args) and isinstance(
        exc.args[0], urllib3.exceptions.ReadTimeoutError)


def _prefix_end(prefix: str) -> str:
    """etcd's range_end for "every key under prefix": the prefix with its last byte plus one."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
