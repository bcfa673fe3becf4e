"""chalicelib.drivers.processes: children die with their parent (a SIGKILL included) but not with
the short-lived thread that asked for them; records tell a live child from a recycled pid."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from chalicelib.drivers import processes

ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int, started: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.running(pid, started):
            return True
        time.sleep(0.05)
    return False


def test_a_child_outlives_the_thread_that_asked_for_it():
    out = {}
    thread = threading.Thread(target=lambda: out.update(proc=processes.spawn(["sleep", "30"])))
    thread.start()
    thread.join()
    proc = out["proc"]
    try:
        time.sleep(0.3)  # a parent-death signal tied to the finished thread would have come by now
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_child_dies_with_its_killed_parent(tmp_path):
    script = ("import sys, time; from pathlib import Path; from chalicelib.drivers import processes; "
              "p = processes.spawn(['sleep', '60'], run_dir=Path(sys.argv[1]), name='sleeper'); "
              "print(p.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        record = processes.ProcessRecord.read(tmp_path / "sleeper.json")
        assert record.pid == child and record.alive() and record.pgid == child
        parent.kill()
        parent.wait()
        assert _gone(child, record.started)
        assert not record.alive()
    finally:
        if parent.poll() is None:
            parent.kill()


def test_stop_recorded_stops_the_recorded_and_spares_a_recycled_pid(tmp_path):
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    other = subprocess.Popen(["sleep", "61"], start_new_session=True)
    try:
        processes.ProcessRecord.of(leftover.pid, "leftover").write(tmp_path)
        recycled = processes.ProcessRecord.of(other.pid, "recycled")
        recycled.started += 5  # the recorded process started at another time: the pid was reused
        recycled.write(tmp_path)
        stopped = processes.stop_recorded(tmp_path, grace=1.0)
        assert [r.name for r in stopped] == ["leftover"]
        assert leftover.wait(5) is not None
        assert other.poll() is None
        assert not list(tmp_path.glob("*.json"))  # both records are done with
    finally:
        for p in (leftover, other):
            if p.poll() is None:
                p.kill()
                p.wait()
