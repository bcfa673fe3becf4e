"""Vamp's artifact commands (REFERENCE.md section 6): list, describe/inspect, create, update,
delete/remove, deploy, merge, undeploy, generate, update-gateway, emit, events.

Each command is one or two API calls; what to show is in `views`, how to wait in `waiting`.
"""

from __future__ import annotations

import sys
import time

import click
import yaml

from vamp_cli import views
from vamp_cli.client import ApiError, seg
from vamp_cli.main import EXIT_REFUSED, Context, cli, output_option, pass_context
from vamp_cli.waiting import wait_deployed, wait_undeployed

KINDS = ("breeds", "blueprints", "scales", "slas", "escalations", "routes", "conditions", "rewrites", "workflows",
         "gateways", "templates", "release-policies", "deployments")
SINGULAR = {k[:-1]: k for k in KINDS} | {"release-policy": "release-policies"}
# Vamp's status codes per kind: a change that sets something in motion is accepted (202)
ACCEPTED = {"gateways", "workflows", "deployments"}


def kind_of(value: str) -> str:
    k = value.strip().lower()
    k = SINGULAR.get(k, k)
    if k not in KINDS:
        raise click.BadParameter(f"unknown kind {value!r}: one of {', '.join(KINDS)}", param_hint="KIND")
    return k


class KindType(click.ParamType):
    name = "kind"

    def convert(self, value, param, ctx):
        return kind_of(value)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(k) for k in KINDS if k.startswith(incomplete)]


KIND = KindType()


def complete_name(ctx, param, incomplete):
    """Names of the KIND given before, from the API (as configured; nothing when it does not answer)."""
    from click.shell_completion import CompletionItem

    kind = ctx.params.get("kind")
    root = ctx.find_root()  # completion parses without running the group: build its Context here
    try:
        if not kind:
            return []
        p = root.params
        api = (root.obj or Context(p.get("host"), p.get("token"), p.get("namespace"), p.get("profile"))).api
        items = api.get(f"/{kind}", params={"per_page": 100}, timeout=3).data or []
    except Exception:  # noqa: BLE001 - completion never fails the shell
        return []
    return [CompletionItem(n) for n in (views.name_of(i) for i in items) if n.startswith(incomplete)]


def read_source(file, stdin: bool) -> str:
    """The text of -f FILE (`-` is stdin) or --stdin; piped stdin is taken as Vamp's CLI did."""
    if file and stdin:
        raise click.UsageError("give -f FILE or --stdin, not both")
    if file:
        return file.read()
    if stdin or not sys.stdin.isatty():
        text = sys.stdin.read()
        if text.strip():
            return text
    raise click.UsageError("nothing to send: -f FILE or --stdin (or pipe the YAML in)")


def documents(text: str) -> list:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise click.UsageError(f"the input is not YAML: {e}") from None
    if not docs:
        raise click.UsageError("the input holds no document")
    return docs


def source_options(f):
    f = click.option("--stdin", is_flag=True, help="Read the YAML from stdin")(f)
    f = click.option("-f", "--file", "file", type=click.File("r"), help="A YAML or JSON file (multi-document)")(f)
    return f


def said(ctx, verb: str, status: int, docs) -> None:
    """Vamp's status lines: one per artifact, `201 created`, `202 accepted`, `204 deleted`."""
    items = docs if isinstance(docs, list) else [docs]
    for d in items:
        if isinstance(d, dict):
            ctx.status(f"{d.get('kind', 'artifact')} {d.get('name', '')} {verb} ({status})".replace("  ", " "))


def output_docs(ctx, data) -> None:
    if ctx.output != "table" and data is not None:
        ctx.emit(data, name=views.name_of)


# -- list, describe ----------------------------------------------------------------------------

@cli.command("list")
@click.argument("kind", type=KIND)
@click.option("--page", type=click.IntRange(1), default=None, help="Page (Vamp's paging)")
@click.option("--per-page", type=click.IntRange(1), default=None, help="Items per page (default 30)")
@output_option
@pass_context
def list_(ctx, kind, page, per_page):
    """List artifacts of KIND (deployments, gateways, blueprints, breeds, workflows, ...)."""
    params = {k: v for k, v in (("page", page), ("per_page", per_page)) if v}
    reply = ctx.api.get(f"/{kind}", params=params)
    ctx.emit(reply.data, views.COLUMNS.get(kind, views.NAME_ONLY), views.name_of)
    total = reply.headers.get("X-Total-Count")
    if ctx.output == "table" and total and int(total) > len(reply.data or []):
        ctx.status(f"{len(reply.data)} of {total}: --page {(page or 1) + 1} for more")


@cli.command("describe")
@click.argument("kind", type=KIND)
@click.argument("name", shell_complete=complete_name)
@click.option("--as-blueprint", "--as_blueprint", "as_blueprint", is_flag=True,
              help="A deployment as the blueprint that makes it")
@click.option("--json", "as_json", is_flag=True, help="Same as -o json")
@output_option
@pass_context
def describe(ctx, kind, name, as_blueprint, as_json):
    """Show one artifact: a deployment's services and routes, a gateway's routes, else its source."""
    if as_json:
        ctx.output = "json"
    params = {"as_blueprint": "true"} if as_blueprint else None
    data = ctx.api.get(f"/{kind}/{seg(name)}", params=params).data
    if ctx.output != "table" or as_blueprint:
        ctx.emit(data, name=views.name_of) if ctx.output != "table" else click.echo(yaml.safe_dump(data, sort_keys=False))
    else:
        views.describe(ctx, kind, data)


cli.add_command(describe, "inspect")


# -- create, update, delete ------------------------------------------------------------------------

def _send(ctx, method: str, kind: str | None, name: str | None, text: str, validate_only: bool):
    params = {"validate_only": "true"} if validate_only else None
    if kind is None:  # the root takes a multi-document stream, each document with its kind
        return [ctx.api.request(method, "", data=text.encode(), content_type="application/x-yaml", params=params)]
    docs = documents(text)
    if name is not None:
        if len(docs) != 1:
            raise click.UsageError(f"update {kind} {name}: exactly one document expected, got {len(docs)}")
        return [ctx.api.request(method, f"/{kind}/{seg(name)}", json=docs[0], params=params)]
    return [ctx.api.request(method, f"/{kind}", json=d, params=params) for d in docs]


def _changed(ctx, replies, verb: str, validate_only: bool) -> None:
    data = []
    for r in replies:
        items = r.data if isinstance(r.data, list) else [r.data] if r.data else []
        data.extend(items)
        said(ctx, "valid" if validate_only else ("accepted" if r.status == 202 else verb), r.status, items)
    output_docs(ctx, data)


@cli.command()
@click.argument("kind", type=KIND, required=False)
@source_options
@click.option("--validate-only", is_flag=True, help="Check, write nothing")
@output_option
@pass_context
def create(ctx, kind, file, stdin, validate_only):
    """Create artifacts from YAML: documents with `kind` (through /api/v1), or all of KIND."""
    text = read_source(file, stdin)
    if kind is None and any(isinstance(d, dict) and "kind" not in d for d in documents(text)):
        raise click.UsageError("a document has no `kind`: give KIND (vamp create breed -f ...)")
    _changed(ctx, _send(ctx, "POST", kind, None, text, validate_only), "created", validate_only)


@cli.command()
@click.argument("kind", type=KIND, required=False)
@click.argument("name", required=False)
@source_options
@click.option("--validate-only", is_flag=True, help="Check, write nothing")
@output_option
@pass_context
def update(ctx, kind, name, file, stdin, validate_only):
    """Update (create or replace) artifacts: `update KIND NAME -f FILE`, or documents with `kind`."""
    text = read_source(file, stdin)
    if kind and not name:
        raise click.UsageError("update KIND NAME (or no KIND: documents with `kind` through /api/v1)")
    _changed(ctx, _send(ctx, "PUT", kind, name, text, validate_only), "updated", validate_only)


@cli.command()
@click.argument("kind", type=KIND, required=False)
@click.argument("names", nargs=-1, shell_complete=complete_name)
@source_options
@click.option("--force", is_flag=True, help="A deployment: remove at once, whatever its phase")
@output_option
@pass_context
def delete(ctx, kind, names, file, stdin, force):
    """Delete artifacts: `delete KIND NAME...`, or the documents of -f FILE / --stdin."""
    if kind and names:
        for name in names:
            reply = ctx.api.delete(f"/{kind}/{seg(name)}", params={"force": "true"} if force else None)
            ctx.status(f"{kind} {name} {'accepted' if reply.status == 202 else 'deleted'} ({reply.status})")
        return
    if kind or names:
        raise click.UsageError("delete KIND NAME..., or -f FILE / --stdin")
    text = read_source(file, stdin)
    reply = ctx.api.delete("", data=text.encode(), content_type="application/x-yaml")
    for d in documents(text):
        if isinstance(d, dict):
            ctx.status(f"{d.get('kind')} {d.get('name')} deleted ({reply.status})")


cli.add_command(delete, "remove")


# -- deploy, merge, undeploy ---------------------------------------------------------------------

def wait_options(f):
    f = click.option("--timeout", type=click.FloatRange(1), default=300.0, show_default=True,
                     help="Seconds --wait waits")(f)
    f = click.option("--wait", is_flag=True, help="Wait until the services are done (or gone), printing each "
                     "change; exit 1 with the reason at the first failure (the platform retries on)")(f)
    return f


def _blueprint_body(ctx, blueprint: str | None, file, stdin) -> dict:
    if blueprint and (file or stdin):
        raise click.UsageError("give BLUEPRINT or -f FILE / --stdin, not both")
    if blueprint:
        return {"reference": blueprint}
    docs = documents(read_source(file, stdin))
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise click.UsageError(f"one blueprint expected, got {len(docs)} documents")
    return docs[0]


def _deploy(ctx, blueprint, deployment, file, stdin, wait, timeout, validate_only, verb):
    body = _blueprint_body(ctx, blueprint, file, stdin)
    params = {"validate_only": "true"} if validate_only else None
    if deployment:
        reply = ctx.api.put(f"/deployments/{seg(deployment)}", json=body, params=params)
    else:
        reply = ctx.api.post("/deployments", json=body, params=params)
    name = (reply.data or {}).get("name") or deployment or blueprint
    said(ctx, "valid" if validate_only else verb, reply.status, reply.data or {"kind": "deployments", "name": name})
    if wait and not validate_only:
        if not wait_deployed(ctx, name, timeout):
            ctx_exit(EXIT_REFUSED)
        reply = ctx.api.get(f"/deployments/{seg(name)}")
    output_docs(ctx, reply.data)


def ctx_exit(code: int):
    click.get_current_context().exit(code)


@cli.command()
@click.argument("blueprint", required=False)
@click.argument("deployment", required=False)
@source_options
@wait_options
@click.option("--validate-only", is_flag=True, help="Check, write nothing")
@output_option
@pass_context
def deploy(ctx, blueprint, deployment, file, stdin, wait, timeout, validate_only):
    """Deploy BLUEPRINT (stored) as DEPLOYMENT, or `deploy -f FILE [DEPLOYMENT]`.

    Without DEPLOYMENT the deployment is named after the blueprint.
    """
    if (file or stdin) and blueprint and not deployment:
        blueprint, deployment = None, blueprint  # deploy -f file DEPLOYMENT
    _deploy(ctx, blueprint, deployment, file, stdin, wait, timeout, validate_only, "accepted")


@cli.command()
@click.argument("blueprint", required=False)
@click.argument("deployment", required=False)
@source_options
@wait_options
@output_option
@pass_context
def merge(ctx, blueprint, deployment, file, stdin, wait, timeout):
    """Merge BLUEPRINT (or -f FILE) into DEPLOYMENT: a new version enters with no weight."""
    if (file or stdin) and blueprint and not deployment:
        blueprint, deployment = None, blueprint  # merge -f file DEPLOYMENT
    if not deployment:
        raise click.UsageError("merge BLUEPRINT DEPLOYMENT, or merge -f FILE DEPLOYMENT")
    _deploy(ctx, blueprint, deployment, file, stdin, wait, timeout, False, "merged")


@cli.command()
@click.argument("deployment")
@click.option("--service", "services", multiple=True, metavar="BREED",
              help="Only this service (its breed name, or CLUSTER/BREED); repeatable")
@click.option("--blueprint", metavar="NAME", help="Only what this stored blueprint holds")
@click.option("--force", is_flag=True, help="Remove at once, whatever the phase")
@wait_options
@output_option
@pass_context
def undeploy(ctx, deployment, services, blueprint, force, wait, timeout):
    """Undeploy DEPLOYMENT, or only some of its services (--service, --blueprint)."""
    path = f"/deployments/{seg(deployment)}"
    params = {"force": "true"} if force else None
    if services and blueprint:
        raise click.UsageError("give --service or --blueprint, not both")
    if services:
        body = views.slice_of(ctx.api.get(path, params={"as_blueprint": "true"}).data, services)
    elif blueprint:
        body = {"reference": blueprint}
    else:
        body = None
    reply = ctx.api.delete(path, json=body, params=params)
    ctx.status(f"deployments {deployment} undeploying ({reply.status})")
    if wait and not wait_undeployed(ctx, deployment, services or None, timeout):
        ctx_exit(EXIT_REFUSED)


# -- generate ---------------------------------------------------------------------------------------

@cli.group()
def generate():
    """YAML for a new artifact, to edit or pipe into `vamp create --stdin`."""


def _pairs(values, what: str) -> dict:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r}: NAME=VALUE expected", param_hint=what)
        out[key] = value
    return out


def _start_from(ctx, kind: str, source: str | None, name: str) -> dict:
    if not source:
        return {"kind": kind, "name": name}
    doc = ctx.api.get(f"/{kind}/{seg(source)}").data
    doc = {k: v for k, v in doc.items() if k not in ("metadata",)}
    return {**doc, "kind": kind, "name": name}


def _print_doc(doc: dict) -> None:
    click.echo("---\n" + yaml.safe_dump(doc, sort_keys=False), nl=False)


@generate.command("breed")
@click.argument("name")
@click.option("--source", metavar="BREED", help="Start from this stored breed")
@click.option("--deployable", metavar="DEF", help="e.g. magneticio/sava:1.0.0, or a command line")
@click.option("--type", "deployable_type", default=None, help="container/docker (default) or command")
@click.option("--port", "ports", multiple=True, metavar="NAME=PORT", help="e.g. webport=8080/http; repeatable")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable; repeatable")
@pass_context
def generate_breed(ctx, name, source, deployable, deployable_type, ports, env):
    """A breed."""
    doc = _start_from(ctx, "breeds", source, name)
    if deployable or deployable_type:
        current = doc.get("deployable") if isinstance(doc.get("deployable"), dict) else {}
        doc["deployable"] = {"type": deployable_type or current.get("type") or "container/docker",
                             "definition": deployable or current.get("definition", "")}
    elif "deployable" not in doc:
        raise click.UsageError("--deployable is required (or --source)")
    if ports:
        doc["ports"] = {**(doc.get("ports") or {}), **_pairs(ports, "--port")}
    if env:
        doc["environment_variables"] = {**(doc.get("environment_variables") or {}), **_pairs(env, "--env")}
    _print_doc(doc)


@generate.command("blueprint")
@click.argument("name")
@click.option("--source", metavar="BLUEPRINT", help="Start from this stored blueprint")
@click.option("--cluster", metavar="NAME", help="The cluster the breeds go into (default: NAME)")
@click.option("--breed", "breeds", multiple=True, metavar="BREED", help="A service's breed; repeatable")
@click.option("--scale", metavar="SCALE", help="A stored scale for the new services")
@click.option("--gateway", "gateways", multiple=True, metavar="PORT=CLUSTER/PORT",
              help="e.g. 9050/http=sava/webport; repeatable")
@pass_context
def generate_blueprint(ctx, name, source, cluster, breeds, scale, gateways):
    """A blueprint: breeds into a cluster, gateways to their ports."""
    doc = _start_from(ctx, "blueprints", source, name)
    if breeds:
        clusters = doc.setdefault("clusters", {})
        target = clusters.setdefault(cluster or name, {"services": []})
        for breed in breeds:
            service = {"breed": breed}
            if scale:
                service["scale"] = scale
            target.setdefault("services", []).append(service)
    elif "clusters" not in doc:
        raise click.UsageError("--breed is required (or --source)")
    if gateways:
        doc["gateways"] = {**(doc.get("gateways") or {}), **_pairs(gateways, "--gateway")}
    _print_doc(doc)


# -- gateways ---------------------------------------------------------------------------------------

@cli.command("update-gateway")
@click.argument("gateway")
@click.option("--weights", metavar="R1@70%,R2@30%", help="Every route's weight (they total 100%)")
@click.option("--route", metavar="ROUTE", help="The route --condition/--strength change")
@click.option("--condition", metavar="COND", help="e.g. 'user-agent == Firefox' (empty: none)")
@click.option("--strength", metavar="N%", help="The condition's strength")
@output_option
@pass_context
def update_gateway(ctx, gateway, weights, route, condition, strength):
    """Change a gateway's weights, or one route's condition and strength.

    Routes are named as in `vamp describe gateway` or by their version alone (web:1.0.0).
    The gateway is read and written back with If-Match: a concurrent change is retried on the
    new version, never overwritten.
    """
    if not weights and not route:
        raise click.UsageError("give --weights, or --route with --condition and/or --strength")
    if route and condition is None and strength is None:
        raise click.UsageError("--route needs --condition and/or --strength")
    if (condition is not None or strength is not None) and not route:
        raise click.UsageError("--condition and --strength need --route")
    wanted = views.parse_weights(weights) if weights else {}
    path = f"/gateways/{seg(gateway)}"
    for attempt in range(5):
        current = ctx.api.get(path)
        body = views.changed_gateway(current.data, wanted, route, condition, strength)
        try:
            reply = ctx.api.put(path, json=body, headers={"If-Match": current.headers.get("ETag", "")})
        except ApiError as e:
            if e.status == 409 and attempt < 4:  # changed since we read it: apply ours to the new one
                time.sleep(0.2)
                continue
            raise
        ctx.status(f"gateways {gateway} accepted ({reply.status})")
        if ctx.output != "table":
            ctx.emit(reply.data, name=views.name_of)
        else:
            views.describe(ctx, "gateways", reply.data or body)
        return


# -- events -------------------------------------------------------------------------------------

def _tags(values) -> list[str]:
    return [t for v in values for t in v.split(",") if t.strip()]


@cli.command()
@click.argument("value")
@click.option("--tags", "-t", "tags", multiple=True, required=True, help="Comma-separated tags (a,b); repeatable")
@click.option("--type", "event_type", default=None, help="The event's type (default: event)")
@output_option
@pass_context
def emit(ctx, value, tags, event_type):
    """Publish an event (VALUE is text, or JSON/YAML data)."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    body = {"value": parsed if isinstance(parsed, (dict, list)) else value, "tags": _tags(tags)}
    if event_type:
        body["type"] = event_type
    reply = ctx.api.post("/events", json=body)
    if ctx.output == "table":
        ctx.status(f"event {reply.data.get('id', '')} created ({reply.status})")
    else:
        ctx.emit(reply.data, name=lambda e: e.get("id"))


@cli.command()
@click.option("--tag", "--tags", "tags", multiple=True, help="Only events with every tag (a,b); repeatable")
@click.option("--type", "event_type", help="Only events of this type")
@click.option("--page", type=click.IntRange(1), default=None)
@click.option("--per-page", type=click.IntRange(1), default=None)
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they come (Ctrl-C stops)")
@output_option
@pass_context
def events(ctx, tags, event_type, page, per_page, follow):
    """List events (newest first), or follow them with --follow."""
    params = {"tag": _tags(tags)}
    if event_type:
        params["type"] = event_type
    listed = ctx.api.get("/events", params={**params, **{k: v for k, v in (("page", page), ("per_page", per_page))
                                                         if v}}).data or []
    if not follow:
        ctx.emit(listed, views.EVENT_COLUMNS, lambda e: e.get("id"))
        return
    # one event a line (json lines with -o json), oldest first, then as they come
    for event in reversed(listed):
        views.event_line(ctx, event)
    stream = {**params, **({"after": listed[0]["id"]} if listed else {})}
    try:
        for event in ctx.api.stream(stream):
            views.event_line(ctx, event)
    except KeyboardInterrupt:
        pass
