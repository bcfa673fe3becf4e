"""`vamp release ...` against a whole local stack: examples/canary/service.py deployed by the
local driver behind a gateway, traffic through HAProxy, a short policy (one 50% step, checks every
2 s, 1 s agent windows). A healthy version is started with --wait and promoted (exit 0, one line
per change); a version answering 500s is watched in a pseudo-terminal to its rollback (exit 4)."""
from __future__ import annotations

import io
import re
import sys

import pytest

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r")


@pytest.fixture(scope="module")
def demo(stack):
    """Version 1 running behind its gateway with traffic on it, the policy stored."""
    from rich.console import Console

    from local.demo_release import Api, Demo, Profile, Traffic, demo_port

    operator = stack.mint_token("cli-release", "operator", ["default"])
    profile = Profile(steps=("50%",), interval=2, failures=1, minimum_requests=5, rate=40, timeout=40)
    d = Demo(Api(stack.api_url, operator), Console(file=io.StringIO(), width=150), profile, stack.agent.url)
    d.store_policy()
    port = demo_port()
    d.deploy_v1(port)
    d.traffic = Traffic(port, profile.rate).start()
    d.operator = operator
    try:
        yield d
    finally:
        d.traffic.stop()
        d.undeploy()


@pytest.fixture(scope="module")
def cli(vamp, demo):
    """`vamp` (tests/cli/conftest.py) as the demo's operator."""
    def run(*args: str, env: dict | None = None, **kw):
        return vamp(*args, env={"VAMP_TOKEN": demo.operator, **(env or {})}, **kw)
    run.env = {**vamp.env, "VAMP_TOKEN": demo.operator}
    run.home = vamp.home
    return run


def _start_args(name: str, stable: str, canary: str) -> list[str]:
    from local.demo_release import INTERNAL, POLICY, route

    return ["release", "start", name, "--gateway", INTERNAL, "--stable", route(stable), "--canary", route(canary),
            "--policy", POLICY]


# The tests depend on each other's releases through these fixtures, not their order: pytest-xdist
# may hand the module's tests to different workers (each then runs what its tests need).
@pytest.fixture(scope="module")
def promoted(demo, cli):
    """Version 2 merged and released with --wait: the Run; version 1 gone afterwards."""
    demo.merge("2")
    ran = cli(*_start_args("canary-v2", "1", "2"), "--wait", "--timeout", "60")
    if ran.code == 0:
        demo._until_deployed({"2"}, "the promotion to remove version 1")
    return ran


@pytest.fixture(scope="module")
def failing_canary(demo):
    """Version 3 merged, every answer a 500: the version serving now (1, or 2 once promoted)."""
    weights = demo.api.gateway_weights()
    stable = max(weights, key=weights.get).split("/")[2].removeprefix("web:")
    demo.merge("3", fail_rate=1.0)
    return stable


def test_start_wait_follows_a_healthy_canary_to_promotion_one_line_per_change(promoted, cli):
    ran = promoted
    assert ran.code == 0, (ran.out, ran.err)
    # Vamp's status lines first and last (stdout in table format), between them one line per change
    assert ran.out.startswith("release canary-v2 started: ") and "release canary-v2 promoted" in ran.out, ran.out
    lines = [line for line in ran.out.splitlines() if not line.startswith("release canary-v2 ")]
    assert all(line.startswith("canary-v2: ") for line in lines), ran.out
    assert lines[0].startswith("canary-v2: phase progressing"), ran.out
    assert "canary-v2: step 1/1 weight 50%" in lines, ran.out
    checks = [line for line in lines if " check " in line or line.startswith("canary-v2: check ")]
    passed = [line for line in checks if "PASS" in line]
    assert passed and "success_rate" in passed[-1] and ">= 95%" in passed[-1] and "p99" in passed[-1], ran.out
    assert any(line.startswith("canary-v2: waiting: ") for line in lines), ran.out  # what the phase waits for
    promoted = [i for i, line in enumerate(lines) if line.startswith("canary-v2: phase promoted")]
    assert promoted and lines[promoted[0]:] in (lines[-1:], lines[-2:]), ran.out
    assert lines[-1] in ("canary-v2: step 1/1 weight 100%",) or lines[-1].startswith("canary-v2: phase promoted")
    assert len(lines) == len(set(lines)), "a line repeated: " + ran.out  # nothing shown twice
    # the status table afterwards: the phase, the plan, each check's figures against its thresholds
    status = cli("release", "status", "canary-v2")
    assert status.code == 0, status.err
    assert re.search(r"phase\s+promoted", status.out) and "success_rate: 100% (>= 95%)" in status.out, status.out
    listed = cli("release", "list", "-o", "name")
    assert "canary-v2" in listed.out.split()
    finished = cli("release", "pause", "canary-v2")
    assert finished.code == 1 and "409" in finished.err and "cannot pause" in finished.err, finished.err


def test_watch_in_a_terminal_shows_the_live_view_and_exits_4_on_rollback(failing_canary, cli):
    pexpect = pytest.importorskip("pexpect")
    started = cli(*_start_args("canary-v3", failing_canary, "3"))
    assert started.code == 0 and "release canary-v3 started" in started.out, started
    term = {k: v for k, v in cli.env.items() if k not in ("NO_COLOR", "COLUMNS")} | {"TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "vamp_cli", "release", "watch", "canary-v3", "--timeout", "60"],
                          env=term, cwd=str(cli.home), dimensions=(50, 180), encoding="utf-8", timeout=70)
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before)
    assert "release canary-v3" in screen and "phase rolled_back" in screen, screen
    assert re.search(r"weight (50|0)%", screen) and "plan:" in screen, screen
    # a check row: the failing success rate against its minimum, the verdict
    assert re.search(r"success_rate: 0% \(>= 95%\)", screen) and "fail" in screen, screen
    assert "traffic per version" in screen and "stable" in screen and "canary" in screen, screen
    assert child.exitstatus == 4, screen


def test_bad_input_is_refused_with_the_field_and_the_reason(cli):
    missing = cli("release", "start", "x", "--gateway", "g")
    assert missing.code == 2 and "--stable" in missing.err and "--policy" in missing.err
    unknown = cli("release", "start", "x", "--gateway", "canary/web/port", "--stable", "a", "--canary", "b",
                   "--policy", "no-such-policy")
    assert unknown.code == 1 and "policy" in unknown.err and "no-such-policy" in unknown.err, unknown.err
    assert "Traceback" not in unknown.err
    gone = cli("release", "watch", "nobody")
    assert gone.code == 1 and "404" in gone.err, gone.err


def test_a_wrong_token_is_refused_plainly(vamp):
    ran = vamp("release", "list", env={"VAMP_TOKEN": "not-a-token-at-all-0123456789"})
    assert ran.code == 1 and "401" in ran.err and "token" in ran.err and "Traceback" not in ran.err, ran.err


def test_an_aborted_release_ends_the_watch_with_5(failing_canary, cli, tmp_path):
    import subprocess

    from local.demo_release import INTERNAL, route

    # an inline policy from a file, checks a minute apart: only the abort ends it
    release = tmp_path / "release.yaml"
    release.write_text(f"name: canary-abort\ngateway: {INTERNAL}\nstable: {route(failing_canary)}\ncanary: {route('3')}\n"
                       "policy:\n  steps: [50%]\n  interval: 60s\n  failures: 1\n  minimum_requests: 5\n"
                       "  metrics: {success_rate: {minimum: 95%}}\n")
    watcher = subprocess.Popen([sys.executable, "-m", "vamp_cli", "release", "start", "-f", str(release), "--wait",
                                "--timeout", "60"], env=cli.env, cwd=str(cli.home), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = watcher.stdout.readline()
        assert first.startswith("release canary-abort started"), first + watcher.stderr.read()
        aborted = cli("release", "abort", "canary-abort")
        assert aborted.code == 0 and "release canary-abort abort requested" in aborted.out, aborted
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 5, out + err
    assert "canary-abort: phase rolled_back: aborted through the API" in out, out
