"""Settings, `show proc` parsing, the metrics text format: no servers."""
from __future__ import annotations

from prometheus_client import generate_latest

from agent.backoff import Backoff, Policy
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


def test_backoff_doubles_up_to_the_cap_and_starts_over_after_a_success():
    exact = Backoff(Policy(first=0.1, jitter=False), cap=0.5)
    assert [exact.pause() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    exact.reset()
    assert exact.pause() == 0.1
    jittered = Backoff(Policy(first=0.1, jitter=True), cap=0.5)
    for ceiling in (0.1, 0.2, 0.4, 0.5, 0.5):
        assert ceiling / 2 <= jittered.pause() <= ceiling


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


# What dashboards read: these names, exactly, and no others (prometheus_client's `_created` is off).
EXPORTED = {
    "vamp_agent_reloads_total": "counter", "vamp_agent_reload_failures_total": "counter",
    "vamp_agent_rejected_configs_total": "counter", "vamp_agent_apply_latency_seconds": "histogram",
    "vamp_agent_haproxy_restarts_total": "counter", "vamp_agent_etcd_reconnects_total": "counter",
    "vamp_agent_etcd_connected": "gauge", "vamp_agent_log_lines_received_total": "counter",
    "vamp_agent_log_lines_invalid_total": "counter", "vamp_agent_log_lines_shipped_total": "counter",
    "vamp_agent_log_lines_dropped_total": "counter", "vamp_agent_log_lines_spooled_total": "counter",
    "vamp_agent_log_lines_dead_lettered_total": "counter",
    "vamp_agent_log_socket_queue_length": "gauge", "vamp_agent_spool_bytes": "gauge",
    "vamp_agent_ship_failures_total": "counter", "vamp_agent_metric_events_posted_total": "counter",
    "vamp_agent_metric_events_dropped_total": "counter",
}


def test_metrics_text_format():
    m = AgentMetrics()
    m.reloads.inc()
    m.apply_seconds.observe(0.2)
    text = generate_latest(m.registry).decode()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    assert types == EXPORTED
    samples = {line.split("{")[0].split()[0] for line in text.splitlines() if not line.startswith("#")}
    histogram = {f"vamp_agent_apply_latency_seconds_{s}" for s in ("bucket", "sum", "count")}
    assert samples == set(EXPORTED) - {"vamp_agent_apply_latency_seconds"} | histogram
    assert "# TYPE vamp_agent_reloads_total counter\nvamp_agent_reloads_total 1.0\n" in text
    assert 'vamp_agent_apply_latency_seconds_bucket{le="0.25"} 1.0' in text
    assert 'vamp_agent_apply_latency_seconds_bucket{le="0.1"} 0.0' in text
    assert "vamp_agent_apply_latency_seconds_count 1.0" in text


def test_two_agents_in_one_process_count_apart():
    one, two = AgentMetrics(), AgentMetrics()
    one.reloads.inc()
    assert one.registry.get_sample_value("vamp_agent_reloads_total") == 1
    assert two.registry.get_sample_value("vamp_agent_reloads_total") == 0


def _manifests():
    """infra/agent as kustomize renders its base (the ConfigMap from base/agent.env), and the
    agent's Secret as a stage's overlay generates it (its keys: infra/cluster.AGENT_SECRETS)."""
    from pathlib import Path

    import yaml

    from infra.cluster import AGENT_SECRETS

    root = Path(__file__).resolve().parents[2] / "infra" / "agent"
    docs = list(yaml.safe_load_all((root / "base" / "daemonset.yaml").read_text()))
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    env = dict(line.split("=", 1) for line in (root / "base" / "agent.env").read_text().splitlines()
               if line and not line.startswith("#"))
    config_map = {"kind": "ConfigMap", "data": env}
    secret = {"kind": "Secret", "stringData": dict.fromkeys(AGENT_SECRETS, "")}
    return root, config_map, secret, daemonset


def test_deployment_files_only_name_real_settings():
    import re

    root, config_map, secret, daemonset = _manifests()
    fields = {f"VAMP_AGENT_{name.upper()}" for name in AgentSettings.model_fields}
    named = set(config_map["data"])
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    named |= {e["name"] for e in container["env"] if e["name"].startswith("VAMP_AGENT_")}
    named |= set(re.findall(r"VAMP_AGENT_[A-Z_]+", (root / "vamp-agent.service").read_text()))
    assert named and named <= fields, named - fields
    assert daemonset["spec"]["template"]["spec"]["hostNetwork"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # Every secret the container gets is a file of the Secret's volume, named by a *_FILE setting.
    files = {e["value"].rsplit("/", 1)[1] for e in container["env"] if e["name"].endswith("_FILE")}
    assert files <= set(secret["stringData"]) and {"api-token", "signing-key"} <= files


def test_the_daemonset_runs_the_agent_unprivileged_with_its_status_on_loopback():
    """Finding 13: root, the pod IP, secrets as variables. Each field a cluster would enforce."""
    _, config_map, secret, daemonset = _manifests()
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == 10001
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"} == pod["securityContext"]["seccompProfile"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VAMP_AGENT_LISTEN"].startswith("127.0.0.1:")  # hostNetwork: the node's loopback
    assert AgentSettings(listen=env["VAMP_AGENT_LISTEN"]).listens_on_loopback
    assert container["readinessProbe"]["httpGet"]["host"] == "127.0.0.1"
    assert container["livenessProbe"]["tcpSocket"]["host"] == "127.0.0.1"
    assert "ports" not in container  # nothing advertised beyond the node
    assert not any(k in env for k in ("VAMP_AGENT_API_TOKEN", "VAMP_AGENT_SIGNING_KEY", "VAMP_AGENT_ETCD_PASSWORD"))
    assert all("secretRef" not in source for source in container.get("envFrom", []))  # secrets: files only
    assert "--api-token" not in " ".join(container.get("args", []))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["secret"]["defaultMode"] == 0o400 and pod["securityContext"]["fsGroup"] == 10001
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] is True
    # The one privileged container prepares the node and runs nothing else.
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["sh", "-c"] and set(init["command"][2].split(" && ")) == {
        "sysctl -w net.unix.max_dgram_qlen=4096", "chown 10001:10001 /var/lib/vamp-agent",
        "chmod 0700 /var/lib/vamp-agent"}
    assert "metadata" not in daemonset["spec"]["template"] or "prometheus.io/scrape" not in (
        daemonset["spec"]["template"]["metadata"].get("annotations") or {})


def test_the_image_runs_as_its_own_user_with_the_one_capability():
    root, *_ = _manifests()
    dockerfile = (root / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile and "useradd --system --uid 10001" in dockerfile
    assert dockerfile.count("setcap cap_net_bind_service=+ep") == 2  # python and haproxy, nothing else
    unit = (root / "vamp-agent.service").read_text()
    assert "User=vamp-agent" in unit and "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit
    assert "NoNewPrivileges=yes" in unit and "LoadCredential=api-token:" in unit


def test_status_server_answers_healthz_metrics_and_404():
    import requests

    from agent.http import StatusServer

    m, state = AgentMetrics(), {"ok": False}
    server = StatusServer("127.0.0.1", 0, lambda: (state["ok"], {"status": "x"}), m.registry)
    server.start()
    try:
        r = requests.get(server.url + "/healthz", timeout=5)
        assert (r.status_code, r.headers["Content-Type"], r.json()) == (503, "application/json", {"status": "x"})
        state["ok"] = True
        assert requests.get(server.url + "/healthz?verbose", timeout=5).status_code == 200
        r = requests.get(server.url + "/metrics", timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "vamp_agent_reloads_total 0.0" in r.text
        r = requests.get(server.url + "/other", timeout=5)
        assert (r.status_code, r.json()) == (404, {"error": "not found"})
    finally:
        server.stop()


def test_the_gateways_haproxy_names_in_its_messages():
    from agent.applier import named_gateways

    text = b"global\n    maxconn 1\nfrontend gw.shop__9050\n    bind 127.0.0.1:1\nbackend rt.cart.web\n    balance uri depth\n"
    assert named_gateways("[ALERT] (1) : config : parsing [/w/candidate.cfg:6] : balance uri : 'depth' ...", text) == (
        "cart",)
    assert named_gateways("[ALERT] (8) : Binding [/w/haproxy.cfg:4] for frontend gw.shop__9050: cannot bind socket "
                          "(Address already in use) for [127.0.0.1:38989]", text) == ("shop/9050",)
    assert named_gateways("[ALERT] config : Proxy 'gw.shop__9050': unable to find required use_backend: "
                          "'rt.missing.x'.", text) == ("shop/9050",)
    assert named_gateways("[ALERT] parsing [/w/candidate.cfg:2] : 'maxconn' ...", text) == ()  # global: no gateway
    assert named_gateways("[ALERT] config : Proxy 'vh.virtual-hosts': ...", text) == ()
