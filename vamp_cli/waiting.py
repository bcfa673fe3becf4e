"""`--wait`: poll the deployment until its services are done (or gone), printing each change of
phase once (stderr), and say why when it fails or times out."""

from __future__ import annotations

import time

from vamp_cli.client import ApiError, seg
from vamp_cli.views import breed_name, phase, services

POLL = 0.5  # seconds between reads


def _say(ctx, text: str) -> None:
    ctx.err.print(text, markup=False, highlight=False)


def _states(d: dict) -> dict:
    out = {}
    for cname, s in services(d):
        status = s.get("status") or {}
        p = status.get("phase") or {}
        out[f"{cname}/{breed_name(s)}"] = (status.get("intention", ""), phase(s), p.get("notification", ""))
    return out


def _progress(ctx, seen: dict, now: dict) -> None:
    for key, state in now.items():
        if seen.get(key) != state:
            intention, name, note = state
            _say(ctx, f"  {key}: {intention} {name}{': ' + note if note else ''}")
    seen.clear()
    seen.update(now)


def wait_deployed(ctx, name: str, timeout: float) -> bool:
    """True when every service to deploy is done; False (said why) on `failed` or the timeout."""
    deadline, seen = time.monotonic() + timeout, {}
    while True:
        d = ctx.api.get(f"/deployments/{seg(name)}").data
        now = {k: v for k, v in _states(d).items() if v[0] != "undeployment"}
        _progress(ctx, seen, now)
        failed = {k: v for k, v in now.items() if v[1] == "failed"}
        if failed:
            for k, (_, _, note) in failed.items():
                _say(ctx, f"Error: {k} failed: {note or 'no reason given'}")
            return False
        if now and all(v[1] == "done" for v in now.values()):
            ctx.status(f"deployments {name} deployed")
            return True
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{k} {v[1]}" for k, v in now.items() if v[1] != "done")
            _say(ctx, f"Error: timed out after {timeout:g} s waiting for {waiting}")
            return False
        time.sleep(POLL)


def wait_undeployed(ctx, name: str, only: tuple | None, timeout: float) -> bool:
    """True when the deployment (or the services named) is gone."""
    deadline, seen = time.monotonic() + timeout, {}
    while True:
        try:
            d = ctx.api.get(f"/deployments/{seg(name)}").data
        except ApiError as e:
            if e.status == 404:
                ctx.status(f"deployments {name} undeployed")
                return True
            raise
        now = _states(d)
        if only:
            now = {k: v for k, v in now.items() if k in only or k.split("/", 1)[1] in only}
            if not now:
                ctx.status(f"deployments {name}: {', '.join(only)} undeployed")
                return True
        _progress(ctx, seen, now)
        failed = {k: v for k, v in now.items() if v[1] == "failed"}
        for k, (_, _, note) in failed.items():
            _say(ctx, f"Error: {k} failed: {note or 'no reason given'}")
        if failed:
            return False
        if time.monotonic() > deadline:
            _say(ctx, f"Error: timed out after {timeout:g} s waiting for {', '.join(now)} to go")
            return False
        time.sleep(POLL)
