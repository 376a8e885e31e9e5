"""The pure part of the deployment commands: ``--step`` parsing, the deploy body, what is shown."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from services.cli.deployments import deploy_body, deployments_table, headline, parse_step, status_view
from services.cli.errors import CliError


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("share=0.2", {"set_share": 0.2}),
        ("share=25%", {"set_share": 0.25}),
        ("weight=50", {"set_weight": 50.0}),
        ("weight=5%", {"set_weight": 5.0}),
        ("pause=30", {"pause": {"seconds": 30.0}}),
        ("pause", {"pause": {}}),
        ("analysis=60", {"analysis": {"seconds": 60.0}}),
        (
            "analysis=60:failed_tasks<=0, custom:latency_p99 < 0.25",
            {"analysis": {"seconds": 60.0, "thresholds": [
                {"metric": "failed_tasks", "op": "<=", "value": 0.0},
                {"metric": "custom:latency_p99", "op": "<", "value": 0.25},
            ]}},
        ),
    ],
)  # fmt: skip
def test_steps(text: str, step: dict[str, object]) -> None:
    assert parse_step(text) == step


@pytest.mark.parametrize(
    ("text", "said"),
    [("share", "give a value"), ("share=x", "not a number"), ("hop=1", "unknown step"),
     ("analysis=5:cpu", "not METRIC OP VALUE"), ("pause=soon", "not a number")],
)  # fmt: skip
def test_bad_steps_say_why(text: str, said: str) -> None:
    with pytest.raises(CliError) as info:
        parse_step(text)
    assert said in info.value.message and "share=F" in info.value.hint


def test_the_body_leaves_out_what_was_not_given() -> None:
    assert deploy_body(build="web-42") == {"strategy": {}, "build": "web-42"}
    body = deploy_body(build="b", steps=["share=0.5", "pause"], min_ready=5, supersede=True, reason="ci")
    assert body == {
        "strategy": {"kind": "canary", "min_ready_seconds": 5, "steps": [{"set_share": 0.5}, {"pause": {}}]},
        "build": "b",
        "reason": "ci",
        "supersede": True,
    }
    moved = deploy_body(cluster="eu", strategy="blue-green", auto_promote=True, scale_down_delay=0)
    assert moved == {
        "strategy": {"kind": "blue-green", "scale_down_delay_seconds": 0, "auto_promote": True},
        "cluster": "eu",
    }


DEPLOYMENT = {
    "id": "web-3",
    "state": "running",
    "strategy": {"kind": "canary"},
    "from_version": 2,
    "to_version": 3,
    "from_build": "web-41",
    "to_build": "web-42",
    "from_cluster": "local",
    "to_cluster": "local",
    "steps": [
        {
            "name": "share 20%",
            "state": "done",
            "started": "2026-01-01T10:00:00Z",
            "finished": "2026-01-01T10:00:09Z",
        },
        {"name": "pause", "state": "running", "started": "2026-01-01T10:00:09Z", "message": "until promoted"},
    ],
    "current_step": 1,
    "reason": "",
    "instances": 10,
    "new_ready": 2,
    "new_running": 2,
    "old_running": 8,
    "min_ready": 10,
    "max_running": 12,
    "created": "2026-01-01T10:00:00Z",
    "updated": "2026-01-01T10:00:09Z",
}


def shown(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_headline_and_status_view() -> None:
    assert headline(DEPLOYMENT) == "web-3 canary v2 (web-41) -> v3 (web-42): running, step 2/2 pause"
    moving = {**DEPLOYMENT, "to_cluster": "eu", "to_build": "", "state": "failed", "reason": "deadline"}
    assert headline(moving) == "web-3 canary v2 (web-41) on local -> v3 on eu: failed (deadline)"
    text = shown(status_view(DEPLOYMENT))
    assert "2/10 new ready, 2 new running, 8 old running (bounds: >= 10 ready, <= 12 running)" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["1", "share", "20%", "done", "2026-01-01", "10:00:00", "2026-01-01", "10:00:09"] in rows
    assert ["2", "pause", "running", "2026-01-01", "10:00:09", "until", "promoted"] in rows


def test_history_rows_go_oldest_first() -> None:
    later = {**DEPLOYMENT, "id": "web-10", "state": "succeeded"}
    rows = [line.split() for line in shown(deployments_table([later, DEPLOYMENT])).splitlines()]
    assert [r[0] for r in rows] == ["id", "web-3", "web-10"]  # same second: by number, not by text
