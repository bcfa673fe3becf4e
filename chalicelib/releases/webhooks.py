"""Webhooks that gate a release (before rollout, before each increase, before promotion) or are
told of a rollback. A 2xx answer advances; anything else, a timeout or a refused connection is a
failed check. Only http and https, short timeouts, no redirects followed, the answer unread
beyond 4 KB. The body is Flagger's: {name, namespace, phase, checksum, metadata}."""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.releases.model import ReleaseState
from chalicelib.releases.plan import Webhook

PHASES = {"before_rollout": "pre-rollout", "before_increase": "confirm-traffic-increase",
          "before_promotion": "confirm-promotion", "on_rollback": "rollback"}
MAX_TIMEOUT = 30


@dataclass(frozen=True)
class HookResult:
    name: str
    ok: bool
    status: int | None
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "status": self.status, "reason": self.reason}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def body(hook: Webhook, release: ReleaseState) -> dict:
    checksum = hashlib.sha256(json.dumps(release.spec, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "name": release.name,
        "namespace": release.namespace,
        "phase": PHASES[hook.type],
        "checksum": checksum,
        "metadata": {**{str(k): str(v) for k, v in hook.metadata.items()},
                     "gateway": release.gateway, "stable": release.stable, "canary": release.canary,
                     "step": str(release.step), "weight": str(release.weight), "release_id": release.id},
    }


def call(hook: Webhook, payload: dict) -> HookResult:
    url = urlsplit(hook.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return HookResult(hook.name, False, None, f"refused: {url.scheme or 'no'} scheme (http or https only)")
    request = urllib.request.Request(hook.url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "vamp-release"})
    try:
        with _OPENER.open(request, timeout=min(max(hook.timeout, 1), MAX_TIMEOUT)) as response:
            response.read(4096)
            status = response.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        return HookResult(hook.name, False, None, f"no answer: {getattr(e, 'reason', e)}")
    ok = 200 <= status < 300
    return HookResult(hook.name, ok, status, f"HTTP {status}")


def run(hooks: list[Webhook], release: ReleaseState, caller=call) -> list[HookResult]:
    """Every hook of one kind, in order; each is called (even after one fails) so all are reported."""
    return [caller(h, body(h, release)) for h in hooks]
