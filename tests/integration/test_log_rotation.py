"""A chatty task's logs are rotated by its own log writer (real scheduler process, real tasks, real
gateway and CLI): the disk use stays under the cap, ``tail`` reads across ``stdout.1`` and
``stdout``, a follow goes on across rotations without losing or repeating a line, also after the
scheduler was SIGKILLed and restarted, and a task's last lines are in its log before it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.integration.logs_harness import DEADLINE, LogStack, log_stack
from tests.integration.scheduler_harness import task_readable_dir
from tests.poll import poll_until

MAX_BYTES, KEEP = 4096, 2
CAP = (KEEP + 1) * MAX_BYTES  # per stream


@pytest_asyncio.fixture
async def s(fresh_stream: str, tmp_path: Path) -> AsyncIterator[LogStack]:
    env = {"BAY_LOG_MAX_BYTES": str(MAX_BYTES), "BAY_LOG_KEEP": str(KEEP)}
    async for stack in log_stack(fresh_stream, tmp_path, **env):
        yield stack


def numbered(first: int, last: int) -> list[str]:
    return [f"line {n}" for n in range(first, last + 1)]


def stdout_files(logs: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in logs.iterdir() if p.name.startswith("stdout")}


async def test_a_chatty_task_is_capped_and_read_across_rotation_even_after_a_scheduler_kill(
    s: LogStack,
) -> None:
    flag = task_readable_dir() / "more"
    # 2,000 lines (about 19 KB: several rotations), then on the flag 2,000 more in bursts of 200
    # (each burst smaller than one file, as a follow polls), then a last line
    await s.create(
        name="chat",
        cmd='i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; done; '
        f"while [ ! -e {flag} ]; do sleep 0.05; done; "
        "j=0; while [ $j -lt 10 ]; do j=$((j+1)); k=0; "
        'while [ $k -lt 200 ]; do k=$((k+1)); i=$((i+1)); echo "line $i"; done; sleep 0.2; done; '
        "echo finished; exec sleep 600",
    )
    (task,) = await s.running("chat", 1)

    async def last_line_is(want: str) -> bool:
        return (await s.get(f"/v1/tasks/{task}/logs", tail=1)).text == want + "\n"

    await poll_until(lambda: last_line_is("line 2000"), "the first 2000 lines in the log", DEADLINE)
    logs = s.sandbox(task) / "logs"
    sizes = stdout_files(logs)
    assert set(sizes) == {"stdout", "stdout.1", "stdout.2"}, sizes  # keep = 2: older ones dropped
    assert sum(sizes.values()) <= CAP and max(sizes.values()) <= MAX_BYTES, sizes
    current = (logs / "stdout").read_text().splitlines()
    assert len(current) < 600  # so the tail below spans the rotation

    tail = await s.get(f"/v1/tasks/{task}/logs", tail=600)
    assert tail.status_code == 200 and tail.text.splitlines() == numbered(1401, 2000)
    code, out, err = await s.bay("logs", task, "--tail", "600")
    assert code == 0, err
    assert out.splitlines() == numbered(1401, 2000)
    whole = (await s.get(f"/v1/tasks/{task}/logs", tail=100_000)).text.splitlines()
    assert whole[-1] == "line 2000" and "line 1" not in whole  # the oldest rotated away
    assert whole == numbered(int(whole[0].split()[1]), 2000)  # and nothing lost in between

    # the writer is the task's: a scheduler SIGKILLed and restarted changes nothing for it
    s.sched.sigkill()
    await s.sched.start()
    await s.running("chat", 1)
    seen: list[str] = []
    params = {"follow": "true", "tail": "1"}
    async with s.http.stream("GET", f"/v1/tasks/{task}/logs", params=params, headers=s.viewer) as r:
        assert r.status_code == 200

        async def read() -> None:
            async for line in r.aiter_lines():
                seen.append(line)
                if line == "line 2000":
                    flag.touch()
                if line == "finished":
                    return

        await asyncio.wait_for(read(), DEADLINE)
    assert seen == [*numbered(2000, 4000), "finished"]  # five rotations followed, none lost or repeated
    sizes = stdout_files(logs)
    assert sum(sizes.values()) <= CAP and max(sizes.values()) <= MAX_BYTES, sizes
    assert "stdout.3" not in sizes


async def test_what_a_task_printed_is_in_its_log_when_it_has_ended_and_its_exit_code_is_kept(
    s: LogStack,
) -> None:
    await s.create(
        name="burst",
        cmd='i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; echo "err $i" >&2; done; exit 3',
    )

    async def ended() -> dict[str, object] | None:
        body = (await s.get("/v1/groups/burst/tasks", all="true")).json()
        return next((t for t in body.get("tasks", []) if t["state"] == "FAILED"), None)

    task = await poll_until(ended, "the task's end", DEADLINE)
    assert task["exit_code"] == 3, task
    out = await s.get(f"/v1/tasks/{task['id']}/logs", tail=2)
    assert out.text == "line 2999\nline 3000\n"
    err = await s.get(f"/v1/tasks/{task['id']}/logs", tail=1, stream="stderr")
    assert err.text == "err 3000\n"
    assert "err 3000" in str(task["message"])  # the failure's message: its last stderr line
