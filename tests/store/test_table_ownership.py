"""The store owns the table: no module outside chalicelib/store/ talks to DynamoDB, builds its
requests or pages it by hand. Read from the source (ast), so a new offender fails here, not in
review."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "chalicelib" / "store"

PRIVATE_HANDLES = {"_ddb", "_table"}  # a store's client and table name
PAGING_KEYS = {"ExclusiveStartKey", "LastEvaluatedKey"}  # hand-written paging: table.query_pages does it


def modules() -> list[Path]:
    found = [ROOT / "app.py"]
    for folder in ("chalicelib", "agent", "local", "bench"):
        found += sorted((ROOT / folder).rglob("*.py"))
    return [p for p in found if STORE not in p.parents]


def _is_dynamodb_client(call: ast.Call) -> bool:
    """`table.client()` (its default service), or any `.client("dynamodb")` / `.resource("dynamodb")`."""
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in ("client", "resource"):
        return False
    named = [k.value for k in call.keywords if k.arg in ("service", "service_name")]
    service = call.args[0] if call.args else (named[0] if named else None)
    if service is None:
        return isinstance(func.value, ast.Name) and func.value.id == "table" and func.attr == "client"
    return isinstance(service, ast.Constant) and service.value == "dynamodb"


def offences(path: Path) -> list[str]:
    """`<path>:<line>: <what>` for each offence in one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(ROOT) if ROOT in path.parents else path.name
    found = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and _is_dynamodb_client(node):
            found.append(f"{where}: a DynamoDB client")
        elif isinstance(node, ast.keyword) and node.arg == "TableName":
            found.append(f"{where}: a DynamoDB request (TableName=)")
        elif isinstance(node, ast.keyword) and node.arg in PAGING_KEYS:
            found.append(f"{where}: hand-written paging ({node.arg})")
        elif isinstance(node, ast.Constant) and node.value in PAGING_KEYS:
            found.append(f"{where}: hand-written paging ({node.value})")
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE_HANDLES:
            found.append(f"{where}: a store's private {node.attr}")
        elif isinstance(node, ast.Name) and node.id in PRIVATE_HANDLES:
            found.append(f"{where}: a store's private {node.id}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chalicelib.store"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            if private:
                found.append(f"{where}: private names of {node.module}: {', '.join(private)}")
    return sorted(found, key=lambda o: int(o.split(":")[1]))


def test_only_the_store_talks_to_the_table():
    found = [o for path in modules() for o in offences(path)]
    assert not found, "outside chalicelib/store/:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_offence(tmp_path):
    offender = tmp_path / "offender.py"
    offender.write_text(
        "import boto3\n"
        "from chalicelib.store import table\n"
        "from chalicelib.store.dynamodb_artifacts import _from_item\n"
        "ddb = boto3.client('dynamodb')\n"
        "own = table.client()\n"
        "def f(store, start):\n"
        "    store._ddb.query(TableName=store._table, ExclusiveStartKey=start)\n"
        "    return {}.get('LastEvaluatedKey')\n"
        "sfn = aws.client('stepfunctions')\n"  # not DynamoDB: allowed
    )
    found = sorted(o.split(": ", 1)[1] for o in offences(offender))
    assert found == sorted([
        "private names of chalicelib.store.dynamodb_artifacts: _from_item",
        "a DynamoDB client",
        "a DynamoDB client",
        "a DynamoDB request (TableName=)",
        "hand-written paging (ExclusiveStartKey)",
        "a store's private _ddb",
        "a store's private _table",
        "hand-written paging (LastEvaluatedKey)",
    ])
