"""`make bench`: runs every benchmark and prints its figures."""
from __future__ import annotations

import importlib
import sys

BENCHES = ["bench.cold_start", "bench.artifact_api", "bench.bench_agent", "bench.gateways", "bench.releases", "bench.deployments",
           "bench.aged_table", "bench.idle", "bench.local_state", "bench.local_restart", "bench.chaos",
           "bench.workflows"]


def main() -> None:
    only = sys.argv[1:]
    for name in BENCHES:
        if only and not any(o in name for o in only):
            continue
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
