"""The agent's allowlist from the attacker's side: a configuration signed with the real key (a
leaked key, a bug upstream) that carries anything the renderer never writes is refused, with the
line and the directive named; what the renderer writes passes (tests/gateways/test_allowlist.py
checks that against the renderer itself)."""
from __future__ import annotations

import pytest

from agent import allowlist
from chalicelib.contract.log_format import IDLE_BIND_LINE, TCP_LOG_FORMAT_LINE
from tests.agent.helpers import haproxy_config

GOOD = haproxy_config(20001, [("a", 20002, 80), ("b", 20003, 20)])
BACKEND = "backend rt.shop__9050.shop__web"


def refused(text: str) -> list[str]:
    return [str(r) for r in allowlist.check(text)]


def test_what_the_renderer_writes_passes():
    assert refused(GOOD) == []
    tcp = GOOD.replace("    mode http\n", "    mode http\n", 1) + "\n".join([
        "frontend gw.db", "    bind 0.0.0.0:20010", "    mode tcp", f"    {TCP_LOG_FORMAT_LINE}",
        "    tcp-request content set-var(txn.vamp_w) rand(100)",
        "    use_backend rt.db.main if { var(txn.vamp_w) -m int lt 100 }",
        "frontend vamp.idle", f"    {IDLE_BIND_LINE}",
        "backend rt.db.main", "    mode tcp", "    balance leastconn",
        "    server db.example.com:5432 db.example.com:5432 weight 100 check resolvers vamp resolve-prefer ipv4",
    ]) + "\n"
    assert refused(tcp) == []


# (the line added, where, the directive the refusal must name, words of its reason)
ATTACKS = [
    ("    program-name x", "global", "program-name", "not a directive"),
    ("program evil\n    command /bin/sh -c 'touch /tmp/pwned'", "end", "program", "runs a command"),
    ("    lua-load /tmp/evil.lua", "global", "lua-load", "runs Lua code"),
    ("    lua-prepend-path /tmp/?.lua", "global", "lua-prepend-path", "runs Lua code"),
    ("    external-check", "global", "external-check", "runs a command"),
    ("    option external-check\n    external-check command /bin/sh", BACKEND, "option", "never renders"),
    ("    setenv AWS_SECRET_ACCESS_KEY x", "global", "setenv", "environment"),
    ("    presetenv X y", "global", "presetenv", "environment"),
    ("    resetenv", "global", "resetenv", "environment"),
    ("    unsetenv PATH", "global", "unsetenv", "environment"),
    ("    stats socket /tmp/admin.sock level admin", "global", "stats", "socket"),
    ("    stats socket ipv4@0.0.0.0:9999 level admin", "defaults", "stats", "socket"),
    ("    errorfile 503 /etc/shadow", BACKEND, "errorfile", "reads a file"),
    ("    log /dev/log local0", "global", "log", "constant lines|never renders"),
    ("    log 10.0.0.1:514 local0", "global", "log", "never renders"),
    ("    load-server-state-from-file global", "defaults", "load-server-state-from-file", "reads a file"),
    ("    server-state-file /etc/passwd", "global", "server-state-file", "reads a file"),
    ("    bind 127.0.0.1:20443 ssl crt /etc/ssl/private/key.pem", "frontend gw.shop__9050", "bind", "never renders"),
    ("    server s 10.0.0.1:443 ssl ca-file /etc/ssl/ca.pem", BACKEND, "server", "never renders"),
    ("    acl leak path -f /etc/passwd", BACKEND, "acl", "flag '-f'"),
    ("    acl leak req.hdr(x),map(/root/.aws/credentials) -m found", BACKEND, "acl", "converter 'map'"),
    ("    acl leak req.hdr(x),map_str(x) -m found", BACKEND, "acl", "converter 'map_str'"),
    ("    http-request set-path %[env(VAMP_AGENT_API_TOKEN)] if TRUE", BACKEND, "http-request", "'env'"),
    ("    http-request set-path %[lua.leak] if TRUE", BACKEND, "http-request", "'lua.leak'"),
    ("    use_backend rt.shop__9050.shop__web if { env(HOME) -m found }", "frontend gw.shop__9050", "use_backend",
     "'env'"),
    ('    http-request set-header X-Token "${VAMP_AGENT_API_TOKEN}"', BACKEND, "http-request", "quotes or `$`"),
    ("    s\\x65tenv X y", "global", "s\\x65tenv", "backslash"),
    ("    maxconn 10 # and then", "global", "maxconn", "inline `#`"),
    (".if defined(X)\n    setenv X y\n.endif", "global", ".if", "conditional block"),
    ("    chroot /", "global", "chroot", "file system root"),
    ("    user root", "global", "user", "changes its user"),
    ("    daemon", "global", "daemon", "detaches"),
    ("global\n    maxconn 1", "end", "global", "second global"),
    ("listen admin\n    bind 0.0.0.0:8404", "end", "listen", "not a section"),
    ("userlist admins\n    user admin insecure-password x", "end", "userlist", "not a section"),
    ("peers mesh\n    peer evil 10.0.0.9:1024", "end", "peers", "not a section"),
    ("resolvers evil\n    nameserver dns 10.0.0.53:53", "end", "resolvers", "section header"),
    ("defaults evil", "end", "defaults", "section header"),
    ("    timeout tunnel 1h", "defaults", "timeout", "never renders"),
    ("    http-request redirect location http://evil.example/", BACKEND, "http-request", "never renders"),
    ("    server evil unix@/var/run/docker.sock", BACKEND, "server", "never renders"),
    ("    server évil 10.0.0.1:80", BACKEND, "server", "outside printable ASCII"),
]


@pytest.mark.parametrize("line, where, directive, reason", ATTACKS, ids=[a[2] + ":" + a[3] for a in ATTACKS])
def test_a_signed_configuration_with_what_the_renderer_never_writes_is_refused(line, where, directive, reason):
    if where == "end":
        text = GOOD + line + "\n"
    else:
        header = where if where in ("global", "defaults") else where
        assert header + "\n" in GOOD, header
        text = GOOD.replace(header + "\n", header + "\n" + line + "\n", 1)
    refusals = allowlist.check(text)
    assert refusals, text
    first = refusals[0]
    assert first.keyword == directive, [str(r) for r in refusals]
    assert any(word in str(first) for word in reason.split("|")), str(first)
    assert f"line {first.line}" in str(first) and text.split("\n")[first.line - 1].strip().startswith(directive)


def test_a_refusal_names_the_gateway_of_its_section():
    text = GOOD.replace(BACKEND + "\n", BACKEND + "\n    errorfile 503 /etc/shadow\n")
    refusals = allowlist.check(text)
    assert [r.gateway for r in refusals] == ["shop/9050"] and allowlist.gateways(refusals) == ["shop/9050"]
    assert allowlist.gateways(allowlist.check(GOOD.replace("global\n", "global\n    setenv X y\n", 1))) == []


def test_every_line_of_a_refused_section_is_refused_too():
    refusals = allowlist.check(GOOD + "program evil\n    command /bin/true\n    no option start-on-reload\n")
    assert [r.keyword for r in refusals] == ["program", "command", "no"]
    assert all(r.gateway is None for r in refusals)
