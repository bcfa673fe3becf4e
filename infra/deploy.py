"""`make deploy STAGE=<name>` / `make destroy STAGE=<name>`: the packaged template (out/<stage>/,
written by `make package`) deployed as the CloudFormation stack `vamp-<stage>` with the caller's
credentials and region (docs/decisions/0035).

The SAM transform runs here (samtranslator, as CloudFormation would run it), so the stack is
given plain resources - the very template the tests create on moto's CloudFormation - and a
change set that shows every resource before it is executed. The code and the template go to an
S3 bucket, named (`--bucket`) or made once per account and region, under content hashes.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import click

from infra.cluster import (
    ETCD_ENDPOINT,
    PUBLISHER_ETCD_ENDPOINT,
    current_image,
    describe_cluster,
    missing_secrets,
    publisher_parameters,
    write_overlay,
)
from infra.template import load_template

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "infra" / "release.asl.json"
RETAINED = ("VampTable", "VampEventsTable")  # DeletionPolicy: Retain in infra/resources.yaml
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def stack_name(stage: str) -> str:
    return f"vamp-{stage}"


def locate(template: dict, code: dict, definition: str) -> dict:
    """What `aws cloudformation package` does: every function's code at `code` (Bucket, Key), and
    the release state machine's definition inline (its DefinitionSubstitutions still apply)."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = dict(code)
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            resource["Properties"].pop("DefinitionS3Location", None)
            resource["Properties"]["DefinitionString"] = definition
    return template


def transform(template: dict, region: str) -> dict:
    """The SAM transform, as CloudFormation applies it: AWS::Serverless::* to plain resources."""
    import boto3
    from samtranslator.translator.transform import transform as sam_transform

    class NoManagedPolicies:  # the template names no AWS managed policy by its short name
        def load(self) -> dict:
            return {}

    session = boto3.session.Session(region_name=region)
    return sam_transform(template, {}, NoManagedPolicies(), session)


def content_key(prefix: str, body: bytes, suffix: str) -> str:
    return f"{prefix}/{hashlib.sha256(body).hexdigest()[:32]}{suffix}"


def ensure_bucket(s3, sts, region: str, name: str | None) -> str:
    """The named bucket, or `vamp-deploy-<account>-<region>` made once (private, encrypted)."""
    if name:
        return name
    account = sts.get_caller_identity()["Account"]
    bucket = f"vamp-deploy-{account}-{region}"
    try:
        s3.head_bucket(Bucket=bucket)
        return bucket
    except s3.exceptions.ClientError:
        pass
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return bucket


def upload(s3, bucket: str, key: str, body: bytes) -> dict:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return {"Bucket": bucket, "Key": key}


def _wait(cfn, stack: str, timeout: float = 3600, poll: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not found["StackStatus"].endswith("_IN_PROGRESS"):
            return found
        if time.monotonic() > deadline:
            raise click.ClickException(f"{stack} still {found['StackStatus']} after {timeout:.0f} s")
        time.sleep(poll)


def _failures(cfn, stack: str) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
            if e["ResourceStatus"].endswith("_FAILED")]


def _exists(cfn, stack: str) -> bool:
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError:
        return False
    return status != "REVIEW_IN_PROGRESS"


def deploy_stack(cfn, stack: str, template_url: str, parameters: dict[str, str],
                 say: Callable[[str], None] = print, poll: float = 5) -> dict[str, str]:
    """Create or update `stack` through a change set; its outputs. A failure names each resource
    that failed and why (CloudFormation rolls a failed update back on its own)."""
    kind = "UPDATE" if _exists(cfn, stack) else "CREATE"
    name = f"vamp-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    cfn.create_change_set(
        StackName=stack, ChangeSetName=name, ChangeSetType=kind, TemplateURL=template_url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"], Tags=[{"Key": "vamp:stack", "Value": stack}])
    while True:
        change_set = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if change_set["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            break
        time.sleep(poll)
    if change_set["Status"] == "FAILED":
        reason = change_set.get("StatusReason", "")
        cfn.delete_change_set(StackName=stack, ChangeSetName=name)
        if "didn't contain changes" in reason or "No updates" in reason:
            say(f"{stack}: nothing to change")
            return outputs(cfn, stack)
        raise click.ClickException(f"{stack}: the change set failed: {reason}")
    for change in change_set.get("Changes", []):
        c = change["ResourceChange"]
        say(f"  {c['Action']:<7} {c['LogicalResourceId']} ({c['ResourceType']})")
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    found = _wait(cfn, stack, poll=poll)
    if found["StackStatus"] not in DONE:
        raise click.ClickException(f"{stack}: {found['StackStatus']}\n" + "\n".join(_failures(cfn, stack)))
    return outputs(cfn, stack)


def outputs(cfn, stack: str) -> dict[str, str]:
    found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def destroy_stack(cfn, stack: str, say: Callable[[str], None] = print, poll: float = 5) -> list[str]:
    """Delete `stack`; the physical names of what it keeps on purpose (the tables: artifacts,
    releases and tokens outlive a stack deleted by mistake)."""
    if not _exists(cfn, stack):
        say(f"{stack}: no such stack")
        return []
    resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    kept = [r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] in RETAINED]
    stack_id = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName=stack)
    found = _wait(cfn, stack_id, poll=poll)
    if found["StackStatus"] != "DELETE_COMPLETE":
        raise click.ClickException(f"{stack}: {found['StackStatus']}\n" + "\n".join(_failures(cfn, stack_id)))
    return kept


def prepare(template: dict, code: bytes, region: str, s3, bucket: str, stack: str) -> dict:
    """A packaged template with its code uploaded and located in S3, transformed."""
    where = upload(s3, bucket, content_key(stack, code, ".zip"), code)
    return transform(locate(template, where, ASL.read_text()), region)


def publish(template: dict, region: str, s3, bucket: str, stack: str) -> str:
    """The template uploaded (CloudFormation takes large ones only from S3); its URL."""
    body = json.dumps(template, indent=1).encode()
    key = upload(s3, bucket, content_key(stack, body, ".json"), body)["Key"]
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def first_token_command(outs: dict[str, str], region: str) -> str:
    return (f"AWS_REGION={region} VAMP_TABLE_NAME={outs.get('Table', '?')} "
            f"VAMP_EVENTS_TABLE_NAME={outs.get('EventsTable', '?')} "
            "python -m local token --aws create admin --role admin --namespaces '*'")


def agent_token_command(outs: dict[str, str], region: str, stage: str, namespace: str, target: str) -> str:
    """The agents' token (role `agent`: acknowledgements and metric events of `namespace`) into `target`."""
    return (f"(umask 077; AWS_REGION={region} VAMP_TABLE_NAME={outs.get('Table', '?')} "
            f"VAMP_EVENTS_TABLE_NAME={outs.get('EventsTable', '?')} "
            f"python -m local token --aws create agents-{stage}-{namespace} --role agent --namespaces {namespace} "
            f"> {target})")


@click.group()
def cli() -> None:
    """Deploy the control plane to AWS, or take it down."""


@cli.command()
@click.option("--stage", required=True, help="the stack is vamp-<stage>")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="what `make package` wrote (out/<stage>)")
@click.option("--bucket", help="an S3 bucket for the code and template (default: made once per account and region)")
@click.option("--driver", type=click.Choice(["kubernetes", "ecs"]), default="kubernetes", show_default=True)
@click.option("--cluster", default="", help="the EKS or ECS cluster deployments run on")
@click.option("--opensearch-domain", default="", help="the Amazon OpenSearch domain for events and logs")
# --- gateway publisher (0036) ---
@click.option("--etcd-endpoint", default="", help="etcd's client URL in the cluster's VPC, https://host:2379, or "
              f"the bundled etcd found through the cluster's API, {PUBLISHER_ETCD_ENDPOINT} (empty: not published)")
@click.option("--etcd-subnets", default="", help="comma-separated private subnets that reach etcd (the publisher function's)")
@click.option("--etcd-security-groups", default="", help="comma-separated security groups of the publisher function")
@click.option("--etcd-secret", default="", help="Secrets Manager secret of etcd's client credentials (JSON; README)")
# ECS (docs/decisions/0038): where the services' tasks run
@click.option("--ecs-subnets", default="", help="ecs: comma-separated subnet ids (e.g. a default VPC's)")
@click.option("--ecs-security-groups", default="", help="ecs: comma-separated security group ids (empty: the VPC's default)")
@click.option("--ecs-public-ip", type=click.Choice(["ENABLED", "DISABLED"]), default="ENABLED", show_default=True,
              help="ecs: a public address per task (public subnets); DISABLED needs a NAT or VPC endpoints")
def deploy(stage: str, out_dir: Path | None, bucket: str | None, driver: str, cluster: str, opensearch_domain: str,
           etcd_endpoint: str, etcd_subnets: str, etcd_security_groups: str, etcd_secret: str,
           ecs_subnets: str, ecs_security_groups: str, ecs_public_ip: str) -> None:
    import boto3

    session = boto3.session.Session()
    region = session.region_name
    if not region:
        raise click.ClickException("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
    # --- reaching the bundled etcd (0036) ---
    through_cluster = etcd_endpoint.startswith("eks-service://")
    if through_cluster and not (driver == "kubernetes" and cluster):
        raise click.ClickException(f"--etcd-endpoint {etcd_endpoint} finds etcd's members through an EKS cluster's "
                                   "API: needs --driver kubernetes and --cluster <EKS cluster>")
    if through_cluster:
        from chalicelib.kv.etcd_members import parse

        try:
            parse(etcd_endpoint)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    eks_parameters = {"EksEndpoint": "", "EksCertificateAuthority": ""}
    if driver == "kubernetes" and cluster:
        described, problems = describe_cluster(session.client("eks"), cluster, region, through_cluster)
        if problems:  # before anything is uploaded: the stack would deploy and never reach the cluster
            raise click.ClickException("refusing to deploy:\n- " + "\n- ".join(problems))
        if through_cluster:
            eks_parameters = publisher_parameters(described)
    elif driver == "kubernetes":
        click.echo("note: no --cluster (CLUSTER=<EKS cluster>): the API works, deployments fail until one is named")
    out = out_dir or ROOT / "out" / stage
    if not (out / "sam.yaml").exists():
        raise click.ClickException(f"{out}/sam.yaml is missing: run `make package STAGE={stage}` first")
    s3, cfn = session.client("s3"), session.client("cloudformation")
    stack = stack_name(stage)
    bucket = ensure_bucket(s3, session.client("sts"), region, bucket)
    template = prepare(load_template(out / "sam.yaml"), (out / "deployment.zip").read_bytes(), region, s3, bucket, stack)
    url = publish(template, region, s3, bucket, stack)
    click.echo(f"{stack}: deploying in {region} (code and template in s3://{bucket}/{stack}/)")
    if etcd_endpoint and not (etcd_subnets and etcd_security_groups):
        raise click.ClickException("--etcd-endpoint needs --etcd-subnets and --etcd-security-groups (docs/decisions/0036)")
    parameters = {"Driver": driver, "ClusterName": cluster, "OpenSearchDomain": opensearch_domain,
                  "EtcdEndpoint": etcd_endpoint, "EtcdSubnetIds": etcd_subnets,
                  "EtcdSecurityGroupIds": etcd_security_groups, "EtcdSecret": etcd_secret,
                  "EcsSubnetIds": ecs_subnets, "EcsSecurityGroupIds": ecs_security_groups, "EcsAssignPublicIp": ecs_public_ip,
                  **eks_parameters}
    outs = deploy_stack(cfn, stack, url, parameters, say=click.echo)
    for key, value in sorted(outs.items()):
        click.echo(f"{key:<24} {value}")
    click.echo("\nthe first admin token (shown once):\n  " + first_token_command(outs, region))


@cli.command("agent-config")
@click.option("--stage", required=True, help="the stack vamp-<stage> whose API the agents report to")
@click.option("--namespace", default="default", show_default=True, help="the Vamp namespace the agents serve")
@click.option("--etcd-endpoint", default=ETCD_ENDPOINT, show_default=True,
              help="etcd's client URL (another than the default: an etcd of your own, the bundled one left out)")
@click.option("--image", help="the agent image (default: what the overlay names, else vamp-serverless/agent:<commit>)")
def agent_config(stage: str, namespace: str, etcd_endpoint: str, image: str | None) -> None:
    """Write infra/agent/stages/<stage>/ (the agents' kustomize overlay) from the stack's outputs."""
    import boto3

    session = boto3.session.Session()
    region = session.region_name
    if not region:
        raise click.ClickException("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
    stack = stack_name(stage)
    cfn = session.client("cloudformation")
    if not _exists(cfn, stack):
        raise click.ClickException(f"{stack}: no such stack in {region}: `make deploy STAGE={stage}` first")
    outs = outputs(cfn, stack)
    if not outs.get("EndpointURL"):
        raise click.ClickException(f"{stack} has no EndpointURL output: is it a stack `make deploy` made?")
    try:
        image = image or current_image(stage) or f"vamp-serverless/agent:{git_commit()}"
        where = write_overlay(stage, outs["EndpointURL"], namespace, etcd_endpoint, image, stack)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    rel = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    click.echo(f"{rel}/: the agents report to {outs['EndpointURL']} (namespace {namespace}, etcd {etcd_endpoint}, "
               f"image {image})")
    missing = missing_secrets(stage, etcd_endpoint == ETCD_ENDPOINT)
    if missing:
        click.echo("\nbefore `kubectl apply -k`, make these files (never committed):")
        for path, what in missing:
            click.echo(f"  {rel}/{path:<32} {what}")
        click.echo(f"\nthe agents' token:\n  {agent_token_command(outs, region, stage, namespace, f'{rel}/secrets/api-token')}")
        click.echo(f"etcd's certificates: make agent-certs STAGE={stage}; the etcd users: infra/agent/README.md")
    click.echo(f"\nthen: kubectl apply -k {rel}")


def git_commit() -> str:
    """The checkout's commit (the agent image's tag), `-dirty` when files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        raise click.ClickException("not a git checkout: pass --image") from None


@cli.command()
@click.option("--stage", required=True)
def destroy(stage: str) -> None:
    import boto3

    cfn = boto3.session.Session().client("cloudformation")
    kept = destroy_stack(cfn, stack_name(stage), say=click.echo)
    click.echo(f"{stack_name(stage)}: deleted")
    for name in kept:
        click.echo(f"  kept on purpose (DeletionPolicy Retain): DynamoDB table {name} - "
                   f"delete it with `aws dynamodb delete-table --table-name {name}`")


if __name__ == "__main__":
    sys.exit(cli())
