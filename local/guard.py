"""`python -m local.guard RUN_DIR...`: stops what the local stack started once the stack is gone.

The stack starts the guard with a pipe on its stdin and never writes to it: when the stack
ends in any way (a SIGKILL included) the kernel closes the pipe, the guard reads end-of-file
and stops every recorded process group still running (chalicelib.drivers.processes). The
parent-death signal already kills the stack's direct children; the guard also catches their
grandchildren (a service's `/bin/sh -c "cd x && ..."` child). It gets no parent-death signal
itself, and imports nothing heavy, so it is quick to start and sure to run.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from chalicelib.drivers.processes import stop_recorded


def main(run_dirs: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the stack's to handle
    while sys.stdin.buffer.read(4096):
        pass
    stop_recorded(*map(Path, run_dirs), grace=1.0)


if __name__ == "__main__":
    main(sys.argv[1:])
