"""The house's rules, read from the code's own imports (docs/architecture.md):

- dependencies point one way: api -> domain (artifacts, gateways, deployments, releases, jobs)
  -> store and drivers -> dsl and the base modules (errors, settings, kinds, retry, aws, contract);
- no import circle between packages, counting imports inside functions too;
- `import app` (every request's cold start) loads no heavy library.
The agent's side (it imports only chalicelib.contract) is held by tests/contract/test_boundaries.py.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHALICELIB = ROOT / "chalicelib"

# What each part of chalicelib may import of the others (besides itself).
BASE = {"chalicelib", "chalicelib.errors", "chalicelib.settings", "chalicelib.kinds", "chalicelib.retry",
        "chalicelib.contract", "chalicelib.aws", "chalicelib.text"}
ALLOWED: dict[str, set[str]] = {
    "chalicelib.contract": set(),
    "chalicelib.errors": set(),
    "chalicelib.settings": set(),
    "chalicelib.retry": set(),
    "chalicelib.text": set(),
    "chalicelib.aws": {"chalicelib.settings"},
    "chalicelib.kinds": {"chalicelib.errors"},
    "chalicelib.dsl": BASE,
    "chalicelib.store": BASE | {"chalicelib.dsl"},
    "chalicelib.drivers": BASE,
    "chalicelib.kv": BASE,  # the published configurations' KV store (docs/decisions/0036)
    "chalicelib.gateways": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.kv"},
    "chalicelib.workflows": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.gateways",
                                    "chalicelib.drivers"},  # 0039 (script runs on the driver)
    "chalicelib.artifacts": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.gateways",
                                    "chalicelib.workflows"},
    "chalicelib.deployments": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.drivers",
                                      "chalicelib.gateways", "chalicelib.artifacts"},
    "chalicelib.releases": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.gateways",
                                   "chalicelib.artifacts", "chalicelib.deployments"},
    # SLAs and escalations (issue 14): checks from the telemetry, escalations through deployments.
    "chalicelib.slas": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.gateways", "chalicelib.deployments",
                               "chalicelib.releases", "chalicelib.workflows"},  # 0044: its events trigger workflows
    # EventBridge automations (docs/decisions/0041): start and abort releases, merge breeds
    "chalicelib.automations": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.artifacts",
                                      "chalicelib.deployments", "chalicelib.releases",
                                      "chalicelib.workflows", "chalicelib.slas"},  # 0044: triggers, escalations
    "chalicelib.jobs": BASE | {"chalicelib.store", "chalicelib.gateways", "chalicelib.deployments",
                               "chalicelib.releases", "chalicelib.slas",
                               "chalicelib.workflows"},  # the daemons' pass (0043)
    "chalicelib.api": BASE | {"chalicelib.dsl", "chalicelib.store", "chalicelib.gateways", "chalicelib.artifacts",
                              "chalicelib.workflows",
                              "chalicelib.deployments", "chalicelib.releases", "chalicelib.drivers"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imported(path: Path) -> set[str]:
    """Every chalicelib module `path` imports, at module level or inside functions, but not
    under `if TYPE_CHECKING:` (annotations only, never run)."""
    tree = ast.parse(path.read_text())
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package[:len(package) - child.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return {m for m in found if m == "chalicelib" or m.startswith("chalicelib.")}


def _existing(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in CHALICELIB.rglob("*.py"):
        part = _part(_module_name(path))
        for target in imported(path):
            if _existing(target) and _part(target) != part:
                edges.setdefault(part, set()).add(_part(target))
    return edges


def test_every_part_of_chalicelib_has_a_layer():
    parts = {_part(_module_name(p)) for p in CHALICELIB.rglob("*.py")} - {"chalicelib"}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED (and to docs/architecture.md)"


def test_dependencies_point_one_way():
    wrong = {(a, b) for a, targets in _edges().items() for b in targets if b not in ALLOWED.get(a, set())}
    assert not wrong, f"imports against the layering: {sorted(wrong)}"


def test_no_import_circle_between_parts():
    edges = _edges()
    state: dict[str, int] = {}

    def cycle_from(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
            if not state.get(nxt):
                found = cycle_from(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if not state.get(start):
            found = cycle_from(start, [start])
            assert found is None, f"import circle: {' -> '.join(found)}"


@pytest.mark.parametrize("heavy", ["pydantic", "jinja2", "yaml", "etcd3gw", "kubernetes", "opensearchpy"])
def test_import_app_loads_no_heavy_library(heavy):
    # Every Lambda cold start pays for what `import app` loads; these are imported where used.
    code = f"import sys, app; print({heavy!r} in {{m.split('.')[0] for m in sys.modules}})"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"
