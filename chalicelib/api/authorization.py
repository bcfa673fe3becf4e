"""Who may do what, decided in one place for every route (docs/decisions/0022-token-roles-and-namespaces.md).
Pure: no I/O; the middleware (api/auth.py) asks `refusal` before every handler runs.

A caller (a token, or a mapped IAM principal) has a role and the namespaces it may touch ("*":
every one). Every route of app.py needs one permission, listed in PERMISSIONS by method and the
route below `/api/v1` (the same under `/{namespace}/api/v1`); a route missing there is refused,
and tests/api/test_authorization.py checks that every route of app.py is listed. What a body
asks for beyond its route is checked here too, by the handlers that read the body: events
(telemetry is the agents' alone, `event_refusal`) and tokens (no wider than the caller's own,
`grant_refusal`, `within`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from chalicelib.errors import FieldError, Forbidden, ValidationFailed
from chalicelib.kinds import normalize_kind
from chalicelib.settings import json_map_setting
from chalicelib.store.tokens import ADMIN, AGENT, ALL_NAMESPACES, OPERATOR, READER, ROLES, WORKFLOW

# A Vamp namespace's name (also the first segment of /{namespace}/api/v1).
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAMESPACES = 100  # per token

# Permissions, what each role holds.
READ = "read"  # GET anything, and POST /events/get (a query)
WRITE = "write"  # artifacts, deployments, gateways, releases
PUBLISH = "publish"  # POST /events (which events: event_refusal)
REPORT = "report"  # PUT /vga/nodes/{node}: a gateway agent's acknowledgement
GATEWAY_CONFIG = "gateway-config"  # GET /vga/haproxy/{version}/configuration
TOKENS = "tokens"  # create, list, revoke tokens (within the caller's own scope)

GRANTS: dict[str, frozenset[str]] = {
    READER: frozenset({READ, GATEWAY_CONFIG}),
    OPERATOR: frozenset({READ, GATEWAY_CONFIG, WRITE, PUBLISH}),
    ADMIN: frozenset({READ, GATEWAY_CONFIG, WRITE, PUBLISH, TOKENS}),
    # What an agent does (agent/): posts its metric windows and rejections, acknowledges what it
    # applied, and may read the configuration it applies. Nothing else.
    AGENT: frozenset({PUBLISH, REPORT, GATEWAY_CONFIG}),
    # A workflow run's token (0044): a reader that publishes events; the few writes a workflow
    # makes are WORKFLOW_WRITES, checked by `_workflow_refusal`.
    WORKFLOW: frozenset({READ, GATEWAY_CONFIG, PUBLISH}),
}

PREFIXES = ("/{namespace}/api/v1", "/api/v1")

PERMISSIONS: dict[tuple[str, str], str] = {
    ("GET", "/info"): READ,
    ("GET", "/config"): READ,
    ("GET", "/openapi.json"): READ,
    ("POST", ""): WRITE,
    ("PUT", ""): WRITE,
    ("DELETE", ""): WRITE,
    ("GET", "/events"): READ,
    ("POST", "/events"): PUBLISH,
    ("POST", "/events/get"): READ,
    ("GET", "/tokens"): TOKENS,
    ("POST", "/tokens"): TOKENS,
    ("DELETE", "/tokens/{name}"): TOKENS,
    ("GET", "/health/gateways/{gateway}"): READ,
    ("GET", "/health/gateways/{gateway}/routes/{route}"): READ,
    ("GET", "/metrics/gateways/{gateway}/{metric}"): READ,
    ("GET", "/metrics/gateways/{gateway}/routes/{route}/{metric}"): READ,
    # the read side (0042)
    ("GET", "/health/deployments/{deployment}"): READ,
    ("GET", "/health/deployments/{deployment}/clusters/{cluster}"): READ,
    ("GET", "/health/deployments/{deployment}/clusters/{cluster}/services/{service}"): READ,
    ("GET", "/metrics/deployments/{deployment}/clusters/{cluster}/ports/{port}/{metric}"): READ,
    ("GET", "/metrics/deployments/{deployment}/clusters/{cluster}/services/{service}/ports/{port}/{metric}"): READ,
    ("GET", "/events/stream"): READ,
    ("GET", "/vga/haproxy/{version}/configuration"): GATEWAY_CONFIG,
    ("GET", "/vga/nodes"): READ,
    ("PUT", "/vga/nodes/{node}"): REPORT,
    ("POST", "/releases"): WRITE,
    ("GET", "/releases"): READ,
    ("GET", "/releases/{name}"): READ,
    ("DELETE", "/releases/{name}"): WRITE,
    ("POST", "/releases/{name}/{action}"): WRITE,
    ("GET", "/deployments"): READ,
    ("POST", "/deployments"): WRITE,
    ("GET", "/deployments/{name}"): READ,
    ("PUT", "/deployments/{name}"): WRITE,
    ("DELETE", "/deployments/{name}"): WRITE,
    ("GET", "/deployments/{name}/clusters/{cluster}/services/{service}/scale"): READ,
    ("PUT", "/deployments/{name}/clusters/{cluster}/services/{service}/scale"): WRITE,
    ("GET", "/deployments/{name}/clusters/{cluster}/sla"): READ,
    ("POST", "/deployments/{name}/clusters/{cluster}/sla"): WRITE,
    ("PUT", "/deployments/{name}/clusters/{cluster}/sla"): WRITE,
    ("DELETE", "/deployments/{name}/clusters/{cluster}/sla"): WRITE,
    # --- workflows (0039): who may write a workflow may suspend, start and restart it
    ("GET", "/workflows/{name}/status"): READ,
    ("PUT", "/workflows/{name}/status"): WRITE,
    ("GET", "/{kind}"): READ,
    ("POST", "/{kind}"): WRITE,
    ("GET", "/{kind}/{name}"): READ,
    ("PUT", "/{kind}/{name}"): WRITE,
    ("DELETE", "/{kind}/{name}"): WRITE,
}


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the token store (or the IAM mapping) says now; role None: an IAM
    principal nobody gave a role."""

    name: str
    role: str | None
    namespaces: tuple[str, ...] = ()
    # role `workflow` (0044): the workflow the token is bound to, and its runs' chain (itself last)
    workflow: str | None = None
    chain: tuple[str, ...] = ()

    def may_touch(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def as_dict(self) -> dict:
        return {"principal": self.name, "role": self.role, "namespaces": list(self.namespaces)}


def route_of(resource_path: str | None) -> str | None:
    """`/{namespace}/api/v1/{kind}` or `/api/v1/{kind}` -> `/{kind}`; None for anything else."""
    for prefix in PREFIXES:
        if resource_path is not None and (resource_path == prefix or resource_path.startswith(prefix + "/")):
            return resource_path[len(prefix):]
    return None


def permission_for(method: str, resource_path: str | None) -> str | None:
    route = route_of(resource_path)
    return None if route is None else PERMISSIONS.get(((method or "").upper(), route))


def refusal(caller: Caller, method: str, resource_path: str | None, namespace: str,
            params: dict[str, str] | None = None) -> Forbidden | None:
    """Why `caller` may not call this route in `namespace` (a 403), or None. `params`: the
    route's path parameters, decoded (a workflow token's writes depend on them)."""
    needed = permission_for(method, resource_path)
    if needed is None:  # deny by default: a route nobody classified is nobody's
        return Forbidden.at("route", f"{method} {resource_path} is not open to any role")
    if caller.role is None:
        return Forbidden.at("role", f"{caller.name} has no Vamp role")
    if caller.role == WORKFLOW and needed == WRITE:
        refused = _workflow_refusal(caller, (method or "").upper(), route_of(resource_path) or "", params or {})
        if refused is not None:
            return refused
    elif needed not in GRANTS.get(caller.role, ()):
        return Forbidden.at("role", f"a token with role {caller.role} may not {method} {route_of(resource_path) or '/'}"
                                    f" (it needs the {needed} permission)")
    if not caller.may_touch(namespace):
        return Forbidden.at("namespace", f"this token may not touch namespace {namespace}")
    return None


# -- workflow run tokens (docs/decisions/0044) -------------------------------------------------

SCALE_ROUTE = "/deployments/{name}/clusters/{cluster}/services/{service}/scale"
STATUS_ROUTE = "/workflows/{name}/status"
# What a workflow's run may write, as Vamp's workflows did: a gateway's weights and conditions
# (an existing gateway: `workflow_gateway_refusal`), a service's scale, its own workflow's status.
WORKFLOW_WRITES = "change existing gateways (PUT /gateways/{name}), scale services, publish events and set " \
                  "its own workflow's status"


def _workflow_refusal(caller: Caller, method: str, route: str, params: dict[str, str]) -> Forbidden | None:
    """A write by a workflow run's token: only WORKFLOW_WRITES, else a 403 saying why."""
    run = f"the token of workflow {caller.workflow}'s run"
    if "kind" in params:  # `breed`, `Breeds`: the kind the handler will write
        try:
            params = {**params, "kind": normalize_kind(params["kind"])}
        except ValidationFailed:
            pass
    if (method, route) == ("PUT", "/{kind}/{name}") and params.get("kind") == "gateways":
        return None
    if (method, route) == ("PUT", SCALE_ROUTE):
        return None
    if (method, route) == ("PUT", STATUS_ROUTE):
        if params.get("name") == caller.workflow:
            return None
        return Forbidden.at("workflow", f"{run} may set its own workflow's status only, not {params.get('name')}'s")
    kind = params.get("kind") or next((k for k in ("deployments", "releases", "tokens") if route.startswith("/" + k)),
                                      None)
    what = kind or f"{method} {route or '/'}"
    why = {"workflows": "a run may not rewrite any workflow, its own included (nor create one that would run "
                        "anything with a token of its own)",
           "breeds": "a run may not write breeds: a breed is what a workflow runs",
           "blueprints": "a run may not write blueprints: their breeds are what deployments run",
           "deployments": "a run may not write deployments (their breeds, clusters, SLAs): only scale services",
           "gateways": "a run may change existing gateways only (PUT), never create or delete one",
           "releases": "a run may not start or act on releases",
           }.get(kind or "", f"a run may only {WORKFLOW_WRITES}")
    return Forbidden.at("role", f"{run} may not {method} {what}: {why}")


def workflow_gateway_refusal(caller: Caller, exists: bool) -> Forbidden | None:
    """A workflow's run changes gateways that exist; it never creates one (PUT upserts)."""
    if caller.role == WORKFLOW and not exists:
        return Forbidden.at("role", f"the token of workflow {caller.workflow}'s run may change existing gateways only, "
                                    "never create one")
    return None


# -- events ----------------------------------------------------------------------------------

TELEMETRY_TYPE = "metrics"
_TELEMETRY_TAGS = frozenset({"gateways", "routes", "metrics"})  # what an agent's metric window carries
_REJECTION_TYPE, _REJECTION_TAGS = "rejected", frozenset({"gateways", "agent"})  # agent/applier.py


def _tag_keys(tags: Iterable[str]) -> set[str]:
    return {t.split(":", 1)[0] for t in tags}


def is_telemetry(tags: Iterable[str], type_: str) -> bool:
    """What releases judge and gateway health counts: type `metrics`, or a `metrics` tag."""
    return type_ == TELEMETRY_TYPE or "metrics" in _tag_keys(tags)


def _agent_shaped(tags: Iterable[str], type_: str) -> bool:
    """What agent/ posts: metric windows of gateways and routes, and rejected configurations."""
    keys = _tag_keys(tags)
    if type_ == TELEMETRY_TYPE:
        return keys <= _TELEMETRY_TAGS
    return type_ == _REJECTION_TYPE and keys <= _REJECTION_TAGS


def event_refusal(caller: Caller, events: list[tuple[list[str], str]]) -> Forbidden | None:
    """Events (tags, type) the caller may not post, all reasons at once (then none is written).
    Telemetry is the agents' alone: releases are promoted on it (finding 5 of issue 10)."""
    errors = []
    for i, (tags, type_) in enumerate(events):
        at = f"[{i}].type" if len(events) > 1 else "type"
        if caller.role == AGENT and not _agent_shaped(tags, type_):
            errors.append(FieldError(at, "an agent token posts only telemetry (type metrics, tags gateways:, routes:, "
                                         "metrics:) and rejected-configuration reports"))
        elif caller.role != AGENT and is_telemetry(tags, type_):
            errors.append(FieldError(at, "telemetry (type metrics or a metrics tag) is posted by agent tokens only"))
    return Forbidden("Forbidden", errors) if errors else None


# -- tokens ----------------------------------------------------------------------------------

def checked_grant(role, namespaces) -> tuple[str, tuple[str, ...]]:
    """A token's role and namespaces as asked for in a body, or a 400 with the field (`workflow`:
    a 403 from `grant_refusal`, it is never granted through the API)."""
    if role == WORKFLOW:
        raise grant_refusal(Caller("-", None), role, ())
    if role not in ROLES:
        raise ValidationFailed.at("role", f"one of {', '.join(ROLES)}")
    if not isinstance(namespaces, list) or not namespaces:
        raise ValidationFailed.at("namespaces", f"a non-empty list of namespace names, or [\"{ALL_NAMESPACES}\"]")
    if len(namespaces) > MAX_NAMESPACES:
        raise ValidationFailed.at("namespaces", f"at most {MAX_NAMESPACES} namespaces")
    errors = [FieldError(f"namespaces[{i}]", "lowercase letters, digits and '-', at most 63 characters, or \"*\"")
              for i, n in enumerate(namespaces)
              if not isinstance(n, str) or not (n == ALL_NAMESPACES or NAMESPACE.match(n))]
    if errors:
        raise ValidationFailed("Invalid input", errors)
    if ALL_NAMESPACES in namespaces and len(namespaces) > 1:
        raise ValidationFailed.at("namespaces", f"\"{ALL_NAMESPACES}\" stands alone: it is every namespace")
    return role, tuple(sorted(set(namespaces)))


def within(caller: Caller, namespaces: Iterable[str]) -> bool:
    """Are these namespaces all the caller's own? ("*" only for a caller of "*".)"""
    if ALL_NAMESPACES in caller.namespaces:
        return True
    return all(n != ALL_NAMESPACES and n in caller.namespaces for n in namespaces)


def grant_refusal(caller: Caller, role: str, namespaces: tuple[str, ...]) -> Forbidden | None:
    """A token no wider than the caller's: its role held by the caller's (an admin grants any
    role; no other role manages tokens) and its namespaces among the caller's."""
    errors = []
    if role == WORKFLOW:
        errors.append(FieldError("role", "workflow tokens are minted by the control plane for one workflow's runs, "
                                         "never through the API"))
    elif caller.role != ADMIN:
        errors.append(FieldError("role", f"a token with role {caller.role} may not create {role} tokens"))
    if not within(caller, namespaces):
        wider = [n for n in namespaces if not caller.may_touch(n) or n == ALL_NAMESPACES]
        errors.append(FieldError("namespaces", f"beyond this token's own namespaces: {', '.join(wider)}"))
    return Forbidden("Forbidden", errors) if errors else None


# -- IAM principals (auth_mode iam) ----------------------------------------------------------

_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")


def iam_principals(text: str | None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """VAMP_IAM_PRINCIPALS: `{"<IAM ARN>": {"role": ..., "namespaces": [...]}}` -> ARN -> (role,
    namespaces). ValueError when malformed (the caller refuses everyone then)."""
    if not text:
        return {}
    raw = json_map_setting("VAMP_IAM_PRINCIPALS", text, "a map of IAM ARN -> {role, namespaces}")
    out = {}
    for arn, grant in raw.items():
        if not isinstance(grant, dict) or set(grant) - {"role", "namespaces"}:
            raise ValueError(f"VAMP_IAM_PRINCIPALS[{arn}]: {{role, namespaces}}")
        try:
            out[arn] = checked_grant(grant.get("role"), grant.get("namespaces"))
        except ValidationFailed as e:
            raise ValueError(f"VAMP_IAM_PRINCIPALS[{arn}]: {e}") from None
    return out


def iam_caller(arn: str, principals: dict[str, tuple[str, tuple[str, ...]]]) -> Caller:
    """The caller an IAM identity is: its own ARN's grant, else (a role's session) the role's;
    role None when neither is mapped (every call refused)."""
    grant = principals.get(arn)
    m = _ASSUMED_ROLE.match(arn)
    if grant is None and m:
        grant = principals.get(f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}")
    if grant is None:
        return Caller(arn, None)
    return Caller(arn, *grant)
