"""What the benchmarks share: a moto server with the project's table, a token, timing helpers."""
from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@contextmanager
def local_aws(table_name: str = "vamp-bench"):
    """moto's server on a free loopback port, the tables created, a token registered."""
    from moto.server import ThreadedMotoServer

    from local import moto_speedups
    from local.stack import free_port

    moto_speedups.apply()  # as the local stack runs it: transactions cost what they touch

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ["VAMP_AWS_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["MOTO_PORT"] = str(port)
    os.environ["VAMP_TABLE_NAME"] = table_name
    os.environ.setdefault("VAMP_EGRESS_ALLOW", "127.0.0.0/8,::1")  # as the local stack: loopback backends (0025)
    from chalicelib.store import table
    from chalicelib.store.tokens import DynamoDBTokenStore

    table.reset_clients()
    table.ensure_tables()
    token, _ = DynamoDBTokenStore().create("bench", role="admin", namespaces=["*"])
    try:
        yield os.environ["VAMP_AWS_ENDPOINT"], token
    finally:
        server.stop()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of samples in seconds."""
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]
    return statistics.median(s) * 1000, p99 * 1000


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
