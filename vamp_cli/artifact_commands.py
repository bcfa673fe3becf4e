"""Vamp's artifact commands: list, describe/inspect, create, update, delete, deploy, merge, undeploy,
generate, update-gateway, emit, events."""

from vamp_cli.main import cli, pass_context  # noqa: F401
