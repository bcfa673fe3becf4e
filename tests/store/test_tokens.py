"""The token store against moto's server: hashed, unique names, roles and namespaces kept, revoked
by name, bootstrap; items from before roles are admins of every namespace."""
from __future__ import annotations

import pytest

from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.store import table
from chalicelib.store.tokens import DynamoDBTokenStore, StoredToken, hash_token

ADMIN = {"role": "admin", "namespaces": ["*"]}


@pytest.fixture()
def tokens(aws):
    return DynamoDBTokenStore()


def test_a_created_token_authenticates_and_only_its_hash_is_kept(tokens):
    token, entry = tokens.create("ci", **ADMIN)
    assert token.startswith("vamp_") and tokens.authenticate(token) == entry and entry.name == "ci"
    item = table.client().get_item(TableName=table.table_name(),
                                   Key={"pk": {"S": "#tokens"}, "sk": {"S": hash_token(token)}})["Item"]
    assert token not in str(item) and item["name"] == {"S": "ci"}
    for wrong in (None, "", "vamp_nope", token + "x", "x" * 201):
        assert tokens.authenticate(wrong) is None


def test_names_are_unique_and_checked(tokens):
    tokens.create("ci", **ADMIN)
    with pytest.raises(Conflict):
        tokens.create("ci", **ADMIN)
    with pytest.raises(ValidationFailed):
        tokens.create("bad name!", **ADMIN)
    with pytest.raises(ValidationFailed):
        tokens.create("short", "too-short", **ADMIN)


def test_ensure_registers_a_given_token_once(tokens):
    first = tokens.ensure("local", "a-bootstrap-token-of-some-length", **ADMIN)
    assert tokens.ensure("local", "a-bootstrap-token-of-some-length", **ADMIN) == first
    with pytest.raises(Conflict):  # the same token under another name
        tokens.create("other", "a-bootstrap-token-of-some-length", **ADMIN)


def test_list_by_name_and_revoke_by_name(tokens):
    kept, _ = tokens.create("zeta", **ADMIN)
    gone, _ = tokens.create("alpha", **ADMIN)
    assert [t.name for t in tokens.list()] == ["alpha", "zeta"]
    tokens.revoke("alpha")
    assert tokens.authenticate(gone) is None and tokens.authenticate(kept) is not None
    with pytest.raises(NotFound):
        tokens.revoke("alpha")


def test_role_and_namespaces_are_kept_and_checked(tokens):
    token, entry = tokens.create("team-a-ci", role="operator", namespaces=["team-a", "team-b"])
    assert tokens.authenticate(token) == entry == tokens.named("team-a-ci")
    assert (entry.role, entry.namespaces) == ("operator", ("team-a", "team-b"))
    for bad in ({"role": "root", "namespaces": ["*"]}, {"role": "reader", "namespaces": []},
                {"role": "reader", "namespaces": "team-a"}):
        with pytest.raises(ValidationFailed):
            tokens.create("x", **bad)
    assert tokens.named("x") is None


def test_an_item_from_before_roles_is_an_admin_of_every_namespace(tokens):
    """Before roles every token was that: the migration keeps them working as they did."""
    table.client().put_item(TableName=table.table_name(), Item={
        "pk": {"S": "#tokens"}, "sk": {"S": hash_token("an-old-token-of-some-length")},
        "name": {"S": "old"}, "created": {"S": "2025-01-01T00:00:00Z"}})
    assert tokens.authenticate("an-old-token-of-some-length") == StoredToken("old", "2025-01-01T00:00:00Z", "admin", ("*",))
