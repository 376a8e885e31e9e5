"""Custom metrics pushed on the session's nats-server: formats, staleness, bad payloads dropped."""

from __future__ import annotations

import json

import pytest
from nats.aio.client import Client

from libs.events import subjects
from libs.samples.pushed import Pushed, PushedMetrics, parse_payload, parse_subject
from tests.poll import poll_until

DEADLINE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def test_latest_values_by_group_and_task_go_stale(nc: Client) -> None:
    clock = Clock()
    store = PushedMetrics(clock=clock, stale_after=30.0)
    sub = await store.subscribe(nc)
    try:
        name = subjects.metric("web", "queue.depth")  # a name with a dot
        await nc.publish(name, b"12")
        await nc.publish(name, b" 14.5\n")
        await nc.publish(
            subjects.metric("web", "queue.depth"), json.dumps({"value": 3, "task": "web.a"}).encode()
        )
        await nc.publish(
            subjects.metric("web", "queue.depth"), json.dumps({"value": 4, "task": "web.b"}).encode()
        )
        await nc.publish(subjects.metric("api", "rps"), json.dumps({"value": 7.25}).encode())
        await poll_until(lambda: store.group_value("api", "rps") is not None, "api's rps", DEADLINE)

        assert store.group_value("web", "queue.depth") == 14.5
        assert store.task_values("web", "queue.depth") == {"web.a": 3.0, "web.b": 4.0}
        assert store.group_value("api", "rps") == 7.25
        assert store.group_value("web", "rps") is None

        clock.now = 520.0
        await nc.publish(subjects.metric("web", "queue.depth"), b'{"value": 5, "task": "web.b"}')
        await poll_until(
            lambda: store.task_values("web", "queue.depth").get("web.b") == 5.0, "web.b", DEADLINE
        )
        clock.now = 531.0  # 31 s after the first values, 11 after web.b's second
        assert store.group_value("web", "queue.depth") is None  # stale: missing
        assert store.task_values("web", "queue.depth") == {"web.b": 5.0}
        reading = store.reading("web", "queue.depth")
        assert reading is not None and (reading.value, reading.at) == (
            14.5,
            500.0,
        )  # still shown as last seen
    finally:
        await sub.unsubscribe()


BAD = [
    b"",
    b"twelve",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"true",
    b'"12"',
    b"[1]",
    b'{"value": "12"}',
    b'{"value": null}',
    b'{"value": true}',
    b'{"val": 1}',
    b'{"value": 1, "task": 7}',
    b'{"value": 1, "task": ""}',
    b"1" * 400,  # a number too large for a float
    b"\xff\xfe",
    b"[" * 100_000,
    b" " * 5000 + b"1",  # over the payload limit
]


async def test_bad_payloads_and_subjects_are_dropped(nc: Client) -> None:
    store = PushedMetrics()
    sub = await store.subscribe(nc)
    try:
        for payload in BAD:
            await nc.publish(subjects.metric("web", "bad"), payload)
        await nc.publish("bay.metric.web", b"1")  # no metric name
        await nc.publish(subjects.metric("web", "good"), b"1")
        await poll_until(lambda: store.group_value("web", "good") == 1.0, "the good one", DEADLINE)
        assert store.dropped == len(BAD) + 1
        assert store.group_value("web", "bad") is None and store.task_values("web", "bad") == {}
        assert store.group_value("web", "") is None
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize(
    "payload, pushed",
    [
        (b"0", Pushed(0.0)),
        (b"-3e2", Pushed(-300.0)),
        (b'{"value": 2, "task": "web.x", "unit": "jobs"}', Pushed(2.0, "web.x")),
    ],
)
def test_payload_formats(payload: bytes, pushed: Pushed) -> None:
    assert parse_payload(payload) == pushed


def test_subjects() -> None:
    assert parse_subject("bay.metric.web.a.b") == ("web", "a.b")
    assert parse_subject("bay.metric.web") is None
    assert parse_subject("bay.usage.local.web") is None
