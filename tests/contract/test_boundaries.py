"""What the agent's package may import, read from the sources (ast): the agent nothing of
chalicelib but the contract, the contract only the standard library, and the package installs
every one of the agent's modules (docs/decisions/0015-agent-contract-package.md)."""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "chalicelib.contract"


def imports_of(path: Path) -> set[str]:
    """Every module a source file imports, anywhere in it; `from m import n` counts as m.n (n may be
    a submodule), relative imports are resolved against the file's package."""
    package = list(path.relative_to(ROOT).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def sources(package: str) -> list[Path]:
    found = sorted((ROOT / package.replace(".", "/")).rglob("*.py"))
    assert found, package
    return found


def test_the_agent_imports_nothing_of_chalicelib_but_the_contract():
    outside = {f"{path.relative_to(ROOT)}: {name}" for path in sources("agent") for name in imports_of(path)
               if name.split(".")[0] == "chalicelib" and not (name + ".").startswith(CONTRACT + ".")}
    assert not outside


def test_the_contract_imports_only_the_standard_library():
    foreign = {f"{path.relative_to(ROOT)}: {name}" for path in sources(CONTRACT) for name in imports_of(path)
               if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(CONTRACT + ".")}
    assert not foreign


def test_the_package_installs_every_agent_package_and_the_contract():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    agent = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "agent").rglob("__init__.py")}
    cli = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vamp_cli").rglob("__init__.py")}
    assert sorted(listed) == sorted(agent | cli | {CONTRACT})


def test_the_cli_imports_nothing_of_the_control_plane_or_the_agent():
    # `pip install .` is the CLI alone: it talks HTTP, it shares no code (docs/decisions/0046)
    outside = {f"{path.relative_to(ROOT)}: {name}" for path in sources("vamp_cli") for name in imports_of(path)
               if name.split(".")[0] in ("chalicelib", "agent", "local", "app")}
    assert not outside
