"""`vamp release watch`: following a release to its outcome (docs/decisions/0047).

The core is pure: `Watch` holds the release's last status and the metric windows the gateway
agents posted for its two routes; `render(watch)` turns that into a rich renderable (the live
view on a terminal) and `changes(before, after)` into plain lines (one per change, on a pipe).
`follow()` is the only part that talks to the API: each round it long-polls /events/stream for
the gateway's metric events (at most POLL seconds: the round's pause) and reads the release.

Exit status of a watch: see EXIT_* below (0 only when promoted).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vamp_cli.client import Api, ApiError, seg

# Exit status of `vamp release watch` and `vamp release start --wait` (0046's 1/2/3 kept).
EXIT_PROMOTED = 0
EXIT_ROLLED_BACK = 4  # the checks failed (or stayed inconclusive): the release rolled itself back
EXIT_ABORTED = 5  # rolled back because someone aborted it
EXIT_FAILED = 6  # the release could not run (phase failed)
EXIT_TIMEOUT = 7  # --timeout passed before an outcome
EXIT_INTERRUPTED = 130  # Ctrl-C: the release goes on

TERMINAL = ("promoted", "rolled_back", "failed")
POLL = 1  # seconds: the long poll's wait, so the release is read about once a second
SPARK = "▁▂▃▄▅▆▇█"
HISTORY = 40  # metric windows kept per route (the sparklines' width)


def exit_code(status: dict) -> int | None:
    """The watch's exit status for a finished release; None while it runs."""
    phase = status.get("phase")
    if phase == "promoted":
        return EXIT_PROMOTED
    if phase == "rolled_back":
        return EXIT_ABORTED if "abort" in str(status.get("reason") or "") else EXIT_ROLLED_BACK
    if phase == "failed":
        return EXIT_FAILED
    return None


# -- metric windows --------------------------------------------------------------------------

@dataclass
class Window:
    """One agent window of one route: what its metric events of one timestamp said."""

    timestamp: str
    requests: float = 0.0
    errors: float = 0.0
    rate: float | None = None
    p99: float | None = None

    @property
    def success(self) -> float | None:
        return None if self.requests <= 0 else 100.0 * (self.requests - self.errors) / self.requests


@dataclass
class Watch:
    """What the view shows: the release's status and the recent windows per route."""

    name: str
    status: dict = field(default_factory=dict)
    windows: dict[str, deque] = field(default_factory=dict)  # route -> Window, oldest first
    seen: set = field(default_factory=set)  # event ids taken (the seed and the stream overlap)

    @property
    def routes(self) -> dict[str, str]:
        """version label (stable, canary) -> route name."""
        spec = self.status.get("spec") or {}
        return {k: spec[k] for k in ("stable", "canary") if spec.get(k)}

    def take(self, events: Iterable[dict]) -> None:
        """Metric events (route-tagged `metrics:*` of the gateway) into per-route windows; the
        agents' windows of one timestamp and route are summed (several agents, one gateway)."""
        wanted = set(self.routes.values())
        for e in sorted(events, key=lambda e: (e.get("timestamp") or "", e.get("id") or "")):
            if e.get("id") in self.seen or e.get("type") != "metrics":
                continue
            self.seen.add(e.get("id"))
            tags = e.get("tags") or []
            route = next((t[len("routes:"):] for t in tags if t.startswith("routes:")), None)
            metric = next((t[len("metrics:"):] for t in tags if t.startswith("metrics:")), None)
            value = e.get("value")
            if route not in wanted or metric is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            series = self.windows.setdefault(route, deque(maxlen=HISTORY))
            stamp = e.get("timestamp") or ""
            window = next((w for w in series if w.timestamp == stamp), None)
            if window is None:
                window = Window(stamp)
                series.append(window)
                ordered = sorted(series, key=lambda w: w.timestamp)
                series.clear()
                series.extend(ordered)
            if metric == "requests":
                window.requests += value
            elif metric == "errors":
                window.errors += value
            elif metric == "rate":
                window.rate = (window.rate or 0.0) + value
            elif metric == "p99":
                window.p99 = value if window.p99 is None else max(window.p99, value)


# -- rendering (pure) ------------------------------------------------------------------------

def sparkline(values: list[float | None], width: int = HISTORY) -> str:
    """Block characters scaled to the values' range; a gap (no window) is a space."""
    values = values[-width:]
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARK[-1] if span == 0 else SPARK[round((v - low) / span * (len(SPARK) - 1))])
    return "".join(out)


def _num(v: Any, unit: str = "", digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return f"{v}{unit}"


def _unit(metric: str) -> str:
    if metric.startswith("success") or metric == "canary_share":
        return "%"
    if metric.startswith("p") and metric[1:2].isdigit():
        return "ms"
    return ""


def _compare(result: dict) -> str:
    """`value (needed threshold)`: success `80% (>= 95%)`, latency `12ms (<= 250ms)`."""
    metric, unit = result.get("metric", ""), _unit(result.get("metric", ""))
    value, threshold = _num(result.get("value"), unit), _num(result.get("threshold"), unit)
    if metric.startswith("success"):
        sign = ">="
    elif metric == "canary_share":
        sign = "~"
    elif metric == "mann_whitney":
        sign = "p >="
    else:
        sign = "<="
    return f"{value} ({sign} {threshold})"


VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _verdict(v: str | None) -> Text:
    v = v or "?"
    return Text(v, style=VERDICT_STYLE.get(v, ""))


def plan_line(status: dict) -> Text:
    """The steps' weights, the current one marked: `0% → [20%] → 50% → 80% → 100%`."""
    weights = list(status.get("weights") or [])
    step = int(status.get("step") or 0)
    phase = status.get("phase")
    out = Text()
    for i, w in enumerate([0, *weights, 100]):
        if i:
            out.append(" → ", style="dim")
        current = (i == step and phase not in TERMINAL) or (phase == "promoted" and i == len(weights) + 1) \
            or (phase == "rolled_back" and i == 0)
        label = f"{w}%"
        if current:
            out.append(f"[{label}]", style="bold reverse")
        elif i < step or phase == "promoted":
            out.append(label, style="green")
        else:
            out.append(label, style="dim")
    return out


def header(watch: Watch) -> Text:
    s = watch.status
    phase = s.get("phase", "?")
    style = {"promoted": "bold green", "rolled_back": "bold red", "failed": "bold red",
             "paused": "yellow", "awaiting_approval": "yellow"}.get(phase, "bold cyan")
    out = Text(f"release {watch.name}  ", style="bold")
    out.append(f"phase {phase}", style=style)
    out.append(f"  step {s.get('step', 0)}/{s.get('steps', '?')}  weight {s.get('weight', 0)}%")
    out.append(f"  failures {s.get('failures', 0)}/{s.get('failure_threshold', '?')}")
    spec = s.get("spec") or {}
    if spec:
        out.append(f"\ngateway {spec.get('gateway')}: stable {spec.get('stable')} → canary {spec.get('canary')}",
                   style="dim")
    waiting = s.get("waiting") or (f"awaiting {s['awaiting']}" if s.get("awaiting") else None)
    out.append("\nwaiting for: ", style="bold")
    out.append(waiting or ("nothing: finished" if phase in TERMINAL else f"the next check (every {s.get('interval')})"))
    if s.get("reason"):
        out.append(f"\nreason: {s['reason']}")
    if s.get("publish_error"):
        out.append(f"\npublish error: {s['publish_error']}", style="red")
    return out


def checks_table(status: dict, last: int = 6) -> Table:
    """Each check (the last few): its figures against the thresholds, its verdict; a failing
    figure in red."""
    t = Table(title="checks", title_justify="left", title_style="bold", box=None, header_style="bold",
              pad_edge=False)
    for col in ("#", "step", "weight", "canary req", "stable req", "metric: value (threshold)", "verdict", "decision"):
        t.add_column(col, overflow="fold")
    for c in (status.get("checks") or [])[-last:]:
        metrics = Text()
        for i, r in enumerate(c.get("results") or []):
            if i:
                metrics.append("\n")
            style = "bold red" if r.get("verdict") == "fail" else ("yellow" if r.get("verdict") == "inconclusive" else "")
            metrics.append(f"{r.get('metric')}: {_compare(r)}", style=style)
        t.add_row(str(c.get("number", "")), str(c.get("step", "")), f"{c.get('weight', 0)}%",
                  _num((c.get("canary") or {}).get("requests")), _num((c.get("stable") or {}).get("requests")),
                  metrics or Text(c.get("reason") or ""), _verdict(c.get("verdict")),
                  c.get("decision_reason") or c.get("decision") or "")
    if not status.get("checks"):
        t.add_row("-", "", "", "", "", Text("no check yet", style="dim"), "", "")
    return t


def traffic_table(watch: Watch) -> Table:
    """Per version: request rate, success rate and p99 of the agents' windows, as sparklines
    with the last value."""
    t = Table(title="traffic per version (the gateway agents' metric windows)", title_justify="left",
              title_style="bold", box=None, header_style="bold", pad_edge=False)
    for col in ("version", "route", "req/s", "", "success", "", "p99", ""):
        t.add_column(col, no_wrap=True)
    for label, route in watch.routes.items():
        # a window is shown once its request count arrived (a page of events may end inside one)
        windows = [w for w in watch.windows.get(route, ()) if w.requests > 0 or w.rate is not None]
        rates = [w.rate for w in windows]
        success = [w.success for w in windows]
        p99 = [w.p99 for w in windows]
        last = windows[-1] if windows else None
        sr = last.success if last else None
        t.add_row(label, route,
                  _num(last.rate if last else None, digits=1), Text(sparkline(rates, 20), style="cyan"),
                  Text(_num(sr, "%"), style="red" if sr is not None and sr < 95 else ""),
                  Text(sparkline(success, 20), style="green"),
                  _num(last.p99 if last else None, "ms", 0), Text(sparkline(p99, 20), style="magenta"))
    return t


def render(watch: Watch) -> Group:
    return Group(header(watch), Text("plan: ", style="bold") + plan_line(watch.status), Text(""),
                 checks_table(watch.status), Text(""), traffic_table(watch))


# -- the line-per-change form (pure) ---------------------------------------------------------

def check_line(c: dict) -> str:
    canary, stable = c.get("canary") or {}, c.get("stable") or {}
    head = (f"check {c.get('number')} step {c.get('step')} weight {c.get('weight', 0)}%: "
            f"{str(c.get('verdict', '?')).upper()}")
    decision = f"-> {c.get('decision_reason') or c.get('decision') or ''}".rstrip()
    if not canary and not c.get("results"):  # the check before the rollout: no figures to show
        return f"{head} ({c.get('reason') or 'no figures'}) {decision}"
    figures = "; ".join(f"{r.get('metric')} {_compare(r)} {r.get('verdict')}" for r in c.get("results") or [])
    return (f"{head} (canary {_num(canary.get('requests'))} req, stable {_num(stable.get('requests'))} req"
            f"{'; ' + figures if figures else ''}) {decision}")


def changes(before: dict | None, after: dict) -> list[str]:
    """Lines for what changed from `before` to `after` (a status each): phase, step and weight,
    what it waits for, every new check. Nothing repeated."""
    before = before or {}
    lines = []
    if before.get("phase") != after.get("phase"):
        lines.append(f"phase {after.get('phase')}" + (f": {after.get('reason')}" if after.get("reason") else ""))
    if (before.get("step"), before.get("weight")) != (after.get("step"), after.get("weight")):
        lines.append(f"step {after.get('step')}/{after.get('steps')} weight {after.get('weight')}%")
    known = {c.get("number") for c in before.get("checks") or []}
    for c in after.get("checks") or []:
        if c.get("number") not in known:
            lines.append(check_line(c))
    waiting = after.get("waiting") or (f"awaiting {after['awaiting']}" if after.get("awaiting") else None)
    was = before.get("waiting") or (f"awaiting {before['awaiting']}" if before.get("awaiting") else None)
    if waiting != was and waiting:
        lines.append(f"waiting: {waiting}")
    return lines


# -- following (the API) ---------------------------------------------------------------------

def release_status(api: Api, name: str) -> dict:
    return api.get(f"/releases/{seg(name)}").data or {}


def follow(api: Api, name: str, on_change: Callable[[Watch, dict | None], None], *, timeout: float | None = None,
           poll: float = POLL, clock: Callable[[], float] = time.monotonic) -> tuple[Watch, int]:
    """Follow the release until it is finished (or `timeout` s): `on_change(watch, before)` after
    every read. (the watch, its exit status)."""
    watch = Watch(name, release_status(api, name))
    deadline = None if timeout is None else clock() + timeout
    gateway = (watch.status.get("spec") or {}).get("gateway") or watch.status.get("gateway")
    params = {"tag": f"gateways:{gateway}", "type": "metrics", "limit": 1000}
    try:  # the recent windows first (newest first), so the sparklines start filled
        watch.take(api.events({"tag": [f"gateways:{gateway}"], "type": "metrics", "per_page": 500}))
    except ApiError:
        pass
    on_change(watch, None)
    cursor = None
    while exit_code(watch.status) is None:
        if deadline is not None and clock() >= deadline:
            return watch, EXIT_TIMEOUT
        try:
            page = api.get("/events/stream", params={**params, "wait": int(poll), **({"after": cursor} if cursor else {})},
                           timeout=poll + 15).data or {}
            watch.take(page.get("events") or [])
            cursor = page.get("cursor") or cursor
        except ApiError as e:
            if e.status in (401, 403, 404):
                raise
            time.sleep(poll)  # the stream failed (the API restarting): the status is still read
        before = watch.status
        watch.status = release_status(api, name)
        on_change(watch, before)
    return watch, exit_code(watch.status)
