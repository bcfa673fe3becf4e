"""Child processes that die with their parent, and records that find them after a crash.

Two mechanisms, because each covers what the other cannot:

- `die_with_parent`: a `preexec_fn` setting PR_SET_PDEATHSIG (Linux), so the kernel kills the
  child when its parent dies, SIGKILL included. The kernel ties it to the parent *thread* that
  forked, not the process: a child forked by a short-lived thread (an API request) would be
  killed when that thread ends. `spawn` therefore forks every child on one long-lived thread.
- `ProcessRecord`: a JSON file per child (pid, process group, start time, command line) in a
  run directory; `stop_recorded` stops what a crashed run left there. The start time (field 22
  of /proc/<pid>/stat) tells a live child from a recycled pid, so nothing else is ever killed.

The signal reaches the direct child only: a shell's grandchildren (`/bin/sh -c "cd x && ..."`)
live on, so the caller also stops the child's whole process group (`start_new_session`), at
stop and, after a crash, from the records.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
try:  # resolved before any fork: the child runs as little as possible between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the records still find leftovers at start
    _prctl = None


def die_with_parent(sig: int = signal.SIGKILL):
    """A preexec_fn: the child gets `sig` when the thread that forked it ends."""
    parent = os.getpid()

    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: no signal will come
            os._exit(1)

    return preexec


class _Spawner:
    """Forks on one thread that lives as long as the process (see the module's docstring)."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vamp-spawner", daemon=True)
                self._thread.start()
        if threading.current_thread() is self._thread:
            return subprocess.Popen(args, **kwargs)
        done: Future = Future()
        self._requests.put((args, kwargs, done))
        return done.result()

    def _run(self) -> None:
        while True:
            args, kwargs, done = self._requests.get()
            try:
                done.set_result(subprocess.Popen(args, **kwargs))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                done.set_exception(e)


_SPAWNER = _Spawner()


def spawn(args, *, run_dir: Path | None = None, name: str | None = None, **kwargs) -> subprocess.Popen:
    """Popen in its own process group, killed with this process; recorded as `name` in `run_dir`."""
    kwargs.setdefault("start_new_session", True)
    proc = _SPAWNER.popen(args, preexec_fn=die_with_parent(), **kwargs)
    if run_dir is not None and name:
        ProcessRecord.of(proc.pid, name).write(run_dir)
    return proc


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields after the last ")".
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def running(pid: int, started: int | None) -> bool:
    """The process that started at `started` still runs (not a zombie waiting to be reaped)."""
    fields = _stat(pid)
    return bool(fields) and started is not None and int(fields[19]) == started and fields[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        return [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:
        return []


@dataclass
class ProcessRecord:
    name: str
    pid: int
    pgid: int
    started: int | None
    cmdline: list[str]

    @classmethod
    def of(cls, pid: int, name: str) -> "ProcessRecord":
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid
        return cls(name, pid, pgid, start_time(pid), _cmdline(pid))

    def path(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.json"

    def write(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(run_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(self.path(run_dir))

    @classmethod
    def read(cls, path: Path) -> "ProcessRecord | None":
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """The very process recorded (same pid and start time) still runs."""
        return running(self.pid, self.started)

    def group_alive(self) -> bool:
        return bool(group_members(self.pgid))


def forget(run_dir: Path, name: str) -> None:
    (run_dir / f"{name}.json").unlink(missing_ok=True)


def group_members(pgid: int) -> list[int]:
    """The running (not zombie) processes of a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def stop_groups(pgids: list[int], grace: float = 2.0) -> None:
    """SIGTERM process groups, all at once; SIGKILL what still runs of them after `grace` s.
    A group of zombies only (killed, waiting for their reaper) counts as stopped."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    left = list(pgids)
    while left and time.monotonic() < deadline:
        left = [pgid for pgid in left if group_members(pgid)]
        if left:
            time.sleep(0.02)
    for pgid in left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop_recorded(*run_dirs: Path, grace: float = 2.0) -> list[ProcessRecord]:
    """Stop every process recorded in `run_dirs` by a previous run (and its group) that still
    runs, all at once; the records are removed. A record whose pid now names another process is
    only removed. Returns the records of what was stopped."""
    stopping = []
    paths = [p for run_dir in run_dirs if run_dir.is_dir() for p in sorted(run_dir.glob("*.json"))]
    for path in paths:
        record = ProcessRecord.read(path)
        if record is not None and record.pgid > 1 and record.pgid != os.getpgid(0):
            # The group of the very process recorded: its leader is alive and the same, or the
            # leader is gone (or a zombie) but the group lives on (grandchildren of a shell).
            leader_same = record.alive()
            leader_gone = not leader_same and start_time(record.pid) in (None, record.started)
            if leader_same or (leader_gone and record.pgid == record.pid and record.group_alive()):
                log.warning("stopping %s (pid %d, group %d) left by an earlier run", record.name, record.pid,
                            record.pgid)
                stopping.append(record)
        path.unlink(missing_ok=True)
    stop_groups([r.pgid for r in stopping], grace)
    return stopping


def stop_haproxy(pidfile: Path, grace: float = 2.0) -> int | None:
    """Stop the HAProxy master whose pid `pidfile` holds (`haproxy -p`) and its workers, if that
    pid still names an HAProxy started on a configuration beside the pid file (a recycled pid is
    left alone). Returns the pid stopped, or None."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    command = _cmdline(pid)
    if not command or "haproxy" not in Path(command[0]).name or not any(str(pidfile.parent) in a for a in command):
        return None
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return None
    if pgid != pid or pgid == os.getpgid(0):  # HAProxy leads its own session (agent/haproxy.py)
        return None
    log.warning("stopping haproxy master %d (%s)", pid, pidfile)
    stop_groups([pgid], grace)
    return pid
