"""`vamp token create|list|revoke` against the local stack: the token shown once, usable at once,
refused once revoked; grants beyond the caller's are refused with the field and the reason."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_create_shows_the_token_once_list_never_and_revoke_ends_it(vamp):
    made = vamp("token", "create", "ci", "--role", "operator", "--namespace", "default")
    assert made.code == 0, made.err
    token = made.out.strip()
    assert len(token) >= 32 and "\n" not in token  # stdout is the token alone: TOKEN=$(vamp token create ...)
    assert "token ci created: role operator, namespaces default (shown once" in made.err
    listed = vamp("token", "list")
    assert listed.code == 0 and token not in listed.out
    row = next(line for line in listed.out.splitlines() if line.split()[:1] == ["ci"])
    assert row.split()[1:3] == ["operator", "default"], listed.out
    assert "ci" in vamp("token", "list", "-o", "name").out.split()

    as_ci = {"VAMP_TOKEN": token}
    assert vamp("release", "list", env=as_ci).code == 0
    revoked = vamp("token", "revoke", "ci")
    assert revoked.code == 0 and "token ci revoked" in revoked.out
    refused = vamp("release", "list", env=as_ci)
    assert refused.code == 1 and "401" in refused.err and "revoked" in refused.err, refused.err
    again = vamp("token", "revoke", "ci")
    assert again.code == 1 and "404" in again.err and "name: not found" in again.err, again.err


def test_bad_grants_are_refused_with_the_field(vamp):
    bad_role = vamp("token", "create", "x", "--role", "emperor")
    assert bad_role.code == 1 and "400" in bad_role.err and "role:" in bad_role.err, bad_role.err
    made = vamp("token", "create", "op", "--role", "operator")
    operator = {"VAMP_TOKEN": made.out.strip()}
    no_grant = vamp("token", "create", "y", "--role", "reader", env=operator)
    assert no_grant.code == 1 and "403" in no_grant.err and "role:" in no_grant.err, no_grant.err
    scoped = {"VAMP_TOKEN": vamp("token", "create", "ns-admin", "--role", "admin",
                                         "--namespace", "default").out.strip()}
    wider = vamp("token", "create", "z", "--role", "reader", "--namespace", "other", env=scoped)
    assert wider.code == 1 and "403" in wider.err and "namespaces: beyond" in wider.err, wider.err
    assert vamp("token", "create").code == 2  # NAME and --role are required: click's usage error
