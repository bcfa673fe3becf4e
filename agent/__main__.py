"""`python -m agent [--flags]`: run the gateway agent until SIGTERM or SIGINT."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from agent.app import Agent
from agent.settings import SettingsError, parse_args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("VAMP_AGENT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        agent = Agent(parse_args(argv))
    except SettingsError as e:
        logging.getLogger("agent").error("not starting: %s", e)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    stop.wait()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
