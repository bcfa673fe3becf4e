"""Apply a configuration from etcd: write atomically, `haproxy -c`, reload; keep the last good one.

Files in the work dir:
  haproxy.cfg       what the master runs (and restarts on): always the last good config
  haproxy.cfg.prev  the one before, to roll back to when HAProxy refuses a reload
  candidate.cfg     being checked;  rejected.cfg: the last one `haproxy -c` refused
The watcher never waits for HAProxy: it drops values in a one-slot mailbox and this thread
applies the newest, so a burst of puts costs one reload, not one each.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent.events import EventPoster
from agent.haproxy import BOOTSTRAP, HAProxy
from agent.metrics import AgentMetrics
from chalicelib.contract.envelope import checksum

log = logging.getLogger("agent.applier")


@dataclass
class ApplyState:
    applied: bool = False  # a configuration from etcd (or kept on disk from one) is being served
    checksum: str | None = None
    revision: int | None = None
    generation: int | None = None  # etcd's generation of the configuration served (None: unknown yet)
    last_rejected_revision: int | None = None
    rejected_generation: int | None = None  # the newest generation HAProxy refused, until one applies
    last_error: str | None = None


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Applier:
    def __init__(self, haproxy: HAProxy, metrics: AgentMetrics, events: EventPoster | None = None,
                 reload_timeout: float = 10.0, on_done: Callable[[], None] | None = None) -> None:
        self.haproxy = haproxy
        self.on_done = on_done  # after every apply, whatever happened (the acknowledgement goes out)
        self.metrics = metrics
        self.events = events
        self.reload_timeout = reload_timeout
        self.state = ApplyState()
        self._pending: tuple[bytes, int | None, int, float] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="applier", daemon=True)
        self._recover_from_disk()

    def _recover_from_disk(self) -> None:
        """A config kept from a previous run counts as applied (HAProxy starts on it)."""
        cfg = self.haproxy.config
        if cfg.exists():
            data = cfg.read_bytes()
            if not data.startswith(BOOTSTRAP.encode()[:40]):
                self.state.applied, self.state.checksum = True, checksum(data)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=self.reload_timeout + 5)

    def submit(self, value: bytes, generation: int | None, revision: int, received_at: float) -> None:
        with self._cond:
            self._pending = (value, generation, revision, received_at)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item, self._pending = self._pending, None
                self._busy = True
            try:
                self.apply(*item)
            except Exception:
                log.exception("applying revision %s failed", item[2])
            finally:
                if self.on_done is not None:
                    try:
                        self.on_done()
                    except Exception:
                        log.exception("acknowledging revision %s failed", item[2])
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def apply(self, value: bytes, generation: int | None, revision: int, received_at: float) -> str:
        """Returns what happened: unchanged, rejected, reload-failed or applied. A later generation
        with the same text is applied by doing nothing: HAProxy already serves it."""
        digest = checksum(value)
        if digest == self.state.checksum:
            self.state.revision, self.state.generation = revision, generation
            self.state.rejected_generation = None
            return "unchanged"
        work = self.haproxy.work_dir
        candidate = work / "candidate.cfg"
        write_atomic(candidate, value)
        ok, message = self.haproxy.check(candidate)
        if not ok:
            os.replace(candidate, work / "rejected.cfg")
            self.metrics.rejected.inc()
            self.state.last_rejected_revision, self.state.last_error = revision, message
            self.state.rejected_generation = generation
            log.error("configuration revision %s rejected by haproxy -c; still serving %s:\n%s",
                      revision, self.state.checksum, message)
            self._post_rejected(revision, digest, message, "haproxy -c")
            return "rejected"

        cfg, prev = self.haproxy.config, work / "haproxy.cfg.prev"
        if cfg.exists():
            shutil.copyfile(cfg, prev.with_name(prev.name + ".tmp"))
            os.replace(prev.with_name(prev.name + ".tmp"), prev)
        os.replace(candidate, cfg)  # atomic: a master restarting now reads old or new, whole
        if not self.haproxy.reload(self.reload_timeout):
            # HAProxy kept the old workers; put their config back so a restart runs it too.
            if prev.exists():
                os.replace(prev, cfg)
            self.metrics.reload_failures.inc()
            self.state.last_error = "reload failed (see haproxy output); old configuration kept"
            self.state.rejected_generation = generation
            log.error("reload of revision %s failed; still serving %s", revision, self.state.checksum)
            self._post_rejected(revision, digest, self.state.last_error, "reload")
            return "reload-failed"

        elapsed = time.monotonic() - received_at
        self.metrics.reloads.inc()
        self.metrics.apply_seconds.observe(elapsed)
        self.state.applied, self.state.checksum, self.state.revision = True, digest, revision
        self.state.generation, self.state.rejected_generation, self.state.last_error = generation, None, None
        log.info("applied configuration revision %s (%s) in %.3fs", revision, digest[:19], elapsed)
        return "applied"

    def _post_rejected(self, revision: int, digest: str, message: str, stage: str) -> None:
        if self.events is None:
            return
        self.events.post([{
            "tags": ["gateways", "agent"],
            "type": "rejected",
            "value": {"node": platform.node(), "revision": revision, "checksum": digest, "stage": stage,
                      "message": message[:4000]},
        }])
