"""Settings, `show proc` parsing, the metrics text format: no servers."""
from __future__ import annotations

from agent.haproxy import parse_show_proc
from agent.metrics import AgentMetrics
from agent.settings import AgentSettings, parse_args

SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
6488            master          2 [failed: 1]   0d00h00m01s     2.6.12-1+deb12u3
# workers
6592            worker          0               0d00h00m00s     2.6.12-1+deb12u3
6491            worker          1               0d00h00m01s     2.6.12-1+deb12u3
# programs

"""


def test_show_proc():
    state = parse_show_proc(SHOW_PROC)
    assert (state.master_pid, state.reloads, state.failed) == (6488, 2, 1)
    assert state.current_workers == [6592]


def test_settings_from_env_and_flags(monkeypatch):
    monkeypatch.setenv("VAMP_AGENT_NAMESPACE", "team-a")
    monkeypatch.setenv("VAMP_AGENT_API_URL", "http://api:8080/")
    s = parse_args(["--etcd-endpoint", "10.0.0.5:2379", "--spool-max-bytes", "1000", "--haproxy-version", "2.8"])
    assert s.config_key == "/vamp/team-a/gateways/haproxy/2.8/configuration"
    assert s.etcd_host_port == ("10.0.0.5", 2379) and s.spool_max_bytes == 1000
    assert s.events_url == "http://api:8080/team-a/api/v1/events"
    assert parse_args(["--namespace", "default"]).events_url == "http://api:8080/api/v1/events"


def test_defaults():
    s = AgentSettings()
    assert s.config_key == "/vamp/default/gateways/haproxy/2.6/configuration"
    assert s.listen_host_port[0] == "127.0.0.1" and s.events_url is None
    assert s.log_socket_path == s.work_dir / "log.sock"


def test_metrics_text_format():
    m = AgentMetrics()
    m.reloads.inc()
    m.apply_seconds.observe(0.2)
    text = m.registry.render()
    assert "# TYPE vamp_agent_reloads_total counter\nvamp_agent_reloads_total 1\n" in text
    assert 'vamp_agent_apply_latency_seconds_bucket{le="0.25"} 1' in text
    assert 'vamp_agent_apply_latency_seconds_bucket{le="0.1"} 0' in text
    assert "vamp_agent_apply_latency_seconds_count 1" in text
    for name in ("rejected_configs_total", "log_lines_received_total", "log_lines_shipped_total",
                 "log_lines_dropped_total", "log_lines_spooled_total", "spool_bytes", "etcd_reconnects_total"):
        assert f"vamp_agent_{name} " in text


def test_deployment_files_only_name_real_settings():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "infra" / "agent"
    fields = {f"VAMP_AGENT_{name.upper()}" for name in AgentSettings.model_fields}
    docs = list(yaml.safe_load_all((root / "daemonset.yaml").read_text()))
    config_map, secret, daemonset = docs
    named = set(config_map["data"]) | set(secret["stringData"])
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    named |= {e["name"] for e in container["env"] if e["name"].startswith("VAMP_AGENT_")}
    named |= set(re.findall(r"VAMP_AGENT_[A-Z_]+", (root / "vamp-agent.service").read_text()))
    assert named and named <= fields, named - fields
    assert daemonset["spec"]["template"]["spec"]["hostNetwork"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
