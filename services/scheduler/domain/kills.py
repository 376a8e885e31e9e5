"""Kills owed: a kill stored in the log is carried out until the task has ended.

A ``TaskKillRequested`` is stored before the backend hears of it (store, then act), so a scheduler
that dies, stalls or loses its lease between the two leaves a task that the log says is being killed
and that runs on; and a backend can lose a kill (a Mesos KILL call is not acknowledged; a restarted
scheduler's local backend knows only the kills it wrote down). So every round asks again for each
task with a kill requested that has not ended (``Decision.owed``): at once for one this scheduler
process has not sent yet (after a start, a failed round, a takeover of the lease), and again
``retry_seconds`` after its last try. Backends take a repeated kill as the same kill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: a kill not followed by the task's end within this long is sent again (Marathon's kill retry)
RETRY_SECONDS = 10.0


def due(owed: Iterable[str], sent: Mapping[str, float], now: float, retry_seconds: float) -> list[str]:
    """The owed kills to send now: never sent by this process, or last sent ``retry_seconds`` ago."""
    return [task_id for task_id in owed if now - sent.get(task_id, -float("inf")) >= retry_seconds]
