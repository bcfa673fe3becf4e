"""Starts and stops the parts of the local stack in one process, on loopback only.

Faults (docs/decisions/0020-local-stack-survives-faults.md): a stack holds `<state dir>/stack.lock`
while it runs (a second stack on the same state dir is refused; the kernel drops the lock when
the process dies, however it dies). Before anything starts, what a crashed run left (by its
records in `<state dir>/run`, the local driver's in `<state dir>/services/run`) is stopped. The
children die with the stack (a parent-death signal), and a guard process stops their process
groups when the stack is gone. The table is journaled as it is written (local/state.py), and
releases that ran when the stack stopped are ended with the reason on restart (local/recovery.py).
"""
from __future__ import annotations

import fcntl
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from agent.haproxy import PIDFILE
from chalicelib.drivers import local as local_driver
from chalicelib.drivers.processes import stop_haproxy, stop_recorded
from local import recovery
from local.schedules import Scheduler

log = logging.getLogger("vamp.local")

ROOT = Path(__file__).resolve().parent.parent
API_BACKLOG = 256  # connections the local API queues while its threads are busy
BOOTSTRAP_TOKEN = "local"  # the operator's VAMP_API_TOKEN, or the one kept in the state dir
AGENT_TOKEN, AGENT_NAMESPACE = "local-agent", "default"  # the gateway agent's token: an agent of its namespace
PUBLISHER_FUNCTION = "vamp-local-gateway_publish"  # VAMP_GATEWAY_PUBLISHER_FUNCTION, as the stage "local" would name it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_in(first: int, last: int, tries: int = 200) -> int:
    """A loopback port free now in [first, last], picked at random (below the ephemeral range, a
    port no outgoing connection holds: gateways bind there)."""
    for _ in range(tries):
        port = random.randint(first, last)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port in {first}-{last}")


def _check_api_token() -> None:
    from chalicelib.store.tokens import MIN_TOKEN_LENGTH

    given = os.environ.get("VAMP_API_TOKEN")
    if given and len(given) < MIN_TOKEN_LENGTH:  # empty: unset, the stack makes one
        raise RuntimeError(f"VAMP_API_TOKEN must be at least {MIN_TOKEN_LENGTH} characters (it is the admin of "
                           "every namespace); unset it and the stack makes one")


@dataclass
class LocalStack:
    """moto (unless an endpoint such as LocalStack's is given) and the Chalice API, in threads."""

    api_port: int = int(os.environ.get("VAMP_PORT", "8080"))
    state_dir: Path = Path(os.environ.get("VAMP_STATE_DIR", ROOT / ".vamp"))
    persist: bool = True
    token: str | None = None  # the bootstrap admin of every namespace
    agent_token: str | None = None  # the gateway agent's: role agent, its namespace only
    endpoint: str | None = None
    quiet: bool = False  # no access log lines on stderr (the demo prints its own)
    serve: bool = True  # the API (off for tools that only want the table, e.g. token commands)
    gateways: bool = True  # etcd and the gateway agent (with HAProxy) too, when serving
    etcd_endpoint: str | None = None
    virtual_hosts_port: int | None = None
    agent: object = None
    scheduler: object = None
    journal: object = None
    etcd: object = None
    _stops: list = field(default_factory=list)
    _lock_file: object = None
    _guard: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def haproxy_pidfile(self) -> Path:
        return self.state_dir / "agent" / PIDFILE

    @property
    def run_dirs(self) -> list[Path]:
        """Where the stack's processes have their records: its own, the local driver's."""
        return [self.state_dir / "run", self.state_dir / "services" / "run"]

    def start(self) -> "LocalStack":
        try:
            return self._start()
        except BaseException:
            self.stop()  # what did start stops; the lock goes
            raise

    def _start(self) -> "LocalStack":
        _check_api_token()  # before anything starts: a bad token is the operator's to fix, in one line
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_state_dir()
        self._stop_leftovers()
        os.environ["VAMP_LOCAL_WORK_DIR"] = str(self.state_dir / "services")
        os.environ.setdefault("VAMP_API_URL", self.api_url)  # workflows' script runs: VAMP_URL (0039)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        # Gateway ports below Linux's ephemeral range (32768-60999, where Vamp's 40000-45000 sits):
        # on one machine, a port the stack's own outgoing connections hold cannot be bound by HAProxy.
        os.environ.setdefault("VAMP_GATEWAY_PORTS", "20000-24999")
        # The demo's backends and webhooks are on loopback: admitted here, refused by default
        # elsewhere (docs/decisions/0025-egress-policy.md).
        os.environ.setdefault("VAMP_EGRESS_ALLOW", "127.0.0.0/8,::1")
        self.endpoint = os.environ.get("VAMP_AWS_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        if self.endpoint:
            log.info("using the AWS endpoint %s (no embedded moto)", self.endpoint)
            self.persist = False  # LocalStack or AWS keep their own state
        else:
            self._start_moto()
        os.environ["VAMP_AWS_ENDPOINT"] = self.endpoint
        from chalicelib.store import table

        table.reset_clients()
        table.ensure_tables()  # the table and the event store's own
        if self.serve and getattr(self, "_embedded_moto", False) and not os.environ.get("VAMP_RELEASE_STATE_MACHINE"):
            self._start_releases()
        if self.persist:
            self._restore()
        self._bootstrap_token()
        if self.serve:
            self._warm_dsl()
            chalice_app = self._start_api()
            if self.gateways:
                self._start_gateways()
            if getattr(self, "_embedded_moto", False):  # LocalStack or AWS run their executions on
                finisher = recovery.Finisher()
                for line in finisher.start():
                    log.warning("%s", line)
                self._stops.append(finisher.stop)
            self.scheduler = Scheduler(chalice_app)
            self.scheduler.start()
            self._stops.append(self.scheduler.stop)
            # --- workflows (0039): their time schedules, fired through the app's workflow_run
            import app as vamp_app
            from local.workflow_schedules import WorkflowTimer

            self.workflow_timer = WorkflowTimer(vamp_app.workflow_run)
            self.workflow_timer.start()
            self._stops.append(self.workflow_timer.stop)
        return self

    def reset(self) -> "LocalStack":
        """Start from an empty state dir (the demo, as from a fresh clone): taken, what a crashed
        run left stopped, everything else in it removed. Refused while another stack runs on it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_state_dir()
        stop_recorded(*self.run_dirs)
        stop_haproxy(self.haproxy_pidfile)
        for entry in self.state_dir.iterdir():
            if entry.name == "stack.lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return self

    def _lock_state_dir(self) -> None:
        """One stack per state dir: its etcd data, agent work dir and journal are its own."""
        if self._lock_file is not None:  # taken already (reset)
            return
        path = self.state_dir / "stack.lock"
        lock = open(path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise RuntimeError(f"another local stack runs on {self.state_dir} (pid {holder}); stop it first, "
                               "or give this one its own VAMP_STATE_DIR") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock_file = lock

    def _stop_leftovers(self) -> None:
        """Stop what a crashed run of this state dir left running, then watch over this run's."""
        for record in stop_recorded(*self.run_dirs):
            log.warning("stopped %s (pid %d) left by a crashed run", record.name, record.pid)
        if stop_haproxy(self.haproxy_pidfile):
            log.warning("stopped the HAProxy a crashed run left")
        # The guard: reads its stdin until this process is gone, then stops every recorded group
        # and the agent's HAProxy (which outlives the agent on purpose: agent/haproxy.py).
        self._guard = subprocess.Popen([sys.executable, "-m", "local.guard", *map(str, self.run_dirs),
                                        "--haproxy", str(self.haproxy_pidfile)],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT,
                                       start_new_session=True)

    def _restore(self) -> None:
        # moto's modules (local.state wraps them): loaded only by a stack that embeds moto.
        from chalicelib.store import table
        from local import state

        journal = state.Journal(self.state_dir / "state", unjournaled=frozenset({table.events_table_name()}))
        items, lines = journal.restore(table.table_name())
        journal.attach()
        self.journal = journal
        self._stops.append(journal.close)
        log.info("restored %d items from %s (%d journal lines replayed)", items, journal.directory, lines)

    @staticmethod
    def _warm_dsl() -> None:
        """Build every DSL model now: pydantic builds deferred models on first use and not
        thread-safely, and the local API serves requests on threads (Lambda does not)."""
        from chalicelib import dsl

        dsl.build_models()

    def _start_gateways(self) -> None:
        """etcd, then the gateway agent with its HAProxy; the API publishes gateways to etcd."""
        from chalicelib.settings import settings
        from local.agent import LocalAgent
        from local.etcd import LocalEtcd

        run_dir = self.state_dir / "run"
        etcd = LocalEtcd(self.state_dir / "etcd", free_port(), free_port(), self.state_dir / "etcd.log",
                         run_dir=run_dir).start()
        self._stops.append(etcd.stop)
        self.etcd = etcd  # the fault tests stop and start it
        os.environ["VAMP_ETCD_ENDPOINT"] = etcd.endpoint
        os.environ.setdefault("VAMP_VIRTUAL_HOSTS_PORT", str(free_port()))
        if getattr(self, "_embedded_moto", False):
            # As on AWS (docs/decisions/0036): the API, the tasks and the scheduled pass publish
            # through the publisher function, invoked on moto's Lambda and delivered to app.py's
            # gateway_publish in this process, which alone talks to etcd. (With LocalStack or AWS as
            # the endpoint no such function exists there: the stack reaches etcd directly.)
            from local import stepfunctions

            stepfunctions.install()
            stepfunctions.configure(self.endpoint)
            os.environ["VAMP_GATEWAY_PUBLISHER_FUNCTION"] = PUBLISHER_FUNCTION
        settings.cache_clear()
        self.etcd_endpoint = etcd.endpoint
        self.virtual_hosts_port = int(os.environ["VAMP_VIRTUAL_HOSTS_PORT"])
        # The agent's own token: an agent of its namespace, never the bootstrap admin (0022).
        self.agent_token = self.mint_token(AGENT_TOKEN, "agent", [AGENT_NAMESPACE], replace=True)
        self.agent = LocalAgent(etcd_endpoint=etcd.endpoint, api_url=self.api_url, api_token=self.agent_token,
                                namespace=AGENT_NAMESPACE, work_dir=self.state_dir / "agent", listen_port=free_port(),
                                log_file=self.state_dir / "agent.log", run_dir=run_dir).start()
        self._stops.append(self.agent.stop)

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from local import moto_speedups

        moto_speedups.apply()
        # Fake credentials: nothing here may ever reach real AWS.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ[key] = "local"
        os.environ.pop("AWS_PROFILE", None)
        port = int(os.environ.get("VAMP_MOTO_PORT") or free_port())
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        os.environ["MOTO_PORT"] = str(port)
        self.endpoint = f"http://127.0.0.1:{port}"
        self._stops.append(server.stop)
        self._embedded_moto = True
        log.info("moto server on %s", self.endpoint)

    def _start_releases(self) -> None:
        """The release state machine on moto's interpreter, its tasks delivered in-process
        (embedded moto; with LocalStack or AWS, deploy infra/release.asl.json there)."""
        from local import stepfunctions

        arn = stepfunctions.setup(self.endpoint)
        log.info("release state machine %s", arn)
        # --- automations (0041): what is put on moto's default bus reaches app.py's on_cw_event
        # handlers in this process; the control plane's own events go on a bus of the stack's
        if getattr(self, "_embedded_moto", False):
            from local import eventbridge

            log.info("event bus %s, delivered in-process", eventbridge.setup(self.endpoint))

    def _bootstrap_token(self) -> None:
        """The stack's first token: the admin of every namespace (VAMP_API_TOKEN, or the one
        kept in <state dir>/token, or a new one). A token other than the restored one replaces it:
        one bootstrap admin, the one the operator gave last."""
        from chalicelib.store.tokens import ADMIN, ALL_NAMESPACES, DynamoDBTokenStore

        token = os.environ.get("VAMP_API_TOKEN")
        token_file = self.state_dir / "token"
        if not token and token_file.exists():
            token = token_file.read_text().strip()
        store = DynamoDBTokenStore()
        if token:
            store.ensure(BOOTSTRAP_TOKEN, token, role=ADMIN, namespaces=[ALL_NAMESPACES])
        else:
            token, _ = store.create(f"local-{os.getpid()}", role=ADMIN, namespaces=[ALL_NAMESPACES])
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        self.token = token

    def mint_token(self, name: str, role: str, namespaces: list[str], replace: bool = False) -> str:
        """A new token of that role and namespaces, straight into the stack's table (the demo's
        operator, the agent's); `replace`: revoke an earlier one of that name first (a restarted
        stack's journal still holds the last run's)."""
        from chalicelib.api.authorization import checked_grant
        from chalicelib.errors import NotFound
        from chalicelib.store.tokens import DynamoDBTokenStore

        role, scope = checked_grant(role, list(namespaces))
        store = DynamoDBTokenStore()
        if replace:
            try:
                store.revoke(name)
            except NotFound:
                pass
        return store.create(name, role=role, namespaces=scope)[0]

    def _start_api(self):
        from chalice.cli.factory import CLIFactory
        from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer

        factory = CLIFactory(str(ROOT))
        config = factory.create_config_obj(chalice_stage_name="local")
        os.environ.update(config.environment_variables)
        app = config.chalice_app
        if isinstance(app, LocalChalice):  # a second stack in this process (tests):
            # chalice's factory would make the app's class its own base (TypeError: a cycle)
            server = LocalDevServer(app, config, "127.0.0.1", self.api_port)
        else:
            server = factory.create_local_server(app, config, "127.0.0.1", self.api_port)
        # socketserver listens with a backlog of 5: 50 clients at once had connections reset
        # while the server was busy (docs/decisions/0021); a bigger backlog queues them instead.
        server.server.socket.listen(API_BACKLOG)
        # The handler sends headers and body in two writes: with Nagle's algorithm the body waited
        # for the client's delayed ACK, ~40 ms on every response (GET /info 48 ms, 3.6 ms without).
        ChaliceRequestHandler.disable_nagle_algorithm = True
        ChaliceRequestHandler.do_HEAD = _head
        # --- the read side (0042): GET /events/stream with Accept: text/event-stream streams here
        from local import event_stream

        event_stream.install()
        self._stops.append(event_stream.STOPPED.set)
        if self.quiet:
            ChaliceRequestHandler.log_message = lambda *a, **k: None
        thread = threading.Thread(target=server.serve_forever, name="vamp-api", daemon=True)
        thread.start()
        self._stops.append(self._stop_services)  # after the API: no request deploys meanwhile
        self._stops.append(server.shutdown)
        # where the `vamp` CLI finds this stack by itself (vamp_cli/config.py): the address
        # beside the token, gone with the stack
        address = self.state_dir / "api"
        address.write_text(self.api_url + "\n")
        self._stops.append(lambda: address.unlink(missing_ok=True))
        log.info("API on %s", self.api_url)
        return config.chalice_app

    @staticmethod
    def _stop_services() -> None:
        local_driver.stop_all()

    def stop(self) -> None:
        """Everything in reverse order; nothing to save (the journal is on disk already)."""
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:
                log.exception("while stopping")
        self._stops.clear()
        if self._guard is not None:
            self._guard.stdin.close()  # the guard stops whatever a failed stop left, and exits
            try:
                self._guard.wait(10)
            except subprocess.TimeoutExpired:
                self._guard.kill()
            self._guard = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _head(handler) -> None:
    """HEAD as GET without the body. chalice's handler ran HEAD as a route of its own (405) and
    wrote that 405's body after the headers: the next response on the keep-alive connection
    began with those stray bytes."""
    from chalice.local import LocalGatewayException

    headers, body = handler._parse_payload()
    try:
        response = handler._handle_binary(handler.local_gateway.handle_request(
            method="GET", path=handler.path, headers=headers, body=body))
        status, out = response["statusCode"], {**response["headers"], **response["multiValueHeaders"]}
        payload = response["body"]
    except LocalGatewayException as e:
        status, out, payload = e.CODE, dict(e.headers), e.body
    payload = payload or b""
    out["Content-Length"] = str(len(payload.encode("utf-8") if isinstance(payload, str) else payload))
    out.setdefault("Content-Type", "application/json")
    handler.send_response(status)
    handler._send_headers(out)  # ends the headers; no body follows
