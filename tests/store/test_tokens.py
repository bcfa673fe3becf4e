"""The token store against moto's server: hashed, unique names, revoked by name, bootstrap."""
from __future__ import annotations

import pytest

from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.store import table
from chalicelib.store.tokens import DynamoDBTokenStore, hash_token


@pytest.fixture()
def tokens(aws):
    return DynamoDBTokenStore()


def test_a_created_token_authenticates_and_only_its_hash_is_kept(tokens):
    token, entry = tokens.create("ci")
    assert token.startswith("vamp_") and tokens.authenticate(token) == entry and entry.name == "ci"
    item = table.client().get_item(TableName=table.table_name(),
                                   Key={"pk": {"S": "#tokens"}, "sk": {"S": hash_token(token)}})["Item"]
    assert token not in str(item) and item["name"] == {"S": "ci"}
    for wrong in (None, "", "vamp_nope", token + "x", "x" * 201):
        assert tokens.authenticate(wrong) is None


def test_names_are_unique_and_checked(tokens):
    tokens.create("ci")
    with pytest.raises(Conflict):
        tokens.create("ci")
    with pytest.raises(ValidationFailed):
        tokens.create("bad name!")
    with pytest.raises(ValidationFailed):
        tokens.create("short", "too-short")


def test_ensure_registers_a_given_token_once(tokens):
    first = tokens.ensure("local", "a-bootstrap-token-of-some-length")
    assert tokens.ensure("local", "a-bootstrap-token-of-some-length") == first
    with pytest.raises(Conflict):  # the same token under another name
        tokens.create("other", "a-bootstrap-token-of-some-length")


def test_list_by_name_and_revoke_by_name(tokens):
    kept, _ = tokens.create("zeta")
    gone, _ = tokens.create("alpha")
    assert [t.name for t in tokens.list()] == ["alpha", "zeta"]
    tokens.revoke("alpha")
    assert tokens.authenticate(gone) is None and tokens.authenticate(kept) is not None
    with pytest.raises(NotFound):
        tokens.revoke("alpha")
