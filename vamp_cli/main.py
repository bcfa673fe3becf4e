"""The `vamp` command: global options, the Context every command gets, and the command groups.

Exit status: 0 done; 1 the API refused (4xx/5xx: the message names the field and the reason) or a
--wait ended in failure; 2 bad usage (click's); 3 the API cannot be reached.
"""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console

from vamp_cli import __version__
from vamp_cli.client import Api, ApiError
from vamp_cli.config import resolve
from vamp_cli.output import FORMATS, emit

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3


class Context:
    """ctx.obj of every command: the resolved configuration, an Api built on first use, the output format."""

    def __init__(self, host=None, token=None, namespace=None, profile=None, output="table"):
        self.options = {"host": host, "token": token, "namespace": namespace, "profile": profile}
        self.output = output
        self._api: Api | None = None
        self._resolved = None
        out = sys.stdout
        terminal = out.isatty()
        # colour and the terminal's width on a TTY; piped: no colour, wide enough that rows do not fold
        self.console = Console(file=out, width=None if terminal else int(os.environ.get("COLUMNS") or 200),
                               no_color=not terminal or bool(os.environ.get("NO_COLOR")), highlight=False,
                               soft_wrap=False)
        err_terminal = sys.stderr.isatty()
        self.err = Console(stderr=True, no_color=not err_terminal, highlight=False, soft_wrap=not err_terminal)

    @property
    def resolved(self):
        if self._resolved is None:
            try:
                self._resolved = resolve(**self.options)
            except ValueError as e:
                raise click.UsageError(str(e)) from None
        return self._resolved

    @property
    def api(self) -> Api:
        if self._api is None:
            r = self.resolved
            if not r.host:
                raise click.UsageError("no Vamp API configured: --host, VAMP_HOST, `vamp login`, or run the local "
                                       "stack (make run) in this checkout")
            self._api = Api(r.host, r.token, r.namespace)
        return self._api

    def emit(self, data, columns=None, name=None, title=None) -> None:
        emit(self, data, columns, name, title)

    def status(self, message: str) -> None:
        """Vamp's status lines (201/202/204...): the output of a table-format change; with -o
        json|yaml|name on stderr, so stdout stays the data for scripts."""
        click.echo(message, err=self.output != "table")


pass_context = click.make_pass_decorator(Context)


def _set_output(ctx, _param, value):
    if value:
        ctx.find_object(Context).output = value
    return value


def output_option(f):
    """-o/--output on a command too (`vamp list blueprints -o json`), overriding the global one."""
    return click.option("--output", "-o", "output_", type=click.Choice(FORMATS), expose_value=False,
                        callback=_set_output, help="Output format (table|json|yaml|name)")(f)


class VampGroup(click.Group):
    """Every ApiError becomes one plain message on stderr and the exit status (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ApiError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(EXIT_UNREACHABLE if e.status == 0 else EXIT_REFUSED)


@click.group(cls=VampGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--host", metavar="URL", help="The Vamp API, e.g. http://127.0.0.1:8080 [env VAMP_HOST]")
@click.option("--token", metavar="TOKEN", help="Bearer token [env VAMP_TOKEN]")
@click.option("--namespace", "-n", metavar="NS", help="Namespace (default: default) [env VAMP_NAMESPACE]")
@click.option("--profile", metavar="NAME", help="Profile of ~/.vamp [env VAMP_PROFILE]")
@click.option("--output", "-o", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format")
@click.version_option(__version__, "--version", prog_name="vamp")
@click.pass_context
def cli(ctx, host, token, namespace, profile, output):
    """Vamp's command line for vamp-serverless: artifacts, deployments, gateways, events, releases.

    Configuration, first found wins: options, VAMP_HOST/VAMP_TOKEN/VAMP_NAMESPACE, the profile in
    ~/.vamp (vamp login), the local stack of this checkout (make run).
    """
    ctx.obj = Context(host, token, namespace, profile, output)


def main() -> None:
    cli(prog_name="vamp")


# --- command groups ---
from vamp_cli import artifact_commands  # noqa: E402,F401,I001  list describe create update delete deploy ... (clicore)
from vamp_cli import config_commands  # noqa: E402,F401,I001  login info version completion (clicore)
from vamp_cli import release_commands  # noqa: E402,F401,I001  release start|list|status|watch|... (clirelease)
from vamp_cli import token_commands  # noqa: E402,F401,I001  token create|list|revoke (clirelease)
from vamp_cli import workflow_commands  # noqa: E402,F401,I001  workflow list|status|suspend|start|restart (clirelease)
# --- end of command groups ---
