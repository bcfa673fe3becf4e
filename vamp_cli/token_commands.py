"""`vamp token create|list|revoke` (docs/decisions/0022: a role, namespaces no wider than the
creator's; the token itself shown once, only its hash is stored)."""
from __future__ import annotations

import click

from vamp_cli.client import seg
from vamp_cli.main import Context, cli, output_option, pass_context
from vamp_cli.output import field


@cli.group("token")
def token():
    """API tokens: create (shown once), list, revoke."""


@token.command("create")
@click.argument("name")
@click.option("--role", "-r", required=True, help="admin, operator, viewer, agent, ...")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS",
              help="A namespace it may act in (repeat; default: the current namespace)")
@output_option
@pass_context
def create(ctx: Context, name, role, namespaces):
    """Create token NAME; the token is printed once (stdout), never shown again."""
    body = {"name": name, "role": role}
    if namespaces:
        body["namespaces"] = list(namespaces)
    data = ctx.api.post("/tokens", json=body).data or {}
    if ctx.output in ("json", "yaml"):
        ctx.emit(data)
        return
    click.echo(data.get("token"))
    # always on stderr: stdout is the token alone (TOKEN=$(vamp token create ...))
    click.echo(f"token {data.get('name')} created: role {data.get('role')}, namespaces "
               f"{', '.join(data.get('namespaces') or [])} (shown once: store it now)", err=True)


@token.command("list")
@output_option
@pass_context
def list_tokens(ctx: Context):
    """Tokens within your namespaces (never the tokens themselves)."""
    ctx.emit(ctx.api.get("/tokens").data or [],
             [("NAME", field("name")), ("ROLE", field("role")), ("NAMESPACES", field("namespaces")),
              ("WORKFLOW", field("workflow")), ("CREATED", field("created")), ("EXPIRES", field("expires_at"))])


@token.command("revoke")
@click.argument("name")
@pass_context
def revoke(ctx: Context, name):
    """Revoke token NAME: refused from then on."""
    ctx.api.delete(f"/tokens/{seg(name)}")
    ctx.status(f"token {name} revoked")
