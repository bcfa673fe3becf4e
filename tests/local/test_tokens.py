"""The local tooling mints scoped tokens (decision 0022): `python -m local token create` with a
role and namespaces (the API's checks offline too), and the stack's own tokens for the demo and
the agent, replaced rather than piled up when a stack starts again."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from chalicelib.errors import ValidationFailed
from chalicelib.store.tokens import DynamoDBTokenStore
from local.__main__ import cli
from local.stack import LocalStack


def run(*args: str):
    return CliRunner().invoke(cli, ["token", "--aws", *args])


def test_an_operator_mints_a_scoped_token_and_bad_scopes_are_refused(aws):
    made = run("create", "team-a-ci", "--role", "operator", "--namespaces", "team-a, team-b")
    assert made.exit_code == 0, made.output
    found = DynamoDBTokenStore().authenticate(made.output.strip())
    assert (found.name, found.role, found.namespaces) == ("team-a-ci", "operator", ("team-a", "team-b"))
    assert "team-a-ci\toperator\tteam-a,team-b\t" in run("list").output
    for bad, reason in ((["--role", "root", "--namespaces", "a"], "root"),
                        (["--role", "reader", "--namespaces", "Team_A"], "namespaces[0]"),
                        (["--role", "reader", "--namespaces", "*,team-a"], "stands alone"),
                        (["--role", "reader"], "--namespaces")):
        refused = run("create", "other", *bad)
        assert refused.exit_code != 0 and reason in refused.output, refused.output
    assert [t.name for t in DynamoDBTokenStore().list()] == ["team-a-ci"]  # nothing else written
    assert run("revoke", "team-a-ci").exit_code == 0
    assert DynamoDBTokenStore().authenticate(made.output.strip()) is None


def test_the_stacks_agent_token_is_an_agent_of_its_namespace_and_replaced_on_restart(aws):
    stack = LocalStack()
    first = stack.mint_token("local-agent", "agent", ["default"], replace=True)
    second = stack.mint_token("local-agent", "agent", ["default"], replace=True)  # the next start
    store = DynamoDBTokenStore()
    assert store.authenticate(first) is None  # the last run's is revoked
    found = store.authenticate(second)
    assert (found.role, found.namespaces) == ("agent", ("default",))
    with pytest.raises(ValidationFailed):
        stack.mint_token("demo", "operator", ["Not A Namespace"])
