"""Where the agent's log documents go: daily indices `vamp-logs-<namespace>-YYYY.MM.DD`, under the
`vamp-logs` index template (LOGS_TEMPLATE, the same as infra/opensearch/vamp-logs.json), which the
shipper installs before its first write: an index created without it would map every field by
guess (`@timestamp` as a millisecond `date`, `status` as a `long`, `request` as text only) and
keep that mapping for the day.
"""
from __future__ import annotations

PREFIX = "vamp-logs"
TEMPLATE_NAME = PREFIX

LOGS_TEMPLATE: dict = {
    "index_patterns": [f"{PREFIX}-*"],
    "priority": 100,
    "template": {
        "settings": {"index": {"number_of_shards": 1, "refresh_interval": "5s"}},
        "mappings": {
            "dynamic": False,
            "properties": {
                "@timestamp": {"type": "date_nanos"},
                "client_ip": {"type": "ip"},
                "client_port": {"type": "integer"},
                "timestamp": {"type": "date", "format": "epoch_second||strict_date_optional_time_nanos||epoch_millis"},
                "frontend": {"type": "keyword"},
                "backend": {"type": "keyword"},
                "server": {"type": "keyword"},
                "Tq": {"type": "integer"},
                "Tw": {"type": "integer"},
                "Tc": {"type": "integer"},
                "Tr": {"type": "integer"},
                "Tt": {"type": "integer"},
                "status": {"type": "short"},
                "bytes_read": {"type": "long"},
                "termination_state": {"type": "keyword"},
                "actconn": {"type": "integer"},
                "feconn": {"type": "integer"},
                "beconn": {"type": "integer"},
                "srv_conn": {"type": "integer"},
                "retries": {"type": "keyword"},
                "srv_queue": {"type": "integer"},
                "backend_queue": {"type": "integer"},
                "request": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 2048}}},
                "namespace": {"type": "keyword"},
                "gateway": {"type": "keyword"},
                "route": {"type": "keyword"},
            },
        },
    },
    "_meta": {
        "owner": "vamp-serverless",
        "about": "HAProxy access logs shipped by agent/, one document per request, fields as in "
                 "chalicelib/contract/log_format.py: timestamp is HAProxy's %Ts.%ms (epoch seconds), "
                 "@timestamp the agent's ISO copy",
    },
}

# OpenSearch's index name rules (MetadataCreateIndexService.validateIndexOrAliasName).
_FORBIDDEN = '\\/*?"<>| ,#:'
MAX_NAME_BYTES = 255


def index_prefix(namespace: str) -> str:
    return f"{PREFIX}-{namespace}-"


def index_name_problem(name: str) -> str | None:
    """Why OpenSearch would refuse `name` as an index name, or None if it would take it."""
    if name != name.lower():
        return "must be lowercase"
    bad = sorted(set(name) & set(_FORBIDDEN))
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if name[:1] in ("-", "_", "+"):
        return "must not start with '-', '_' or '+'"
    if name in ("", ".", ".."):
        return "must not be empty, '.' or '..'"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes (is {len(name.encode())})"
    return None


def namespace_problem(namespace: str) -> str | None:
    """Why `namespace` cannot name the agent's log indices (checked on the longest day name)."""
    problem = index_name_problem(f"{index_prefix(namespace)}2024.12.31")
    return None if problem is None else f"its log indices ({index_prefix(namespace)}YYYY.MM.DD) {problem}"
