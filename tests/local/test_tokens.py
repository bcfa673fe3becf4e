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


def test_a_stack_restarted_with_another_api_token_takes_it_and_drops_the_old_one(aws, tmp_path, monkeypatch):
    store = DynamoDBTokenStore()
    for given in ("first-bootstrap-token-0001", "second-bootstrap-token-0002"):
        monkeypatch.setenv("VAMP_API_TOKEN", given)
        stack = LocalStack(state_dir=tmp_path, serve=False).start()  # the table holds the last run's `local`
        stack.stop()
        assert stack.token == given
    assert store.authenticate("first-bootstrap-token-0001") is None  # one bootstrap admin: the last given
    found = store.authenticate("second-bootstrap-token-0002")
    assert (found.name, found.role, found.namespaces) == ("local", "admin", ("*",))
    assert [t.name for t in store.list()] == ["local"]
    assert (tmp_path / "token").read_text().strip() == "second-bootstrap-token-0002"


def test_a_short_api_token_stops_the_stack_with_one_line_naming_it(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "VAMP_API_TOKEN": "too-short", "VAMP_STATE_DIR": str(tmp_path), "VAMP_PORT": "1"}
    ran = subprocess.run([sys.executable, "-m", "local", "run"], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.strip().splitlines() == ["Error: VAMP_API_TOKEN must be at least 16 characters (it is the admin of "
                                               "every namespace); unset it and the stack makes one"]
    assert not list(tmp_path.iterdir())  # nothing started, nothing written
