"""`python -m bench page` runs the database where the load runs (bench/page.py
`pin_database`): the postmaster and every process it has started are moved to the bench
process's cores, and a process it starts later inherits them. Checked on a stand-in
"postmaster" (a process with a child) started on every core, from a process then pinned
to one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cli_helpers import REPO

_PIN = """
import json, os, subprocess, sys, time
from bench.page import pin_database

parent = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"])
time.sleep(1)  # its child has started
children = [int(p) for p in os.listdir("/proc") if p.isdigit()
            and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(parent.pid)]
before = sorted(os.sched_getaffinity(parent.pid))
os.sched_setaffinity(0, {0})  # the load's core
note = pin_database(parent.pid)
after = [sorted(os.sched_getaffinity(pid)) for pid in [parent.pid, *children]]
parent.kill()
for pid in children:
    os.kill(pid, 9)
print(json.dumps({"before": before, "after": after, "children": len(children), "note": note}))
"""


def test_the_database_is_moved_to_the_loads_core() -> None:
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores and sched_setaffinity")
    done = subprocess.run(
        [sys.executable, "-c", _PIN], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == sorted(os.sched_getaffinity(0))  # left to the scheduler
    assert len(seen["before"]) > 1
    assert seen["children"] == 1
    assert seen["after"] == [[0], [0]]
    assert seen["note"] == "database processes: pinned to core 0 with the load"
