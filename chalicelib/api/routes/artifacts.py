"""Artifacts by kind (`/api/v1/<kind>[/<name>]`) and the multi-document root `/api/v1`."""
from __future__ import annotations

from chalicelib import artifacts
from chalicelib.api import authorization, pagination
from chalicelib.api.backends import artifact_store, publish_events
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.api.routes import nodes
from chalicelib.artifacts import Document
from chalicelib.deployments import route_targets
from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.kinds import ACCEPTED_KINDS, kind_in_path, normalize_kind
from chalicelib.settings import settings


def _expected_version(call: Call) -> int | None:
    raw = call.header("if-match")
    if raw is None:
        return None
    try:
        version = int(raw.strip().strip('W/').strip('"'))
        if version < 1:
            raise ValueError
        return version
    except ValueError:
        raise ValidationFailed.at("If-Match", "an artifact version (ETag) such as \"3\"") from None


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _status(kind: str, static: int) -> int:
    return 202 if kind in ACCEPTED_KINDS else static


def _body(outcomes: list[artifacts.Outcome], many: bool):
    docs = [o.document for o in outcomes]
    return docs if many else docs[0]


def _single_headers(outcomes: list[artifacts.Outcome]) -> dict[str, str]:
    if len(outcomes) == 1 and outcomes[0].artifact is not None:
        return _etag(outcomes[0].artifact.version)
    return {}


# -- artifacts by kind -----------------------------------------------------------------------

def list_artifacts(call: Call, kind: str) -> Reply:
    kind = kind_in_path(kind)
    page, per_page = pagination.page_params(call.query, settings().per_page_max)
    store = artifact_store()
    result = artifacts.list_page(store, call.namespace, kind, page, per_page)
    expand, only = call.flag("expand_references"), call.flag("only_references")
    body = [artifacts.shape(store, call.namespace, kind, a.document, expand=expand, only=only) for a in result.items]
    return Reply(200, body, pagination.page_headers(call.path, call.query, page, per_page, result.total))


def get_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = kind_in_path(kind), decoded_name(name)
    store = artifact_store()
    found = artifacts.get(store, call.namespace, kind, name)
    body = artifacts.shape(store, call.namespace, kind, found.document,
                           expand=call.flag("expand_references"), only=call.flag("only_references"))
    if kind == "gateways":  # read-only: which nodes serve it (the DSL drops it on input)
        body = {**body, "nodes": nodes.namespace_view(call.namespace, name)}
    return Reply(200, body, _etag(found.version))


def create_artifacts(call: Call, kind: str) -> Reply:
    kind = kind_in_path(kind)
    docs = call.documents()
    many = len(docs) != 1
    documents = [Document(kind, d, f"[{i}]" if many else "") for i, d in enumerate(docs)]
    outcomes = artifacts.change(artifact_store(), publish_events, call.namespace, documents, "create",
                                validate_only=call.flag("validate_only"), targets=route_targets.source)
    return Reply(_status(kind, 201), _body(outcomes, many), _single_headers(outcomes))


def update_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = kind_in_path(kind), decoded_name(name)
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one document expected, got {len(docs)}")
    data = docs[0]
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": name}  # Vamp lets the path name the artifact
    if call.caller is not None and call.caller.role == authorization.WORKFLOW:  # 0044: never creates one
        refused = authorization.workflow_gateway_refusal(
            call.caller, artifact_store().get(call.namespace, kind, name) is not None)
        if refused is not None:
            raise refused
    outcomes = artifacts.change(artifact_store(), publish_events, call.namespace, [Document(kind, data)], "upsert",
                                validate_only=call.flag("validate_only"), url_name=name,
                                expected_version=_expected_version(call), targets=route_targets.source)
    return Reply(_status(kind, 200), outcomes[0].document, _single_headers(outcomes))


def delete_artifact(call: Call, kind: str, name: str) -> Reply:
    kind, name = kind_in_path(kind), decoded_name(name)
    artifacts.change(artifact_store(), publish_events, call.namespace, [Document(kind, {"name": name})], "delete",
                     validate_only=call.flag("validate_only"), expected_version=_expected_version(call),
                     targets=route_targets.source)
    return Reply(_status(kind, 204), None)


# -- the multi-document root /api/v1 ---------------------------------------------------------

def _root_documents(call: Call) -> list[Document]:
    docs = call.documents()
    out, errors = [], []
    for i, d in enumerate(docs):
        kind = d.get("kind") if isinstance(d, dict) else None
        if not isinstance(kind, str):
            errors.append(FieldError(f"[{i}].kind", "every document of a stream needs a kind"))
            continue
        try:
            normalize_kind(kind)
        except ValidationFailed as e:
            errors += [FieldError(f"[{i}].kind", x.reason) for x in e.errors]
            continue
        out.append(Document(kind, d, f"[{i}]"))
    if errors:
        raise ValidationFailed("Invalid input", errors)
    return out


def root_change(call: Call, mode: artifacts.Mode) -> Reply:
    documents = _root_documents(call)
    if mode == "delete":
        documents = [Document(d.kind, {"name": d.data.get("name")}, d.path) for d in documents]
    outcomes = artifacts.change(artifact_store(), publish_events, call.namespace, documents, mode,
                                validate_only=call.flag("validate_only"), targets=route_targets.source)
    kinds = {o.kind for o in outcomes}
    static = {"create": 201, "upsert": 200, "delete": 204}[mode]
    status = 202 if kinds & ACCEPTED_KINDS else static
    return Reply(status, None if mode == "delete" else [o.document for o in outcomes])
