"""`python -m local run|demo|token ...`: the local stack's command line."""
from __future__ import annotations

import logging
import signal
import threading

import click

from chalicelib.store.tokens import ROLES
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
    try:
        stack = LocalStack().start()
    except RuntimeError as e:  # another stack on this state dir, etcd or the agent would not start
        raise click.ClickException(str(e)) from None
    try:
        click.echo(f"Vamp API  {stack.api_url}/api/v1")
        click.echo(f"token     {stack.token}   (also in {stack.state_dir / 'token'})")
        click.echo("try       vamp info      (in this checkout `vamp` finds the stack by itself: .vamp/api, .vamp/token)")
        click.echo(f"or        curl -H 'Authorization: Bearer {stack.token}' {stack.api_url}/api/v1/info")
        if stack.agent:
            click.echo(f"gateways  etcd {stack.etcd_endpoint}, agent {stack.agent.url}/healthz, HAProxy on the "
                       f"gateways' ports, virtual hosts on 127.0.0.1:{stack.virtual_hosts_port}")
        click.echo("Ctrl-C stops everything.")
        _wait_for_signal()
        click.echo("stopping ...")
    finally:
        stack.stop()


@cli.command()
@click.option("--skip-walkthrough", is_flag=True, help="Only the canary releases.")
def demo(skip_walkthrough: bool) -> None:
    """Start the stack, walk through the API, run two canary releases through HAProxy, scale a
    cluster out and back in by its SLA, stop."""
    import os
    import time

    from chalicelib.settings import settings
    from local.demo import walkthrough
    from local.demo_microscaling import run_microscaling_demo
    from local.demo_release import demo_port, run_release_demo
    from local.stack import free_port

    started = time.monotonic()
    # The demo's clock: metric windows of 2 s (the agent's default is 10 s) and synchronisation
    # passes every second, so releases with 4 s intervals judge about two windows per check.
    os.environ.setdefault("VAMP_AGENT_AGGREGATE_INTERVAL", "2")
    os.environ.setdefault("VAMP_LOCAL_SCHEDULE_SECONDS", "1")
    if logging.getLogger().level > logging.INFO:  # without -v: the demo prints what matters
        logging.getLogger("vamp.local").setLevel(logging.WARNING)
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)  # a rollback ends in a Fail state
    signal.signal(signal.SIGTERM, _exit_on_signal)  # finally blocks run: traffic, processes, stack stop
    # A stack of its own, fresh every run (as from a fresh clone): `make run`'s state in .vamp/
    # is left alone, and nothing an earlier demo stored slows this one down. Logs stay in
    # .vamp/demo/ until the next run.
    state_dir = LocalStack().state_dir / "demo"
    api_port = int(os.environ.get("VAMP_PORT") or free_port())
    try:
        fresh = LocalStack(quiet=True, persist=False, state_dir=state_dir, api_port=api_port).reset()
    except RuntimeError as e:  # another demo runs on .vamp/demo
        raise click.ClickException(str(e)) from None
    ok = False
    try:
        with fresh as stack:
            agent = stack.agent.url if stack.agent else None
            # The demo calls as an operator of its namespace, as a team would; not as the admin.
            operator = stack.mint_token("demo", "operator", [settings().default_namespace])
            ok = skip_walkthrough or walkthrough(stack.api_url, operator, agent)
            if agent is None:
                click.echo("the canary releases need etcd and the gateway agent (HAProxy)", err=True)
                ok = False
            elif ok:
                ok, _ = run_release_demo(stack.api_url, operator, agent, demo_port())
                if ok:  # the last act, on the same stack: an SLA scales a cluster out and back in
                    ok, _ = run_microscaling_demo(stack.api_url, operator, agent, demo_port())
    except (KeyboardInterrupt, SystemExit):
        click.echo("demo interrupted: stopped its traffic, its processes and the stack", err=True)
        raise
    finally:
        from chalicelib.drivers import local as local_driver

        local_driver.stop_all()  # whatever the local driver still runs: nothing outlives the demo
    click.echo(f"demo {'succeeded' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    raise SystemExit(0 if ok else 1)


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


@cli.group()
@click.option("--aws", "on_aws", is_flag=True,
              help="Use the table on AWS itself (credentials and region from the environment).")
@click.pass_context
def token(ctx: click.Context, on_aws: bool) -> None:
    """API tokens (stored hashed), each with a role and namespaces: through the running stack's
    API (as its bootstrap admin), offline on its saved state, or (--aws) in the deployed table
    (how the first admin of a deployment is made: create NAME --role admin --namespaces '*')."""
    ctx.obj = {"aws": on_aws}


class _Tokens:
    """Talks to the running local API when there is one (so its in-memory table sees the change),
    else starts moto alone on the saved state and writes there."""

    def __init__(self, on_aws: bool = False):
        self.on_aws = on_aws

    def __enter__(self):
        stack = LocalStack()
        self.api, self.stack = None, None
        if self.on_aws:
            from chalicelib.store.tokens import DynamoDBTokenStore

            self.store = DynamoDBTokenStore()
            return self
        token_file = stack.state_dir / "token"
        if token_file.exists():
            import requests

            self.session = requests.Session()
            self.session.headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"
            try:
                if self.session.get(f"{stack.api_url}/api/v1/info", timeout=2).ok:
                    self.api = f"{stack.api_url}/api/v1/tokens"
            except requests.RequestException:
                pass
        if self.api is None:
            stack.serve = False
            try:
                self.stack = stack.start()
            except RuntimeError as e:  # a stack holds the state dir but its API did not answer
                raise click.ClickException(str(e)) from None
            from chalicelib.store.tokens import DynamoDBTokenStore

            self.store = DynamoDBTokenStore()
        return self

    def __exit__(self, *exc):
        if self.stack is not None:
            self.stack.stop()

    def _checked(self, response):
        if not response.ok:
            raise click.ClickException(response.text)
        return response

    def create(self, name: str, role: str, namespaces: list[str]) -> dict:
        if self.api:
            body = {"name": name, "role": role, "namespaces": namespaces}
            return self._checked(self.session.post(self.api, json=body)).json()
        from chalicelib.api.authorization import checked_grant

        role, scope = checked_grant(role, namespaces)  # the API's checks, offline too
        token, entry = self.store.create(name, role=role, namespaces=scope)
        return {"name": entry.name, "role": entry.role, "namespaces": list(entry.namespaces), "token": token}

    def list(self) -> list[dict]:
        if self.api:
            return self._checked(self.session.get(self.api)).json()
        return [{"name": p.name, "role": p.role, "namespaces": list(p.namespaces), "created": p.created}
                for p in self.store.list()]

    def revoke(self, name: str) -> None:
        if self.api:
            self._checked(self.session.delete(f"{self.api}/{name}"))
        else:
            self.store.revoke(name)


def _namespaces(_ctx, _param, value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


@token.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="reader: reads; operator: + writes; admin: + tokens; agent: a gateway agent's telemetry.")
@click.option("--namespaces", required=True, callback=_namespaces,
              help="Comma-separated namespaces the token may touch, or '*' for all.")
@click.pass_obj
def token_create(obj: dict, name: str, role: str, namespaces: list[str]) -> None:
    """Create a token (printed once; only its hash is stored)."""
    from chalicelib.errors import VampError

    with _Tokens(obj["aws"]) as tokens:
        try:
            created = tokens.create(name, role, namespaces)
        except VampError as e:
            raise click.ClickException(str(e)) from None
        click.echo(created["token"])


@token.command("list")
@click.pass_obj
def token_list(obj: dict) -> None:
    with _Tokens(obj["aws"]) as tokens:
        for t in tokens.list():
            click.echo(f"{t['name']}\t{t['role']}\t{','.join(t['namespaces'])}\t{t['created']}")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(obj: dict, name: str) -> None:
    with _Tokens(obj["aws"]) as tokens:
        tokens.revoke(name)
        click.echo(f"revoked {name}")


if __name__ == "__main__":
    cli()
