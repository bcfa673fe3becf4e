"""The workflows' part of the stack (infra/resources.yaml `# --- workflows (0039) ---`): the
Scheduler's role invokes exactly workflow_run; the functions manage only this stack's group's
schedules and pass exactly that role, only to the Scheduler; what makes and runs the schedules
knows the group, the function and the role."""
from __future__ import annotations

from infra.template import functions, packaged
from tests.infra.test_iam import statements

RUN_ARN = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-workflow_run"


def test_the_scheduler_role_invokes_exactly_workflow_run():
    role = packaged()["Resources"]["WorkflowSchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    [statement] = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "lambda:InvokeFunction" and statement["Resource"] == {"Fn::Sub": RUN_ARN}
    assert functions(packaged())["WorkflowRun"]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-workflow_run"}


def test_the_functions_pass_the_scheduler_role_only_to_the_scheduler():
    [passing] = [s for s in statements() if "iam:PassRole" in s.actions and "WorkflowSchedulerRole" in str(s.resources)]
    assert passing.actions == {"iam:PassRole"} and passing.resources == ["{GetAtt WorkflowSchedulerRole.Arn}"]
    assert passing.body["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    [schedules] = [s for s in statements() if any(a.startswith("scheduler:") for a in s.actions)]
    assert schedules.actions == {"scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                                 "scheduler:GetSchedule"}
    assert len(schedules.resources) == 1 and schedules.resources[0].endswith(":schedule/${AWS::StackName}-workflows/*")


def test_the_api_and_workflow_run_know_the_group_the_function_and_the_role():
    found = functions(packaged())
    for name in ("APIHandler", "WorkflowRun"):
        env = found[name]["Properties"]["Environment"]["Variables"]
        assert env["VAMP_WORKFLOW_SCHEDULE_GROUP"] == {"Ref": "WorkflowSchedules"}, name
        assert env["VAMP_WORKFLOW_RUN_FUNCTION_ARN"] == {"Fn::Sub": RUN_ARN}, name
        assert env["VAMP_WORKFLOW_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["WorkflowSchedulerRole", "Arn"]}, name
    group = packaged()["Resources"]["WorkflowSchedules"]
    assert group["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert group["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-workflows"}
