"""The release state machine (infra/release.asl.json) as seen from the control plane: start an
execution, stop one, answer a waiting task token."""
from __future__ import annotations

import json
import re

from chalicelib import aws
from chalicelib.errors import VampError
from chalicelib.settings import settings


class MachineUnavailable(VampError):
    status = 503


def execution_name(namespace: str, name: str, release_id: str) -> str:
    """Step Functions names: 1..80 of [A-Za-z0-9-_]; the release id keeps them unique."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", f"{namespace}-{name}")[: 80 - len(release_id) - 1]
    return f"{safe}-{release_id}"


class StepFunctionsMachine:
    def __init__(self, arn: str | None = None, client=None):
        self._arn = arn or settings().release_state_machine
        self._client = client

    @property
    def arn(self) -> str | None:
        """The machine's ARN from settings only (VAMP_RELEASE_STATE_MACHINE: the template sets it by
        reference); never guessed from a function's name, a partition or a naming scheme."""
        return self._arn

    @property
    def client(self):
        if self._client is None:
            self._client = aws.client("stepfunctions")
        return self._client

    def start(self, name: str, payload: dict) -> str:
        if not self.arn:
            raise MachineUnavailable("releases are not configured: VAMP_RELEASE_STATE_MACHINE is not set", [])
        out = self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        return out["executionArn"]

    def stop(self, execution_arn: str | None, cause: str) -> None:
        if not execution_arn:
            return
        try:
            self.client.stop_execution(executionArn=execution_arn, error="Release.Finished", cause=cause[:256])
        except Exception:  # already ended: nothing to stop
            pass

    def signal(self, token: str | None, output: dict) -> bool:
        """Answer a waiting task (approval or pause); False when the token is no longer valid."""
        if not token:
            return False
        try:
            self.client.send_task_success(taskToken=token, output=json.dumps(output))
            return True
        except Exception:
            return False
