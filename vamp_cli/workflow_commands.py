"""`vamp workflow list|status|suspend|start|restart` (Vamp's workflow status: PUT
/workflows/<name>/status with running, suspended or restarting; the runs are the `workflows:<name>`
events: started, then finished or failed, docs/decisions/0039)."""
from __future__ import annotations

import click

from vamp_cli.client import seg
from vamp_cli.main import Context, cli, output_option, pass_context
from vamp_cli.output import field, table

RUN_OUTCOMES = ("started", "finished", "failed")


@cli.group("workflow")
def workflow():
    """Workflows: their status and their last runs; suspend, start, restart."""


def _schedule(doc: dict) -> str:
    s = doc.get("schedule")
    if isinstance(s, dict):
        if "time" in s:
            t = s["time"] or {}
            return f"every {t.get('period')}" + (f" x{t['repeat']}" if t.get("repeat") else "") if isinstance(t, dict) else str(t)
        if "event" in s:
            return "on event " + ", ".join(map(str, (s["event"] or {}).get("tags", []) if isinstance(s["event"], dict) else [s["event"]]))
        return ", ".join(s)
    return str(s or "")


@workflow.command("list")
@output_option
@pass_context
def list_workflows(ctx: Context):
    """Workflows of the namespace with their status and schedule."""
    data = ctx.api.get("/workflows").data or []
    ctx.emit(data, [("NAME", field("name")), ("STATUS", field("status")), ("SCHEDULE", _schedule),
                    ("BREED", lambda w: (w.get("breed") or {}).get("reference") or (w.get("breed") or {}).get("name")
                     if isinstance(w.get("breed"), dict) else w.get("breed"))])


def last_runs(ctx: Context, name: str, n: int = 10) -> list[dict]:
    """The workflow's last run events, newest first: {timestamp, outcome, duration, result}."""
    events = ctx.api.events({"tag": [f"workflows:{name}"], "per_page": 100})
    runs = []
    for e in events:
        tags = e.get("tags") or []
        what = next((t for t in RUN_OUTCOMES if t in tags), None)
        if what is None:
            continue
        value = e.get("value") if isinstance(e.get("value"), dict) else {}
        result = (f"exit {value['exit_code']}" if "exit_code" in value else "") if what == "finished" else \
            value.get("error") or (f"trigger {value.get('trigger')}" if value.get("trigger") else "")
        runs.append({"timestamp": e.get("timestamp"), "outcome": what, "duration": value.get("duration"),
                     "result": result})
        if len(runs) >= n:
            break
    return runs


@workflow.command("status")
@click.argument("name")
@output_option
@pass_context
def status(ctx: Context, name):
    """A workflow's status and its last runs."""
    state = ctx.api.get(f"/workflows/{seg(name)}/status").data
    runs = last_runs(ctx, name)
    if ctx.output in ("json", "yaml"):
        ctx.emit({"name": name, "status": state, "runs": runs})
        return
    if ctx.output == "name":
        click.echo(state)
        return
    ctx.console.print(f"workflow {name}: [bold]{state}[/bold]")
    if runs:
        ctx.console.print(table([("TIME", field("timestamp")), ("RUN", field("outcome")),
                                 ("SECONDS", field("duration")), ("RESULT", field("result"))], runs, "last runs"))
    else:
        ctx.console.print("no runs yet")


def _set(request: str, done: str):
    @click.argument("name")
    @pass_context
    def command(ctx: Context, name):
        data = ctx.api.put(f"/workflows/{seg(name)}/status", json=request).data
        ctx.status(f"workflow {name} {done}: status {data}")
    command.__doc__ = {"suspended": "Suspend: unscheduled until started again.",
                       "running": "Start (schedule) a suspended workflow.",
                       "restarting": "Restart: rescheduled (a daemon replaced)."}[request]
    return command


workflow.command("suspend")(_set("suspended", "suspended"))
workflow.command("start")(_set("running", "started"))
workflow.command("restart")(_set("restarting", "restarted"))
