"""The agent's secrets from the attacker's side: a user of the node reads command lines (`ps`)
and any process's environment it may (/proc/<pid>/environ); a configuration can read HAProxy's
own ("${X}", env()). The token reaches the agent by file, and HAProxy holds no secret at all."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from agent.haproxy import PIDFILE, master_cli, parse_show_proc
from agent.settings import AgentSettings, SettingsError, parse_args
from local.agent import LocalAgent
from tests.agent.helpers import SIGNING_KEY, free_port, get, haproxy_config, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

AGENT_TOKEN = "agent-token-" + uuid.uuid4().hex
STACK_SECRETS = {"VAMP_API_TOKEN": "stack-admin-" + uuid.uuid4().hex,
                 "AWS_SECRET_ACCESS_KEY": "aws-secret-" + uuid.uuid4().hex,
                 "VAMP_ETCD_PASSWORD": "etcd-pw-" + uuid.uuid4().hex}


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def given_to_haproxy(env: dict[str, str]) -> set[str]:
    """The variables of a HAProxy process but those HAProxy sets itself (HAPROXY_CFGFILES, ...)."""
    return {name for name in env if not name.startswith("HAPROXY_")}


def haproxy_pids(work_dir: Path) -> list[int]:
    """The master and its workers."""
    state = parse_show_proc(master_cli(work_dir / "master.sock", "show proc"))
    return [state.master_pid, *(pid for pid, _ in state.workers)]


def test_the_local_agent_gets_its_token_by_file_and_haproxy_gets_no_secret(live_etcd, backends, fake_api, tmp_path,
                                                                           monkeypatch):
    a, _ = backends
    for name, value in STACK_SECRETS.items():  # what the local stack's own process holds
        monkeypatch.setenv(name, value)
    key_file = tmp_path / "gateway-signing.key"
    key_file.write_text(SIGNING_KEY + "\n")
    namespace = f"s{uuid.uuid4().hex[:8]}"
    work = tmp_path / "agent"
    agent = LocalAgent(etcd_endpoint=live_etcd.endpoint, api_url=fake_api.url, api_token=AGENT_TOKEN, work_dir=work,
                       listen_port=free_port(), log_file=tmp_path / "agent.log", namespace=namespace,
                       signing_key_file=key_file).start()
    try:
        pid = agent.proc.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"python" in cmdline and b"--api-token-file" in cmdline
        assert AGENT_TOKEN.encode() not in cmdline and SIGNING_KEY.encode() not in cmdline
        agent_env = environ(pid)
        assert not {AGENT_TOKEN, SIGNING_KEY, *STACK_SECRETS.values()} & set(agent_env.values())
        token_file = Path(cmdline.split(b"\0")[cmdline.split(b"\0").index(b"--api-token-file") + 1].decode())
        assert token_file.read_text().strip() == AGENT_TOKEN and not token_file.is_relative_to(work)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700

        port = free_port()
        live_etcd.publish(namespace, 1, haproxy_config(port, [("a", a.port, 100)]))
        wait_for(lambda: agent.health().get("config_generation") == 1, 20, what="the configuration applied")
        assert get(port) == "A"
        wait_for(lambda: fake_api.puts, 10, what="an acknowledgement")
        assert fake_api.puts[-1]["headers"]["Authorization"] == f"Bearer {AGENT_TOKEN}"  # the file's token works

        pids = haproxy_pids(work)
        assert len(pids) >= 2
        for haproxy_pid in pids:
            env = environ(haproxy_pid)
            assert given_to_haproxy(env) == {"PATH", "VAMP_LOG_SOCKET", "VAMP_NODE_ADDRESS"}, env
            assert not {AGENT_TOKEN, SIGNING_KEY, *STACK_SECRETS.values()} & set(env.values())
            assert (work / PIDFILE).read_text().strip() == str(pids[0])
    finally:
        agent.stop()


def test_an_in_process_agent_started_with_secrets_in_its_environment_gives_haproxy_none(
        start_agent, live_etcd, backends, fake_api, namespace, monkeypatch):
    a, _ = backends
    for name, value in {**STACK_SECRETS, "VAMP_AGENT_API_TOKEN": AGENT_TOKEN}.items():
        monkeypatch.setenv(name, value)
    agent = start_agent(namespace=namespace, api_url=fake_api.url)
    assert agent.agent.settings.api_token_value == AGENT_TOKEN
    port = free_port()
    agent.put(haproxy_config(port, [("a", a.port, 100)]))
    agent.wait_reloads(1)
    for pid in haproxy_pids(agent.agent.settings.work_dir):
        env = environ(pid)
        assert given_to_haproxy(env) == {"PATH", "VAMP_LOG_SOCKET", "VAMP_NODE_ADDRESS"} and AGENT_TOKEN not in env.values(), env
    assert agent.agent.haproxy.env().keys() == {"PATH", "VAMP_LOG_SOCKET", "VAMP_NODE_ADDRESS"}  # `haproxy -c` runs with it too


def test_a_secret_on_the_command_line_is_refused():
    for flag in ("--api-token", "--signing-key", "--status-token", "--etcd-password"):
        done = subprocess.run([sys.executable, "-m", "agent", flag, "s3cret"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert done.returncode == 2 and "never given on the command line" in done.stderr, done.stderr
        assert f"{flag}-file" in done.stderr


def test_without_a_signing_key_the_agent_does_not_start(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if "SIGNING_KEY" not in k}
    done = subprocess.run([sys.executable, "-m", "agent", "--work-dir", str(tmp_path), "--listen",
                           f"127.0.0.1:{free_port()}", "--etcd-endpoint", "127.0.0.1:1"], cwd=ROOT,
                          capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 2 and "no signing key" in done.stderr, done.stderr
    assert not (tmp_path / PIDFILE).exists() and not (tmp_path / "haproxy.cfg").exists()  # HAProxy never ran
    monkeypatch.delenv("VAMP_AGENT_SIGNING_KEY")
    with pytest.raises(SettingsError, match="no signing key"):
        AgentSettings().check()
    with pytest.raises(SettingsError, match="at least 32"):
        AgentSettings(signing_key="short").check()


def test_status_beyond_loopback_needs_a_token_and_then_every_request_does(start_agent, namespace, tmp_path):
    with pytest.raises(SettingsError, match="beyond loopback"):
        AgentSettings(listen="0.0.0.0:9180").check()
    token_file = tmp_path / "status-token"
    token_file.write_text("status-" + uuid.uuid4().hex + "\n")
    AgentSettings(listen="0.0.0.0:9180", status_token_file=token_file).check()
    assert parse_args(["--listen", "[::1]:9180"]).listens_on_loopback

    agent = start_agent(namespace=namespace, status_token_file=token_file)
    for path in ("/healthz", "/metrics", "/other"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token_file.read_text().strip()}):
            r = requests.get(agent.url + path, headers=headers, timeout=5)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (path, headers)
            assert "config" not in r.text and "vamp_agent" not in r.text
    good = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    assert requests.get(agent.url + "/healthz", headers=good, timeout=5).status_code == 503  # nothing applied yet
    assert "vamp_agent_reloads_total" in requests.get(agent.url + "/metrics", headers=good, timeout=5).text


def test_a_secret_file_wins_over_the_variable_and_an_unreadable_one_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("VAMP_AGENT_API_TOKEN", "from-env")
    token = tmp_path / "token"
    token.write_text("from-file\n")
    assert AgentSettings(api_token_file=token).api_token_value == "from-file"
    assert AgentSettings().api_token_value == "from-env"
    assert "from-env" not in repr(AgentSettings()) and SIGNING_KEY not in repr(AgentSettings())
    with pytest.raises(SettingsError, match="api-token-file"):
        AgentSettings(api_token_file=tmp_path / "missing").check()
