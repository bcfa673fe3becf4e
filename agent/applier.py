"""Apply a configuration from etcd: verify, write atomically, `haproxy -c`, reload; keep the last good one.

What etcd holds is not trusted: anyone who can write to etcd could put any text there. So before
HAProxy sees anything (docs/decisions/0023):
  1. the signature (contract/envelope.py) must verify under one of the node's keys, for its
     namespace and HAProxy version and the generation next to the text;
  2. the generation must not be older than the one the node serves (a replayed, once good text),
     nor the same generation with another text;
  3. every line must be one the control plane renders (agent/allowlist.py);
  4. `haproxy -c` must pass.
A refusal at any step is reported (acknowledgement: status rejected, the stage, the message,
the gateways it names) and applies nothing: HAProxy keeps serving the last good config.

Files in the work dir:
  haproxy.cfg       what the master runs (and restarts on): always the last good config
  haproxy.cfg.prev  the one before, to roll back to when HAProxy refuses a reload
  applied.json      the replay floor: the newest verified generation received, and its checksum
  candidate.cfg     being checked;  rejected.cfg: the last signed one that was refused
The watcher never waits for HAProxy: it drops values in a one-slot mailbox and this thread
applies the newest, so a burst of puts costs one reload, not one each.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent import allowlist
from agent.events import EventPoster
from agent.haproxy import BOOTSTRAP, HAProxy
from agent.metrics import AgentMetrics
from chalicelib.contract.envelope import SignatureRefused, checksum, verify
from chalicelib.contract.log_format import proxy_gateway

log = logging.getLogger("agent.applier")


@dataclass
class ApplyState:
    applied: bool = False  # a configuration from etcd (or kept on disk from one) is being served
    checksum: str | None = None
    revision: int | None = None
    generation: int | None = None  # etcd's generation of the configuration served (None: unknown yet)
    last_rejected_revision: int | None = None
    rejected_generation: int | None = None  # the newest generation refused, until one applies
    last_error: str | None = None
    rejected_stage: str | None = None  # what refused it (contract/acknowledgement.STAGES)
    rejected_gateways: tuple[str, ...] = ()  # the gateways the refusal names
    key_id: str | None = None  # the key the configuration served was signed with


_CITED = re.compile(r"\.cfg:(\d+)\]")  # "parsing [candidate.cfg:12]", "Binding [haproxy.cfg:9]"
# HAProxy names a proxy after one of these words: "proxy 'gw.x'", "backend rt.x.y: ..." (a trailing
# ':' is its punctuation). Read word by word, not searched, so a long line costs one pass.
_PROXY_WORDS = frozenset({"proxy", "Proxy", "backend", "frontend"})
_HEADER = re.compile(r"^\s*(frontend|backend)\s+(\S+)")


def named_gateways(message: str, text: bytes) -> tuple[str, ...]:
    """The gateways HAProxy's message names: by the line numbers it cites (`parsing [f.cfg:12]`:
    the section holding line 12 of the text) and by the proxies it names (`Proxy 'gw.x'`,
    `for frontend gw.x:`)."""
    lines = text.decode(errors="replace").split("\n")
    found: list[str] = []

    def add(proxy: str | None) -> None:
        gateway = proxy_gateway(proxy) if proxy else None
        if gateway is not None and gateway not in found:
            found.append(gateway)

    for m in re.finditer(r"[^\n]+", message):
        line = m.group(0)
        cited = _CITED.search(line)
        if cited:
            number = int(cited.group(1))
            section = None
            for raw in lines[:number][::-1]:
                header = _HEADER.match(raw)
                if header:
                    section = header.group(2)
                    break
                if raw.strip() in ("global", "defaults") or raw.strip().startswith("resolvers "):
                    break
            add(section)
        words = line.split()
        for keyword, name in zip(words, words[1:]):
            if keyword in _PROXY_WORDS:
                add(name.removesuffix(":").strip("'").partition("'")[0] or None)
    return tuple(found)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Applier:
    def __init__(self, haproxy: HAProxy, metrics: AgentMetrics, *, signing_keys: tuple[str, ...], namespace: str,
                 version: str, events: EventPoster | None = None, reload_timeout: float = 10.0,
                 on_done: Callable[[], None] | None = None) -> None:
        self.haproxy = haproxy
        self.on_done = on_done  # after every apply, whatever happened (the acknowledgement goes out)
        self.metrics = metrics
        self.events = events
        self.reload_timeout = reload_timeout
        self.signing_keys, self.namespace, self.version = signing_keys, namespace, version
        self.state = ApplyState()
        # The newest verified generation received (and its text's checksum): nothing older is
        # applied, whatever etcd holds later (a replay). Kept in applied.json across restarts.
        self.floor: int | None = None
        self.floor_checksum: str | None = None
        self._pending: tuple[bytes, int | None, int, float, bytes | None] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="applier", daemon=True)
        self._recover_from_disk()

    @property
    def _applied_file(self) -> Path:
        return self.haproxy.work_dir / "applied.json"

    def _recover_from_disk(self) -> None:
        """A config kept from a previous run counts as applied (HAProxy starts on it); the replay
        floor is kept too."""
        cfg = self.haproxy.config
        if cfg.exists():
            data = cfg.read_bytes()
            if not data.startswith(BOOTSTRAP.encode()[:40]):
                self.state.applied, self.state.checksum = True, checksum(data)
        try:
            kept = json.loads(self._applied_file.read_text())
            if isinstance(kept.get("floor"), int):
                self.floor, self.floor_checksum = kept["floor"], kept.get("floor_checksum")
        except (OSError, ValueError, AttributeError):
            pass

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=self.reload_timeout + 5)

    def submit(self, value: bytes, generation: int | None, revision: int, received_at: float,
               signature: bytes | None = None) -> None:
        with self._cond:
            self._pending = (value, generation, revision, received_at, signature)
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

    def apply(self, value: bytes, generation: int | None, revision: int, received_at: float,
              signature: bytes | None = None) -> str:
        """Returns what happened: unchanged, rejected, reload-failed or applied. A later generation
        with the same text is applied by doing nothing: HAProxy already serves it."""
        digest = checksum(value)
        try:
            kid = verify(self.signing_keys, self.namespace, self.version, generation, value, signature)
        except SignatureRefused as refused:
            # Not written anywhere: the text is whatever someone put in etcd.
            return self._reject(revision, generation, digest, "signature", f"refused: {refused}")
        generation = int(generation)  # type: ignore[arg-type]  # verify refuses one without a generation
        if self.floor is not None and generation < self.floor:
            return self._reject(revision, generation, digest, "generation",
                                f"refused: generation {generation} is older than generation {self.floor}, which this "
                                "node has received already (a replayed configuration)")
        if self.floor == generation and self.floor_checksum not in (None, digest):
            return self._reject(revision, generation, digest, "generation",
                                f"refused: another text for generation {generation}, which this node has received")
        self._raise_floor(generation, digest)
        if digest == self.state.checksum:
            self.state.revision, self.state.generation = revision, generation
            self.state.rejected_generation, self.state.key_id = None, kid
            self.state.last_error, self.state.rejected_stage, self.state.rejected_gateways = None, None, ()
            return "unchanged"
        work = self.haproxy.work_dir
        refusals = allowlist.check(value.decode("utf-8", errors="replace"))
        if refusals:
            shown = "\n".join(str(r) for r in refusals[:20])
            more = f"\n... and {len(refusals) - 20} more" if len(refusals) > 20 else ""
            write_atomic(work / "rejected.cfg", value)
            return self._reject(revision, generation, digest, "allowlist",
                                f"refused: not what the control plane renders:\n{shown}{more}",
                                tuple(allowlist.gateways(refusals)))
        candidate = work / "candidate.cfg"
        write_atomic(candidate, value)
        ok, message = self.haproxy.check(candidate)
        if not ok:
            os.replace(candidate, work / "rejected.cfg")
            return self._reject(revision, generation, digest, "haproxy -c", message, named_gateways(message, value))

        cfg, prev = self.haproxy.config, work / "haproxy.cfg.prev"
        if cfg.exists():
            shutil.copyfile(cfg, prev.with_name(prev.name + ".tmp"))
            os.replace(prev.with_name(prev.name + ".tmp"), prev)
        os.replace(candidate, cfg)  # atomic: a master restarting now reads old or new, whole
        mark = self.haproxy.output_mark()
        if not self.haproxy.reload(self.reload_timeout):
            # HAProxy kept the old workers; put their config back so a restart runs it too.
            if prev.exists():
                os.replace(prev, cfg)
            self.metrics.reload_failures.inc()
            said = "\n".join(self.haproxy.alerts_since(mark))
            message = "reload failed; old configuration kept" + (f":\n{said}" if said else " (see haproxy output)")
            self._refused(revision, generation, "reload", message, named_gateways(said, value))
            log.error("reload of revision %s failed; still serving %s", revision, self.state.checksum)
            self._post_rejected(revision, digest, message, "reload")
            return "reload-failed"

        elapsed = time.monotonic() - received_at
        self.metrics.reloads.inc()
        self.metrics.apply_seconds.observe(elapsed)
        self.state.applied, self.state.checksum, self.state.revision = True, digest, revision
        self.state.generation, self.state.rejected_generation, self.state.last_error = generation, None, None
        self.state.rejected_stage, self.state.rejected_gateways, self.state.key_id = None, (), kid
        self._keep()
        log.info("applied configuration revision %s (%s) in %.3fs", revision, digest[:19], elapsed)
        return "applied"

    def _raise_floor(self, generation: int, digest: str) -> None:
        """Nothing older than a verified generation the node received is applied after it."""
        if self.floor != generation or self.floor_checksum != digest:
            self.floor, self.floor_checksum = generation, digest
            self._keep()

    def _keep(self) -> None:
        kept = {"checksum": self.state.checksum, "floor": self.floor, "floor_checksum": self.floor_checksum}
        try:
            write_atomic(self._applied_file, json.dumps(kept).encode())
        except OSError:
            log.exception("could not keep the replay floor in %s", self._applied_file)

    def _refused(self, revision: int, generation: int | None, stage: str, message: str,
                 gateways: tuple[str, ...] = ()) -> None:
        self.state.last_rejected_revision, self.state.last_error = revision, message
        self.state.rejected_generation, self.state.rejected_stage = generation, stage
        self.state.rejected_gateways = gateways

    def _reject(self, revision: int, generation: int | None, digest: str, stage: str, message: str,
                gateways: tuple[str, ...] = ()) -> str:
        self.metrics.rejected.inc()
        self._refused(revision, generation, stage, message, gateways)
        log.error("configuration revision %s (generation %s, %s) refused at %s; still serving %s:\n%s",
                  revision, generation, digest[:19], stage, self.state.checksum, message)
        self._post_rejected(revision, digest, message, stage)
        return "rejected"

    def _post_rejected(self, revision: int, digest: str, message: str, stage: str) -> None:
        if self.events is None:
            return
        self.events.post([{
            "tags": ["gateways", "agent"],
            "type": "rejected",
            "value": {"node": platform.node(), "revision": revision, "checksum": digest, "stage": stage,
                      "message": message[:4000], "gateways": list(self.state.rejected_gateways)},
        }])
