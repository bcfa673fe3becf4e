"""`python -m local.guard RUN_DIR... [--haproxy PIDFILE]...`: stops what the local stack started
once the stack is gone.

The stack starts the guard with a pipe on its stdin and never writes to it: when the stack
ends in any way (a SIGKILL included) the kernel closes the pipe, the guard reads end-of-file
and stops every recorded process group still running (chalicelib.drivers.processes). The
parent-death signal already kills the stack's direct children; the guard also catches their
grandchildren (a service's `/bin/sh -c "cd x && ..."` child). It gets no parent-death signal
itself, and imports nothing heavy, so it is quick to start and sure to run. The agent's HAProxy
outlives the agent on purpose (a node keeps serving when its agent dies): the guard stops it by
the pid file the agent has it write.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from chalicelib.drivers.processes import stop_haproxy, stop_recorded


def main(args: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the stack's to handle
    run_dirs = [Path(a) for a, before in zip(args, [None, *args]) if a != "--haproxy" and before != "--haproxy"]
    pidfiles = [Path(a) for a, before in zip(args, [None, *args]) if before == "--haproxy"]
    while sys.stdin.buffer.read(4096):
        pass
    stop_recorded(*run_dirs, grace=1.0)
    for pidfile in pidfiles:
        stop_haproxy(pidfile, grace=1.0)


if __name__ == "__main__":
    main(sys.argv[1:])
