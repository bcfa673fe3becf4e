"""Agent settings: environment (prefix VAMP_AGENT_), overridden by command-line flags.

Secrets (the API token, the signing key, the status token, etcd's password) come from a file
(`--api-token-file`, ...) or the environment (`VAMP_AGENT_API_TOKEN`, ...), never from a flag:
a command line is readable by every user of the node (`ps`). A file wins over the variable.
"""
from __future__ import annotations

import argparse
import ipaddress
import socket
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.backoff import CAP
from agent.logs.indices import namespace_problem
from chalicelib.contract import envelope, kv_keys
from chalicelib.contract.etcd_access import EtcdAccess

# Settings that are secrets: environment only (their `_file` twin is a flag like any other).
SECRETS = ("api_token", "signing_key", "status_token", "etcd_password")


class SettingsError(ValueError):
    """A setting the agent cannot start with; the message says which and what to do."""


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAMP_AGENT_", extra="ignore")

    etcd_endpoint: str = Field("127.0.0.1:2379", description="etcd client endpoint, host:port (https://host:port: TLS)")
    etcd_ca_file: Path | None = Field(None, description="CA certificate that signed etcd's (TLS)")
    etcd_cert_file: Path | None = Field(None, description="client certificate for etcd (with --etcd-key-file)")
    etcd_key_file: Path | None = Field(None, description="client certificate's key for etcd")
    etcd_username: str | None = Field(None, description="etcd v3 auth user (password: VAMP_AGENT_ETCD_PASSWORD or the file)")
    etcd_password: SecretStr | None = Field(None, description="etcd user's password (environment only)")
    etcd_password_file: Path | None = Field(None, description="file holding the etcd user's password")
    namespace: str = Field("default", description="Vamp namespace whose gateways this node serves")
    haproxy_version: str = Field("2.6", description="version segment of the configuration key")
    haproxy_bin: str = Field("haproxy", description="HAProxy executable")
    work_dir: Path = Field(Path("/var/lib/vamp-agent"), description="configs, master socket, spool")
    log_socket: Path | None = Field(None, description="unix datagram socket for HAProxy logs (default <work_dir>/log.sock)")
    signing_key: SecretStr | None = Field(None, description="key(s) configurations are signed with (environment only)")
    signing_key_file: Path | None = Field(None, description="file of the signing key(s), one a line (required: this or the variable)")
    opensearch_url: str | None = Field(None, description="OpenSearch URL; unset = logs are not shipped")
    api_url: str | None = Field(None, description="Vamp API base URL for metric and agent events")
    api_token: SecretStr | None = Field(None, description="Bearer token for the Vamp API (environment only)")
    api_token_file: Path | None = Field(None, description="file holding the Bearer token for the Vamp API")
    spool_max_bytes: int = Field(256 * 1024 * 1024, description="bound of the on-disk log spool")
    listen: str = Field("127.0.0.1:9180", description="host:port of /healthz and /metrics (beyond loopback: a status token)")
    status_token: SecretStr | None = Field(None, description="Bearer token /healthz and /metrics require (environment only)")
    status_token_file: Path | None = Field(None, description="file holding the status token")
    opensearch_sigv4: bool = Field(False, description="sign OpenSearch requests with AWS SigV4 (an IAM-protected "
                                   "domain), credentials from botocore's chain (environment, profile, instance role)")
    opensearch_region: str | None = Field(None, description="AWS region of the OpenSearch domain (SigV4; default: "
                                          "botocore's, e.g. AWS_REGION)")
    opensearch_service: str = Field("es", description="SigV4 service: es (a managed domain) or aoss (Serverless)")
    ship_batch_lines: int = Field(2000, description="log lines per _bulk request")
    ship_batch_bytes: int = Field(5 * 1024 * 1024, description="bytes of body per _bulk request (below OpenSearch's "
                                  "http.max_content_length, 100mb by default)")
    ship_item_attempts: int = Field(10, description="tries of a log line OpenSearch answers 5xx before it is "
                                    "dead-lettered (429s are retried without a bound)")
    dead_letter_max_bytes: int = Field(16 * 1024 * 1024, description="bound of <work_dir>/spool/dead-letters.ndjson "
                                       "(log lines OpenSearch refused for good; rotated once)")
    ship_interval: float = Field(1.0, description="seconds between _bulk flushes of a partial batch")
    aggregate_interval: float = Field(10.0, description="seconds per metric window")
    backoff_max: float = Field(CAP, description="cap of every reconnect/retry backoff, seconds")
    reload_timeout: float = Field(10.0, description="seconds to wait for a reload to complete")
    node_id: str = Field(default_factory=socket.gethostname,
                         description="this node's name in its acknowledgements (default: the hostname)")
    heartbeat_interval: float = Field(5.0, description="seconds between acknowledgements (also sent after each apply)")
    node_address: str = Field("127.0.0.1", description="this node's address, where gateways rendered for `node` "
                              "(VAMP_GATEWAY_BIND=node) listen besides loopback; the DaemonSet gives the pod's hostIP")

    @property
    def prefix(self) -> str:
        """The etcd prefix watched: the configuration, its generation and its signature."""
        return kv_keys.prefix(self.namespace, self.haproxy_version)

    @property
    def config_key(self) -> str:
        return kv_keys.config_key(self.namespace, self.haproxy_version)

    @property
    def log_socket_path(self) -> Path:
        return self.log_socket or self.work_dir / "log.sock"

    @property
    def etcd_host_port(self) -> tuple[str, int]:
        _, host, port = EtcdAccess(self.etcd_endpoint).address
        return host, port

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def listens_on_loopback(self) -> bool:
        host = self.listen_host_port[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def events_url(self) -> str | None:
        """Vamp's events endpoint; non-default namespaces are addressed by a path prefix."""
        if not self.api_url:
            return None
        base = self.api_url.rstrip("/")
        prefix = "" if self.namespace == "default" else f"/{self.namespace}"
        return f"{base}{prefix}/api/v1/events"

    # -- secrets: the file, else the variable ------------------------------------------------------
    def _secret(self, name: str) -> str | None:
        path: Path | None = getattr(self, name + "_file")
        if path is not None:
            try:
                return path.read_text().strip()
            except OSError as e:
                raise SettingsError(f"--{name.replace('_', '-')}-file {path}: {e.strerror}") from None
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    @property
    def api_token_value(self) -> str | None:
        return self._secret("api_token")

    @property
    def status_token_value(self) -> str | None:
        return self._secret("status_token")

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """Every key a configuration may be signed with; SettingsError when there is none: the
        agent never applies an unsigned configuration, so it does not start without one."""
        text = self._secret("signing_key")
        if not text:
            raise SettingsError("no signing key: set VAMP_AGENT_SIGNING_KEY_FILE (or --signing-key-file, or "
                                "VAMP_AGENT_SIGNING_KEY) to the key the control plane signs configurations with "
                                "(docs/decisions/0023)")
        try:
            return envelope.parse_keys(text)
        except ValueError as e:
            raise SettingsError(f"signing key: {e}") from None

    @property
    def etcd_access(self) -> EtcdAccess:
        try:
            return EtcdAccess(self.etcd_endpoint, ca_file=_str(self.etcd_ca_file), cert_file=_str(self.etcd_cert_file),
                              key_file=_str(self.etcd_key_file), username=self.etcd_username,
                              password=self._secret("etcd_password"))
        except ValueError as e:
            raise SettingsError(str(e)) from None

    def check(self) -> None:
        """What the agent refuses to start with (SettingsError)."""
        self.signing_keys  # noqa: B018
        try:  # HAProxy reads it into `bind "${VAMP_NODE_ADDRESS}:<port>"`: an address, nothing else
            if ipaddress.ip_address(self.node_address).is_unspecified:
                raise ValueError
        except ValueError:
            raise SettingsError(f"--node-address {self.node_address!r}: one IP address of this node (not a name, "
                                "not 0.0.0.0 or ::): the DaemonSet sets the pod's status.hostIP") from None
        self.etcd_access  # noqa: B018
        if not self.listens_on_loopback and not self.status_token_value:
            raise SettingsError(f"--listen {self.listen} is beyond loopback: set VAMP_AGENT_STATUS_TOKEN_FILE (or "
                                "VAMP_AGENT_STATUS_TOKEN) so /healthz and /metrics require it, or listen on 127.0.0.1")
        self.api_token_value  # noqa: B018 - a token file that cannot be read: say so now
        if self.opensearch_url:
            self.check_shipping()

    def check_shipping(self) -> None:
        """What the log shipper refuses to start with (SettingsError), when logs are shipped."""
        problem = namespace_problem(self.namespace)
        if problem:
            raise SettingsError(f"--namespace {self.namespace!r} cannot name OpenSearch indices: {problem} "
                                "(OpenSearch index names are lowercase, without \\ / * ? \" < > | , # : or spaces, "
                                "do not start with - _ +, and are at most 255 bytes)")
        if self.opensearch_service not in ("es", "aoss"):
            raise SettingsError(f"--opensearch-service {self.opensearch_service!r}: es (a managed domain) or aoss (Serverless)")
        if self.ship_batch_bytes <= 0 or self.ship_batch_lines <= 0 or self.ship_item_attempts <= 0:
            raise SettingsError("--ship-batch-bytes, --ship-batch-lines and --ship-item-attempts must be positive")
        if self.opensearch_sigv4 and not self.sigv4_region:
            raise SettingsError("--opensearch-sigv4 needs the domain's region: --opensearch-region or AWS_REGION")

    @property
    def sigv4_region(self) -> str | None:
        if self.opensearch_region:
            return self.opensearch_region
        import botocore.session  # only agents that sign load botocore

        return botocore.session.Session().get_config_variable("region")


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def parse_args(argv: Sequence[str] | None = None) -> AgentSettings:
    """One flag per setting (--etcd-endpoint ...) but the secrets; flags win over the environment."""
    parser = argparse.ArgumentParser(prog="python -m agent", description="Vamp gateway agent")
    for name, field in AgentSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        if name in SECRETS:
            parser.add_argument(flag, dest="refused_" + name, default=None, help=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, dest=name, default=None, help=field.description)
    args = vars(parser.parse_args(argv))
    for name in SECRETS:
        if args.pop("refused_" + name) is not None:
            parser.error(f"--{name.replace('_', '-')}: a secret is never given on the command line (ps shows it to "
                         f"every user): use --{name.replace('_', '-')}-file or VAMP_AGENT_{name.upper()}")
    given: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    return AgentSettings(**given)
