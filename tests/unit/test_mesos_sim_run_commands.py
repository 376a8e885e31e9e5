"""The run-commands mode of the Mesos simulator, in its pure parts: agents' own port ranges, kill
graces, the executor's exit messages, and how ``bay up`` asks for the mode."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from services.cli.stack.settings import StackSettings
from services.cli.stack.table import services_for
from tests.mesos_sim.executor import exit_message, kill_grace_of
from tests.mesos_sim.master import OWN_PORTS, make_agents


def test_agents_with_ports_of_their_own_never_share_one() -> None:
    for n in (1, 3, 11, 250):
        agents = make_agents(n, own_ports=True)
        ranges = [a.ports[0] for a in agents]
        assert all(OWN_PORTS[0] <= b <= e <= OWN_PORTS[1] for b, e in ranges)
        assert all(e1 < b2 for (_, e1), (b2, _) in itertools.pairwise(ranges))
    assert make_agents(3, own_ports=True)[1].ports == ((21000, 21999),)
    assert make_agents(3)[1].ports == ((31000, 32000),)  # the fake mode: all the same, as before
    with pytest.raises(ValueError):
        make_agents(OWN_PORTS[1] - OWN_PORTS[0] + 2, own_ports=True)


def test_a_kill_takes_the_calls_grace_else_the_tasks_else_three_seconds() -> None:
    info = {"kill_policy": {"grace_period": {"nanoseconds": 7_000_000_000}}}
    assert kill_grace_of(info, {"grace_period": {"nanoseconds": 500_000_000}}) == 0.5
    assert kill_grace_of(info, None) == 7.0
    assert kill_grace_of({}, None) == 3.0


def test_exit_messages_are_the_command_executors() -> None:
    assert exit_message(0) == "Command exited with status 0"
    assert exit_message(3) == "Command exited with status 3"
    assert exit_message(-15) == "Command terminated with signal Terminated"
    assert exit_message(-9) == "Command terminated with signal Killed"


def test_bay_up_passes_run_commands_on_to_the_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BAY_NATS_URL", raising=False)
    plain = StackSettings(data_dir=tmp_path, sim_cluster="sim")
    (sim,) = [s for s in services_for(plain) if s.name == "mesos-sim"]
    assert sim.args is not None and "--run-commands" not in sim.args(plain)
    monkeypatch.setenv("BAY_SIM_RUN_COMMANDS", "1")
    running = StackSettings(data_dir=tmp_path, sim_cluster="sim")
    assert running.sim_run_commands
    assert sim.args(running)[-1] == "--run-commands"
