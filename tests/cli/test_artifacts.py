"""Vamp's artifact commands against a real local stack: Vamp's sample YAML, a deployment with
--wait, weights changed and read back, events, and the errors a user sees (issue 15)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from tests.cli.conftest import ROOT, vamp_command


def command_blueprint(version: str, port: int | None = None) -> dict:
    from local.demo_release import blueprint

    return blueprint(version, port=port)


def test_vamps_sample_is_created_and_listed_in_every_format(vamp):
    run = vamp("create", "-f", str(ROOT / "examples" / "sava.yaml"))
    assert run.code == 0, run
    assert "blueprints sava created (201)" in run.out and "breeds sava:1.0.0 created (201)" in run.out
    table = vamp("list", "blueprints")
    assert table.code == 0, table
    assert table.out.split()[:3] == ["NAME", "CLUSTERS", "ENDPOINTS"] and "9050/http" in table.out
    breeds = vamp("list", "breeds")
    assert "DEPLOYABLE" in breeds.out and "magneticio/sava:1.1.0" in breeds.out
    as_json = json.loads(vamp("list", "breeds", "-o", "json").out)
    as_yaml = yaml.safe_load(vamp("-o", "yaml", "list", "breeds").out)
    names = vamp("list", "breeds", "-o", "name").out.split()
    assert [b["name"] for b in as_json] == [b["name"] for b in as_yaml] == names == ["sava:1.0.0", "sava:1.1.0"]
    paged = vamp("list", "breeds", "--per-page", "1", "-o", "name")
    assert paged.out.split() == ["sava:1.0.0"]
    assert vamp("list", "breeds", "--per-page", "1", "--page", "2", "-o", "name").out.split() == ["sava:1.1.0"]
    assert vamp("inspect", "blueprint", "sava", "-o", "name").out.strip() == "sava"
    described = vamp("describe", "blueprint", "sava")
    assert described.code == 0 and yaml.safe_load(described.out)["name"] == "sava"


def test_bad_input_names_the_field_and_writes_nothing(vamp):
    run = vamp("create", "breed", "--stdin", input="name: half-a-breed\n")
    assert run.code == 1, run
    assert "400" in run.err and "deployable: required" in run.err
    assert "half-a-breed" not in vamp("list", "breeds", "-o", "name").out
    unknown = vamp("list", "widgets")
    assert unknown.code == 2 and "unknown kind 'widgets'" in unknown.err
    missing = vamp("describe", "blueprint", "no-such")
    assert missing.code == 1 and "404" in missing.err
    checked = vamp("create", "--validate-only", "--stdin", input="kind: scales\nname: tiny\ncpu: 0.1\nmemory: 64MB\n"
                                                                  "instances: 1\n")
    assert checked.code == 0 and "valid" in checked.out, checked
    assert "tiny" not in vamp("list", "scales", "-o", "name").out


def test_generate_pipes_into_create_and_delete_removes(vamp):
    generated = vamp("generate", "breed", "echo:1.0", "--deployable", "echo hi", "--type", "command",
                     "--port", "web=8080/http", "--env", "A=1")
    assert generated.code == 0, generated
    doc = yaml.safe_load(generated.out)
    assert doc == {"kind": "breeds", "name": "echo:1.0", "deployable": {"type": "command", "definition": "echo hi"},
                   "ports": {"web": "8080/http"}, "environment_variables": {"A": "1"}}
    created = vamp("create", "--stdin", input=generated.out)
    assert created.code == 0 and "breeds echo:1.0 created (201)" in created.out, created
    blueprint = vamp("generate", "blueprint", "echo", "--breed", "echo:1.0", "--gateway", "9060/http=echo/web")
    assert yaml.safe_load(blueprint.out)["clusters"] == {"echo": {"services": [{"breed": "echo:1.0"}]}}
    assert vamp("create", "--stdin", input=blueprint.out).code == 0
    deleted = vamp("delete", "blueprint", "echo")
    assert deleted.code == 0 and "deleted (204)" in deleted.out, deleted
    assert vamp("delete", "-f", "-", input=generated.out).code == 0
    assert "echo" not in vamp("list", "blueprints", "-o", "name").out
    assert "echo:1.0" not in vamp("list", "breeds", "-o", "name").out


def test_deploy_wait_merge_weights_conditions_and_undeploy(vamp, tmp_path):
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(yaml.safe_dump(command_blueprint("1.0.0")))
    v2.write_text(yaml.safe_dump(command_blueprint("1.1.0")))
    deployed = vamp("deploy", "-f", str(v1), "shop", "--wait", "--timeout", "60")
    assert deployed.code == 0, deployed
    assert "deployments shop accepted (202)" in deployed.out and "deployments shop deployed" in deployed.out
    assert "web/web:1.0.0: deployment done" in deployed.err  # the progress
    listed = vamp("list", "deployments")
    assert listed.out.split()[:4] == ["NAME", "CLUSTERS", "PORTS", "STATUS"]
    assert "shop" in listed.out and "deployed" in listed.out
    merged = vamp("merge", "-f", str(v2), "shop", "--wait", "--timeout", "60")
    assert merged.code == 0 and "merged (202)" in merged.out, merged

    gateway = "shop/web/port"
    changed = vamp("update-gateway", gateway, "--weights", "web:1.0.0@70%,web:1.1.0@30%")
    assert changed.code == 0 and "gateways shop/web/port accepted (202)" in changed.out, changed
    routes = json.loads(vamp("describe", "gateway", gateway, "-o", "json").out)["routes"]
    assert {k.split("/")[2]: r["weight"] for k, r in routes.items()} == {"web:1.0.0": "70%", "web:1.1.0": "30%"}
    conditioned = vamp("update-gateway", gateway, "--route", "web:1.1.0", "--condition", "user-agent == Firefox",
                       "--strength", "50%")
    assert conditioned.code == 0, conditioned
    shown = vamp("describe", "deployment", "shop")
    assert "services" in shown.out and "routes" in shown.out
    row = next(line for line in shown.out.splitlines() if line.startswith("web") and "web:1.1.0" in line
               and "%" in line)
    assert "30%" in row and "user-agent == Firefox" in row and "50%" in row
    assert yaml.safe_load(vamp("describe", "deployment", "shop", "--as-blueprint").out)["kind"] == "blueprints"

    short = vamp("update-gateway", gateway, "--weights", "web:1.0.0@100%")
    assert short.code == 2 and "missing: web:1.1.0" in short.err
    over = vamp("update-gateway", gateway, "--weights", "web:1.0.0@80%,web:1.1.0@30%")
    assert over.code == 1 and "400" in over.err, over

    assert vamp("update-gateway", gateway, "--weights", "web:1.0.0@0%,web:1.1.0@100%").code == 0
    gone = vamp("undeploy", "shop", "--service", "web:1.0.0", "--wait", "--timeout", "60")
    assert gone.code == 0 and "web:1.0.0 undeployed" in gone.out, gone
    services = json.loads(vamp("describe", "deployment", "shop", "-o", "json").out)["clusters"]["web"]["services"]
    assert [s["breed"]["name"] for s in services] == ["web:1.1.0"]
    all_gone = vamp("undeploy", "shop", "--wait", "--timeout", "60")
    assert all_gone.code == 0 and "deployments shop undeployed" in all_gone.out, all_gone
    assert vamp("list", "deployments", "-o", "name").out.strip() == ""


def test_events_are_emitted_listed_and_followed(vamp, stack):
    emitted = vamp("emit", "hello", "--tags", "cli,test", "--type", "note")
    assert emitted.code == 0 and "created (201)" in emitted.out, emitted
    listed = json.loads(vamp("events", "--tag", "cli", "-o", "json").out)
    assert [(e["value"], e["tags"], e["type"]) for e in listed] == [("hello", ["cli", "test"], "note")]
    assert "hello" in vamp("events", "--tag", "cli,test").out
    assert vamp("events", "--tag", "cli", "--type", "other", "-o", "json").out.strip() == "[]"

    follower = subprocess.Popen([*vamp_command(), "events", "--tag", "cli", "--follow", "-o", "json"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=vamp.env, cwd=vamp.home)
    try:
        first = json.loads(follower.stdout.readline())  # what was there before
        assert first["value"] == "hello"
        time.sleep(0.5)  # the stream is open (its cursor is the newest event listed, so nothing is missed anyway)
        assert vamp("emit", "again", "--tags", "cli").code == 0
        second = json.loads(follower.stdout.readline())
        assert second["value"] == "again" and second["tags"] == ["cli"]
    finally:
        follower.terminate()
        follower.wait(10)


def test_a_wrong_token_and_no_api_get_plain_messages_and_exit_codes(vamp, stack):
    wrong = vamp("info", env={"VAMP_TOKEN": "not-the-token-at-all"})
    assert wrong.code == 1
    assert "401" in wrong.err and "vamp login" in wrong.err and "Traceback" not in wrong.err
    reader = stack.mint_token("cli-reader", "reader", ["default"])
    refused = vamp("create", "scale", "--stdin", input="name: r\ncpu: 1\nmemory: 1GB\ninstances: 1\n",
                   env={"VAMP_TOKEN": reader})
    assert refused.code == 1 and "403 forbidden" in refused.err and "role" in refused.err, refused
    assert vamp("list", "scales", env={"VAMP_TOKEN": reader}).code == 0
    nowhere = vamp("--host", "http://127.0.0.1:9", "list", "blueprints")
    assert nowhere.code == 3 and "cannot reach the Vamp API at http://127.0.0.1:9" in nowhere.err
    info = vamp("info", "-o", "json")
    assert info.code == 0 and json.loads(info.out)["auth"]["role"] == "admin"
    version = json.loads(vamp("version", "-o", "json").out)
    assert version["cli"] and version["api"]


def test_a_deployment_that_fails_ends_wait_with_the_reason(vamp, tmp_path):
    import sys

    doc = {"name": "broken", "clusters": {"app": {"services": [{"breed": {
        "name": "app:1.0.0", "deployable": {"type": "command", "definition": f"{sys.executable} -c 'raise SystemExit(3)'"},
        "ports": {"port": "8080/http"}}}]}}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = vamp("deploy", "-f", str(path), "--wait", "--timeout", "60")
    assert run.code == 1, run
    assert "Error: app/app:1.0.0 failed:" in run.err
    assert vamp("undeploy", "broken", "--force", "--wait", "--timeout", "60").code == 0


def test_update_replaces_one_artifact(vamp):
    assert vamp("create", "scale", "--stdin", input="name: mid\ncpu: 0.5\nmemory: 128MB\ninstances: 1\n").code == 0
    updated = vamp("update", "scale", "mid", "--stdin", input="name: mid\ncpu: 1.0\nmemory: 128MB\ninstances: 2\n")
    assert updated.code == 0 and "scales mid updated (200)" in updated.out, updated
    assert json.loads(vamp("describe", "scale", "mid", "-o", "json").out)["instances"] == 2
    wrong = vamp("update", "scale", "mid", "--stdin", input="name: other\ncpu: 1.0\nmemory: 128MB\ninstances: 2\n")
    assert wrong.code == 1 and "400" in wrong.err and "name" in wrong.err, wrong


def test_a_stored_blueprint_is_deployed_by_name_and_undeployed_by_blueprint(vamp):
    breed = command_blueprint("2.0.0")["clusters"]["web"]["services"][0]["breed"]
    assert vamp("create", "breed", "--stdin", input=yaml.safe_dump(breed)).code == 0
    generated = vamp("generate", "blueprint", "svc", "--cluster", "web", "--breed", "web:2.0.0")
    assert vamp("create", "--stdin", input=generated.out).code == 0
    deployed = vamp("deploy", "svc", "svc-prod", "--wait", "--timeout", "60", "-o", "json")
    assert deployed.code == 0, deployed
    shown = json.loads(deployed.out)  # -o json: the deployment as it is once done; the progress on stderr
    assert shown["name"] == "svc-prod" and shown["clusters"]["web"]["services"][0]["status"]["phase"]["name"] == "done"
    assert "deployments svc-prod deployed" in deployed.err
    gone = vamp("undeploy", "svc-prod", "--blueprint", "svc", "--wait", "--timeout", "60")
    assert gone.code == 0 and "undeployed" in gone.out, gone
    assert "svc-prod" not in vamp("list", "deployments", "-o", "name").out


def test_tables_have_colour_and_fit_on_a_terminal_only(vamp):
    import re

    pexpect = pytest.importorskip("pexpect")
    definition = "registry.example.com/team/" + "very-long-image-name-" * 4 + ":1.0.0"
    assert vamp("create", "breed", "--stdin", input=f"name: long:1\ndeployable: {definition}\n").code == 0
    piped = vamp("list", "breeds")
    assert "\x1b[" not in piped.out and any(definition in line for line in piped.out.splitlines())
    env = {k: v for k, v in vamp.env.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    child = pexpect.spawn(vamp_command()[0], [*vamp_command()[1:], "list", "breeds"], env={**env, "TERM": "xterm"},
                          cwd=str(vamp.home), encoding="utf-8", dimensions=(40, 60), timeout=30)
    child.expect(pexpect.EOF)
    screen = re.sub(r"\x1b\[[0-9;]*m", "", child.before)
    assert "\x1b[" in child.before and "long:1" in screen  # bold headers on a terminal
    assert all(len(line) <= 60 for line in screen.splitlines()), screen  # folded to the terminal's width
    assert vamp("delete", "breed", "long:1").code == 0
