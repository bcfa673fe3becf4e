"""`make demo`: a walk through the API of the local stack with Vamp's sample artifacts."""
from __future__ import annotations

from pathlib import Path

import requests
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sava.yaml"


def walkthrough(api: str, token: str) -> bool:
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

    console.rule("[green]walk-through complete[/green]" if not failures else "[red]walk-through failed[/red]")
    for f in failures:
        console.print(f"[red]- {f}[/red]")
    return not failures
