"""login, info, version, completion."""

from vamp_cli.main import cli, pass_context  # noqa: F401
