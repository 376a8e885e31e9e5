"""A migration from `local` to another cluster: the new version starts there at full size, the
deployer waits until the real DNS service answers its tasks (its Lookup, through the deployer's DNS
port), then drains the source; the service name answers in the new cluster at the end."""

from __future__ import annotations

from pathlib import Path

from bay.v1 import deploy_pb2, registry_pb2

from libs.clients import DnsClient
from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.natsconn import connect
from libs.spec import GroupSpec, PortSpec
from libs.spec_pb import spec_to_pb
from libs.views.live import open_view
from services.deployer.adapters.dns import GrpcDns
from tests import natsauth
from tests.integration.deployer_harness import TargetRunner, start_deployer
from tests.integration.dns_harness import DnsProcess
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import register_cluster
from tests.integration.test_deployer_rolling import DEADLINE, Watcher
from tests.poll import poll_until


class RecordingDns(GrpcDns):
    """The deployer's DNS port, keeping what DNS said each time it was asked."""

    def __init__(self, client: DnsClient) -> None:
        super().__init__(client)
        self.said: list[frozenset[str]] = []

    async def answers(self, service: str, cluster: str) -> frozenset[str] | None:
        got = await super().answers(service, cluster)
        if got is not None:
            self.said.append(got)
        return got


async def test_a_migration_waits_for_dns_then_drains_the_source(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    await register_cluster(registry, "sim", "mesos", "127.0.0.1:5050")
    local = await TargetRunner.start(fresh_stream, "local")
    sim = await TargetRunner.start(fresh_stream, "sim")
    dns = DnsProcess(fresh_stream, tmp_path / "dns")
    await dns.start()
    dns_client = DnsClient(f"127.0.0.1:{dns.grpc_port}", timeout=2.0)
    deployer = await start_deployer(
        fresh_stream, registry, tmp_path, dns=(recording := RecordingDns(dns_client))
    )
    conn = await connect(
        fresh_stream, name="watch", wait_seconds=5, credentials=natsauth.credentials("deployer")
    )
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    view = watch.state
    try:
        md = registry.md()
        spec = GroupSpec(name="mig", cmd="sleep 1000", instances=2, ports=[PortSpec(name="http")])
        await registry.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec_to_pb(spec)), metadata=md)
        await poll_until(lambda: len(view.ready_tasks("mig")) == 2, "2 ready tasks in local", DEADLINE)
        await dns.until_addresses("mig.local.bay.internal.", {"127.0.0.1"})
        request = deploy_pb2.DeployRequest(
            group="mig", cluster="sim", strategy=deploy_pb2.Strategy(min_ready_seconds=0.2)
        )
        reply = await deployer.stub.Deploy(request, metadata=md)
        assert reply.deployment.strategy.kind == "migration"
        dep_id = reply.deployment.id

        def ended() -> bool:
            d = view.deployments.by_id.get(dep_id)
            return d is not None and d.ended

        await poll_until(ended, "the migration ended", DEADLINE)
        d = view.deployments.by_id[dep_id]
        assert d.state == "succeeded", d.reason
        assert [s.name for s in d.steps] == ["start in sim", "drain source"]
        new_ids = {t.id for t in view.group_tasks("mig") if t.group_version == 2}
        assert any(len(said & new_ids) >= 2 for said in recording.said)  # DNS answered them first
        group = view.groups["mig"]
        assert group.spec.cluster == "sim" and group.settled
        await poll_until(
            lambda: (
                {(t.cluster, t.group_version) for t in view.group_tasks("mig") if not t.terminal}
                == {("sim", 2)}
            ),
            "only the new version's tasks, in sim",
            DEADLINE,
        )
        assert view.min_ready is not None and view.min_ready >= 2  # the service answered throughout
        await dns.until_addresses("mig.sim.bay.internal.", {"127.0.0.1"})
    finally:
        await deployer.stop()
        await dns_client.close()
        dns.stop()
        await local.stop()
        await sim.stop()
        await watch.stop(snapshot=False)
        await conn.close()
