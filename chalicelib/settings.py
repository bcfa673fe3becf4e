"""Runtime settings, from the environment (prefix VAMP_), the same on Lambda and locally.

A frozen dataclass rather than pydantic-settings: importing pydantic-settings alone costs
~140 ms of Lambda cold start (docs/decisions/0004-settings.md). Bad values fail loudly at start.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Literal, get_args

EventStoreKind = Literal["dynamodb", "opensearch"]
AuthMode = Literal["token", "iam"]
DriverKind = Literal["local", "kubernetes", "ecs"]
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
EgressRouteNames = Literal["listed", "resolved"]
EcsAssignPublicIp = Literal["ENABLED", "DISABLED"]


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
    # auth_mode iam: the role and namespaces of each IAM principal allowed in, as JSON
    # {"<IAM ARN>": {"role": "operator", "namespaces": ["team-a"]}}; any other is refused (0022).
    iam_principals: str | None = None
    max_body_bytes: int = 1_048_576
    # A body's shape (docs/decisions/0024): collections nested at most this deep, at most this
    # many values in all, YAML aliases expanding to at most this many values in all.
    max_body_depth: int = 64
    max_body_nodes: int = 100_000
    max_yaml_alias_nodes: int = 10_000
    per_page_max: int = 1000
    # Events one POST may publish (each is written once per tag, docs/decisions/0024).
    max_events_per_request: int = 1000
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
    # The same as one JSON document, {"username", "password", "ca", "cert", "key"} (PEMs; every
    # key optional): how the publisher function gets its Secrets Manager secret on AWS, by a
    # CloudFormation dynamic reference (docs/decisions/0036). A setting above wins over its key.
    etcd_credentials: str | None = field(default=None, repr=False)
    # The publisher function (name or ARN) inside the cluster's VPC: set, the control plane reads
    # and publishes gateway configurations through it (chalicelib/kv/aws_lambda.py), unset, it
    # reaches etcd at etcd_endpoint itself (docs/decisions/0036).
    gateway_publisher_function: str | None = None
    # The publisher function finds the bundled etcd's members through the EKS cluster's API
    # (VAMP_ETCD_ENDPOINT eks-service://<namespace>/<service>:<port>, chalicelib/kv/etcd_members.py):
    # the cluster's endpoint and its CA (describe_cluster's certificateAuthority.data, base64 PEM),
    # given by the stack, never asked for at run time (no eks:DescribeCluster from inside the VPC).
    # The cluster's name (for the token) is eks_cluster.
    eks_endpoint: str | None = None
    eks_certificate_authority: str | None = field(default=None, repr=False)
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
    # Ports a gateway may ask for ("first-last", comma-separated ranges), and ports no gateway
    # may have: what the nodes themselves listen on (docs/decisions/0024). The assignment range
    # lies inside the allowed one; the virtual hosts port is always refused as well.
    gateway_ports_allowed: str = "1024-65535"
    gateway_ports_reserved: str = "2379-2381,6443,9100,9180,10248-10260,30000-32767"
    # Address the gateway frontends bind on every node (0.0.0.0 to serve beyond the node; "node":
    # loopback and each node's own address, which its agent gives HAProxy, docs/decisions/0037).
    gateway_bind: str = "127.0.0.1"
    # Port of the shared virtual-host frontend routing by Host to gateways (0: none).
    virtual_hosts_port: int = 80
    # The release state machine's ARN (infra/release.asl.json); the local stack sets it.
    release_state_machine: str | None = None
    # --- workflows (docs/decisions/0039): the stack's EventBridge Scheduler group, the function its
    # schedules invoke and the role they assume; no group: the local stack's in-process timer.
    workflow_schedule_group: str | None = None
    workflow_run_function_arn: str | None = None
    workflow_scheduler_role_arn: str | None = None
    # The API's URL a workflow's script run is given as VAMP_URL (workflows/script_runs.py);
    # the local stack sets its own address.
    api_url: str | None = None
    # Gateway nodes (docs/decisions/0018): a node whose last acknowledgement is older than this
    # many seconds is silent; its item expires (TTL) this many seconds after its last report.
    node_silent_after: int = 15
    node_ttl: int = 3600
    # Container drivers (docs/decisions/0007, 0026): the operator's configuration, never the
    # caller's choice. `driver` serves every namespace but those VAMP_NAMESPACE_DRIVERS names
    # ("team-a=kubernetes,dev=ecs"). Off Lambda the default is `local`, the local stack's.
    driver: DriverKind = "local"
    namespace_drivers: str | None = None
    # The local driver runs commands inside the control plane, with its role's credentials in
    # their environment: on Lambda it is refused unless the operator sets this.
    allow_local_driver: bool = False
    # The local driver's logs and process records (the local stack gives each stack its own).
    local_work_dir: str | None = None
    eks_cluster: str | None = None  # kubernetes: reach this EKS cluster (else kubeconfig / in-cluster config)
    kube_context: str | None = None
    ecs_cluster: str = "vamp"
    ecs_subnets: str | None = None  # comma-separated subnet ids; ECS services run awsvpc
    ecs_security_groups: str | None = None  # comma-separated security group ids
    ecs_launch_type: str = "FARGATE"
    # ECS tasks (docs/decisions/0038): ENABLED gives each task a public address, which a public
    # subnet (a default VPC's) needs to pull images and send logs without a NAT gateway; DISABLED
    # for private subnets with a NAT or VPC endpoints. The execution role pulls images and writes
    # the awslogs log group (each service its own stream prefix); the stack makes both.
    ecs_assign_public_ip: str = "ENABLED"
    ecs_execution_role_arn: str | None = None
    ecs_log_group: str | None = None
    # Kubernetes (docs/decisions/0026): Vamp namespace <ns> is Kubernetes namespace <prefix><ns>,
    # created with Pod Security Admission labels at this level and version; the pods get a
    # restricted securityContext and `dialects.kubernetes` an allowlist. VAMP_KUBE_NAMESPACE_POLICIES
    # (JSON, or @<path> of a JSON file) relaxes them per Vamp namespace:
    # {"<ns>": {"pod_security": "baseline", "harden": false, "allow": ["hostAliases", ...]}}.
    kube_namespace_prefix: str = "vamp-"
    kube_pod_security: PodSecurityLevel = "restricted"
    kube_pod_security_version: str = "latest"
    kube_namespace_policies: str | None = None
    # Egress (docs/decisions/0025-egress-policy.md): what external routes and release webhooks may
    # reach besides public addresses: CIDRs, addresses and host names (`*.` for subdomains), e.g.
    # "10.1.0.0/16,internal.example.com". A metadata service address is admitted only when listed
    # as itself (169.254.169.254), never by a range around it. Empty: public addresses only.
    egress_allow: str = ""
    # Host names in external routes: "listed" (only names egress_allow lists: HAProxy resolves them
    # on the nodes, later, so an unlisted name's DNS could change under a checked route) or
    # "resolved" (any name whose every address is admitted when the gateway is stored).
    egress_route_names: EgressRouteNames = "listed"
    # --- automations (docs/decisions/0041) ---
    # The EventBridge bus (name or ARN) the control plane puts its own events on (None: none is
    # put); `source` of every entry it puts ("vamp.<stack>" on AWS, from the template).
    event_bus: str | None = None
    event_source: str = "vamp"

    def driver_for(self, namespace: str, env: dict[str, str] | None = None) -> str:
        """The namespace's driver as the operator configured it; ValueError with the reason
        when that driver is refused here (local on Lambda, unless allowed)."""
        kind = namespace_drivers(self.namespace_drivers).get(namespace, self.driver)
        if kind == "local":
            refused = self.local_driver_refusal(env)
            if refused:
                raise ValueError(refused)
        return kind

    def local_driver_refusal(self, env: dict[str, str] | None = None) -> str | None:
        """Why the local driver may not run here, or None: on Lambda (AWS_LAMBDA_FUNCTION_NAME)
        its processes would run inside the API function, with the function's credentials."""
        env = os.environ if env is None else env
        if env.get("AWS_LAMBDA_FUNCTION_NAME") and not self.allow_local_driver:
            return ("the local driver runs commands inside the control plane and is refused on Lambda: "
                    "name a driver for the namespace (VAMP_DRIVER, VAMP_NAMESPACE_DRIVERS), "
                    "or set VAMP_ALLOW_LOCAL_DRIVER=true")
        return None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict = {}
        for f in fields(cls):
            raw = env.get(f"VAMP_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            if isinstance(f.default, bool):
                if raw.lower() not in _BOOLEANS:
                    raise ValueError(f"VAMP_{f.name.upper()} must be true or false, not {raw!r}")
                values[f.name] = _BOOLEANS[raw.lower()]
            elif f.default is None or isinstance(f.default, str):
                allowed = get_args(_HINTS.get(f.name, ()))
                if allowed and raw not in allowed:
                    raise ValueError(f"VAMP_{f.name.upper()} must be one of {', '.join(allowed)}, not {raw!r}")
                values[f.name] = raw
            else:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"VAMP_{f.name.upper()} must be an integer, not {raw!r}") from None
        if values.get("egress_allow"):
            parse_egress_allow(values["egress_allow"])  # a bad entry fails at start, not on a write
        if "region" not in values and env.get("AWS_DEFAULT_REGION"):
            values["region"] = env["AWS_DEFAULT_REGION"]
        _check_drivers(values, env)
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


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# A Vamp namespace, as the API accepts it (chalicelib/api/http.NAMESPACE).
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_KUBE_PREFIX = re.compile(r"^[a-z]([a-z0-9-]{0,29})$")


@lru_cache(maxsize=8)
def namespace_drivers(text: str | None) -> dict[str, str]:
    """VAMP_NAMESPACE_DRIVERS, "team-a=kubernetes, dev=ecs" -> {"team-a": "kubernetes", "dev": "ecs"}."""
    mapping: dict[str, str] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        namespace, _, kind = (part.strip() for part in entry.partition("="))
        if not _NAMESPACE.match(namespace) or not kind:
            raise ValueError(f"VAMP_NAMESPACE_DRIVERS: {entry.strip()!r} is not <namespace>=<driver>")
        if kind not in get_args(DriverKind):
            raise ValueError(f"VAMP_NAMESPACE_DRIVERS: the driver of {namespace!r} must be one of "
                             f"{', '.join(get_args(DriverKind))}, not {kind!r}")
        if namespace in mapping:
            raise ValueError(f"VAMP_NAMESPACE_DRIVERS names {namespace!r} twice")
        mapping[namespace] = kind
    return mapping


def _check_drivers(values: dict, env: dict[str, str]) -> None:
    """The driver settings, checked at start: a wrong one fails loudly, never a silent default."""
    namespace_drivers(values.get("namespace_drivers"))
    legacy = sorted(k for k in env if k.startswith("VAMP_DRIVER_"))
    if legacy:  # a namespace's driver was an environment variable any namespace name could match
        raise ValueError(f"{', '.join(legacy)}: no longer read; name the namespaces' drivers in "
                         "VAMP_NAMESPACE_DRIVERS=<namespace>=<driver>,... (docs/decisions/0026)")
    prefix = values.get("kube_namespace_prefix", "vamp-")
    if not _KUBE_PREFIX.match(prefix) or prefix.startswith("kube-"):
        raise ValueError(f"VAMP_KUBE_NAMESPACE_PREFIX must start with a letter, hold lowercase letters, "
                         f"digits and '-', at most 30, and not be kube-*: not {prefix!r}")


_HOST_ENTRY = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$")


def parse_egress_allow(text: str) -> tuple[tuple, tuple[str, ...]]:
    """"10.1.0.0/16,169.254.169.254,internal.example.com,*.svc.example" -> (networks, host names):
    networks as ipaddress networks (an address is a /32 or /128), names lower-cased without a
    trailing dot. ValueError naming the entry that is neither."""
    import ipaddress

    networks, hosts = [], []
    for raw in (text or "").split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if len(entry) > 253 or not _HOST_ENTRY.fullmatch(entry) or entry.replace(".", "").isdigit():
            raise ValueError(f"VAMP_EGRESS_ALLOW: {raw.strip()!r} is neither a CIDR, an address nor a host name")
        hosts.append(entry)
    return tuple(networks), tuple(hosts)


_HINTS = {"event_store": EventStoreKind, "auth_mode": AuthMode, "driver": DriverKind,
          "kube_pod_security": PodSecurityLevel, "egress_route_names": EgressRouteNames,
          "ecs_assign_public_ip": EcsAssignPublicIp}


def json_map_setting(setting: str, text: str, shape: str) -> dict:
    """A setting holding a JSON object (VAMP_IAM_PRINCIPALS, VAMP_KUBE_NAMESPACE_POLICIES): the
    map, or ValueError naming the setting and, when it is JSON but no object, the shape wanted."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{setting} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{setting}: {shape}")
    return data


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
