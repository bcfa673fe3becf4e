"""Reading the infrastructure as AWS will: every CloudFormation template and IAM policy document
under infra/ and .chalice/, with CloudFormation's short tags (!Sub, !Ref, ...) kept as the
long forms they stand for."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from infra.template import CfnLoader

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> list[Any]:
    """Every document of a YAML or JSON file."""
    text = path.read_text()
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=CfnLoader) if d is not None]


def infra_files() -> list[Path]:
    files = [p for p in (ROOT / "infra").rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    return sorted(files + list((ROOT / ".chalice").glob("policy-*.json")))


@dataclass(frozen=True)
class Statement:
    file: str
    where: str  # the resource and policy holding it, or the file for a policy file
    body: dict

    @property
    def actions(self) -> frozenset[str]:
        action = self.body.get("Action", [])
        return frozenset([action] if isinstance(action, str) else action)

    @property
    def resources(self) -> list[str]:
        resource = self.body.get("Resource", [])
        return [render(r) for r in (resource if isinstance(resource, list) else [resource])]


def render(value: Any) -> str:
    """A Resource as text: a string, or an intrinsic function of strings (`Ref` -> `{Ref X}`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
        if fn == "Fn::Join":
            return arg[0].join(render(part) for part in arg[1])
        if fn == "Ref":
            return f"{{Ref {arg}}}"
        if fn == "Fn::GetAtt":
            return f"{{GetAtt {'.'.join(arg) if isinstance(arg, list) else arg}}}"
    raise AssertionError(f"a Resource this test cannot read: {value!r}")


def _policies(node: Any, where: str) -> Iterator[tuple[str, dict]]:
    """Every IAM policy document inside a parsed document (trust policies included)."""
    if isinstance(node, dict):
        if isinstance(node.get("Statement"), (list, dict)) and "Version" in node:
            yield where, node
            return
        for key, value in node.items():
            yield from _policies(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _policies(value, f"{where}[{i}]")


def statements() -> list[Statement]:
    """Every statement of every policy document in the infrastructure."""
    out = []
    for path in infra_files():
        for doc in load(path):
            for where, policy in _policies(doc, ""):
                body = policy["Statement"]
                for statement in body if isinstance(body, list) else [body]:
                    out.append(Statement(str(path.relative_to(ROOT)), where or path.name, statement))
    return out


def condition(template: dict, name: str, params: dict[str, str]) -> bool:
    """A condition evaluated as CloudFormation would for these parameters."""
    def value(node):
        if isinstance(node, dict):
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return params.get(arg, template["Parameters"][arg].get("Default", ""))
            if fn == "Condition":
                return condition(template, arg, params)
            if fn == "Fn::Equals":
                return value(arg[0]) == value(arg[1])
            if fn == "Fn::Not":
                return not value(arg[0])
            if fn == "Fn::And":
                return all(value(a) for a in arg)
            raise AssertionError(f"unexpected {fn}")
        return node

    return value(template["Conditions"][name])
