"""login, info, version, completion."""

from __future__ import annotations

import os

import click

from vamp_cli import __version__, config
from vamp_cli.client import Api, ApiError
from vamp_cli.main import EXIT_REFUSED, EXIT_UNREACHABLE, cli, output_option, pass_context


@cli.command()
@click.option("--host", "login_host", metavar="URL", help="The API (default: the one resolved now)")
@click.option("--token", "login_token", metavar="TOKEN", help="The token (default: prompted, hidden)")
@click.option("--namespace", "login_namespace", metavar="NS", help="The profile's namespace")
@click.option("--profile", "login_profile", metavar="NAME", help="The profile to write (default: the current one)")
@pass_context
def login(ctx, login_host, login_token, login_namespace, login_profile):
    """Check a host and token against /api/v1/info, then keep them as a profile in ~/.vamp (0600)."""
    resolved = ctx.resolved
    host = login_host or resolved.host
    if not host:
        host = click.prompt("Vamp API (URL)")
    token = login_token or (resolved.token if not login_host or resolved.host == login_host else None)
    if not token:
        token = click.prompt("Token", hide_input=True)
    namespace = login_namespace or ctx.options.get("namespace") or "default"
    profile = login_profile or ctx.options.get("profile") or os.environ.get("VAMP_PROFILE") or resolved.profile
    try:
        info = Api(host, token, namespace).get("/info").data or {}
    except ApiError as e:
        click.echo(f"Error: not logged in: {e}", err=True)
        ctx_exit = click.get_current_context().exit
        ctx_exit(EXIT_UNREACHABLE if e.status == 0 else EXIT_REFUSED)
    try:
        path = config.save_profile(profile, {"host": host, "token": token, "namespace": namespace})
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot write the profile: {e}") from None
    auth = info.get("auth") or {}
    who = f" as {auth.get('principal')} ({auth.get('role')})" if auth.get("principal") else ""
    click.echo(f"logged in to {host}{who}; profile {profile} in {path}")


@cli.command()
@output_option
@pass_context
def info(ctx):
    """The API's info: version, namespace, persistence, who you are."""
    data = ctx.api.get("/info").data
    if ctx.output == "table":
        auth = data.get("auth") or {}
        rows = [("message", data.get("message")), ("host", ctx.api.host), ("version", data.get("version")),
                ("namespace", data.get("namespace")), ("running since", data.get("running_since")),
                ("persistence", (data.get("persistence") or {}).get("type")),
                ("principal", auth.get("principal")), ("role", auth.get("role")),
                ("namespaces", ", ".join(auth.get("namespaces") or []))]
        for k, v in rows:
            if v:
                ctx.console.print(f"[bold]{k:<14}[/bold]{v}", highlight=False)
    else:
        ctx.emit(data, name=lambda d: d.get("version"))


@cli.command()
@output_option
@pass_context
def version(ctx):
    """The CLI's version, and the API's when it answers."""
    server = None
    try:
        server = ctx.api.get("/info").data.get("version")
    except (ApiError, click.UsageError) as e:
        server = f"unknown ({str(e).splitlines()[0]})"
    data = {"cli": __version__, "api": server}
    if ctx.output == "table":
        click.echo(f"CLI version: {__version__}\nAPI version: {server}")
    else:
        ctx.emit(data, name=lambda d: d["cli"])


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the completion script: `eval "$(vamp completion bash)"` (zsh likewise;
    fish: `vamp completion fish | source`)."""
    from click.shell_completion import get_completion_class

    comp = get_completion_class(shell)(cli, {}, "vamp", "_VAMP_COMPLETE")
    click.echo(comp.source())
