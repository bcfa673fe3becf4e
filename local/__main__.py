"""`python -m local run|demo|token ...`: the local stack's command line."""
from __future__ import annotations

import logging
import signal
import threading

import click

from local.stack import LocalStack


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the stack does.")
def cli(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("vamp.local").setLevel(logging.INFO)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@cli.command()
def run() -> None:
    """Start the local stack and serve until Ctrl-C."""
    with LocalStack() as stack:
        click.echo(f"Vamp API  {stack.api_url}/api/v1")
        click.echo(f"token     {stack.token}   (also in {stack.state_dir / 'token'})")
        click.echo(f"try       curl -H 'Authorization: Bearer {stack.token}' {stack.api_url}/api/v1/info")
        click.echo("Ctrl-C stops everything.")
        _wait_for_signal()
        click.echo("stopping ...")


@cli.command()
def demo() -> None:
    """Start the stack, walk through Vamp's sample artifacts, stop."""
    from local.demo import walkthrough

    with LocalStack() as stack:
        ok = walkthrough(stack.api_url, stack.token)
    raise SystemExit(0 if ok else 1)


@cli.group()
def token() -> None:
    """API tokens (stored hashed) in the local stack's table."""


def _offline_stack() -> LocalStack:
    # Token commands need the table but not the API: start moto with the saved state only.
    stack = LocalStack()
    stack._start_api = lambda: None  # type: ignore[method-assign]
    return stack


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    from chalicelib.api.auth import TokenStore

    with _offline_stack():
        value, _ = TokenStore().create(name)
        click.echo(value)


@token.command("list")
def token_list() -> None:
    from chalicelib.api.auth import TokenStore

    with _offline_stack():
        for p in TokenStore().list():
            click.echo(f"{p.name}\t{p.created}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    from chalicelib.api.auth import TokenStore

    with _offline_stack():
        TokenStore().revoke(name)
        click.echo(f"revoked {name}")


if __name__ == "__main__":
    cli()
