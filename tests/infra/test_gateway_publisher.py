"""The publisher function in the template (docs/decisions/0036): GatewayPublish in the etcd
subnets and security groups when an etcd endpoint is given (HasEtcd), with the endpoint and the
secret's credentials by dynamic reference, no table, no signing key, a role of its own; every
other function knows it (VAMP_GATEWAY_PUBLISHER_FUNCTION) and may invoke it, and nothing else.
On moto's CloudFormation (after the SAM transform) the stack creates with the etcd parameters."""
from __future__ import annotations

import json

from infra import deploy
from infra.template import functions, packaged

NO_VALUE = {"Ref": "AWS::NoValue"}


def test_the_publisher_is_in_the_etcd_vpc_only_when_etcd_is_given():
    template = packaged()
    assert template["Conditions"]["HasEtcd"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EtcdEndpoint"}, ""]}]}
    for name in ("EtcdSubnetIds", "EtcdSecurityGroupIds"):
        assert template["Parameters"][name]["Type"] == "CommaDelimitedList"
    assert template["Parameters"]["EtcdEndpoint"]["Default"] == template["Parameters"]["EtcdSecret"]["Default"] == ""
    publisher = functions(template)["GatewayPublish"]["Properties"]
    assert publisher["VpcConfig"] == {"Fn::If": ["HasEtcd", {"SubnetIds": {"Ref": "EtcdSubnetIds"},
                                                             "SecurityGroupIds": {"Ref": "EtcdSecurityGroupIds"}},
                                                 NO_VALUE]}
    assert publisher["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-gateway_publish"}
    assert publisher["Handler"] == "app.gateway_publish"
    assert [f for f, p in functions(template).items() if "VpcConfig" in p["Properties"]] == ["GatewayPublish"]


def test_the_publisher_gets_etcd_and_its_credentials_and_nothing_of_the_store():
    template = packaged()
    env = functions(template)["GatewayPublish"]["Properties"]["Environment"]["Variables"]
    assert env["VAMP_ETCD_ENDPOINT"] == {"Fn::If": ["HasEtcd", {"Ref": "EtcdEndpoint"}, NO_VALUE]}
    # Resolved by CloudFormation at deploy: no Secrets Manager call from inside the VPC.
    assert env["VAMP_ETCD_CREDENTIALS"] == {"Fn::If": [
        "HasEtcdSecret", {"Fn::Sub": "{{resolve:secretsmanager:${EtcdSecret}:SecretString}}"}, NO_VALUE]}
    assert template["Conditions"]["HasEtcdSecret"]["Fn::And"][0] == {"Condition": "HasEtcd"}
    assert not {k for k in env if k.startswith(("VAMP_TABLE", "VAMP_EVENTS_TABLE", "VAMP_GATEWAY_SIGNING",
                                                "VAMP_GATEWAY_PUBLISHER"))}, env
    role = template["Resources"]["GatewayPublishRole"]["Properties"]
    actions = {a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert {a.split(":")[0] for a in actions} == {"logs", "ec2"}  # no dynamodb, secretsmanager, lambda


def test_every_other_function_knows_the_publisher_and_may_invoke_it():
    template = packaged()
    others = {k: v for k, v in functions(template).items() if k != "GatewayPublish"}
    assert len(others) == 12  # with the workflows' (0039) and the automations' (0041)
    for name, function in others.items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["VAMP_GATEWAY_PUBLISHER_FUNCTION"] == {"Fn::If": ["HasEtcd", {"Ref": "GatewayPublish"}, NO_VALUE]}, name
        role = template["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        (invoke,) = [s for s in statements if s.get("Sid") == "InvokeTheGatewayPublisher"]
        assert invoke["Action"] == ["lambda:InvokeFunction"]
        assert invoke["Resource"] == [{"Fn::GetAtt": ["GatewayPublish", "Arn"]}]
    assert functions(template)["GatewayPublish"]["Properties"]["Role"] == {"Fn::GetAtt": ["GatewayPublishRole", "Arn"]}


def test_after_the_sam_transform_the_function_has_its_vpc_and_the_others_their_permission():
    plain = deploy.transform(deploy.locate(packaged(), {"Bucket": "b", "Key": "k"}, "{}"), "us-east-1")["Resources"]
    assert plain["GatewayPublish"]["Type"] == "AWS::Lambda::Function"
    assert plain["GatewayPublish"]["Properties"]["VpcConfig"]["Fn::If"][0] == "HasEtcd"
    assert "InvokeTheGatewayPublisher" in json.dumps(plain["ApiHandlerRole"])
    assert "InvokeTheGatewayPublisher" not in json.dumps(plain["GatewayPublishRole"])


def test_the_stack_creates_with_etcd_on_moto(cloudformation_lambda, monkeypatch):
    moto_server = cloudformation_lambda
    import boto3

    from tests.infra.test_deploy import _moto_template

    def client(service: str):
        return boto3.client(service, endpoint_url=moto_server, region_name="us-east-1")

    ec2, s3, cfn, lam = (client(s) for s in ("ec2", "s3", "cloudformation", "lambda"))
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    group = ec2.create_security_group(GroupName="vamp-publisher", Description="x", VpcId=vpc)["GroupId"]
    client("secretsmanager").create_secret(Name="vamp/etcd-publisher", SecretString=json.dumps({"username": "publisher"}))
    bucket = deploy.ensure_bucket(s3, client("sts"), "us-east-1", None)
    stack = deploy.stack_name("etcd")
    parameters = {"Driver": "kubernetes", "ClusterName": "vamp", "EtcdEndpoint": "https://etcd.vamp.internal:2379",
                  "EtcdSubnetIds": ",".join(subnets), "EtcdSecurityGroupIds": group, "EtcdSecret": "vamp/etcd-publisher"}
    outputs = deploy.deploy_stack(cfn, stack, _moto_template(s3, bucket, stack), parameters, say=lambda _: None, poll=0.2)
    try:
        resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        assert resources and all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources), resources
        assert outputs["GatewayPublisher"] == f"{stack}-gateway_publish"
        publisher = lam.get_function_configuration(FunctionName=f"{stack}-gateway_publish")
        assert sorted(publisher["VpcConfig"]["SubnetIds"]) == sorted(subnets)
        assert publisher["VpcConfig"]["SecurityGroupIds"] == [group]
        env = publisher["Environment"]["Variables"]
        assert env["VAMP_ETCD_ENDPOINT"] == "https://etcd.vamp.internal:2379"
        assert "VAMP_TABLE_NAME" not in env
        api = lam.get_function_configuration(FunctionName=stack)["Environment"]["Variables"]
        assert api["VAMP_GATEWAY_PUBLISHER_FUNCTION"] == f"{stack}-gateway_publish"
    finally:
        deploy.destroy_stack(cfn, stack, say=lambda _: None, poll=0.2)
