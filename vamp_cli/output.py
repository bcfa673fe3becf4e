"""Printing what a command got: `-o table` (rich, fitted to the terminal, colour on a TTY only),
`json` and `yaml` (the API's data as is, keys sorted: stable for scripts), `name` (one name a line,
for xargs)."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

import click
import yaml
from rich.table import Table

FORMATS = ("table", "json", "yaml", "name")
Getter = Callable[[Any], Any]


def field(key: str, default: str = "") -> Getter:
    """A getter for a dotted key: field("gateway.port")."""
    def get(item):
        value = item
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                return default
        return value
    return get


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True, default=str)
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip("\n")


def table(columns: Sequence[tuple[str, Getter]], rows: Iterable[Any], title: str | None = None) -> Table:
    t = Table(title=title, box=None, header_style="bold", pad_edge=False, title_justify="left", title_style="bold")
    for header, _ in columns:
        t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(cell(get(row)) for _, get in columns))
    return t


def emit(ctx, data: Any, columns: Sequence[tuple[str, Getter]] | None = None, name: Getter | None = None,
         title: str | None = None) -> None:
    """Print `data` (a list of items or one item) in ctx.output's format. Without columns, table
    output falls back to YAML (a single artifact reads best as its source)."""
    fmt = getattr(ctx, "output", None) or "table"
    items = data if isinstance(data, list) else [data]
    if fmt in ("json", "yaml"):
        click.echo(dump(data, fmt))
    elif fmt == "name":
        get = name or field("name")
        for item in items:
            click.echo(cell(get(item)))
    elif columns:
        ctx.console.print(table(columns, items, title))
    else:
        click.echo(dump(data, "yaml"))
