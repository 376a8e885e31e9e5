"""Task uids: one per live task, round-robin over the range, a clear error when it is used up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.errors import Conflict
from services.scheduler.backends.local.identity import TaskUsers, UidPool
from services.scheduler.settings import SchedulerSettings


def test_uids_are_handed_out_round_robin_and_never_twice_while_held() -> None:
    pool = UidPool(TaskUsers(switch=True, group=995, uid_begin=10, uid_end=12))
    first = [pool.take() for _ in range(3)]
    assert [(i.uid, i.gid, i.group) for i in first if i] == [(10, 10, 995), (11, 11, 995), (12, 12, 995)]
    with pytest.raises(Conflict, match="every task uid 10-12 is in use"):
        pool.take()
    pool.release(11)
    again = pool.take()
    assert again is not None and again.uid == 11
    assert again.run_as == ("setpriv", "--reuid=11", "--regid=11", "--groups=995", "--no-new-privs", "--")


def test_readopted_uids_are_held_and_the_next_one_follows_them() -> None:
    pool = UidPool(TaskUsers(switch=True, group=None, uid_begin=10, uid_end=20))
    pool.adopt([14, 12, 99])  # 99: not of this range, not Bay's
    taken = pool.take()
    assert taken is not None and taken.uid == 15 and "--clear-groups" in taken.run_as


def test_without_switching_tasks_get_no_identity() -> None:
    assert UidPool(TaskUsers(switch=False, group=None)).take() is None


@pytest.mark.parametrize("bad", ["5", "5-", "9-5", "0-10", "a-b", "1-4294967295"])
def test_a_bad_uid_range_names_the_setting(bad: str) -> None:
    with pytest.raises(ValidationError, match="task_uids"):
        SchedulerSettings(task_uids=bad)
