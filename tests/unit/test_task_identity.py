"""Task uids: one per live task, round-robin over the range, a clear error when it is used up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from libs.errors import Conflict
from services.scheduler.backends.local.identity import TaskUsers, UidPool
from services.scheduler.backends.local.uidclaims import UidClaims
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
    pool.adopt([(14, "a.1"), (12, "a.2"), (99, "a.3")])  # 99: not of this range, not Bay's
    taken = pool.take()
    assert taken is not None and taken.uid == 15 and "--clear-groups" in taken.run_as


def test_without_switching_tasks_get_no_identity() -> None:
    assert UidPool(TaskUsers(switch=False, group=None)).take() is None


@pytest.mark.parametrize("bad", ["5", "5-", "9-5", "0-10", "a-b", "1-4294967295"])
def test_a_bad_uid_range_names_the_setting(bad: str) -> None:
    with pytest.raises(ValidationError, match="task_uids"):
        SchedulerSettings(task_uids=bad)


def _sandbox(root: Path, task_id: str, final: bool = False) -> None:
    (root / task_id).mkdir(parents=True)
    if final:
        (root / task_id / "final.json").write_text("{}")


def test_two_backends_on_one_host_never_hand_out_the_same_uid(tmp_path: Path) -> None:
    users = TaskUsers(switch=True, group=None, uid_begin=10, uid_end=13)
    a_root, b_root = tmp_path / "a" / "sandboxes", tmp_path / "b" / "sandboxes"
    a = UidPool(users, UidClaims(tmp_path / "claims", a_root))
    b = UidPool(users, UidClaims(tmp_path / "claims", b_root))
    _sandbox(a_root, "a.1")
    _sandbox(a_root, "a.2")
    first = a.take("a.1")
    second = a.take("a.2")
    theirs = b.take("b.1")
    assert first and second and theirs and theirs.uid not in (first.uid, second.uid)
    assert b.others(first.uid) and not a.others(first.uid)  # b must not kill a's processes by uid
    # a's task ended and gave its uid back: b may have it
    a.release(first.uid)
    assert not b.others(first.uid)
    _sandbox(b_root, "b.2")
    assert [b.take("b.2").uid, b.take("b.3").uid] == [13, first.uid]  # type: ignore[union-attr]


def test_a_stale_claim_is_taken_over(tmp_path: Path) -> None:
    users = TaskUsers(switch=True, group=None, uid_begin=10, uid_end=10)
    a_root, b_root = tmp_path / "a" / "sandboxes", tmp_path / "b" / "sandboxes"
    a = UidPool(users, UidClaims(tmp_path / "claims", a_root))
    b = UidPool(users, UidClaims(tmp_path / "claims", b_root))
    _sandbox(a_root, "a.1")
    assert a.take("a.1") is not None
    with pytest.raises(Conflict):
        b.take("b.1")  # a's task lives: its uid is not b's
    (a_root / "a.1" / "final.json").write_text("{}")  # it ended while a was down: never released
    taken = b.take("b.1")
    assert taken is not None and taken.uid == 10
    assert (tmp_path / "claims").stat().st_mode & 0o777 == 0o700
