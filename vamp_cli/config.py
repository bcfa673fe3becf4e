"""Where host, token and namespace come from, first found wins (Vamp's order):
the option (--host/--token/--namespace), the environment (VAMP_HOST/VAMP_TOKEN/VAMP_NAMESPACE),
the config file's profile (~/.vamp, YAML; --profile/VAMP_PROFILE, else its `current`, else
`default`), then a local stack found on disk (`make run`'s state dir: VAMP_STATE, else .vamp in
the cwd or a parent; its `api` file holds the address, its `token` file the bootstrap token).

The file:  current: default
           profiles: {default: {host: http://127.0.0.1:8080, token: ..., namespace: default}}
It holds tokens, so it is written with mode 0600 (owner only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_PROFILE = "default"
FIELDS = ("host", "token", "namespace")


@dataclass
class Resolved:
    host: str | None
    token: str | None
    namespace: str
    profile: str
    sources: dict  # field -> where it came from ("option", "env", "profile <p>", "local stack <dir>")


def config_path() -> Path:
    return Path(os.environ.get("VAMP_CONFIG") or Path.home() / ".vamp")


def load_file(path: Path | None = None) -> dict:
    path = path or config_path()
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not the CLI's config file: set VAMP_CONFIG to another path")
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with `profiles`")
    data.setdefault("profiles", {})
    return data


def save_profile(name: str, values: dict, *, make_current: bool = True, path: Path | None = None) -> Path:
    """Write one profile into the file, created 0600 (and put back to 0600 if it was wider)."""
    path = path or config_path()
    data = load_file(path) or {"profiles": {}}
    data["profiles"][name] = {k: v for k, v in values.items() if v is not None}
    if make_current:
        data["current"] = name
    text = yaml.safe_dump(data, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def find_local_stack(start: Path | None = None) -> Path | None:
    """The state dir of a local stack: VAMP_STATE (or VAMP_STATE_DIR), else .vamp in the cwd or above."""
    given = os.environ.get("VAMP_STATE") or os.environ.get("VAMP_STATE_DIR")
    if given:
        return Path(given) if (Path(given) / "api").is_file() else None
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".vamp" / "api").is_file():
            return d / ".vamp"
    return None


def local_stack_values(state: Path) -> dict:
    values = {"host": (state / "api").read_text().strip()}
    token = state / "token"
    if token.is_file():
        values["token"] = token.read_text().strip()
    return values


def resolve(*, host: str | None = None, token: str | None = None, namespace: str | None = None,
            profile: str | None = None) -> Resolved:
    given = {"host": host, "token": token, "namespace": namespace}
    env = {f: os.environ.get(f"VAMP_{f.upper()}") or None for f in FIELDS}
    data = load_file()
    chosen = profile or os.environ.get("VAMP_PROFILE") or data.get("current") or DEFAULT_PROFILE
    profiles = data.get("profiles") or {}
    if (profile or os.environ.get("VAMP_PROFILE")) and chosen not in profiles:
        raise ValueError(f"profile {chosen!r} is not in {config_path()} (vamp login --profile {chosen})")
    from_file = profiles.get(chosen) or {}
    values: dict = {}
    sources: dict = {}
    for f in FIELDS:
        for where, layer in (("option", given), ("env", env), (f"profile {chosen}", from_file)):
            if layer.get(f):
                values[f], sources[f] = layer[f], where
                break
    state = find_local_stack() if "host" not in values or "token" not in values else None
    if state:  # a local stack this checkout runs: its address, and its token for that address only
        local = local_stack_values(state)
        if values.get("host", local["host"]).rstrip("/") == local["host"].rstrip("/"):
            for f, v in local.items():
                if f not in values:
                    values[f], sources[f] = v, f"local stack {state}"
    return Resolved(values.get("host"), values.get("token"), values.get("namespace") or "default", chosen, sources)
