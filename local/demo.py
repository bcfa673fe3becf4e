"""`make demo`: a walk through the API of the local stack with Vamp's sample artifacts."""
from __future__ import annotations

import hashlib
import socket
import time
from collections import Counter
from pathlib import Path

import requests
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from local.backends import Backend

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sava.yaml"


def walkthrough(api: str, token: str, agent_url: str | None = None) -> bool:
    console = Console()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    v1 = f"{api}/api/v1"
    failures: list[str] = []

    def step(title: str, response: requests.Response, expect: int) -> requests.Response:
        ok = response.status_code == expect
        mark = "[green]ok[/green]" if ok else f"[red]expected {expect}[/red]"
        console.print(f"{response.request.method:6} {response.request.path_url:48} {response.status_code} {mark}  {title}")
        if not ok:
            failures.append(f"{title}: {response.status_code} {response.text[:300]}")
        return response

    console.rule("vamp-serverless: the artifact API on the local stack")
    step("without a token: refused", requests.get(f"{v1}/info"), 401)
    info = step("who is there", http.get(f"{v1}/info"), 200).json()
    console.print(f"  {info.get('message')} version {info.get('version')}, events in {info.get('event_store', {}).get('type')}")

    source = SAMPLE.read_text()
    yaml_headers = {"Content-Type": "application/x-yaml"}
    step("validate Vamp's sample stream (nothing written)",
         http.post(f"{v1}?validate_only=true", data=source, headers=yaml_headers), 201)
    existing = http.get(f"{v1}/blueprints/sava")
    if existing.status_code == 200:  # a previous run left them: start clean
        step("remove what an earlier demo stored", http.delete(v1, data=source, headers=yaml_headers), 204)
    step("store breeds, a scale and the blueprint in one request",
         http.post(v1, data=source, headers=yaml_headers), 201)
    step("a bad breed is refused with the field and the reason",
         http.post(f"{v1}/breeds", json={"name": "bad breed", "deployable": "x", "ports": {"web": "http"}}), 400)
    console.print_json(data=http.post(f"{v1}/breeds", json={"name": "bad breed", "deployable": "x"}).json())

    breeds = step("list breeds", http.get(f"{v1}/breeds?per_page=2"), 200)
    table = Table("breed", "deployable", title=f"breeds (X-Total-Count {breeds.headers.get('X-Total-Count')})")
    for b in breeds.json():
        d = b.get("deployable")
        table.add_row(b["name"], d.get("definition") if isinstance(d, dict) else str(d))
    console.print(table)
    console.print(f"  Link: {breeds.headers.get('Link')}")

    blueprint = step("read the blueprint back as YAML",
                     http.get(f"{v1}/blueprints/sava", headers={"Accept": "application/x-yaml"}), 200)
    console.print(Syntax(blueprint.text, "yaml", theme="ansi_dark"))
    step("read it with its references expanded", http.get(f"{v1}/blueprints/sava?expand_references=true"), 200)

    events = step("its history: archive events", http.get(f"{v1}/events", params={"tag": ["archive", "blueprints:sava"]}), 200)
    table = Table("timestamp", "tags", "type", title="events")
    for e in events.json():
        table.add_row(e["timestamp"], ", ".join(e["tags"]), e["type"])
    console.print(table)
    if not events.json():
        failures.append("no archive event for the blueprint")

    if agent_url:
        gateway_step(console, http, v1, agent_url, step, failures)

    console.rule("[green]walk-through complete[/green]" if not failures else "[red]walk-through failed[/red]")
    for f in failures:
        console.print(f"[red]- {f}[/red]")
    return not failures


# -- gateways: a canary split through the local HAProxy ---------------------------------------

def _through(port: int, n: int) -> Counter:
    """n requests through HAProxy: who answered."""
    session, seen = requests.Session(), Counter()
    for _ in range(n):
        try:
            r = session.get(f"http://127.0.0.1:{port}/", timeout=2, headers={"Connection": "close"})
            seen[r.text if r.ok else f"HTTP {r.status_code}"] += 1
        except requests.RequestException as e:
            seen[type(e).__name__] += 1
    return seen


def _until_applied(http_: requests.Session, v1: str, agent_url: str, timeout: float = 20.0) -> float:
    """Seconds until the agent serves what the API last published."""
    started = time.monotonic()
    published = http_.get(f"{v1}/vga/haproxy/2.6/configuration").json()["configuration"]
    digest = "sha256:" + hashlib.sha256(published.encode()).hexdigest()
    while time.monotonic() - started < timeout:
        if requests.get(f"{agent_url}/healthz", timeout=2).json().get("config_checksum") == digest:
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError("the agent did not apply the configuration")


def gateway_step(console, http_: requests.Session, v1: str, agent_url: str, step, failures: list[str]) -> None:
    console.rule("a gateway on HAProxy: 80/20, then 0/100")
    blue, green = Backend("blue"), Backend("green")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        def put(weights: tuple[int, int]):
            body = {"name": "demo", "port": f"{port}/http", "routes": {
                f"[127.0.0.1:{blue.port}]": {"weight": f"{weights[0]}%"},
                f"[127.0.0.1:{green.port}]": {"weight": f"{weights[1]}%"}}}
            step(f"gateway demo on :{port}, blue/green at {weights[0]}/{weights[1]}",
                 http_.put(f"{v1}/gateways/demo", json=body), 202)
            seconds = _until_applied(http_, v1, agent_url)
            seen = _through(port, 200)
            console.print(f"  live in HAProxy after {seconds * 1000:.0f} ms; 200 requests: "
                          + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
            return seen

        seen = put((80, 20))
        if not 130 <= seen.get("blue", 0) <= 190 or seen.get("blue", 0) + seen.get("green", 0) != 200:
            failures.append(f"80/20 split not seen through HAProxy: {dict(seen)}")
        seen = put((0, 100))
        if seen != Counter({"green": 200}):
            failures.append(f"0/100 did not move all traffic to green: {dict(seen)}")
        config = http_.get(f"{v1}/vga/haproxy/2.6/configuration", headers={"Accept": "text/plain"})
        frontend = [line for line in config.text.splitlines() if "gw.demo" in line or "rt.demo" in line]
        console.print(Syntax("\n".join(frontend[:6]), "text", theme="ansi_dark"))
        events = http_.get(f"{v1}/events", params={"tag": ["gateways:demo", "deployed"], "per_page": 2}).json()
        console.print(f"  events: {', '.join(' '.join(e['tags']) for e in events)}")
    except (TimeoutError, requests.RequestException) as e:
        failures.append(f"gateway step: {e}")
    finally:
        blue.stop()
        green.stop()
