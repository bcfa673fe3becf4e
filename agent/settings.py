"""Agent settings: environment (prefix VAMP_AGENT_), overridden by command-line flags."""
from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.backoff import CAP
from chalicelib.contract import kv_keys


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAMP_AGENT_", extra="ignore")

    etcd_endpoint: str = Field("127.0.0.1:2379", description="etcd client endpoint, host:port")
    namespace: str = Field("default", description="Vamp namespace whose gateways this node serves")
    haproxy_version: str = Field("2.6", description="version segment of the configuration key")
    haproxy_bin: str = Field("haproxy", description="HAProxy executable")
    work_dir: Path = Field(Path("/var/lib/vamp-agent"), description="configs, master socket, spool")
    log_socket: Path | None = Field(None, description="unix datagram socket for HAProxy logs (default <work_dir>/log.sock)")
    opensearch_url: str | None = Field(None, description="OpenSearch URL; unset = logs are not shipped")
    api_url: str | None = Field(None, description="Vamp API base URL for metric and agent events")
    api_token: str | None = Field(None, description="Bearer token for the Vamp API")
    spool_max_bytes: int = Field(256 * 1024 * 1024, description="bound of the on-disk log spool")
    listen: str = Field("127.0.0.1:9180", description="host:port of /healthz and /metrics")
    ship_batch_lines: int = Field(2000, description="log lines per _bulk request")
    ship_interval: float = Field(1.0, description="seconds between _bulk flushes of a partial batch")
    aggregate_interval: float = Field(10.0, description="seconds per metric window")
    backoff_max: float = Field(CAP, description="cap of every reconnect/retry backoff, seconds")
    reload_timeout: float = Field(10.0, description="seconds to wait for a reload to complete")
    node_id: str = Field(default_factory=socket.gethostname,
                         description="this node's name in its acknowledgements (default: the hostname)")
    heartbeat_interval: float = Field(5.0, description="seconds between acknowledgements (also sent after each apply)")

    @property
    def prefix(self) -> str:
        """The etcd prefix watched: the configuration and its generation."""
        return kv_keys.prefix(self.namespace, self.haproxy_version)

    @property
    def config_key(self) -> str:
        return kv_keys.config_key(self.namespace, self.haproxy_version)

    @property
    def log_socket_path(self) -> Path:
        return self.log_socket or self.work_dir / "log.sock"

    @property
    def etcd_host_port(self) -> tuple[str, int]:
        host, _, port = self.etcd_endpoint.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def events_url(self) -> str | None:
        """Vamp's events endpoint; non-default namespaces are addressed by a path prefix."""
        if not self.api_url:
            return None
        base = self.api_url.rstrip("/")
        prefix = "" if self.namespace == "default" else f"/{self.namespace}"
        return f"{base}{prefix}/api/v1/events"


def parse_args(argv: Sequence[str] | None = None) -> AgentSettings:
    """One flag per setting (--etcd-endpoint ...); flags win over the environment."""
    parser = argparse.ArgumentParser(prog="python -m agent", description="Vamp gateway agent")
    for name, field in AgentSettings.model_fields.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=field.description)
    given: dict[str, Any] = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return AgentSettings(**given)
