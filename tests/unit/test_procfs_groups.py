"""Process groups read from /proc: one pass for every caller within its age (ending a hundred tasks
at once polls their groups from one pass), and a new pass once it is older."""

from __future__ import annotations

import subprocess

from services.scheduler.backends.local import procfs


def test_members_come_from_one_shared_pass_until_it_is_too_old() -> None:
    now = [0.0]
    scan = procfs.GroupScan(max_age=0.05, clock=lambda: now[0])
    a = subprocess.Popen(["sleep", "30"], start_new_session=True)
    b = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert scan.members(a.pid) == [a.pid]
        assert scan.members(b.pid) == [b.pid]
        a.kill()
        a.wait()
        assert scan.members(a.pid) == [a.pid]  # the same pass: not read again
        now[0] += 0.06
        assert scan.members(a.pid) == []  # a new pass: it is gone
        assert scan.members(b.pid) == [b.pid]
    finally:
        for p in (a, b):
            p.kill()
            p.wait()
    assert procfs.groups().get(b.pid) is None and procfs.read_stat(b.pid) is None
