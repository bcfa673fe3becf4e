"""Where `vamp` takes its host, token and namespace from (options, VAMP_*, the ~/.vamp profile,
the local stack on disk, in that order), `vamp login`, completion and the package's commands."""

from __future__ import annotations

import json
import stat
import tomllib

import yaml

from tests.cli.conftest import ROOT

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a value that must not have been used


def write_profiles(home, current="default", **profiles) -> None:
    (home / ".vamp").write_text(yaml.safe_dump({"current": current, "profiles": profiles}))


def test_options_beat_the_environment_which_beats_the_profile(bare, stack):
    write_profiles(bare.home, default={"host": NOWHERE, "token": "profile-token-is-wrong"})
    env = {"VAMP_HOST": stack.api_url, "VAMP_TOKEN": stack.token}
    assert bare("info", env=env).code == 0  # the environment over the file
    assert bare("--host", NOWHERE, "info", env=env).code == 3  # the option over the environment
    assert bare("--token", "an-option-token-is-wrong", "info", env=env).code == 1
    assert bare("info").code == 3  # the file alone: its host
    only_host = bare("info", env={"VAMP_HOST": stack.api_url})
    assert only_host.code == 1 and "401" in only_host.err  # host from the env, token from the file


def test_profiles_are_chosen_by_option_environment_or_current(bare, stack):
    good = {"host": stack.api_url, "token": stack.token}
    write_profiles(bare.home, current="broken", broken={"host": NOWHERE}, good=good)
    assert bare("info").code == 3
    assert bare("--profile", "good", "info").code == 0
    assert bare("info", env={"VAMP_PROFILE": "good"}).code == 0
    unknown = bare("--profile", "nope", "info")
    assert unknown.code == 2 and "profile 'nope'" in unknown.err
    namespaced = bare("--profile", "good", "-n", "team-a", "info", "-o", "json")
    assert namespaced.code == 0 and json.loads(namespaced.out)["namespace"] == "team-a"


def test_login_checks_then_keeps_a_profile_only_its_owner_reads(bare, stack):
    refused = bare("login", "--host", stack.api_url, "--token", "a-wrong-token-for-sure", "--profile", "ci")
    assert refused.code == 1 and "401" in refused.err
    assert not (bare.home / ".vamp").exists()  # nothing kept
    prompted = bare("login", "--host", stack.api_url, "--profile", "ci", input=stack.token + "\n")
    assert prompted.code == 0 and "logged in to" in prompted.out, prompted
    path = bare.home / ".vamp"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = yaml.safe_load(path.read_text())
    assert saved["current"] == "ci"
    assert saved["profiles"]["ci"] == {"host": stack.api_url, "token": stack.token, "namespace": "default"}
    assert bare("info").code == 0  # the current profile, nothing else configured
    path.chmod(0o644)
    again = bare("login", "--host", stack.api_url, "--token", stack.token, "--profile", "other")
    assert again.code == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(yaml.safe_load(path.read_text())["profiles"]) == {"ci", "other"}


def test_the_local_stack_is_found_by_itself(bare, stack, tmp_path):
    assert (stack.state_dir / "api").read_text().strip() == stack.api_url
    by_env = bare("info", "-o", "json", env={"VAMP_STATE": str(stack.state_dir)})
    assert by_env.code == 0, by_env
    assert json.loads(by_env.out)["auth"]["role"] == "admin"  # its bootstrap token
    checkout = tmp_path / "checkout"
    (checkout / "sub").mkdir(parents=True)
    (checkout / ".vamp").symlink_to(stack.state_dir)  # as `make run` keeps it in a checkout
    assert bare("info", cwd=checkout / "sub").code == 0
    nothing = bare("info")
    assert nothing.code == 2 and "no Vamp API configured" in nothing.err
    home = tmp_path / "new-home"  # not there yet: login makes it
    kept = bare("login", "--profile", "local", env={"VAMP_STATE": str(stack.state_dir), "HOME": str(home)})
    assert kept.code == 0, kept
    profile = yaml.safe_load((home / ".vamp").read_text())["profiles"]["local"]
    assert profile["host"] == stack.api_url and profile["token"] == stack.token


def test_completion_scripts_for_bash_zsh_and_fish(bare):
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef vamp"), ("fish", "complete --no-files")):
        run = bare("completion", shell)
        assert run.code == 0 and marker in run.out and "_VAMP_COMPLETE" in run.out, (shell, run)
    completed = bare(env={"_VAMP_COMPLETE": "bash_complete", "COMP_WORDS": "vamp li", "COMP_CWORD": "1"})
    assert "plain,list" in completed.out.split()
    kinds = bare(env={"_VAMP_COMPLETE": "bash_complete", "COMP_WORDS": "vamp list dep", "COMP_CWORD": "2"})
    assert "plain,deployments" in kinds.out.split()


def test_names_complete_from_the_api(vamp):
    assert vamp("create", "scale", "--stdin", input="name: completed-scale\ncpu: 1\nmemory: 1GB\ninstances: 1\n").code == 0
    names = vamp(env={"_VAMP_COMPLETE": "bash_complete", "COMP_WORDS": "vamp describe scale comp", "COMP_CWORD": "3"})
    assert names.out.split() == ["plain,completed-scale"], names
    offline = vamp(env={"_VAMP_COMPLETE": "bash_complete", "COMP_WORDS": "vamp describe scale c", "COMP_CWORD": "3",
                        "VAMP_HOST": NOWHERE})
    assert offline.code == 0 and offline.out.strip() == ""


def test_one_package_gives_both_commands_with_pins_from_the_requirements_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"vamp": "vamp_cli.main:main", "vamp-agent": "agent.console:main"}
    dynamic = project["tool"]["setuptools"]["dynamic"]
    files = [dynamic["dependencies"]["file"], *(v["file"] for v in dynamic["optional-dependencies"].values())]
    for name in {f for group in files for f in group}:
        lines = [x.strip() for x in (ROOT / name).read_text().splitlines() if x.strip() and not x.startswith("#")]
        assert lines and all("==" in x and not x.startswith("-") for x in lines), name  # pinned, no -r
    assert set(dynamic["optional-dependencies"]) == {"agent", "dev"}
