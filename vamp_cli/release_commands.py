"""`vamp release start|list|status|pause|resume|approve|promote|abort|watch` (docs/decisions/0047).

`watch` (and `start --wait`) exits 0 when the release is promoted, 4 when it rolled back, 5 when
it was aborted, 6 when it failed, 7 after --timeout (vamp_cli/release_watch.py).
"""
from __future__ import annotations

import sys

import click
import yaml
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vamp_cli import release_watch as rw
from vamp_cli.client import seg
from vamp_cli.main import Context, cli, output_option, pass_context
from vamp_cli.output import field

ACTIONS = {  # action -> Vamp-style message once accepted
    "pause": "paused", "resume": "resumed", "approve": "approved", "promote": "promotion requested",
    "abort": "abort requested",
}


@cli.group("release")
def release():
    """Canary releases: start one, follow it (watch), steer it."""


def _load_file(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise click.BadParameter(f"one release (a map) expected, found {len(docs)} documents", param_hint="-f")
    return docs[0]


def watch(ctx: Context, name: str, timeout: float | None) -> int:
    """Follow the release: rich Live on a terminal, one line per change otherwise. The exit status."""
    console = ctx.console
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            def shown(w: rw.Watch, _before):
                live.update(rw.render(w))
            try:
                w, code = rw.follow(ctx.api, name, shown, timeout=timeout)
            except KeyboardInterrupt:
                return rw.EXIT_INTERRUPTED
    else:
        def lines(w: rw.Watch, before):
            for line in rw.changes(before, w.status):
                click.echo(f"{name}: {line}")
            sys.stdout.flush()
        try:
            w, code = rw.follow(ctx.api, name, lines, timeout=timeout)
        except KeyboardInterrupt:
            return rw.EXIT_INTERRUPTED
    outcome = {rw.EXIT_PROMOTED: "promoted", rw.EXIT_ROLLED_BACK: "rolled back", rw.EXIT_ABORTED: "aborted",
               rw.EXIT_FAILED: "failed", rw.EXIT_TIMEOUT: f"still {w.status.get('phase')} after {timeout:g} s"
               if timeout else "undecided"}[code]
    ctx.status(f"release {name} {outcome}" + (f": {w.status.get('reason')}" if w.status.get("reason") else ""))
    return code


@release.command("start")
@click.argument("name", required=False)
@click.option("--gateway", "-g", help="The gateway whose routes are released")
@click.option("--stable", help="The stable route (e.g. sava/sava:1.0/port)")
@click.option("--canary", help="The canary route")
@click.option("--policy", "-p", help="A release-policies artifact's name")
@click.option("--file", "-f", "path", metavar="FILE", help="The release as YAML/JSON (- for stdin)")
@click.option("--validate-only", is_flag=True, help="Check it, start nothing")
@click.option("--wait", is_flag=True, help="Watch it to the end; exit status as `vamp release watch`")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds (exit 7)")
@output_option
@pass_context
def start(ctx: Context, name, gateway, stable, canary, policy, path, validate_only, wait, timeout):
    """Start a release of NAME: --gateway G --stable S --canary C --policy P, or -f FILE."""
    body = _load_file(path) if path else {}
    given = {"name": name, "gateway": gateway, "stable": stable, "canary": canary, "policy": policy}
    body.update({k: v for k, v in given.items() if v})
    if not path:
        missing = [f"--{k}" if k != "name" else "NAME" for k in given if not body.get(k)]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or -f FILE)")
    reply = ctx.api.post("/releases", json=body, params={"validate_only": "true"} if validate_only else None)
    state = reply.data or {}
    if validate_only:
        ctx.status(f"release {state.get('name')} is valid: {state.get('steps')} steps "
                   f"{', '.join(f'{w}%' for w in state.get('weights') or [])} every {state.get('interval')}")
        return
    ctx.status(f"release {state.get('name')} started: {state.get('spec', {}).get('stable')} -> "
               f"{state.get('spec', {}).get('canary')} on gateway {state.get('spec', {}).get('gateway')}")
    if wait:
        sys.exit(watch(ctx, state.get("name"), timeout))
    if ctx.output in ("json", "yaml", "name"):
        ctx.emit(state)


COLUMNS = [("NAME", field("name")), ("PHASE", field("phase")),
           ("STEP", lambda r: f"{r.get('step')}/{r.get('steps')}"), ("WEIGHT", lambda r: f"{r.get('weight')}%"),
           ("GATEWAY", field("spec.gateway")), ("STABLE", field("spec.stable")), ("CANARY", field("spec.canary")),
           ("CHECKS", lambda r: len(r.get("checks") or [])), ("UPDATED", field("updated"))]


@release.command("list")
@output_option
@pass_context
def list_releases(ctx: Context):
    """Releases of the namespace."""
    ctx.emit(ctx.api.get("/releases").data or [], COLUMNS)


def status_renderable(status: dict) -> Table:
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    spec = status.get("spec") or {}
    rows = [("phase", status.get("phase")),
            ("step", f"{status.get('step')}/{status.get('steps')}  weight {status.get('weight')}%"),
            ("plan", rw.plan_line(status)),
            ("gateway", spec.get("gateway")), ("stable", spec.get("stable")), ("canary", spec.get("canary")),
            ("policy", spec.get("policy", {}).get("reference") if isinstance(spec.get("policy"), dict) else None),
            ("failures", f"{status.get('failures')}/{status.get('failure_threshold')}"),
            ("waiting", status.get("waiting") or (f"awaiting {status['awaiting']}" if status.get("awaiting") else "-")),
            ("reason", status.get("reason")), ("started", status.get("started")), ("finished", status.get("finished"))]
    for k, v in rows:
        if v is not None:
            t.add_row(k, v if isinstance(v, Text) else str(v))
    return t


@release.command("status")
@click.argument("name")
@output_option
@pass_context
def status(ctx: Context, name):
    """A release: phase, step and weight, each check's figures against its thresholds."""
    data = ctx.api.get(f"/releases/{seg(name)}").data or {}
    if ctx.output != "table":
        ctx.emit(data)
        return
    ctx.console.print(status_renderable(data))
    ctx.console.print(rw.checks_table(data, last=50))


def _action(action: str):
    @click.argument("name")
    @output_option
    @pass_context
    def command(ctx: Context, name):
        data = ctx.api.post(f"/releases/{seg(name)}/{action}").data or {}
        ctx.status(f"release {name} {ACTIONS[action]}: phase {data.get('phase')}, step {data.get('step')}/"
                   f"{data.get('steps')}, weight {data.get('weight')}%")
        if ctx.output in ("json", "yaml", "name"):
            ctx.emit(data)
    command.__doc__ = {"pause": "Hold the release at its weight.", "resume": "Go on after a pause.",
                       "approve": "Pass the manual approval gate.", "promote": "Promote now: the canary gets 100%.",
                       "abort": "Roll back now: the stable route gets everything back."}[action]
    return release.command(action)(command)


for _a in ACTIONS:
    _action(_a)


@release.command("watch")
@click.argument("name")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 7)")
@pass_context
def watch_command(ctx: Context, name, timeout):
    """Follow a release live until it is promoted (exit 0), rolled back (4), aborted (5) or failed (6).

    On a terminal: the plan with the current step, each check against its thresholds, request rate,
    success rate and p99 latency per version. Piped: one line per change.
    """
    sys.exit(watch(ctx, name, timeout))
