"""Connecting an EKS cluster (docs/decisions/0037), on moto's EKS and CloudFormation in-process:
`make deploy` refuses a cluster the functions could not use (none by that name, no access
entries, a private endpoint, a public one closed to Lambda's addresses) before anything is
uploaded, and `agent-config` writes the agents' overlay from the stack's outputs."""
from __future__ import annotations

import json
import shutil
import subprocess

import boto3
import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from infra import cluster, deploy
from tests.infra.templates import ROOT

ROLE = "arn:aws:iam::123456789012:role/eks"


@pytest.fixture()
def eks():
    with mock_aws():
        yield boto3.client("eks", region_name="us-east-1")


def make_cluster(eks, name: str, public: bool = True, mode: str | None = "API_AND_CONFIG_MAP",
                 cidrs: list[str] | None = None) -> None:
    vpc = {"subnetIds": [], "endpointPublicAccess": public, "endpointPrivateAccess": True}
    if cidrs is not None:
        vpc["publicAccessCidrs"] = cidrs
    eks.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig=vpc)
    if mode is not None:  # moto keeps no accessConfig: set on its model as EKS would return it
        from moto.eks.models import eks_backends

        eks_backends["123456789012"]["us-east-1"].clusters[name].access_config = {"authenticationMode": mode}


def deploy_with(name: str, tmp_path) -> tuple[int, str]:
    result = CliRunner().invoke(deploy.cli, ["deploy", "--stage", "t", "--out", str(tmp_path / "none"),
                                             "--driver", "kubernetes", "--cluster", name])
    return result.exit_code, result.output


@pytest.mark.parametrize("mode", ["API", "API_AND_CONFIG_MAP"])
def test_a_cluster_with_access_entries_and_a_public_endpoint_passes(eks, tmp_path, mode):
    make_cluster(eks, "good", mode=mode)
    assert cluster.check_cluster(eks, "good", "us-east-1") == []
    code, out = deploy_with("good", tmp_path)
    assert code != 0 and "sam.yaml is missing" in out  # past the check, at the next step


@pytest.mark.parametrize("setup, says", [
    ({"public": False}, "--resources-vpc-config endpointPublicAccess=true"),
    ({"mode": "CONFIG_MAP"}, "--access-config authenticationMode=API_AND_CONFIG_MAP"),
    ({"mode": None}, "authenticationMode CONFIG_MAP"),  # no accessConfig: what EKS means by none
    ({"cidrs": ["203.0.113.0/24"]}, "publicAccessCidrs=0.0.0.0/0"),
])
def test_a_cluster_the_functions_could_not_use_is_refused_before_anything_is_uploaded(eks, tmp_path, setup, says):
    make_cluster(eks, "bad", **setup)
    (problem,) = cluster.check_cluster(eks, "bad", "us-east-1")
    assert says in problem and "aws eks update-cluster-config --name bad" in problem
    code, out = deploy_with("bad", tmp_path)
    assert code != 0 and "refusing to deploy" in out and says in out
    assert not boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]  # nothing uploaded


def test_both_problems_are_named_at_once_and_a_missing_cluster_is_said(eks, tmp_path):
    make_cluster(eks, "worst", public=False, mode="CONFIG_MAP")
    assert len(cluster.check_cluster(eks, "worst", "us-east-1")) == 2
    code, out = deploy_with("nowhere", tmp_path)
    assert code != 0 and "EKS cluster nowhere does not exist in us-east-1" in out


def test_ecs_and_an_unnamed_cluster_are_not_checked(eks, tmp_path):
    result = CliRunner().invoke(deploy.cli, ["deploy", "--stage", "t", "--out", str(tmp_path), "--driver", "kubernetes"])
    assert "no --cluster" in result.output and "sam.yaml is missing" in result.output
    result = CliRunner().invoke(deploy.cli, ["deploy", "--stage", "t", "--out", str(tmp_path), "--driver", "ecs",
                                             "--cluster", "an-ecs-cluster"])
    assert "sam.yaml is missing" in result.output and "refusing" not in result.output


# -- agent-config: the agents' overlay from the stack ----------------------------------------------

STACK = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
         "Outputs": {"EndpointURL": {"Value": "https://abc.execute-api.us-east-1.amazonaws.com/api/"},
                     "Table": {"Value": "vamp-t-VampTable-1"}, "EventsTable": {"Value": "vamp-t-VampEventsTable-1"}}}


@pytest.fixture()
def agent_tree(tmp_path, monkeypatch):
    """infra/agent copied (stages/ empty), agent-config writing into the copy."""
    copy = tmp_path / "agent"
    shutil.copytree(ROOT / "infra" / "agent", copy, ignore=shutil.ignore_patterns("secrets", "example"))
    monkeypatch.setattr(cluster, "STAGES", copy / "stages")
    return copy


def test_agent_config_writes_the_overlay_from_the_stacks_outputs(agent_tree):
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="vamp-t", TemplateBody=json.dumps(STACK))
        result = CliRunner().invoke(deploy.cli, ["agent-config", "--stage", "t", "--namespace", "team-a",
                                                 "--image", "1.dkr.ecr.us-east-1.amazonaws.com/vamp-agent:abc"])
        assert result.exit_code == 0, result.output
        where = agent_tree / "stages" / "t"
        env = (where / "agent.env").read_text()
        assert "VAMP_AGENT_API_URL=https://abc.execute-api.us-east-1.amazonaws.com/api\n" in env
        assert "VAMP_AGENT_NAMESPACE=team-a\n" in env
        # what is still to make, and how: the agents' token with role agent for their namespace
        for path, _ in cluster.AGENT_SECRETS.values():
            assert path in result.output
        assert ("python -m local token --aws create agents-t-team-a --role agent --namespaces team-a"
                in result.output)
        assert "VAMP_TABLE_NAME=vamp-t-VampTable-1" in result.output
        assert f"kubectl apply -k {where}" in result.output
        assert oct((where / "secrets").stat().st_mode & 0o777) == "0o700"
        # the image is kept when agent-config runs again without --image, and so is a patch of one's own
        kustomization = yaml.safe_load((where / "kustomization.yaml").read_text())
        patch = [{"target": {"kind": "StatefulSet", "name": "vamp-etcd"}, "patch": '[{"op": "add", "path": '
                  '"/spec/volumeClaimTemplates/0/spec/storageClassName", "value": "gp3"}]'}]
        (where / "kustomization.yaml").write_text(yaml.safe_dump({**kustomization, "patches": patch}))
        again = CliRunner().invoke(deploy.cli, ["agent-config", "--stage", "t", "--namespace", "team-a"])
        assert again.exit_code == 0, again.output
        assert yaml.safe_load((where / "kustomization.yaml").read_text())["images"] == [
            {"name": cluster.AGENT_IMAGE, "newName": "1.dkr.ecr.us-east-1.amazonaws.com/vamp-agent", "newTag": "abc"}]
    # once the files are there it renders, the API URL in the agents' ConfigMap
    for path in [p for p, _ in cluster.AGENT_SECRETS.values()] + list(cluster.ETCD_SECRETS.values()):
        (where / path).write_text("x")
    out = subprocess.run(["kubectl", "kustomize", str(where)], capture_output=True, text=True, check=True).stdout
    (config,) = [d for d in yaml.safe_load_all(out) if d["kind"] == "ConfigMap"]
    (sts,) = [d for d in yaml.safe_load_all(out) if d["kind"] == "StatefulSet"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"
    assert config["data"]["VAMP_AGENT_API_URL"] == "https://abc.execute-api.us-east-1.amazonaws.com/api"


def test_agent_config_refuses_a_stage_without_a_stack_and_a_bad_stage_name(agent_tree):
    with mock_aws():
        result = CliRunner().invoke(deploy.cli, ["agent-config", "--stage", "nope"])
        assert result.exit_code != 0 and "vamp-nope: no such stack" in result.output
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="vamp-Bad", TemplateBody=json.dumps(STACK))
        result = CliRunner().invoke(deploy.cli, ["agent-config", "--stage", "Bad", "--image", "x"])
        assert result.exit_code != 0 and "lowercase letters" in result.output
    with pytest.raises(ValueError, match="one line"):
        cluster.agent_env("https://x/api\nVAMP_AGENT_LISTEN=0.0.0.0:9180", "default", cluster.ETCD_ENDPOINT, "s")
