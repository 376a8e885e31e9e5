"""The pure part of ``bay autoscale``: its flags as metric targets, the body, what status shows."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from services.cli.autoscale import parse_backlog, parse_metric, parse_prometheus, policy_body, status_view
from services.cli.errors import CliError


def test_flags_as_metrics() -> None:
    assert parse_metric("rps=50") == {
        "kind": "custom",
        "name": "rps",
        "target": 50.0,
        "source": {"pushed": True},
    }
    m = parse_metric("rps=50,activation=2,per_task=no")
    assert (m["activation"], m["per_task"]) == (2.0, False)
    assert parse_prometheus("lat=0.2,port=http,path=/m,label.a=b")["source"] == {
        "prometheus": {"port_name": "http", "metric": "lat", "path": "/m", "labels": {"a": "b"}}
    }
    assert parse_backlog("jobs/w=10,name=q") == {
        "kind": "backlog", "target": 10.0, "backlog": {"stream": "jobs", "consumer": "w"}, "name": "q",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "text", "said"),
    [(parse_metric, "rps", "--metric rps: give NAME=TARGET"),
     (parse_metric, "rps=1,per_task=maybe", "not true"),
     (parse_prometheus, "a=1,port=", "give port=PORT"), (parse_backlog, "jobs=1", "STREAM/CONSUMER"),
     (parse_backlog, "j/c=1,label.x=y", "unknown option")],
)  # fmt: skip
def test_bad_flags_are_named(parse: object, text: str, said: str) -> None:
    with pytest.raises(CliError) as info:
        parse(text)  # type: ignore[operator]
    assert said in info.value.message


def test_the_body_merges_a_file_and_flags() -> None:
    got = {"group": "web", "min": 1, "max": 4, "metrics": [{"kind": "cpu", "target": 0.5}],
           "tolerance": None, "up": {"window_seconds": None, "panic_threshold": 3.0},
           "down": {"window_seconds": None}}  # fmt: skip
    body = policy_body(got, max_=8, down={"max_percent": 50}, reason="r")
    assert body == {
        "group": "web", "min": 1, "max": 8, "metrics": [{"kind": "cpu", "target": 0.5}],
        "up": {"panic_threshold": 3.0}, "down": {"max_percent": 50}, "reason": "r",
    }  # fmt: skip
    # the command passes every flag, those not given as None: they keep what the file says
    up_flags = {"window_seconds": None, "cooldown_seconds": 1.0, "stable_window_seconds": None}
    body = policy_body({**got, "up": {"stable_window_seconds": 6.0}}, up=up_flags)
    assert body["up"] == {"stable_window_seconds": 6.0, "cooldown_seconds": 1.0}
    with pytest.raises(CliError) as info:
        policy_body(min_=1, metrics=[])
    assert "--max" in info.value.message and "a metric" in info.value.message


def test_status_without_an_evaluation_says_so() -> None:
    out = io.StringIO()
    s = {"policy": {"group": "web", "min": 1, "max": 3}, "current": 1, "ready": 1, "latest": None,
         "decisions": [], "reason": ""}  # fmt: skip
    Console(file=out, width=120).print(status_view(s))
    assert out.getvalue().splitlines() == [
        "web: 1 instances (1 ready), min 1 max 3", "no evaluation yet", "no decisions yet", "now: -",
    ]  # fmt: skip
