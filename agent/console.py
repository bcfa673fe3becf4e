"""The `vamp-agent` console script (pyproject.toml): `python -m agent` by another name, saying what
to install when the agent's dependencies are missing (`pip install .` alone is the CLI's,
docs/decisions/0046-one-package.md)."""
from __future__ import annotations

import sys


def main() -> None:
    try:
        from agent.__main__ import main as run
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("agent", "chalicelib"):
            raise
        print(f"vamp-agent: {e.name} is missing: the agent's dependencies come with the `agent` extra "
              "(pip install 'vamp-serverless[agent]', or pip install -r agent/requirements.txt)", file=sys.stderr)
        sys.exit(2)
    sys.exit(run())
