"""The CLI's tests: one real local stack per module (local.demo_release.isolated_stack: moto,
the API on a free loopback port, etcd, the agent) and `vamp` run as a user runs it, a process of
its own with HOME in a tmp dir (no ~/.vamp of the machine's), configured by the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _installed_here(script: str) -> bool:
    """The `vamp` on PATH is this checkout's editable install (make setup) in this Python."""
    import importlib.metadata
    import json

    try:
        with open(script, "rb") as f:
            shebang = f.readline().decode(errors="replace")[2:].strip()
        # the installed one (a checkout's vamp_serverless.egg-info, found first from the cwd, has no direct_url)
        urls = [d.read_text("direct_url.json") for d in importlib.metadata.distributions(name="vamp-serverless")]
        url = json.loads(next((u for u in urls if u), "{}"))
    except (OSError, ValueError):
        return False
    same_python = Path(shebang).resolve() == Path(sys.executable).resolve()
    return same_python and url.get("dir_info", {}).get("editable") and url.get("url") == ROOT.as_uri()


def vamp_command() -> list[str]:
    """The installed console script when it is this checkout's, else the module it runs
    (`vamp = vamp_cli.main:main`: the same entry point)."""
    found = shutil.which("vamp")
    if found and _installed_here(found):
        return [found]
    return [sys.executable, "-m", "vamp_cli"]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Cli:
    home: Path
    env: dict

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None, cwd: Path | None = None,
                 timeout: float = 120) -> Run:
        p = subprocess.run([*vamp_command(), *args], input=input, capture_output=True, text=True,
                           env={**self.env, **(env or {})}, cwd=cwd or self.home, timeout=timeout)
        return Run(p.returncode, p.stdout, p.stderr)


def _base_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAMP_")}
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1"})
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from local.demo_release import isolated_stack

    with isolated_stack(tmp_path_factory.mktemp("stack"), window=1.0) as running:
        yield running


@pytest.fixture(scope="module")
def vamp(stack, tmp_path_factory) -> Cli:
    """`vamp` against the module's stack (VAMP_HOST and VAMP_TOKEN, the bootstrap admin)."""
    home = tmp_path_factory.mktemp("home")
    return Cli(home, {**_base_env(home), "VAMP_HOST": stack.api_url, "VAMP_TOKEN": stack.token})


@pytest.fixture()
def bare(tmp_path) -> Cli:
    """`vamp` with nothing configured: an empty HOME, no VAMP_* variables."""
    return Cli(tmp_path, _base_env(tmp_path))
