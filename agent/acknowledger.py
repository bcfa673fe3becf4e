"""Tell the control plane what this node serves: an acknowledgement (chalicelib/contract/
acknowledgement.py) PUT to `[/<ns>]/api/v1/vga/nodes/<node>` right after every apply and as a
heartbeat every `interval` seconds. A report that does not get through is not queued: the next
one says the same, newer (what counts is the latest state, not the history)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import requests

from agent.applier import ApplyState
from chalicelib.contract.acknowledgement import Acknowledgement, node_path

log = logging.getLogger("agent.acknowledger")


def acknowledgement(node: str, namespace: str, state: ApplyState, interval: float) -> Acknowledgement:
    if state.rejected_generation is not None or (state.last_error and state.last_rejected_revision):
        status = "rejected"
    elif state.applied and state.generation is not None:
        status = "applied"
    else:
        status = "pending"  # nothing from etcd applied yet (a config kept on disk has no generation)
    return Acknowledgement(node=node, namespace=namespace, generation=state.generation, checksum=state.checksum,
                           status=status, sent=time.time(), interval=interval,
                           message=state.last_error if status == "rejected" else None,
                           rejected_generation=state.rejected_generation,
                           stage=state.rejected_stage if status == "rejected" else None,
                           rejected_gateways=state.rejected_gateways if status == "rejected" else None)


class Acknowledger:
    def __init__(self, api_url: str, token: str | None, node: str, namespace: str, interval: float,
                 state: Callable[[], ApplyState], timeout: float = 5.0) -> None:
        self.url = api_url.rstrip("/") + node_path(namespace, node)
        self.node, self.namespace, self.interval, self.state = node, namespace, interval, state
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.sent = self.failed = 0
        self._now = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acknowledger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._now.set()
        self._thread.join(timeout=self.timeout + 1)

    def report_now(self) -> None:
        """After an apply: don't wait for the heartbeat (a release waits on this)."""
        self._now.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.report()
            self._now.wait(self.interval)
            self._now.clear()

    def report(self) -> bool:
        ack = acknowledgement(self.node, self.namespace, self.state(), self.interval)
        try:
            response = self.session.put(self.url, json=ack.as_dict(), timeout=self.timeout)
        except requests.RequestException as exc:
            self.failed += 1
            log.warning("Vamp API unreachable (%s): acknowledgement of generation %s not sent", exc, ack.generation)
            return False
        if response.status_code >= 300:
            self.failed += 1
            log.warning("Vamp API answered %s to the acknowledgement: %s", response.status_code, response.text[:200])
            return False
        self.sent += 1
        return True
