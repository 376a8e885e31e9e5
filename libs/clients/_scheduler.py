"""The scheduler of one cluster: its tasks, a group's status, killing a task."""

from __future__ import annotations

from typing import Any, cast

from bay.v1 import scheduler_pb2, scheduler_pb2_grpc, task_pb2

from libs.clients._base import ServiceClient
from libs.clients._caller import Caller

SCHEDULER_SERVICE = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


class SchedulerClient(ServiceClient):
    """``SchedulerClient("local", "127.0.0.1:50061", timeout=2.0)``; ``configured_by`` names whose
    ``BAY_SCHEDULERS`` holds the address, for the hint when the scheduler is down."""

    health_service = SCHEDULER_SERVICE

    def __init__(
        self,
        cluster: str,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        configured_by: str = "this service",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            addr, timeout=timeout, caller=caller, what=f"the scheduler of cluster {cluster!r}", **kwargs
        )
        self.cluster = cluster
        self.configured_by = configured_by
        # SchedulerAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast(
            "scheduler_pb2_grpc.SchedulerAsyncStub", scheduler_pb2_grpc.SchedulerStub(self.channel)
        )

    def down_hint(self) -> str:
        return (
            f"start the scheduler of cluster {self.cluster!r} (`bay up` runs the one of `local`; else "
            f"`BAY_CLUSTER={self.cluster} python -m services.scheduler`), or fix its address in "
            f"{self.configured_by}'s BAY_SCHEDULERS"
        )

    # ---- the common calls, typed ----

    async def get_task(self, task_id: str) -> task_pb2.Task:
        """NotFound if this cluster's scheduler does not know the task."""
        task: task_pb2.Task = await self.call(self.stub.GetTask, scheduler_pb2.GetTaskRequest(id=task_id))
        return task

    async def list_tasks(
        self, group: str = "", *, state: str = "", include_terminal: bool = False
    ) -> list[task_pb2.Task]:
        """The group's tasks (every group's when empty), oldest first; ``include_terminal``: also
        the last few that ended."""
        request = scheduler_pb2.ListTasksRequest(group=group, state=state, include_terminal=include_terminal)
        reply: scheduler_pb2.ListTasksReply = await self.call(self.stub.ListTasks, request)
        return list(reply.tasks)

    async def group_status(self, group: str) -> scheduler_pb2.GroupStatusReply:
        """Counts (desired, running, ready...) and why tasks wait; ``known`` is false for a group
        this cluster does not run."""
        reply: scheduler_pb2.GroupStatusReply = await self.call(
            self.stub.GroupStatus, scheduler_pb2.GroupStatusRequest(group=group)
        )
        return reply

    async def cluster_status(self) -> scheduler_pb2.ClusterStatusReply:
        """Every group's status on this cluster and its hosts' capacity, in one answer."""
        reply: scheduler_pb2.ClusterStatusReply = await self.call(
            self.stub.ClusterStatus, scheduler_pb2.ClusterStatusRequest()
        )
        return reply

    async def kill_task(self, task_id: str) -> task_pb2.Task:
        """The group's count stays, so a replacement starts; killing a dying task changes nothing."""
        task: task_pb2.Task = await self.call(self.stub.KillTask, scheduler_pb2.KillTaskRequest(id=task_id))
        return task
