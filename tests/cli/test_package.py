"""`pip install .` on a machine with nothing of the project: both commands (docs/decisions/0046)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import ROOT

pytestmark = pytest.mark.slow


def test_pip_install_gives_vamp_and_vamp_agent(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    outside = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60}  # nothing of the checkout
    help_ = subprocess.run([venv / "bin" / "vamp", "--help"], **outside)
    assert help_.returncode == 0 and "update-gateway" in help_.stdout, help_.stderr
    completion = subprocess.run([venv / "bin" / "vamp", "completion", "zsh"], **outside)
    assert completion.returncode == 0 and "#compdef vamp" in completion.stdout
    agent = subprocess.run([venv / "bin" / "vamp-agent", "--help"], **outside)
    assert agent.returncode == 2 and "'vamp-serverless[agent]'" in agent.stderr, agent.stderr  # the CLI alone
    shut_out = subprocess.run([venv / "bin" / "python", "-c", "import chalicelib.gateways"], **outside)
    assert shut_out.returncode != 0  # installed, chalicelib is the contract alone (0015)
