"""Connecting an EKS cluster (docs/decisions/0037): what `make deploy` checks of the cluster before
it deploys, and the agents' kustomize overlay of a stage that `make agent-config` writes from the
stack's outputs. Pure but for the one describe_cluster call and the files written."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "infra" / "agent"
STAGES = AGENT / "stages"
AGENT_IMAGE = "vamp-serverless/agent"  # the name infra/agent/base/daemonset.yaml gives the image
ETCD_ENDPOINT = "https://vamp-etcd.vamp-system.svc:2379"  # the bundled etcd's client Service
# The same etcd as the publisher function reaches it: its members' pod addresses, found through the
# cluster's API (chalicelib/kv/etcd_members.py, docs/decisions/0036 "Reaching the bundled etcd").
PUBLISHER_ETCD_ENDPOINT = "eks-service://vamp-system/vamp-etcd:2379"
ACCESS_ENTRY_MODES = ("API", "API_AND_CONFIG_MAP")
_STAGE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")

# What a stage's overlay reads from secrets/ (never committed: infra/agent/stages/.gitignore):
# the Secret's key -> the file, and how to make the file.
AGENT_SECRETS = {
    "api-token": ("secrets/api-token", "an `agent` token of the API (the command below)"),
    "signing-key": ("secrets/signing-key", "the control plane's gateway signing key (docs/decisions/0023)"),
    "etcd-password": ("secrets/etcd-agent-password", "the etcd user vamp-agent's password"),
    "etcd-ca.crt": ("secrets/etcd/ca.crt", "the CA that signed etcd's certificate"),
}
ETCD_SECRETS = {
    "ca.crt": "secrets/etcd/ca.crt",
    "member.crt": "secrets/etcd/member.crt",
    "member.key": "secrets/etcd/member.key",
}


def cluster_problems(cluster: dict, etcd_through_cluster: bool = False) -> list[str]:
    """Why functions outside any VPC, granted access by access entries, could not use `cluster`
    (describe_cluster's `cluster`); [] when they can. Each names the change that fixes it. With
    `etcd_through_cluster` (the publisher finds the bundled etcd's members through the cluster's
    API from inside the VPC) the private endpoint is needed too."""
    name = cluster.get("name", "?")
    problems = []
    if cluster.get("status") not in (None, "ACTIVE", "UPDATING"):
        problems.append(f"EKS cluster {name} is {cluster['status']}: deploy once it is ACTIVE")
    mode = (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode not in ACCESS_ENTRY_MODES:
        problems.append(
            f"EKS cluster {name} authenticates by the aws-auth ConfigMap only (authenticationMode {mode}): the stack "
            "grants the functions access with access entries, which need API or API_AND_CONFIG_MAP: "
            f"aws eks update-cluster-config --name {name} --access-config authenticationMode=API_AND_CONFIG_MAP")
    vpc = cluster.get("resourcesVpcConfig") or {}
    if not vpc.get("endpointPublicAccess", False):
        problems.append(
            f"EKS cluster {name} has a private API server endpoint only: the functions run outside any VPC and "
            f"cannot reach it. Turn the public endpoint on (the private one may stay): aws eks update-cluster-config "
            f"--name {name} --resources-vpc-config endpointPublicAccess=true,endpointPrivateAccess=true")
    elif "0.0.0.0/0" not in (vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]):
        problems.append(
            f"EKS cluster {name}'s public endpoint admits only {', '.join(vpc['publicAccessCidrs'])}: Lambda functions "
            "outside a VPC have no fixed address to admit. Admit 0.0.0.0/0 (requests are still authenticated, and the "
            f"functions' roles authorised by RBAC): aws eks update-cluster-config --name {name} "
            "--resources-vpc-config publicAccessCidrs=0.0.0.0/0")
    if etcd_through_cluster and not vpc.get("endpointPrivateAccess", False):
        problems.append(
            f"EKS cluster {name} has no private API server endpoint: the publisher function finds etcd's members "
            "through the cluster's API from inside the VPC, without a NAT gateway (docs/decisions/0036). Turn it on "
            f"(it costs nothing; the public one stays): aws eks update-cluster-config --name {name} "
            "--resources-vpc-config endpointPrivateAccess=true,endpointPublicAccess=true")
    return problems


def describe_cluster(eks, name: str, region: str, etcd_through_cluster: bool = False) -> tuple[dict | None, list[str]]:
    """(describe_cluster's `cluster`, its cluster_problems), or (None, that it does not exist in `region`)."""
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except eks.exceptions.ResourceNotFoundException:
        return None, [f"EKS cluster {name} does not exist in {region}: create it, or pass the name of one "
                      "(CLUSTER=<name>, or DRIVER=ecs for an ECS cluster)"]
    return cluster, cluster_problems(cluster, etcd_through_cluster)


def check_cluster(eks, name: str, region: str, etcd_through_cluster: bool = False) -> list[str]:
    """cluster_problems of EKS cluster `name`, or that it does not exist in `region`."""
    return describe_cluster(eks, name, region, etcd_through_cluster)[1]


def publisher_parameters(cluster: dict) -> dict[str, str]:
    """The stack parameters that let the publisher function reach the cluster's API without asking
    EKS at run time: its endpoint and CA (describe_cluster's), empty without them."""
    return {"EksEndpoint": cluster.get("endpoint") or "",
            "EksCertificateAuthority": (cluster.get("certificateAuthority") or {}).get("data") or ""}


# -- the agents' overlay of a stage ------------------------------------------------------------

def stage_dir(stage: str) -> Path:
    if not _STAGE.match(stage):
        raise ValueError(f"stage {stage!r}: lowercase letters, digits and '-', at most 31")
    return STAGES / stage


def agent_env(api_url: str, namespace: str, etcd_endpoint: str, stack: str) -> str:
    """The overlay's agent.env, merged over infra/agent/base/agent.env: where the agents post
    acknowledgements and metric events (the API's stage URL: the agent appends /api/v1/...), the
    Vamp namespace they serve, and etcd."""
    for key, value in (("api URL", api_url), ("namespace", namespace), ("etcd endpoint", etcd_endpoint)):
        if not value or any(c in value for c in "\n\r="):
            raise ValueError(f"{key} {value!r}: one line, no '='")
    return (f"# From the stack {stack} (`make agent-config`): written again on every run, edit the options instead.\n"
            f"VAMP_AGENT_API_URL={api_url.rstrip('/')}\n"
            f"VAMP_AGENT_NAMESPACE={namespace}\n"
            f"VAMP_AGENT_ETCD_ENDPOINT={etcd_endpoint}\n")


OWNED = ("apiVersion", "kind", "resources", "components", "configMapGenerator", "secretGenerator", "images")


def overlay(stage: str, image: str, bundled_etcd: bool) -> dict:
    """The stage's kustomization: the base (with the bundled etcd or without), the settings merged,
    the Secrets generated from secrets/, the image pushed."""
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    labels = {"app.kubernetes.io/part-of": "vamp-serverless"}
    generators = [{"name": "vamp-agent", "namespace": "vamp-system", "options": {"labels": dict(labels)},
                   "files": [f"{key}={path}" for key, (path, _) in AGENT_SECRETS.items()]}]
    if bundled_etcd:
        generators.append({"name": "vamp-etcd-tls", "namespace": "vamp-system", "options": {"labels": dict(labels)},
                           "files": [f"{key}={path}" for key, path in ETCD_SECRETS.items()]})
    image_entry = {"name": AGENT_IMAGE, "newName": name}
    if tag:
        image_entry["newTag"] = tag
    out = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # the base and the etcd component, not infra/agent itself: kustomize refuses a base that
        # holds the overlay (stages/ is inside it)
        "resources": ["../../base"],
        "configMapGenerator": [{"name": "vamp-agent", "namespace": "vamp-system", "behavior": "merge",
                                "envs": ["agent.env"]}],
        "secretGenerator": generators,
        "images": [image_entry],
    }
    if bundled_etcd:
        out["components"] = ["../../etcd"]
    return out


def current_image(stage: str) -> str | None:
    """The image a stage's overlay names now (kept when agent-config is run without --image)."""
    path = stage_dir(stage) / "kustomization.yaml"
    if not path.exists():
        return None
    for entry in (yaml.safe_load(path.read_text()) or {}).get("images") or []:
        if entry.get("name") == AGENT_IMAGE and entry.get("newName"):
            return entry["newName"] + (f":{entry['newTag']}" if entry.get("newTag") else "")
    return None


def write_overlay(stage: str, api_url: str, namespace: str, etcd_endpoint: str, image: str, stack: str) -> Path:
    """infra/agent/stages/<stage>/: kustomization.yaml and agent.env written, secrets/ made (0700)
    and left as it is. The directory."""
    where = stage_dir(stage)
    (where / "secrets" / "etcd").mkdir(parents=True, exist_ok=True)
    for folder in (where / "secrets", where / "secrets" / "etcd"):
        folder.chmod(0o700)
    bundled = etcd_endpoint == ETCD_ENDPOINT
    header = (f"# The agents of stage {stage} (docs/decisions/0037), written by `make agent-config STAGE={stage}`.\n"
              f"# kubectl apply -k infra/agent/stages/{stage}   (secrets/ must hold the files below first)\n")
    path = where / "kustomization.yaml"
    # What agent-config owns is written again; anything else the operator added (patches: a
    # StorageClass, resources, ...) is kept.
    kept = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items()
            if k not in OWNED} if path.exists() else {}
    path.write_text(header + yaml.safe_dump({**overlay(stage, image, bundled), **kept}, sort_keys=False))
    (where / "agent.env").write_text(agent_env(api_url, namespace, etcd_endpoint, stack))
    return where


def missing_secrets(stage: str, bundled_etcd: bool) -> list[tuple[str, str]]:
    """The secret files the overlay reads and the stage does not have yet: [(path, what)]."""
    where = stage_dir(stage)
    wanted = [(path, what) for path, what in AGENT_SECRETS.values()]
    if bundled_etcd:
        wanted += [(path, "etcd's TLS (make agent-certs)") for path in ETCD_SECRETS.values()]
    seen: set[str] = set()
    out = []
    for path, what in wanted:
        if path not in seen and not (where / path).exists():
            out.append((path, what))
        seen.add(path)
    return out
