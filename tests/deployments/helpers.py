from __future__ import annotations

import yaml

from chalicelib import dsl
from chalicelib.deployments.merge import merge

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"


def breed(name: str, port: str = "8080", **extra) -> dict:
    return {"name": name, "deployable": {"type": "command", "definition": f"run {name}"},
            "ports": {"webport": port}, **extra}


def blueprint(text_or_doc, resolve=None):
    doc = yaml.safe_load(text_or_doc) if isinstance(text_or_doc, str) else text_or_doc
    return dsl.parse("blueprints", doc, resolve=resolve)


def deploy(dep, bp, resolve=None, now=NOW):
    return merge(dep, "sava", blueprint(bp, resolve) if not hasattr(bp, "clusters") else bp, resolve, now)[0]


def weights(dep, cluster="sava", port="webport") -> dict[str, int]:
    return {k: r.weight for k, r in dep.clusters[cluster].gateways[port].routes.items()}


def one(name: str, version: str = "1.0.0", **service) -> dict:
    return {"name": name, "clusters": {name: {"services": [{"breed": breed(f"{name}:{version}"), **service}]}}}
