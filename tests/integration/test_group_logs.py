"""A group's logs over REST and ``bay logs GROUP`` (real scheduler process, real tasks, real gateway):
every task's lines with its prefix, a task started later joins a follow, the follow ends when the
group is deleted; bad parameters name the field, an unknown group is a 404, and a task whose
scheduler is down gets a one-line note."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.integration.gateway_harness import rejected_fields
from tests.integration.logs_harness import DEADLINE, LogStack, log_stack
from tests.integration.scheduler_harness import task_readable_dir
from tests.poll import poll_until

LINE = re.compile(r"^(?P<task>duo\.[^ ]+) \| (?P<text>.*)$")


@pytest_asyncio.fixture
async def s(fresh_stream: str, tmp_path: Path) -> AsyncIterator[LogStack]:
    async for stack in log_stack(fresh_stream, tmp_path):
        yield stack


def split(line: str) -> tuple[str, str]:
    found = LINE.match(line)
    assert found is not None, line
    return found["task"], found["text"]


async def test_group_logs_prefix_every_task_follow_joins_new_ones_and_end_with_the_group(
    s: LogStack,
) -> None:
    flag = task_readable_dir() / "later"
    # each task: a first line, then (once the flag is there) a second one; both name the task
    await s.create(
        name="duo",
        instances=2,
        cmd='echo "hello from $BAY_TASK_ID"; echo "oops $BAY_TASK_ID" >&2; '
        f'while [ ! -e {flag} ]; do sleep 0.05; done; echo "later from $BAY_TASK_ID"; exec sleep 600',
    )
    first = set(await s.running("duo", 2))

    async def hellos(task_ids: set[str]) -> None:
        async def all_there() -> bool:
            text = (await s.get("/v1/groups/duo/logs")).text
            return all(f"{t} | hello from {t}" in text for t in task_ids)

        await poll_until(all_there, "every task's first line", DEADLINE)

    await hellos(first)
    plain = await s.get("/v1/groups/duo/logs", tail=5)
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
    assert sorted(split(line) for line in plain.text.splitlines()) == sorted(
        (t, f"hello from {t}") for t in first
    )
    err = await s.get("/v1/groups/duo/logs", stream="stderr")
    assert sorted(err.text.splitlines()) == sorted(f"{t} | oops {t}" for t in first)
    code, out, cli_err = await s.bay("logs", "duo")
    assert code == 0, cli_err
    assert sorted(out.splitlines()) == sorted(plain.text.splitlines())  # piped: no colour codes

    seen: list[tuple[str, str]] = []
    params = {"follow": "true", "tail": "1"}
    async with s.http.stream("GET", "/v1/groups/duo/logs", params=params, headers=s.viewer) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()

        async def until(want: set[tuple[str, str]]) -> None:
            while not want <= set(seen):
                seen.append(split(await anext(lines)))

        await asyncio.wait_for(until({(t, f"hello from {t}") for t in first}), DEADLINE)
        scaled = await s.http.post("/v1/groups/duo/scale", json={"instances": 3}, headers=s.op)
        assert scaled.status_code == 200, scaled.text
        (third,) = set(await s.running("duo", 3)) - first
        await asyncio.wait_for(until({(third, f"hello from {third}")}), DEADLINE)  # it joined
        flag.touch()
        await asyncio.wait_for(until({(t, f"later from {t}") for t in {*first, third}}), DEADLINE)
        deleted = await s.http.delete("/v1/groups/duo", headers=s.op)
        assert deleted.status_code in (200, 202, 204), deleted.text

        async def rest() -> None:
            async for line in lines:
                seen.append(split(line))

        await asyncio.wait_for(rest(), DEADLINE)  # the response ends with the group
    assert len(seen) == len(set(seen)) == 6, seen  # each line once


async def test_group_log_parameters_are_checked_and_an_unknown_group_is_a_404(s: LogStack) -> None:
    assert rejected_fields(await s.get("/v1/groups/duo/logs", stream="stdin")) == ["stream"]
    assert rejected_fields(await s.get("/v1/groups/duo/logs", tail=0)) == ["tail"]
    assert rejected_fields(await s.get("/v1/groups/duo/logs", follow="maybe")) == ["follow"]
    missing = await s.get("/v1/groups/nosuch/logs")
    assert missing.status_code == 404 and "nosuch" in missing.text, missing.text
    code, _, err = await s.bay("logs", "nosuch")
    assert code != 0 and "nosuch" in err
    anonymous = await s.http.get("/v1/groups/nosuch/logs")
    assert anonymous.status_code == 401


async def test_a_task_whose_scheduler_is_down_gets_a_note_and_the_request_does_not_hang(
    s: LogStack,
) -> None:
    await s.create(name="duo", instances=2, cmd='echo "hello from $BAY_TASK_ID"; exec sleep 600')
    tasks = set(await s.running("duo", 2))
    await s.sched.stop()
    resp = await asyncio.wait_for(s.get("/v1/groups/duo/logs"), 10)
    assert resp.status_code == 200
    notes = [split(line) for line in resp.text.splitlines()]
    assert {t for t, _ in notes} == tasks and len(notes) == 2, notes
    assert all(text.startswith("[bay: this task's log cannot be read:") for _, text in notes), notes
