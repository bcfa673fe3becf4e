"""The few `etcdctl` (v3) commands infra/agent/etcd-auth.sh runs, over etcd's own JSON gateway
(the same API etcdctl calls by gRPC), for machines without etcdctl (Debian's etcd-server has no
client): `user add NAME --interactive=false` (the password on stdin), `role add`, `role
grant-permission ROLE --prefix=true read|write|readwrite KEY`, `user grant-role USER ROLE`,
`auth enable` (as etcdctl does it: the root role made and granted to root when missing). Any
other command or flag: exit 2, so the script cannot pass by using something this does not do.

    python3 tests/infra/etcdctl_shim.py --endpoints=https://127.0.0.1:2379 --cacert=ca.crt <command>
"""
from __future__ import annotations

import base64
import sys

import requests


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prefix_end(key: str) -> str:
    """etcdctl's --prefix range end: the key with its last byte incremented."""
    raw = bytearray(key.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return raw.decode("latin-1")
        raw.pop()
    return "\0"


def main(argv: list[str]) -> int:
    options = {}
    while argv and argv[0].startswith("--") and argv[0].split("=", 1)[0] in ("--endpoints", "--cacert"):
        name, value = argv.pop(0)[2:].split("=", 1)
        options[name] = value
    endpoint, cacert = options["endpoints"], options["cacert"]

    def call(path: str, body: dict) -> dict:
        r = requests.post(f"{endpoint}/v3/auth/{path}", json=body, timeout=10, verify=cacert)
        answer = r.json()
        if r.status_code != 200 or "error" in answer:
            raise RuntimeError(f"{path}: {r.status_code} {answer}")
        return answer

    match argv:
        case ["user", "add", name, "--interactive=false"]:
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                print("no password on stdin", file=sys.stderr)
                return 1
            call("user/add", {"name": name, "password": password})
        case ["role", "add", name]:
            call("role/add", {"name": name})
        case ["role", "grant-permission", role, "--prefix=true", perm, key] if perm in ("read", "write", "readwrite"):
            call("role/grant", {"name": role, "perm": {"permType": perm.upper(), "key": b64(key),
                                                       "range_end": b64(prefix_end(key))}})
        case ["user", "grant-role", user, role]:
            call("user/grant", {"user": user, "role": role})
        case ["auth", "enable"]:
            try:
                call("enable", {})
            except RuntimeError as e:
                if "root user does not have root role" not in str(e) and "role root does not exist" not in str(e):
                    raise
                call("role/add", {"name": "root"})
                call("user/grant", {"user": "root", "role": "root"})
                call("enable", {})
        case _:
            print(f"etcdctl_shim: not a command etcd-auth.sh may use: {argv}", file=sys.stderr)
            return 2
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
