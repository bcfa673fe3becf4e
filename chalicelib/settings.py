"""Runtime settings, from the environment (prefix VAMP_), the same on Lambda and locally.

A frozen dataclass rather than pydantic-settings: importing pydantic-settings alone costs
~140 ms of Lambda cold start (docs/decisions/0004-settings.md). Bad values fail loudly at start.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Literal, get_args

EventStoreKind = Literal["dynamodb", "opensearch"]
AuthMode = Literal["token", "iam"]
DriverKind = Literal["local", "kubernetes", "ecs"]


@dataclass(frozen=True)
class Settings:
    # DynamoDB single table holding artifacts, deployments, counters, tokens and releases.
    table_name: str = "vamp"
    # The event store's DynamoDB table (None: "<table_name>-events"): telemetry apart from the
    # artifacts, so its volume never slows an artifact request (docs/decisions/0021).
    events_table_name: str | None = None
    default_namespace: str = "default"
    # Endpoint of an AWS emulation (moto server, LocalStack); boto3 also honours AWS_ENDPOINT_URL.
    aws_endpoint: str | None = None
    region: str = "us-east-1"
    event_store: EventStoreKind = "dynamodb"
    opensearch_url: str | None = None
    # Events older than this are expired by DynamoDB TTL (0 keeps them forever).
    event_retention_days: int = 30
    # token: Bearer API tokens; iam: SigV4 through API Gateway's IAM authorizer (AWS only).
    auth_mode: AuthMode = "token"
    max_body_bytes: int = 1_048_576
    per_page_max: int = 1000
    # Gateways: etcd client endpoint host:port (None: gateways are stored but not published).
    etcd_endpoint: str | None = None
    # etcd TLS and v3 authentication (chalicelib/contract/etcd_access.py; the agents have the same
    # settings): a CA to verify etcd, a client certificate, a user (its password from the file, else
    # the value). An https:// endpoint, or a CA or certificate, means TLS.
    etcd_ca_file: str | None = None
    etcd_cert_file: str | None = None
    etcd_key_file: str | None = None
    etcd_username: str | None = None
    etcd_password_file: str | None = None
    etcd_password: str | None = field(default=None, repr=False)
    # The key every published gateway configuration is signed with (HMAC-SHA256, shared with the
    # agents; docs/decisions/0023): from a file (its first line signs), else the value, else an
    # AWS secret: a Secrets Manager secret id or ARN, or "ssm:<parameter name>" (a SecureString).
    # None of them: nothing is published (agents refuse unsigned configurations anyway).
    gateway_signing_key_file: str | None = None
    gateway_signing_key: str | None = field(default=None, repr=False)
    gateway_signing_key_secret: str | None = None
    # Version segment of /vamp/<ns>/gateways/haproxy/<version>/configuration.
    haproxy_version: str = "2.6"
    # Ports assigned to gateways created without one, "first-last" inclusive.
    gateway_ports: str = "40000-45000"
    # Address the gateway frontends bind on every node (0.0.0.0 to serve beyond the node).
    gateway_bind: str = "127.0.0.1"
    # Port of the shared virtual-host frontend routing by Host to gateways (0: none).
    virtual_hosts_port: int = 80
    # The release state machine's ARN (infra/release.asl.json); the local stack sets it.
    release_state_machine: str | None = None
    # Gateway nodes (docs/decisions/0018): a node whose last acknowledgement is older than this
    # many seconds is silent; its item expires (TTL) this many seconds after its last report.
    node_silent_after: int = 15
    node_ttl: int = 3600
    # Container driver (docs/decisions/0007-container-drivers.md); VAMP_DRIVER_<NAMESPACE> overrides it per namespace.
    driver: DriverKind = "local"
    # The local driver's logs and process records (the local stack gives each stack its own).
    local_work_dir: str | None = None
    eks_cluster: str | None = None  # kubernetes: reach this EKS cluster (else kubeconfig / in-cluster config)
    kube_context: str | None = None
    ecs_cluster: str = "vamp"
    ecs_subnets: str | None = None  # comma-separated; ECS services run awsvpc
    ecs_security_groups: str | None = None
    ecs_launch_type: str = "FARGATE"

    def driver_for(self, namespace: str, env: dict[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        raw = env.get("VAMP_DRIVER_" + namespace.upper().replace("-", "_"))
        if not raw:
            return self.driver
        if raw not in get_args(DriverKind):
            raise ValueError(f"VAMP_DRIVER_{namespace.upper()} must be one of {', '.join(get_args(DriverKind))}, not {raw!r}")
        return raw

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict = {}
        for f in fields(cls):
            raw = env.get(f"VAMP_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            if f.default is None or isinstance(f.default, str):
                allowed = get_args(_HINTS.get(f.name, ()))
                if allowed and raw not in allowed:
                    raise ValueError(f"VAMP_{f.name.upper()} must be one of {', '.join(allowed)}, not {raw!r}")
                values[f.name] = raw
            else:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"VAMP_{f.name.upper()} must be an integer, not {raw!r}") from None
        if "region" not in values and env.get("AWS_DEFAULT_REGION"):
            values["region"] = env["AWS_DEFAULT_REGION"]
        return cls(**values)


_PORT_RANGE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")


def parse_port_range(text: str) -> range:
    """"40000-45000" -> range(40000, 45001) (both ends included)."""
    m = _PORT_RANGE.fullmatch(text or "")
    if not m:
        raise ValueError(f"invalid port range {text!r}: first-last, e.g. 40000-45000")
    first, last = int(m.group(1)), int(m.group(2))
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"invalid port range {text!r}: 1 <= first <= last <= 65535")
    return range(first, last + 1)


_HINTS = {"event_store": EventStoreKind, "auth_mode": AuthMode, "driver": DriverKind}


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
