"""What the commands show: the list columns per kind (Vamp's), the describe tables, and the pure
edits behind `update-gateway` and `undeploy --service` (no I/O here: tested as functions)."""

from __future__ import annotations

import json
import re

import click
import yaml

from vamp_cli.output import cell, field, table


def name_of(item) -> str:
    return item.get("name", "") if isinstance(item, dict) else str(item)


def services(deployment: dict):
    """(cluster, service) of a deployment, in order."""
    for cname, cluster in (deployment.get("clusters") or {}).items():
        for s in cluster.get("services") or []:
            yield cname, s


def breed_name(service: dict) -> str:
    b = service.get("breed")
    if isinstance(b, dict):
        return b.get("name") or b.get("reference") or ""
    return str(b or "")


def phase(service: dict) -> str:
    return ((service.get("status") or {}).get("phase") or {}).get("name", "")


def deployment_status(d: dict) -> str:
    """One word for the list: done, failed, or the phases still under way (updating 1/2)."""
    all_ = list(services(d))
    if not all_:
        return ""
    phases = [phase(s) for _, s in all_]
    undeploying = any((s.get("status") or {}).get("intention") == "undeployment" for _, s in all_)
    if "failed" in phases:
        word = "failed"
    elif all(p == "done" for p in phases):
        return "undeploying" if undeploying else "deployed"
    else:
        word = "undeploying" if undeploying else "deploying"
    return f"{word} {phases.count('done')}/{len(phases)}"


def _deployable(b) -> str:
    d = b.get("deployable") if isinstance(b, dict) else None
    if isinstance(d, dict):
        return d.get("definition", "")
    return cell(d)


def gateway_type(g: dict) -> str:
    # a deployment's cluster gateway is named deployment/cluster/port: internal; the rest external
    return "internal" if name_of(g).count("/") >= 2 else "external"


def route_weights(routes: dict | None) -> str:
    return ", ".join(f"{short_route(r)}@{v.get('weight', '-')}" for r, v in (routes or {}).items()
                     if isinstance(v, dict))


def _schedule(w: dict) -> str:
    s = w.get("schedule")
    if isinstance(s, dict):
        if "time" in s:
            return f"time {cell((s['time'] or {}).get('period'))}"
        if "event" in s:
            return f"event {cell((s['event'] or {}).get('tags'))}"
        return cell(s)
    return cell(s) or "daemon"


NAME_ONLY = [("NAME", name_of)]
COLUMNS = {
    "deployments": [("NAME", name_of), ("CLUSTERS", lambda d: list((d.get("clusters") or {}).keys())),
                    ("PORTS", lambda d: list((d.get("gateways") or {}).keys())), ("STATUS", deployment_status)],
    "gateways": [("NAME", name_of), ("PORT", field("port")), ("STICKY", field("sticky", "-")),
                 ("TYPE", gateway_type), ("ROUTES", lambda g: route_weights(g.get("routes"))),
                 ("DEPLOYED", field("deployed"))],
    "blueprints": [("NAME", name_of), ("CLUSTERS", lambda b: list((b.get("clusters") or {}).keys())),
                   ("ENDPOINTS", lambda b: list((b.get("gateways") or {}).keys()))],
    "breeds": [("NAME", name_of), ("DEPLOYABLE", _deployable)],
    "workflows": [("NAME", name_of), ("SCHEDULE", _schedule), ("STATUS", field("status", "starting")),
                  ("BREED", lambda w: breed_name(w))],
    "scales": [("NAME", name_of), ("CPU", field("cpu")), ("MEMORY", field("memory")),
               ("INSTANCES", field("instances"))],
    "slas": [("NAME", name_of), ("TYPE", field("type"))],
    "escalations": [("NAME", name_of), ("TYPE", field("type"))],
    "conditions": [("NAME", name_of), ("CONDITION", field("condition"))],
}
EVENT_COLUMNS = [("TIMESTAMP", field("timestamp")), ("TYPE", field("type")), ("TAGS", field("tags")),
                 ("VALUE", lambda e: cell(e.get("value")) if not isinstance(e.get("value"), (dict, list))
                  else json.dumps(e.get("value"), sort_keys=True))]


def event_line(ctx, event: dict) -> None:
    if ctx.output == "json":
        click.echo(json.dumps(event, sort_keys=True))
    elif ctx.output == "yaml":
        click.echo("---\n" + yaml.safe_dump(event, sort_keys=True), nl=False)
    elif ctx.output == "name":
        click.echo(event.get("id", ""))
    else:
        ctx.console.print(" ".join(cell(get(event)) for _, get in EVENT_COLUMNS), markup=False)


# -- describe -----------------------------------------------------------------------------------

def _condition(route: dict) -> str:
    c = route.get("condition")
    if isinstance(c, dict):
        return c.get("condition") or c.get("reference") or ""
    return cell(c)


def _instances(s: dict) -> str:
    inst = s.get("instances") or []
    healthy = sum(1 for i in inst if i.get("healthy"))
    want = (s.get("scale") or {}).get("instances", "?") if isinstance(s.get("scale"), dict) else "?"
    return f"{healthy}/{want}"


def describe(ctx, kind: str, data: dict) -> None:
    console = ctx.console
    if kind == "deployments":
        console.print(f"[bold]deployment[/bold] {name_of(data)}  ports: {cell(list((data.get('gateways') or {})))}")
        rows = list(services(data))
        console.print(table([
            ("CLUSTER", lambda r: r[0]), ("SERVICE", lambda r: breed_name(r[1])),
            ("DEPLOYABLE", lambda r: _deployable(r[1].get("breed"))),
            ("INSTANCES", lambda r: _instances(r[1])),
            ("INTENTION", lambda r: (r[1].get("status") or {}).get("intention", "")),
            ("PHASE", lambda r: phase(r[1])),
            ("NOTIFICATION", lambda r: ((r[1].get("status") or {}).get("phase") or {}).get("notification", "")),
        ], rows, "services"))
        routes = [(c, port, r, v) for c, cl in (data.get("clusters") or {}).items()
                  for port, g in (cl.get("gateways") or {}).items()
                  for r, v in ((g or {}).get("routes") or {}).items()]
        console.print(table([
            ("CLUSTER", lambda r: r[0]), ("PORT", lambda r: r[1]), ("ROUTE", lambda r: r[2]),
            ("WEIGHT", lambda r: r[3].get("weight", "")), ("CONDITION", lambda r: _condition(r[3])),
            ("STRENGTH", lambda r: r[3].get("condition_strength", "")),
        ], routes, "routes"))
    elif kind == "gateways":
        console.print(f"[bold]gateway[/bold] {name_of(data)}  port: {data.get('port', '')}  "
                      f"sticky: {data.get('sticky') or '-'}  type: {gateway_type(data)}  "
                      f"deployed: {cell(data.get('deployed'))}")
        console.print(table([
            ("ROUTE", lambda r: r[0]), ("WEIGHT", lambda r: r[1].get("weight", "")),
            ("CONDITION", lambda r: _condition(r[1])), ("STRENGTH", lambda r: r[1].get("condition_strength", "")),
        ], list((data.get("routes") or {}).items()), "routes"))
        nodes = data.get("nodes")
        if isinstance(nodes, dict) and nodes.get("nodes"):
            console.print(table([("NODE", field("node")), ("GENERATION", field("generation")),
                                 ("STATUS", field("status", "starting")), ("LAST SEEN", field("last_seen"))],
                                nodes["nodes"], "nodes"))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


# -- update-gateway and undeploy --service: pure edits ------------------------------------------

_WEIGHT = re.compile(r"^(\d{1,3}(?:\.\d{1,3})?)%?$")


def parse_weights(text: str) -> dict[str, str]:
    """`a@70%,b@30%` -> {a: "70%", b: "30%"}; route names may hold `/`, `:` and `@` (split at the last @)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        route, sep, weight = part.rpartition("@")
        m = _WEIGHT.match(weight.strip())
        if not sep or not route or not m:
            raise click.BadParameter(f"{part!r}: ROUTE@N% expected", param_hint="--weights")
        out[route.strip()] = f"{m.group(1)}%"
    return out


def short_route(key: str) -> str:
    """A route key as a user names it: deployment/cluster/web:1.0.0/port -> web:1.0.0."""
    parts = key.split("/")
    return parts[2] if len(parts) == 4 else key


def route_key(routes: dict, name: str) -> str:
    if name in routes:
        return name
    found = [k for k in routes if short_route(k) == name or name in k.split("/")]
    if len(found) != 1:
        raise click.BadParameter(f"{name!r} {'matches ' + ', '.join(found) if found else 'is not a route'}"
                                 f" (routes: {', '.join(routes) or 'none'})", param_hint="route")
    return found[0]


_READ_ONLY = ("nodes", "kind", "deployed")


def changed_gateway(gateway: dict, weights: dict[str, str], route: str | None, condition: str | None,
                    strength: str | None) -> dict:
    body = {k: v for k, v in gateway.items() if k not in _READ_ONLY}
    routes = {k: dict(v) for k, v in (body.get("routes") or {}).items()}
    if weights:
        keys = {route_key(routes, r): w for r, w in weights.items()}
        missing = [short_route(k) for k in routes if k not in keys]
        if missing:
            raise click.BadParameter(f"give every route a weight; missing: {', '.join(missing)}", param_hint="--weights")
        for k, w in keys.items():
            routes[k]["weight"] = w
    if route:
        k = route_key(routes, route)
        if condition is not None:
            if condition.strip():
                routes[k]["condition"] = {"condition": condition}
            else:
                routes[k].pop("condition", None)
        if strength is not None:
            m = _WEIGHT.match(strength.strip())
            if not m:
                raise click.BadParameter(f"{strength!r}: N% expected", param_hint="--strength")
            routes[k]["condition_strength"] = f"{m.group(1)}%"
    body["routes"] = routes
    return body


def slice_of(blueprint: dict, wanted: tuple[str, ...]) -> dict:
    """The part of a deployment's blueprint holding the services named (BREED or CLUSTER/BREED)."""
    clusters: dict = {}
    found = set()
    for cname, cluster in (blueprint.get("clusters") or {}).items():
        picked = []
        for s in cluster.get("services") or []:
            b = breed_name(s)
            hit = next((w for w in wanted if w in (b, f"{cname}/{b}")), None)
            if hit:
                found.add(hit)
                picked.append({"breed": {"reference": b}})
        if picked:
            clusters[cname] = {"services": picked}
    missing = [w for w in wanted if w not in found]
    if missing:
        raise click.BadParameter(f"no service {', '.join(missing)} in the deployment", param_hint="--service")
    return {"name": blueprint.get("name"), "clusters": clusters}
