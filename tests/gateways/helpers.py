"""Helpers of the gateway tests: `haproxy -c` on a rendered text, gateway documents."""
from __future__ import annotations

import os
import subprocess
import tempfile


def haproxy_check(text: str) -> tuple[bool, str]:
    """(valid, HAProxy's messages) of `haproxy -c` on the text, with the agent's environment."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text)
        env = {**os.environ, "VAMP_LOG_SOCKET": os.path.join(tmp, "log.sock")}
        out = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True, env=env, timeout=60)
    return out.returncode == 0, out.stdout + out.stderr


def split_gateway(name: str, port: int, a: int, b: int, weights: tuple[int, int], **extra) -> dict:
    """A gateway of two external routes to local backends at the given weights."""
    routes = {f"[127.0.0.1:{a}]": {"weight": f"{weights[0]}%"}, f"[127.0.0.1:{b}]": {"weight": f"{weights[1]}%"}}
    return {"name": name, "port": f"{port}/http", "routes": routes, **extra}


def request(port: int, headers: dict | None = None, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One request on a fresh connection: (status, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def tally(port: int, n: int, headers: dict | None = None, threads: int = 4) -> dict[str, int]:
    """Bodies (the backends' names) of n requests, and failures under "error <status>"."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        try:
            status, body = request(port, headers)
            return body if status == 200 else f"error {status}"
        except OSError as e:
            return f"error {type(e).__name__}"

    with ThreadPoolExecutor(threads) as pool:
        return dict(Counter(pool.map(one, range(n))))
