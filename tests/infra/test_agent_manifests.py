"""The agents on EKS as a user applies them (docs/decisions/0037): `kubectl kustomize` renders the
base and a stage's overlay offline, every object validates strictly against the Kubernetes
schemas the project targets, nothing secret is committed, the control plane's ClusterRole grants
exactly what the Kubernetes driver calls, and the stack gives exactly the cluster-talking
functions' roles an access entry into that role's group, under its condition.

No API server runs here: RBAC and access entries are checked against the driver's calls and on
paper (and by cfn-lint, tests/infra/test_iam.py), never enforced by a cluster."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra import cluster
from infra.template import functions, packaged
from tests.fakes.kubernetes_patches import SCHEMA_VERSION
from tests.infra.templates import ROOT, condition

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

AGENT = ROOT / "infra" / "agent"
DRIVER = ROOT / "chalicelib" / "drivers" / "kubernetes.py"
GROUP = "vamp:control-plane"


def render(path: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def fill_stage(tmp_path: Path, stage: str = "test", etcd: str = cluster.ETCD_ENDPOINT) -> Path:
    """A copy of infra/agent with a stage's overlay written as agent-config writes it, and its
    secret files made (placeholder values: the rendering is what is tested)."""
    copy = tmp_path / "agent"
    shutil.copytree(AGENT, copy, ignore=shutil.ignore_patterns("secrets"))
    where = copy / "stages" / stage
    (where / "secrets" / "etcd").mkdir(parents=True)
    (where / "kustomization.yaml").write_text(yaml.safe_dump(
        cluster.overlay(stage, "1.dkr.ecr.us-east-1.amazonaws.com/vamp-agent:abc123", etcd == cluster.ETCD_ENDPOINT)))
    (where / "agent.env").write_text(cluster.agent_env("https://x.execute-api.us-east-1.amazonaws.com/api/",
                                                       "team-a", etcd, "vamp-test"))
    for path, _ in cluster.AGENT_SECRETS.values():
        (where / path).write_text(f"placeholder for {path}\n")
    for path in cluster.ETCD_SECRETS.values():
        (where / path).write_text(f"placeholder for {path}\n")
    return where


def by_kind(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


# -- rendering and validation -------------------------------------------------------------------

@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(AGENT)


@pytest.fixture()
def stage(tmp_path) -> list[dict]:
    return render(fill_stage(tmp_path))


def test_the_base_and_a_stage_render_and_validate_strictly(base, stage):
    for objects in (base, stage):
        for obj in objects:
            # kubernetes-validate raises on an unknown field, a wrong type or an unknown kind
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
    kinds = {o["kind"] for o in stage}
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret", "Service",
            "StatefulSet", "PodDisruptionBudget", "DaemonSet"} <= kinds


def test_the_namespace_comes_first_and_holds_every_namespaced_object(base, stage):
    for objects in (base, stage):
        assert objects[0]["kind"] == "Namespace" and objects[0]["metadata"]["name"] == "vamp-system"
        for obj in objects[1:]:
            if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                assert obj["metadata"].get("namespace") == "vamp-system", obj["metadata"]


def test_the_namespace_admits_the_agent_and_audits_at_restricted(base):
    labels = by_kind(base)[("Namespace", "vamp-system")]["metadata"]["labels"]
    # hostNetwork, a hostPath and a privileged init container: only `privileged` admits them
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    agent = by_kind(base)[("DaemonSet", "vamp-agent")]["spec"]["template"]["spec"]
    assert agent["hostNetwork"] is True and any(v.get("hostPath") for v in agent["volumes"])


def test_a_stage_overlay_fills_the_settings_secrets_and_image(stage):
    objects = by_kind(stage)
    (config,) = [o for o in stage if o["kind"] == "ConfigMap"]
    data = config["data"]
    assert data["VAMP_AGENT_API_URL"] == "https://x.execute-api.us-east-1.amazonaws.com/api"  # no longer empty
    assert data["VAMP_AGENT_NAMESPACE"] == "team-a"
    assert data["VAMP_AGENT_ETCD_ENDPOINT"] == cluster.ETCD_ENDPOINT
    assert data["VAMP_AGENT_HAPROXY_VERSION"] == "2.6"  # the base's, merged
    secrets = {o["metadata"]["name"].rsplit("-", 1)[0]: o for o in stage if o["kind"] == "Secret"}
    assert set(secrets["vamp-agent"]["data"]) == set(cluster.AGENT_SECRETS)
    assert set(secrets["vamp-etcd-tls"]["data"]) == set(cluster.ETCD_SECRETS)
    pod = objects[("DaemonSet", "vamp-agent")]["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    assert agent["image"] == "1.dkr.ecr.us-east-1.amazonaws.com/vamp-agent:abc123"
    # the generated (hashed) names are the ones referenced
    assert agent["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == secrets["vamp-agent"]["metadata"]["name"]
    etcd_pod = objects[("StatefulSet", "vamp-etcd")]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in etcd_pod["volumes"]}["tls"]["secret"]["secretName"] == \
        secrets["vamp-etcd-tls"]["metadata"]["name"]
    # every file the agent is told to read is a key of its Secret
    files = {e["value"].rsplit("/", 1)[1] for e in agent["env"] if e["name"].endswith("_FILE")}
    assert files <= set(secrets["vamp-agent"]["data"])


def test_a_stage_with_an_etcd_of_its_own_leaves_the_bundled_one_out(tmp_path):
    objects = render(fill_stage(tmp_path, etcd="https://etcd.example.internal:2379"))
    assert not [o for o in objects if o["metadata"]["name"].startswith("vamp-etcd")]
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].startswith("vamp-etcd-tls")]
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config["data"]["VAMP_AGENT_ETCD_ENDPOINT"] == "https://etcd.example.internal:2379"


def test_the_agent_keeps_its_hardening_and_starts_with_what_the_stage_gives_it(stage, tmp_path, monkeypatch):
    import base64

    from agent.settings import AgentSettings

    pod = by_kind(stage)[("DaemonSet", "vamp-agent")]["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    sc = agent["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "vamp-agent"
    (config,) = [o for o in stage if o["kind"] == "ConfigMap"]
    fields = {f"VAMP_AGENT_{name.upper()}" for name in AgentSettings.model_fields}
    named = set(config["data"]) | {e["name"] for e in agent["env"] if e["name"].startswith("VAMP_AGENT_")}
    assert named <= fields, named - fields
    # The pod's environment as the kubelet makes it, the Secret's files where the volume puts them.
    (secret,) = [o for o in stage if o["kind"] == "Secret" and o["metadata"]["name"].startswith("vamp-agent")]
    mount = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}["secrets"]
    for key, value in secret["data"].items():
        (tmp_path / key).write_bytes(base64.b64decode(value).replace(b"placeholder for secrets/signing-key",
                                                                     b"k" * 40))
    env = dict(config["data"])
    env.update({e["name"]: e["value"].replace(mount, str(tmp_path)) for e in agent["env"] if "value" in e})
    env["VAMP_AGENT_NODE_ID"] = "ip-10-0-0-1.ec2.internal"  # spec.nodeName, from the downward API
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = AgentSettings()
    settings.check()  # what the agent refuses to start with
    assert settings.etcd_access.address == ("https", "vamp-etcd.vamp-system.svc", 2379)
    assert settings.etcd_access.username == "vamp-agent" and settings.etcd_access.password
    assert settings.events_url == "https://x.execute-api.us-east-1.amazonaws.com/api/team-a/api/v1/events"


def test_the_etcd_is_three_members_over_tls_with_a_disruption_budget(base):
    objects = by_kind(base)
    sts = objects[("StatefulSet", "vamp-etcd")]["spec"]
    assert sts["replicas"] == 3 and sts["podManagementPolicy"] == "Parallel"
    headless = objects[("Service", sts["serviceName"])]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    (etcd,) = sts["template"]["spec"]["containers"]
    flags = dict(a.removeprefix("--").split("=", 1) for a in etcd["args"])
    members = dict(m.split("=", 1) for m in flags["initial-cluster"].split(","))
    assert members == {f"vamp-etcd-{n}": f"https://vamp-etcd-{n}.{sts['serviceName']}.vamp-system.svc:2380"
                       for n in range(3)}
    assert flags["listen-client-urls"].startswith("https://") and flags["peer-client-cert-auth"] == "true"
    mounted = {m["name"]: m["mountPath"] for m in etcd["volumeMounts"]}
    for flag in ("cert-file", "key-file", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file"):
        directory, name = flags[flag].rsplit("/", 1)
        assert directory == mounted["tls"] and name in cluster.ETCD_SECRETS, flag
    assert sts["volumeClaimTemplates"][0]["metadata"]["name"] in mounted
    pdb = objects[("PodDisruptionBudget", "vamp-etcd")]["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"].items() <= \
        sts["template"]["metadata"]["labels"].items()
    client = objects[("Service", "vamp-etcd")]["spec"]
    assert cluster.ETCD_ENDPOINT == f"https://vamp-etcd.vamp-system.svc:{client['ports'][0]['port']}"
    # the agent reaches it with the CA and the read-only user
    agent_env = by_kind(base)[("DaemonSet", "vamp-agent")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "VAMP_AGENT_ETCD_CA_FILE", "value": "/etc/vamp-agent/etcd-ca.crt"} in agent_env
    (config,) = [o for o in base if o["kind"] == "ConfigMap"]
    assert config["data"]["VAMP_AGENT_ETCD_USERNAME"] == "vamp-agent"


def test_every_pod_of_the_etcd_would_pass_restricted(base):
    from tests.fakes.kubernetes_server import pod_security_violations

    sts = by_kind(base)[("StatefulSet", "vamp-etcd")]
    assert pod_security_violations(sts["spec"]["template"]["spec"], "restricted") == []


# -- nothing secret committed ---------------------------------------------------------------------

def test_no_secret_is_committed_and_a_stages_secrets_are_ignored():
    tracked = subprocess.run(["git", "ls-files", "infra/agent"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "infra/agent is not in git"
    for name in tracked:
        path = ROOT / name
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text, name
        if path.suffix in (".yaml", ".yml"):
            for doc in yaml.safe_load_all(text):
                assert not (doc and doc.get("kind") == "Secret"), f"{name} holds a Secret"
        assert not name.startswith("infra/agent/stages/") or name in (
            "infra/agent/stages/.gitignore", "infra/agent/stages/example/kustomization.yaml",
            "infra/agent/stages/example/agent.env"), name
    for would_be in ("infra/agent/stages/prod/secrets/api-token", "infra/agent/stages/prod/agent.env",
                     "infra/agent/stages/example/secrets/etcd/member.key"):
        assert subprocess.run(["git", "check-ignore", "-q", would_be], cwd=ROOT).returncode == 0, would_be


def test_the_committed_example_is_what_agent_config_writes():
    example = AGENT / "stages" / "example"
    written = yaml.safe_load((example / "kustomization.yaml").read_text())
    assert written == cluster.overlay("example", cluster.current_image("example"), True)
    env = dict(line.split("=", 1) for line in (example / "agent.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert set(env) == {"VAMP_AGENT_API_URL", "VAMP_AGENT_NAMESPACE", "VAMP_AGENT_ETCD_ENDPOINT"}


# -- the control plane's RBAC: exactly the driver's calls ------------------------------------------

VERBS = {("GET", True): "get", ("GET", False): "list", ("POST", False): "create", ("PUT", True): "update",
         ("PATCH", True): "patch", ("DELETE", True): "delete", ("DELETE", False): "deletecollection"}


def rbac_of(method: str, path: str, apply: bool = False) -> set[tuple[str, str, str]]:
    """The (apiGroup, resource, verb) RBAC authorises a request as. A server-side apply (PATCH as
    application/apply-patch+yaml) of an object that does not exist yet is authorised as `create`
    too (Kubernetes: api-concepts, "Patch and apply")."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    verbs = {VERBS[(method, len(rest) > 1)]}
    if apply:
        verbs.add("create")
    return {(group, resource, verb) for verb in verbs}


def driver_calls() -> set[tuple[str, str, str]]:
    """Every Kubernetes API method the driver's source names (CoreV1Api, AppsV1Api, BatchV1Api), sent through
    the real client to a recorder: what it would ask the API server, as RBAC sees it."""
    from kubernetes import client

    tree = ast.parse(DRIVER.read_text())
    named = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    applied = {a.args[0].attr for a in ast.walk(tree) if isinstance(a, ast.Call)
               and isinstance(a.func, ast.Attribute) and a.func.attr == "_apply" and isinstance(a.args[0], ast.Attribute)}
    apis = [client.CoreV1Api, client.AppsV1Api, client.BatchV1Api]
    methods = {(api, n) for api in apis for n in named
               if callable(getattr(api, n, None)) and not n.startswith("_") and f"{n}_with_http_info" in dir(api)}
    assert {n for _, n in methods} >= {"read_namespace", "patch_namespaced_deployment"}, "nothing found"
    sent: list[tuple[str, str, bool]] = []

    class Sent(Exception):
        pass

    def record(method, url, headers=None, **_):
        sent.append((method, url.split("?", 1)[0].removeprefix("http://recorder"),
                     "apply-patch" in (headers or {}).get("Content-Type", "")))
        raise Sent

    out: set[tuple[str, str, str]] = set()
    for api_class, name in methods:
        api_client = client.ApiClient(client.Configuration(host="http://recorder"))
        api_client.rest_client.request = record
        method = getattr(api_class(api_client), name)
        import inspect

        required = [p for p in inspect.signature(method).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        args = {p.name: ({"metadata": {"name": "x"}} if p.name == "body" else "x") for p in required}
        extra = {"_content_type": "application/apply-patch+yaml", "field_manager": "vamp"} if name in applied else {}
        with pytest.raises(Sent):
            method(**args, **extra)
        out |= rbac_of(*sent[-1])
    return out


def granted(objects: list[dict]) -> tuple[set[tuple[str, str, str]], dict]:
    role = by_kind(objects)[("ClusterRole", "vamp-control-plane")]
    rules = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
             for v in rule["verbs"]}
    assert all(not rule.get("resourceNames") and not rule.get("nonResourceURLs") for rule in role["rules"])
    return rules, role


def test_the_cluster_role_grants_exactly_what_the_driver_calls(base):
    rules, _ = granted(base)
    assert "*" not in json.dumps(sorted(rules))
    calls = driver_calls()
    assert calls == rules, f"driver calls not granted: {calls - rules}; granted, never called: {rules - calls}"
    binding = by_kind(base)[("ClusterRoleBinding", "vamp-control-plane")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "vamp-control-plane"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]


def test_what_the_driver_sends_a_cluster_is_granted(base, fake_kubernetes):
    """The driver through its whole life against the fake API server (which records every
    request): a namespace created, then found with other labels and updated, deployments and
    services applied, listed and deleted. Each request is one the ClusterRole allows."""
    from kubernetes import client

    from chalicelib.drivers.kube_policy import KubeRules
    from chalicelib.drivers.kubernetes import KubernetesDriver
    from tests.drivers.helpers import image_spec
    from tests.drivers.test_kubernetes import client_for

    client.CoreV1Api(client_for(fake_kubernetes)).create_namespace(
        {"metadata": {"name": "vamp-old", "labels": {"app.kubernetes.io/managed-by": "vamp"}}})
    fake_kubernetes.requests.clear()
    driver = KubernetesDriver(lambda: client_for(fake_kubernetes), KubeRules())
    spec = image_spec()
    for namespace in ("new", "old"):  # created; found with other labels and updated
        driver.deploy(namespace, spec)
        driver.deploy(namespace, spec)  # applied again over what exists
        assert driver.running(namespace) and driver.status(namespace, [spec.key])
        driver.undeploy(namespace, spec.deployment, spec.cluster, spec.service)
    # a workflow's run (0039): its Job created, found finished with its pod's log, then deleted
    from chalicelib.drivers.base import JobSpec

    run = driver.run_job("new", JobSpec(name="w", deployable_type="container/docker", definition="busybox"), 30.0)
    fake_kubernetes.settle()
    [finished] = driver.finished_jobs("new")
    assert finished.handle == run.handle
    driver.forget_job("new", run.handle)
    rules, _ = granted(base)
    asked = {(method, path) for method, path in fake_kubernetes.requests}
    assert {m for m, _ in asked} == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    for method, path in asked:
        needed = rbac_of(method, path, apply=method == "PATCH")  # the driver's patches are all applies
        assert needed <= rules, (method, path, needed - rules)
    assert {c for m, p in asked for c in rbac_of(m, p, apply=m == "PATCH")} == driver_calls()


# -- EKS access entries ---------------------------------------------------------------------------

def cluster_functions() -> set[str]:
    """The chalice functions that reach the Kubernetes driver: the API (deployments synchronised
    after a write; a promotion through the API), the scheduled pass, and the release tasks whose
    code in chalicelib/releases/tasks.py reaches sync_namespace. Derived from the task module's own
    call graph; the release tasks reach no driver by any other module (checked below)."""
    tree = ast.parse((ROOT / "chalicelib" / "releases" / "tasks.py").read_text())
    calls: dict[str, set[str]] = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            calls[fn.name] = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(fn)
                              if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}

    def reaches(name: str, seen: frozenset = frozenset()) -> bool:
        direct = calls.get(name, set())
        return "sync_namespace" in direct or any(reaches(c, seen | {name}) for c in direct & calls.keys() - seen)

    tasks = {"ReleaseAnalyse": "analyse", "ReleaseSetWeight": "set_weight", "ReleaseGate": "gate",
             "ReleasePromote": "promote", "ReleaseRollback": "rollback"}
    # workflow runs (0039): a script or container breed is a Job, run by these (and the API's POST /events)
    workflows = {"WorkflowRun", "WorkflowBusEvent"}
    return {"APIHandler", "ScheduledPass"} | workflows | {fn for fn, task in tasks.items() if reaches(task)}


def test_the_release_tasks_reach_the_driver_only_through_sync_namespace():
    # Everything the release tasks import but tasks.py itself: none imports a driver or sync.
    for path in (ROOT / "chalicelib" / "releases").glob("*.py"):
        if path.name == "tasks.py":
            continue
        text = path.read_text()
        assert "chalicelib.drivers" not in text and "deployments.sync" not in text and \
            "from chalicelib.deployments import sync" not in text, path.name
    for path in (ROOT / "chalicelib" / "gateways").glob("*.py"):
        assert "chalicelib.drivers" not in path.read_text(), path.name
    assert cluster_functions() == {"APIHandler", "ScheduledPass", "ReleasePromote", "WorkflowRun", "WorkflowBusEvent"}


def eks_access_condition(template: dict, driver: str, cluster_name: str) -> bool:
    """EksAccess, evaluated as CloudFormation would for these parameters."""
    return condition(template, "EksAccess", {"Driver": driver, "ClusterName": cluster_name})


def test_exactly_the_cluster_talking_roles_have_an_access_entry_under_the_condition():
    template = packaged()
    # the publisher function's own entry (group vamp:gateway-publisher): tests/infra/test_etcd_route.py
    entries = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::EKS::AccessEntry"
               and k != "GatewayPublishEksAccess"}
    roles = {fn: f["Properties"]["Role"]["Fn::GetAtt"][0] for fn, f in functions(template).items()}
    wanted = {roles[fn] for fn in cluster_functions()}
    assert {e["Properties"]["PrincipalArn"]["Fn::GetAtt"][0] for e in entries.values()} == wanted
    assert len(entries) == len(wanted)
    for name, entry in entries.items():
        props = entry["Properties"]
        assert entry["Condition"] == "EksAccess", name
        assert props["Type"] == "STANDARD" and props["KubernetesGroups"] == [GROUP], name
        assert props["ClusterName"] == {"Ref": "ClusterName"}, name
        assert props["PrincipalArn"]["Fn::GetAtt"][1] == "Arn"
        assert "AccessPolicies" not in props, f"{name}: no EKS access policy, the ClusterRole is all"
    assert "VampTokenRole" not in {e["Properties"]["PrincipalArn"]["Fn::GetAtt"][0] for e in entries.values()}
    assert eks_access_condition(template, "kubernetes", "prod")
    assert not eks_access_condition(template, "kubernetes", "")  # the moto stacks (test_deploy.py)
    assert not eks_access_condition(template, "ecs", "prod")


def test_the_access_entries_group_is_the_bindings(base):
    binding = by_kind(base)[("ClusterRoleBinding", "vamp-control-plane")]
    groups = {s["name"] for s in binding["subjects"]}
    for name, entry in packaged()["Resources"].items():
        if entry["Type"] == "AWS::EKS::AccessEntry" and name != "GatewayPublishEksAccess":
            assert set(entry["Properties"]["KubernetesGroups"]) == groups
            assert not any(g.startswith("system:") for g in groups)  # EKS refuses system: groups


# -- the image -------------------------------------------------------------------------------------

def test_the_dockerfile_copies_what_exists_and_the_overlay_names_the_image():
    dockerfile = (AGENT / "Dockerfile").read_text()
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
        sources += [part.split("=", 1)[1] for part in line.split(",")
                    if part.startswith("source=") and "from=" not in line]
    assert sources and all((ROOT / s).exists() for s in sources), sources
    daemonset = yaml.safe_load_all((AGENT / "base" / "daemonset.yaml").read_text())
    images = [c["image"] for d in daemonset if d["kind"] == "DaemonSet"
              for c in d["spec"]["template"]["spec"]["containers"]]
    assert images == [cluster.AGENT_IMAGE]  # what the overlay's `images:` entry replaces
    assert cluster.overlay("s", "r/vamp-agent:t", True)["images"] == [
        {"name": cluster.AGENT_IMAGE, "newName": "r/vamp-agent", "newTag": "t"}]
    assert cluster.overlay("s", "localhost:5000/vamp-agent", True)["images"] == [
        {"name": cluster.AGENT_IMAGE, "newName": "localhost:5000/vamp-agent"}]


def test_make_agent_image_tags_with_the_commit_agent_config_names():
    from infra import deploy

    out = subprocess.run(["make", "-s", "-n", "agent-image"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert f"-t vamp-serverless/agent:{deploy.git_commit()} " in out.stdout
    assert "docker build -f infra/agent/Dockerfile" in out.stdout


# -- gateways on the node's address -----------------------------------------------------------------

def test_the_agents_serve_gateways_on_their_nodes_address_and_the_stage_renders_for_it(base):
    from chalicelib.contract.log_format import NODE_BIND

    (agent,) = by_kind(base)[("DaemonSet", "vamp-agent")]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in agent["env"]}
    assert env["VAMP_AGENT_NODE_ADDRESS"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    for name, function in functions(packaged()).items():
        assert function["Properties"]["Environment"]["Variables"]["VAMP_GATEWAY_BIND"] == NODE_BIND, name
