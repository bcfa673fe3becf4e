"""Reaching the bundled etcd from the publisher function (docs/decisions/0036, "Reaching the bundled
etcd"), as the stack and the manifests give it: the cluster's endpoint and CA reach GatewayPublish
only, under EtcdThroughCluster; its role gets an access entry in the group the etcd component's
Role is bound to, and that Role grants exactly the one call the discovery makes; `make deploy`
requires the private endpoint for it and fills the parameters from describe_cluster."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from infra import cluster, deploy
from infra.template import functions, packaged
from tests.infra.templates import condition
from tests.infra.test_agent_manifests import AGENT, by_kind, fill_stage, rbac_of, render

NO_VALUE = {"Ref": "AWS::NoValue"}
GROUP = "vamp:gateway-publisher"
ROLE = "arn:aws:iam::123456789012:role/eks"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/vamp-system/endpointslices"



BUNDLED = {"Driver": "kubernetes", "ClusterName": "prod", "EtcdEndpoint": cluster.PUBLISHER_ETCD_ENDPOINT,
           "EksEndpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com", "EksCertificateAuthority": "LS0t"}


def test_the_clusters_endpoint_and_ca_reach_the_publisher_only_under_its_condition():
    template = packaged()
    for name in ("EksEndpoint", "EksCertificateAuthority"):
        assert template["Parameters"][name] == {**template["Parameters"][name], "Type": "String", "Default": ""}
    assert condition(template, "EtcdThroughCluster", BUNDLED)
    assert not condition(template, "EtcdThroughCluster", {**BUNDLED, "EksEndpoint": ""})  # an etcd of one's own
    assert not condition(template, "EtcdThroughCluster", {**BUNDLED, "EtcdEndpoint": ""})
    assert not condition(template, "EtcdThroughCluster", {**BUNDLED, "Driver": "ecs"})
    assert not condition(template, "EtcdThroughCluster", {**BUNDLED, "ClusterName": ""})
    env = functions(template)["GatewayPublish"]["Properties"]["Environment"]["Variables"]
    assert env["VAMP_EKS_ENDPOINT"] == {"Fn::If": ["EtcdThroughCluster", {"Ref": "EksEndpoint"}, NO_VALUE]}
    assert env["VAMP_EKS_CERTIFICATE_AUTHORITY"] == {"Fn::If": ["EtcdThroughCluster", {"Ref": "EksCertificateAuthority"},
                                                                NO_VALUE]}
    assert env["VAMP_EKS_CLUSTER"] == {"Fn::If": ["EtcdThroughCluster", {"Ref": "ClusterName"}, NO_VALUE]}
    for name, function in functions(template).items():
        if name != "GatewayPublish":
            others = function["Properties"]["Environment"]["Variables"]
            assert "VAMP_EKS_ENDPOINT" not in others and "VAMP_EKS_CERTIFICATE_AUTHORITY" not in others, name
    # no eks: or sts: permission for it: the token is presigned, the API authorises by the access entry
    role = template["Resources"]["GatewayPublishRole"]["Properties"]
    actions = {a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("eks:", "sts:"))}


def test_the_publishers_access_entry_is_in_the_group_the_etcd_role_is_bound_to():
    template = packaged()
    entry = template["Resources"]["GatewayPublishEksAccess"]
    assert entry["Type"] == "AWS::EKS::AccessEntry" and entry["Condition"] == "EtcdThroughCluster"
    props = entry["Properties"]
    assert props == {"ClusterName": {"Ref": "ClusterName"}, "PrincipalArn": {"Fn::GetAtt": ["GatewayPublishRole", "Arn"]},
                     "Type": "STANDARD", "KubernetesGroups": [GROUP]}  # no access policy: the Role is all
    objects = by_kind(render(AGENT))
    binding = objects[("RoleBinding", "vamp-gateway-publisher")]
    assert binding["metadata"]["namespace"] == "vamp-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vamp-gateway-publisher"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]
    # no ClusterRole or other binding names the group: the publisher can do this and nothing more
    assert [k for k, o in objects.items() if GROUP in json.dumps(o.get("subjects", []))] == [
        ("RoleBinding", "vamp-gateway-publisher")]


def test_the_role_grants_exactly_the_call_the_discovery_makes():
    from chalicelib.kv import etcd_members

    role = by_kind(render(AGENT))[("Role", "vamp-gateway-publisher")]
    assert role["metadata"]["namespace"] == "vamp-system"
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert all(not rule.get("resourceNames") for rule in role["rules"])

    sent: list[tuple[str, str, dict]] = []

    class Recorder:
        def get(self, url, params=None, headers=None, timeout=None):
            sent.append(("GET", url, params))

            class Answer:
                status_code = 200

                def json(self):
                    return {"kind": "EndpointSliceList", "items": []}

            return Answer()

    api = etcd_members.ClusterApi("https://recorder", "/dev/null", "prod", sts=None)
    api.session, api.token = Recorder(), lambda: "k8s-aws-v1.x"
    address = etcd_members.parse(cluster.PUBLISHER_ETCD_ENDPOINT)
    with pytest.raises(etcd_members.MembersUnknown, match="no ready endpoint"):
        etcd_members.Members(api, address).addresses()
    ((method, url, params),) = sent
    assert url == "https://recorder" + SLICES and params == {"labelSelector": "kubernetes.io/service-name=vamp-etcd"}
    assert rbac_of(method, url.removeprefix("https://recorder")) == granted == {
        ("discovery.k8s.io", "endpointslices", "list")}


def test_a_stage_with_an_etcd_of_its_own_has_no_publisher_role(tmp_path):
    objects = by_kind(render(fill_stage(tmp_path, etcd="https://etcd.example.internal:2379")))
    assert ("Role", "vamp-gateway-publisher") not in objects and ("StatefulSet", "vamp-etcd") not in objects


# -- make deploy -----------------------------------------------------------------------------------

@pytest.fixture()
def eks():
    with mock_aws():
        yield boto3.client("eks", region_name="us-east-1")


def make_cluster(eks, name: str, private: bool) -> dict:
    eks.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig={
        "subnetIds": [], "endpointPublicAccess": True, "endpointPrivateAccess": private})
    from moto.eks.models import eks_backends

    eks_backends["123456789012"]["us-east-1"].clusters[name].access_config = {"authenticationMode": "API"}
    return eks.describe_cluster(name=name)["cluster"]


def deploy_args(name: str, out: Path, etcd: str) -> list[str]:
    return ["deploy", "--stage", "t", "--out", str(out), "--driver", "kubernetes", "--cluster", name,
            "--etcd-endpoint", etcd, "--etcd-subnets", "subnet-1", "--etcd-security-groups", "sg-1"]


def test_the_bundled_etcd_needs_the_private_endpoint_and_an_own_etcd_does_not(eks, tmp_path):
    make_cluster(eks, "public-only", private=False)
    result = CliRunner().invoke(deploy.cli, deploy_args("public-only", tmp_path, cluster.PUBLISHER_ETCD_ENDPOINT))
    assert result.exit_code != 0 and "refusing to deploy" in result.output
    assert ("aws eks update-cluster-config --name public-only --resources-vpc-config "
            "endpointPrivateAccess=true,endpointPublicAccess=true") in result.output
    assert not boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]  # nothing uploaded
    result = CliRunner().invoke(deploy.cli, deploy_args("public-only", tmp_path, "https://etcd.internal:2379"))
    assert "refusing" not in result.output and "sam.yaml is missing" in result.output
    # the endpoint form is checked, and it needs the cluster it is found through
    result = CliRunner().invoke(deploy.cli, deploy_args("public-only", tmp_path, "eks-service://vamp-system/vamp-etcd"))
    assert result.exit_code != 0 and "eks-service://<namespace>/<service>:<port>" in result.output
    result = CliRunner().invoke(deploy.cli, ["deploy", "--stage", "t", "--driver", "ecs", "--cluster", "x",
                                             "--etcd-endpoint", cluster.PUBLISHER_ETCD_ENDPOINT])
    assert result.exit_code != 0 and "needs --driver kubernetes and --cluster" in result.output


def test_deploy_gives_the_stack_the_clusters_endpoint_and_ca_from_the_check(eks, tmp_path, monkeypatch):
    described = make_cluster(eks, "both", private=True)
    assert described["endpoint"].startswith("https://") and described["certificateAuthority"]["data"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "sam.yaml").write_text("{}")
    (out / "deployment.zip").write_bytes(b"")
    given: dict = {}
    monkeypatch.setattr(deploy, "load_template", lambda path: {})
    monkeypatch.setattr(deploy, "prepare", lambda *a, **k: {})
    monkeypatch.setattr(deploy, "publish", lambda *a, **k: "https://bucket/template.json")
    monkeypatch.setattr(deploy, "deploy_stack", lambda cfn, stack, url, parameters, say: given.update(parameters) or {})
    for etcd, wanted in ((cluster.PUBLISHER_ETCD_ENDPOINT, (described["endpoint"], described["certificateAuthority"]["data"])),
                         ("https://etcd.internal:2379", ("", ""))):
        given.clear()
        result = CliRunner().invoke(deploy.cli, deploy_args("both", out, etcd))
        assert result.exit_code == 0, result.output
        assert (given["EksEndpoint"], given["EksCertificateAuthority"]) == wanted
        assert given["EtcdEndpoint"] == etcd and given["ClusterName"] == "both"


def test_the_cluster_check_names_the_private_endpoint_only_for_the_bundled_etcd():
    found = {"name": "c", "status": "ACTIVE", "accessConfig": {"authenticationMode": "API"},
             "resourcesVpcConfig": {"endpointPublicAccess": True, "endpointPrivateAccess": False}}
    assert cluster.cluster_problems(found) == []
    (problem,) = cluster.cluster_problems(found, etcd_through_cluster=True)
    assert "no private API server endpoint" in problem and "endpointPrivateAccess=true" in problem
    assert shutil.which("kubectl")  # the manifests' tests above rendered with it


def test_the_stack_creates_on_moto_with_the_bundled_etcd_and_the_publisher_gets_the_cluster(cloudformation_lambda):
    """After the SAM transform, on moto's CloudFormation (which skips AWS::EKS::AccessEntry: cfn-lint
    and the template test above hold it): the publisher's environment has the cluster's endpoint,
    CA and name; the API function's has no endpoint or CA."""
    moto_server = cloudformation_lambda
    from tests.infra.test_deploy import _moto_template

    def client(service: str):
        return boto3.client(service, endpoint_url=moto_server, region_name="us-east-1")

    ec2, s3, cfn, lam = (client(s) for s in ("ec2", "s3", "cloudformation", "lambda"))
    vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.41.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    group = ec2.create_security_group(GroupName="vamp-publisher-route", Description="x", VpcId=vpc)["GroupId"]
    bucket = deploy.ensure_bucket(s3, client("sts"), "us-east-1", None)
    stack = deploy.stack_name("etcdroute")
    parameters = {**BUNDLED, "EtcdSubnetIds": ",".join(subnets), "EtcdSecurityGroupIds": group}
    deploy.deploy_stack(cfn, stack, _moto_template(s3, bucket, stack), parameters, say=lambda _: None, poll=0.2)
    try:
        resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        assert resources and all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources), resources
        env = lam.get_function_configuration(FunctionName=f"{stack}-gateway_publish")["Environment"]["Variables"]
        assert env["VAMP_ETCD_ENDPOINT"] == cluster.PUBLISHER_ETCD_ENDPOINT
        assert (env["VAMP_EKS_ENDPOINT"], env["VAMP_EKS_CERTIFICATE_AUTHORITY"], env["VAMP_EKS_CLUSTER"]) == (
            BUNDLED["EksEndpoint"], BUNDLED["EksCertificateAuthority"], "prod")
        api = lam.get_function_configuration(FunctionName=stack)["Environment"]["Variables"]
        assert "VAMP_EKS_ENDPOINT" not in api and "VAMP_EKS_CERTIFICATE_AUTHORITY" not in api
    finally:
        deploy.destroy_stack(cfn, stack, say=lambda _: None, poll=0.2)
