"""Starts and stops the parts of the local stack in one process, on loopback only."""
from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("vamp.local")

ROOT = Path(__file__).resolve().parent.parent
API_BACKLOG = 256  # connections the local API queues while its threads are busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalStack:
    """moto (unless an endpoint such as LocalStack's is given) and the Chalice API, in threads."""

    api_port: int = int(os.environ.get("VAMP_PORT", "8080"))
    state_dir: Path = Path(os.environ.get("VAMP_STATE_DIR", ROOT / ".vamp"))
    persist: bool = True
    token: str | None = None
    endpoint: str | None = None
    quiet: bool = False  # no access log lines on stderr (the demo prints its own)
    serve: bool = True  # the API (off for tools that only want the table, e.g. token commands)
    gateways: bool = True  # etcd and the gateway agent (with HAProxy) too, when serving
    etcd_endpoint: str | None = None
    virtual_hosts_port: int | None = None
    agent: object = None
    _stops: list = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> "LocalStack":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        # Gateway ports below Linux's ephemeral range (32768-60999, where Vamp's 40000-45000 sits):
        # on one machine, a port the stack's own outgoing connections hold cannot be bound by HAProxy.
        os.environ.setdefault("VAMP_GATEWAY_PORTS", "20000-24999")
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
            from local import state

            restored = state.restore(self.state_dir / "state" / "dynamodb.json")
            log.info("restored %d items from %s", restored, self.state_dir / "state")
        self._bootstrap_token()
        if self.serve:
            self._warm_dsl()
            self._start_api()
            if self.gateways:
                self._start_gateways()
        return self

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

        etcd = LocalEtcd(self.state_dir / "etcd", free_port(), free_port(), self.state_dir / "etcd.log").start()
        self._stops.append(etcd.stop)
        os.environ["VAMP_ETCD_ENDPOINT"] = etcd.endpoint
        os.environ.setdefault("VAMP_VIRTUAL_HOSTS_PORT", str(free_port()))
        settings.cache_clear()
        self.etcd_endpoint = etcd.endpoint
        self.virtual_hosts_port = int(os.environ["VAMP_VIRTUAL_HOSTS_PORT"])
        self.agent = LocalAgent(etcd_endpoint=etcd.endpoint, api_url=self.api_url, api_token=self.token,
                                work_dir=self.state_dir / "agent", listen_port=free_port(),
                                log_file=self.state_dir / "agent.log").start()
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

    def _bootstrap_token(self) -> None:
        from chalicelib.store.tokens import DynamoDBTokenStore

        token = os.environ.get("VAMP_API_TOKEN")
        token_file = self.state_dir / "token"
        if not token and token_file.exists():
            token = token_file.read_text().strip()
        store = DynamoDBTokenStore()
        if token:
            store.ensure("local", token)
        else:
            token, _ = store.create(f"local-{os.getpid()}")
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        self.token = token

    def _start_api(self) -> None:
        from chalice.cli.factory import CLIFactory
        from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer

        factory = CLIFactory(str(ROOT))
        config = factory.create_config_obj(chalice_stage_name="local")
        os.environ.update(config.environment_variables)
        if isinstance(config.chalice_app, LocalChalice):  # a second stack in this process (tests):
            # chalice's factory would make the app's class its own base (TypeError: a cycle)
            server = LocalDevServer(config.chalice_app, config, "127.0.0.1", self.api_port)
        else:
            server = factory.create_local_server(config.chalice_app, config, "127.0.0.1", self.api_port)
        # socketserver listens with a backlog of 5: 50 clients at once had connections reset
        # while the server was busy (docs/decisions/0021); a bigger backlog queues them instead.
        server.server.socket.listen(API_BACKLOG)
        # The handler sends headers and body in two writes: with Nagle's algorithm the body waited
        # for the client's delayed ACK, ~40 ms on every response (GET /info 48 ms, 3.6 ms without).
        ChaliceRequestHandler.disable_nagle_algorithm = True
        if self.quiet:
            ChaliceRequestHandler.log_message = lambda *a, **k: None
        thread = threading.Thread(target=server.serve_forever, name="vamp-api", daemon=True)
        thread.start()
        self._stops.append(server.shutdown)
        log.info("API on %s", self.api_url)
        from local.schedules import Scheduler

        scheduler = Scheduler(config.chalice_app)
        scheduler.start()
        self._stops.append(scheduler.stop)

    def stop(self) -> None:
        if self.persist:
            try:
                from local import state

                saved = state.save(self.state_dir / "state" / "dynamodb.json")
                log.info("saved %d items to %s", saved, self.state_dir / "state")
            except Exception:
                log.exception("could not save the local state")
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:
                log.exception("while stopping")
        self._stops.clear()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
