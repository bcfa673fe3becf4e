"""Shared by tests/cli/test_release*.py, test_token*.py, test_workflow*.py: a whole local stack
(local.demo_release.isolated_stack: moto, the API, etcd, the agent with HAProxy, the local
driver) and `vamp` run as a subprocess against it (the installed CLI's code path: its own
process, its own stdout, no TTY)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli_env(stack, token: str, home: Path) -> dict:
    """The CLI's configuration by environment only: no ~/.vamp (HOME is the test's), no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAMP_")}
    env.update({"VAMP_HOST": stack.api_url, "VAMP_TOKEN": token, "HOME": str(home), "NO_COLOR": "1",
                "COLUMNS": "200", "PYTHONPATH": str(ROOT)})
    return env


def vamp(env: dict, *args: str, stdin: str | None = None, timeout: float = 90) -> Ran:
    p = subprocess.run([sys.executable, "-m", "vamp_cli", *args], env=env, cwd=str(ROOT), input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    return Ran(p.returncode, p.stdout, p.stderr)
