"""Who a local task runs as: a uid and group of its own, plus the task account's group.

Every task gets a uid from a range no account uses (``BAY_TASK_UIDS``) and the group of the same
number (its sandbox's group), and, as its only supplementary group, the group of the task account
(``BAY_TASK_USER``, ``bay-task``; ``make setup`` creates it). A uid per task rather than one shared
account: processes of one uid may read each other's ``/proc/<pid>/cwd``, environment and memory and
signal each other, so a shared uid cannot keep one task out of another's sandbox, whatever the
directory modes say; a shared primary group would open every sandbox to every task. The shared
supplementary group is a handle on all tasks at once, e.g. for a firewall rule
(``iptables -m owner --gid-owner bay-task --suppl-groups``). A uid is handed out round-robin over the
range, so it is reused only after the whole range has been, and never while a live task holds it.

The switch is made by util-linux's ``setpriv`` (which also sets no-new-privs, so no setuid program
gives a task its rights back), not by ``subprocess``'s ``user=``: that forks without ``vfork``, and a
fork of a process that runs gRPC crashes in gRPC's fork handlers. Only root can switch users; a
scheduler started as another user (or without ``setpriv``) runs tasks as itself and says so.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from libs.errors import Conflict

from .uidclaims import UidClaims

log = logging.getLogger("bay.scheduler.local")

DEFAULT_USER = "bay-task"
DEFAULT_UIDS = (1_900_000, 1_999_999)


@dataclass(frozen=True)
class TaskIdentity:
    uid: int
    gid: int
    group: int | None = None  # the task account's group, as the only supplementary one
    setpriv: str = "setpriv"

    @property
    def run_as(self) -> tuple[str, ...]:
        """A prefix to an argv: run as this identity, with no way to gain more (no-new-privs)."""
        groups = f"--groups={self.group}" if self.group is not None else "--clear-groups"
        return (self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", groups, "--no-new-privs", "--")


@dataclass(frozen=True)
class TaskUsers:
    """What the backend needs to hand out identities; :func:`resolve` builds it at start-up."""

    switch: bool  # False: tasks run as the scheduler's own user (it is not root)
    group: int | None  # the task account's group (None: there is no such account)
    uid_begin: int = DEFAULT_UIDS[0]
    uid_end: int = DEFAULT_UIDS[1]  # inclusive
    setpriv: str = "setpriv"

    def owns(self, uid: int) -> bool:
        return self.switch and self.uid_begin <= uid <= self.uid_end


def not_root_warning(user: str) -> str:
    me = pwd.getpwuid(os.geteuid()).pw_name if _has_uid(os.geteuid()) else str(os.geteuid())
    return (
        f"the scheduler runs as {me}, not root: it cannot switch users, so tasks and command health "
        f"checks run as {me} with its rights (not as {user!r} with uids of their own)"
    )


def _has_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def resolve(user: str, uids: tuple[int, int], *, euid: int | None = None) -> TaskUsers:
    """The identities tasks get here; logs a warning where they cannot be switched."""
    if (os.geteuid() if euid is None else euid) != 0:
        log.warning("%s", not_root_warning(user))
        return TaskUsers(switch=False, group=None)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("no setpriv (util-linux) on PATH: tasks and command checks run as root")
        return TaskUsers(switch=False, group=None)
    try:
        group: int | None = pwd.getpwnam(user).pw_gid
    except KeyError:
        try:
            group = grp.getgrnam(user).gr_gid
        except KeyError:
            group = None
            log.warning("no user or group %r (make setup creates it): tasks get no shared group", user)
    return TaskUsers(switch=True, group=group, uid_begin=uids[0], uid_end=uids[1], setpriv=setpriv)


class UidPool:
    """Round-robin over the range, skipping uids of live tasks: this backend's, and (with
    ``claims``, see uidclaims.py) those of every other local backend on the host."""

    def __init__(self, users: TaskUsers, claims: UidClaims | None = None) -> None:
        self.users = users
        self.claims = claims if users.switch else None
        self._next = users.uid_begin
        self._held: set[int] = set()

    def adopt(self, tasks: Iterable[tuple[int, str]]) -> None:
        """Re-adopted live tasks' (uid, task id): held again, and claimed again."""
        for uid, task_id in tasks:
            if self.users.owns(uid):
                self._held.add(uid)
                self._next = max(self._next, uid + 1)
                if self.claims is not None and not self.claims.claim(uid, task_id):
                    log.warning(
                        "task uid %d of re-adopted task %s is claimed by another backend", uid, task_id
                    )

    def take(self, task_id: str = "") -> TaskIdentity | None:
        """A fresh identity, or None when tasks run as the scheduler's user."""
        u = self.users
        if not u.switch:
            return None
        size = u.uid_end - u.uid_begin + 1
        for _ in range(size):
            uid = self._next if self._next <= u.uid_end else u.uid_begin
            self._next = uid + 1
            if uid in self._held:
                continue
            if self.claims is not None and not self.claims.claim(uid, task_id):
                continue  # another backend's task runs as it
            self._held.add(uid)
            return TaskIdentity(uid, uid, u.group, u.setpriv)
        raise Conflict(f"every task uid {u.uid_begin}-{u.uid_end} is in use (BAY_TASK_UIDS)")

    def release(self, uid: int | None) -> None:
        if uid is not None:
            self._held.discard(uid)
            if self.claims is not None:
                self.claims.release(uid)

    def others(self, uid: int) -> bool:
        """Whether another local backend's live task runs as ``uid`` now."""
        return self.claims is not None and self.claims.held_by_another(uid)
