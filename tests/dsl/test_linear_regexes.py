"""Finding 8 of issue 10: every regex of chalicelib/ and agent/ is linear on inputs up to the body
size limit (docs/decisions/0024).

Found by import and by reading the sources (tests/dsl/regex_audit.py), so a new pattern is
covered without being listed. Two checks: the static one on the parsed pattern, and 1 MB
adversarial inputs derived from each pattern, run in a child process whose CPU time is capped
per pattern (RLIMIT_CPU): a super-linear pattern needs hours on 1 MB and is killed; a linear
one needs milliseconds. The cap bounds work (CPU seconds, whatever the machine's load), not
wall time, and is three orders of magnitude above what the linear patterns take.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from chalicelib.settings import Settings
from tests.dsl import regex_audit as audit

SIZE = Settings().max_body_bytes  # no request carries a longer string
BUDGET = 20  # CPU seconds per pattern; the linear ones take well under one

# Patterns built at run time, and where their text comes from.
BUILT_AT_RUN_TIME = {
    "chalicelib.gateways.haproxy:_filter": "the literal FILTERS table, collected through the filters' closures",
    "agent.allowlist:_line": "the literal SECTIONS and HEADERS tables, collected there",
    "agent.allowlist:_exact": "the contract's constant lines in SECTIONS, collected there",
    "chalicelib.dsl.selector:_regex": "a selector's value (at most 1 KiB), compiled only to know it compiles, "
                                      "as Vamp refuses one that does not; never matched against anything",
}

# What the fixes of issue 10 replaced: the checks must keep refusing them.
QUADRATIC = [
    r"^ *(\d+) *%? *$",  # dsl/units.py: "1" + 40,000 spaces + "x" took 4.2 s
    r"^ *(\d+) *(?:/ *([a-zA-Z]+))? *$",  # dsl/units.py's port
    r"^ *(\d+(?:\.\d+)?) *(ms|s)? *$",  # dsl/release.py's latency
    r"^\s*(\S+)\s+if\s+(.+?)\s*$",  # dsl/rewrite.py
    r"%\[([^\]]*)\]",  # gateways/acl.py, searched
    r"\$(\$|\{([^}]*)\}|([A-Za-z0-9_\-.]*[A-Za-z0-9_\-]))",  # dsl/breed.py, searched
    r"a.*a.*a.*a.*a.*a.*b",  # what dsl/breed.matches built from the wildcard `a*a*a*a*a*a*b`
    r"^(?:a.*){8}b$",
    r"(a+)+$", r"^(a|aa)*b$", r"^(\w+\s?)*$",
]


@pytest.fixture(scope="module")
def found():
    return audit.collect()


def test_every_pattern_is_found(found):
    """The collection sees the patterns this issue fixed, compiled and inline alike."""
    patterns, _dynamic, _engines = found
    where = {f.where for f in patterns}
    for name in ("chalicelib.dsl.units._PORT_RE", "chalicelib.dsl.rewrite._SPLIT_RE",
                 "chalicelib.dsl.release._LATENCY_RE", "chalicelib.gateways.ports._PORT_RE",
                 "agent.haproxy._MASTER",
                 "chalicelib.gateways.haproxy.FILTERS['ident'].<closure>"):
        assert name in where, name
    assert any(w.startswith("chalicelib.drivers.base:") for w in where)  # re.sub("...", ...) in a body
    from chalicelib.dsl import breed

    assert breed._VALUE_REF_RE.pattern in {f.pattern for f in patterns}  # one entry with environment.py's twin
    assert len(patterns) > 40


def test_no_pattern_is_built_at_run_time_unseen(found):
    _patterns, dynamic, _engines = found
    assert set(dynamic) <= set(BUILT_AT_RUN_TIME), (
        "a regex built at run time: make it a module constant so this test sees it, "
        f"or say where its text comes from in BUILT_AT_RUN_TIME: {sorted(set(dynamic) - set(BUILT_AT_RUN_TIME))}")


def test_pydantic_patterns_stay_on_the_linear_engine(found):
    """`Field(pattern=...)` runs on pydantic-core's Rust regex (linear by construction) unless a
    model asks for python-re."""
    assert found[2] == []


@pytest.mark.parametrize("pattern", QUADRATIC)
def test_the_static_check_refuses_the_old_patterns(pattern):
    assert audit.problems(pattern), pattern


def test_every_pattern_passes_the_static_check(found):
    patterns, _dynamic, _engines = found
    bad = {f"{f.where}: {f.pattern!r}": audit.problems(f.pattern, f.flags) for f in patterns}
    assert {k: v for k, v in bad.items() if v} == {}


def run(cases: list[tuple[str, int]], budget: int) -> tuple[int, list[str]]:
    """Each (pattern, flags) on its attacks in a child process; (exit code, its lines)."""
    payload = [[p, f, audit.attacks(p, f), not audit.anchored(p, f)] for p, f in cases]
    child = subprocess.run([sys.executable, "-c", audit.RUNNER], input=json.dumps([budget, SIZE, payload]),
                           capture_output=True, text=True)
    return child.returncode, child.stdout.splitlines()


def test_every_pattern_is_linear_on_1_mb_adversarial_inputs(found):
    patterns, _dynamic, _engines = found
    cases = [(f.pattern, f.flags) for f in patterns]
    code, lines = run(cases, BUDGET)
    if code != 0:
        _run, i, j = lines[-1].split() if lines and lines[-1].startswith("run") else ("", "-1", "-1")
        pattern = patterns[int(i)] if int(i) >= 0 else None
        attack = audit.attacks(pattern.pattern, pattern.flags)[int(j)] if pattern else None
        pytest.fail(f"exit {code} ({'over its CPU budget' if code == -signal.SIGXCPU else 'crashed'}) on "
                    f"{pattern} with (prefix, pump, suffix) {attack!r}")
    assert lines[-1] == "all done"


def test_the_cpu_budget_catches_a_quadratic_pattern():
    """The harness itself: the old port pattern on its own attack is killed over its budget."""
    code, lines = run([(QUADRATIC[0], 0)], budget=2)
    assert code == -signal.SIGXCPU, lines[-3:]


def test_the_old_port_attack_is_refused_by_the_dsl():
    """The input of the finding, through the DSL's parsers (a 400 at the API, test_bounds.py)."""
    from chalicelib.dsl.units import parse_port

    with pytest.raises(ValueError, match="invalid port"):
        parse_port("1" + " " * 40_000 + "x")
