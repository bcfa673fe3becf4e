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


def vamp_command() -> list[str]:
    # the installed console script when it is this checkout's (make setup), else the module
    found = shutil.which("vamp")
    if found and os.environ.get("VAMP_CLI_TESTS_INSTALLED"):
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
