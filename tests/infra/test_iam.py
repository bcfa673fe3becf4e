"""Exact ARNs in every IAM policy (issue 10, finding 14; docs/decisions/0026): every template and
policy file under infra/ and .chalice/ is read, and any Resource with a wildcard that is not in
the exception list below, each with the reason the service needs it, fails."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.infra.templates import ROOT, Statement, infra_files, statements

ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
STAGE = "dev"  # the stage .chalice/policy-dev.json serves
STACK = "vamp-dev"  # chalice's names for the stage; the template names them after its stack instead


def stage_functions(stage: str) -> list[str]:
    """The Lambda functions chalice makes of app.py for a stage, by their deployed names."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)
    graph = ApplicationGraphBuilder().build(config, stage)
    return sorted(r.function_name for r in DependencyBuilder().build_dependencies(graph)
                  if isinstance(r, models.LambdaFunction))


def stack_functions(stage: str) -> list[str]:
    """The functions' names as the template gives them (infra/resources.yaml: FunctionName from
    the stack, so any stage's stack), which are chalice's own with the stack for `vamp-<stage>`."""
    return sorted(f.replace(f"vamp-{stage}", "${AWS::StackName}", 1) for f in stage_functions(stage))


def exceptions() -> dict[tuple[frozenset[str], str], str]:
    """(actions, resource) -> why that resource must hold a wildcard."""
    found = {
        # Step Functions authorises a callback by its task token, which names the execution:
        # SendTaskSuccess supports no resource-level permission (any ARN there denies it).
        (frozenset({"states:SendTaskSuccess"}), "*"):
            "callbacks are authorised by their task token; no resource-level permission exists",
        # Executions get their names when a release starts them; the state machine is exact.
        (frozenset({"states:StopExecution"}), ARN % ("states", "execution:${AWS::StackName}-release:*")):
            "executions of this stack's release state machine, named when started",
        # ECS: RegisterTaskDefinition has no resource-level permission; List* are bounded to the
        # cluster by the ecs:cluster condition instead (tests below check that it is there).
        (frozenset({"ecs:RegisterTaskDefinition"}), "*"): "no resource-level permission exists",
        (frozenset({"ecs:ListServices", "ecs:ListTasks"}), "*"): "bounded by the ecs:cluster condition",
        (frozenset({"ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices",
                    "ecs:TagResource"}), ARN % ("ecs", "service/${ClusterName}/*")):
            "the services of the one cluster, named per deployment",
        (frozenset({"ecs:DescribeTasks"}), ARN % ("ecs", "task/${ClusterName}/*")):
            "the tasks of the one cluster, named by ECS",
        (frozenset({"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"}),
         ARN % ("es", "domain/${OpenSearchDomain}/*")): "the indices of the one domain, one per day",
        # ECS authorises a create action's tags as ecs:TagResource (0038): on any family, since
        # families are named per deployment, and only as RegisterTaskDefinition creates them.
        # --- automations (0041): alarms are the operator's, named by them; only their tags are read
        (frozenset({"cloudwatch:ListTagsForResource"}), ARN % ("cloudwatch", "alarm:*")):
            "the operator's alarms, any name; the alarm handler reads which gateways they name",
        (frozenset({"ecs:TagResource"}), ARN % ("ecs", "task-definition/*")):
            "task definition families are named per deployment; only with ecs:CreateAction RegisterTaskDefinition",
        # --- workflow runs on ECS (0039): families workflow-*, tasks named by ECS as they run
        (frozenset({"ecs:RunTask"}), ARN % ("ecs", "task-definition/workflow-*:*")):
            "the workflow runs' families (one per workflow, every revision); bounded to the cluster by ecs:cluster",
        (frozenset({"ecs:StopTask"}), ARN % ("ecs", "task/${ClusterName}/*")):
            "the tasks of the one cluster, named by ECS; a workflow run's is stopped at its deadline",
        (frozenset({"ecs:TagResource"}), ARN % ("ecs", "task/${ClusterName}/*")):
            "tasks named by ECS; only with ecs:CreateAction RunTask",
        (frozenset({"logs:GetLogEvents"}),
         ARN % ("logs", "log-group:/vamp/${AWS::StackName}/services:log-stream:workflow-*")):
            "the workflow tasks' streams (<family>/service/<task id>, named by awslogs) in the services' group",
        # --- workflows (0039): the schedules of this stack's group, one per workflow, named then
        (frozenset({"scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                    "scheduler:GetSchedule"}), ARN % ("scheduler", "schedule/${AWS::StackName}-workflows/*")):
            "the schedules of this stack's workflow group, named per workflow",
        # The ECS tasks' execution role (0038): images from any repository of the account's
        # region (the user names them); GetAuthorizationToken has no resource-level permission.
        (frozenset({"ecr:GetAuthorizationToken"}), "*"): "no resource-level permission exists",
        (frozenset({"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}),
         ARN % ("ecr", "repository/*")): "the services' images: any repository of the account, named by the user",
        (frozenset({"ssm:GetParameters"}), ARN % ("ssm", "parameter/${SecretsPrefix}*")):
            "the ECS tasks' secrets: the user's names, under the operator's prefix only",
        (frozenset({"ssm:GetParameter"}), ARN % ("ssm", "parameter/${SecretsPrefix}*")):
            "secret references are the user's names, under the operator's prefix only",
        (frozenset({"secretsmanager:GetSecretValue"}), ARN % ("secretsmanager", "secret:${SecretsPrefix}*")):
            "secret references are the user's names, under the operator's prefix only",
        # --- gateway publisher (0036) ---
        # The publisher function in etcd's VPC: Lambda creates and removes its network interfaces
        # with the function's role (AWSLambdaVPCAccessExecutionRole's EC2 actions, without its
        # logs:* on "*"); DescribeNetworkInterfaces/DescribeSubnets have no resource-level
        # permission, the interfaces' ids are Lambda's.
        (frozenset({"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}),
         "*"): "Lambda's network interfaces in the etcd subnets, named by Lambda; Describe* have no resource ARN",
    }
    for function in stack_functions(STAGE):
        # Lambda names a log stream per execution environment; the log group is the function's own.
        found[(frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
               ARN % ("logs", f"log-group:/aws/lambda/{function}:*"))] = "the log streams of the function's own group"
    return found


def wildcards() -> list[tuple[Statement, str]]:
    return [(s, r) for s in statements() if s.body.get("Effect") == "Allow" for r in s.resources if "*" in r]


def test_every_template_and_policy_file_is_read():
    files = {str(p.relative_to(ROOT)) for p in infra_files()}
    assert {"infra/resources.yaml", ".chalice/policy-dev.json"} <= files
    seen = {s.file for s in statements()}
    assert {"infra/resources.yaml", ".chalice/policy-dev.json"} <= seen


def test_no_wildcard_resource_outside_the_exceptions():
    allowed = exceptions()
    wrong = [f"{s.file} {s.where} {sorted(s.actions)}: {r}" for s, r in wildcards()
             if (s.actions, r) not in allowed]
    assert not wrong, "wildcard resources (name the exact ARN, or add an exception with its reason):\n" + \
        "\n".join(wrong)


def test_no_exception_is_left_unused():
    used = {(s.actions, r) for s, r in wildcards()}
    assert not set(exceptions()) - used, sorted(set(exceptions()) - used)


def test_no_not_resource_or_not_action():
    # NotResource/NotAction grant everything but what they name: wildcards by another name.
    wrong = [f"{s.file} {s.where}" for s in statements() if {"NotResource", "NotAction"} & set(s.body)
             and s.body.get("Effect") == "Allow"]
    assert not wrong


def test_no_resource_names_another_stage_or_any_region_or_account():
    for s in statements():
        for r in s.resources:
            assert not r.startswith("arn:*") and ":*:*:" not in r, (s.file, r)
            assert "vamp-*" not in r, (s.file, r)  # vamp-*-release matched every stage's machine


def _log_groups(policy_file: str) -> list[str]:
    policy = json.loads((ROOT / ".chalice" / policy_file).read_text())
    # the functions' own streams (the workflow tasks' streams are only read: ReadWorkflowTaskLogs)
    (logs,) = [s for s in policy["Statement"] if any(a.startswith("logs:") for a in s["Action"])
               and s.get("Sid") != "ReadWorkflowTaskLogs"]
    assert "logs:CreateLogGroup" not in logs["Action"]  # chalice creates the groups (log_retention_in_days)
    return sorted(r["Fn::Sub"].split("log-group:")[1].removesuffix(":*") for r in logs["Resource"])


def test_the_log_streams_are_exactly_the_stage_functions():
    # A function with a policy file of its own (lambda_functions in .chalice/config.json: the
    # gateway publisher, 0036) has its own log group there, and only there.
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    own = {f"${{AWS::StackName}}-{name}": spec["iam_policy_file"]
           for name, spec in config["stages"][STAGE].get("lambda_functions", {}).items() if "iam_policy_file" in spec}
    assert _log_groups(f"policy-{STAGE}.json") == sorted(f"/aws/lambda/{f}" for f in stack_functions(STAGE) if f not in own)
    for function, policy_file in own.items():
        assert _log_groups(policy_file) == [f"/aws/lambda/{function}"]
    assert config["stages"][STAGE]["log_retention_in_days"] > 0


def test_the_release_machine_invokes_only_this_stacks_tasks():
    (invoke,) = [s for s in statements() if s.actions == {"lambda:InvokeFunction"} and s.file == "infra/resources.yaml"
                 and not any("workflow_run" in r for r in s.resources)]  # the workflows' (0039): tests/workflows
    tasks = ["".join(w.capitalize() for w in f.removeprefix(f"{STACK}-").split("_"))
             for f in stage_functions(STAGE) if f.startswith(f"{STACK}-release_")]
    assert sorted(invoke.resources) == sorted(f"{{GetAtt {t}.Arn}}" for t in tasks)


def test_the_functions_invoke_only_this_stacks_gateway_publisher():
    # --- gateway publisher (0036) ---
    (invoke,) = [s for s in statements() if s.actions == {"lambda:InvokeFunction"} and s.file != "infra/resources.yaml"]
    assert invoke.file == f".chalice/policy-{STAGE}.json" and invoke.body["Sid"] == "InvokeTheGatewayPublisher"
    assert invoke.resources == ["{GetAtt GatewayPublish.Arn}"]
    # The publisher's own role invokes nothing and reads no table or secret: logs and its ENIs.
    own = [s for s in statements() if s.file == ".chalice/policy-gateway-publish.json"]
    assert {a.split(":")[0] for s in own for a in s.actions} == {"logs", "ec2"}


def test_the_ecs_execution_role_is_passed_exactly_and_only_to_ecs_tasks():
    (passing,) = [s for s in statements() if "iam:PassRole" in s.actions
                  and "WorkflowSchedulerRole" not in str(s.resources)]  # the workflows' (0039): tests/workflows
    assert passing.actions == {"iam:PassRole"} and passing.resources == ["{GetAtt EcsTaskExecutionRole.Arn}"]
    assert passing.body["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_task_definitions_are_tagged_only_as_they_are_registered():
    (tagging,) = [s for s in statements() if s.resources == [ARN % ("ecs", "task-definition/*")]]
    assert tagging.actions == {"ecs:TagResource"}
    assert tagging.body["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}


def test_ecs_listing_is_bounded_to_the_cluster():
    (listing,) = [s for s in statements() if s.actions == {"ecs:ListServices", "ecs:ListTasks"}]
    assert listing.body["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::Sub": ARN % ("ecs", "cluster/${ClusterName}")}}}


@pytest.mark.skipif(shutil.which("cfn-lint") is None, reason="cfn-lint is not installed")
def test_cfn_lint_is_clean_on_the_packaged_template(tmp_path):
    # infra/resources.yaml alone names chalice's resources it completes: the merged template is
    # what CloudFormation gets (cfn-lint found chalice's `${ApiHandler}` log group there).
    from infra.template import packaged

    path = tmp_path / "sam.json"
    path.write_text(json.dumps(packaged(STAGE)))
    out = subprocess.run(["cfn-lint", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
