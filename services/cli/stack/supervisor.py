"""``bay up``: the whole platform on this machine, in the foreground.

Start order: embedded nats-server (unless ``BAY_NATS_URL`` names one) with a user per service
(:mod:`libs.natsusers`: nkey seeds in ``<data_dir>/nats-auth``, each service given the path of its
own), the set-up (:mod:`libs.natssetup`: the stream and the lease bucket, as the set-up user),
admin token, every service of :data:`~services.cli.stack.table.SERVICES` (plus the Mesos simulator
and its cluster's scheduler with ``--sim-cluster``; plus Alertmanager and Prometheus with
``--monitoring``, see :mod:`services.cli.stack.monitoring`). The clusters are registered as soon as the
registry answers (a scheduler serves only once its cluster is registered); once every probe
answers, one ``bay: ready ...`` line. A process that dies is restarted with
:class:`RestartBackoff`. SIGINT/SIGTERM (and any crash of the supervisor itself) first end the
local cluster's tasks through its scheduler (not with ``--keep-tasks``: then the next ``bay up``
re-adopts them), then stop the services (SIGTERM, then SIGKILL of their process group), then
nats-server. A scheduler that dies or is restarted alone leaves its tasks running and re-adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Sequence
from typing import IO, TypeVar

from libs.addresses import parse_host_port
from libs.auth import TokenStore, ensure_token_file
from libs.errors import BayError
from libs.natsconn import connect
from libs.natscreds import NatsCredentials, redact_url
from libs.natsserver import server_config
from libs.natssetup import set_up
from libs.natsusers import NatsUsers, write_private
from services.cli.stack import readiness
from services.cli.stack.backoff import RestartBackoff
from services.cli.stack.monitoring import Monitoring, MonitoringError
from services.cli.stack.output import Output, describe_exit
from services.cli.stack.processes import Managed, NatsChild, ServiceChild
from services.cli.stack.readiness import clusters_of, register_cluster
from services.cli.stack.settings import StackSettings
from services.cli.stack.table import SERVICES, ServiceProcess, services_for

T = TypeVar("T")


class StartupError(Exception):
    """The stack cannot start (port taken, data dir in use, nats-server missing)."""


def _port_taken(addr: str) -> bool:
    """Taken for TCP or for UDP (DNS listens on both)."""
    host, port = parse_host_port(addr, allow_zero=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return True
    return False


def _metrics_env(settings: StackSettings, svc: ServiceProcess) -> dict[str, str]:
    """The process's ``BAY_METRICS_LISTEN``, from its ``BAY_<NAME>_METRICS_LISTEN`` stack setting."""
    found = settings.metrics_listens().get(svc.name)
    return {"BAY_METRICS_LISTEN": found[1]} if found else {}


class Supervisor:
    def __init__(
        self,
        settings: StackSettings,
        services: Sequence[ServiceProcess] = SERVICES,
        out: Output | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.monitoring = Monitoring(settings) if settings.monitoring else None
        names = [s.name for s in services] + (["alertmanager"] if self.monitoring else [])
        self.out = out or Output(name_width=max([4, *(len(n) for n in names)]))
        self.nats = (
            None
            if settings.external_nats
            else NatsChild(settings.data_path / "nats", settings.nats_port, settings.nats_config_path)
        )
        self.nats_users = NatsUsers(settings.data_path, settings.stream)
        env = settings.child_environment(dict(os.environ))
        if self.nats is not None:  # each service gets its own seed below; no other way may compete
            for var in ("BAY_NATS_USER", "BAY_NATS_PASSWORD", "BAY_NATS_NKEY_SEED", "BAY_NATS_CREDS"):
                env.pop(var, None)
        self.children = [
            ServiceChild(
                s.name,
                [sys.executable, "-m", s.module, *(s.args(settings) if s.args else [])],
                {
                    **env,
                    **(s.env(settings) if s.env else {}),
                    **self._nats_env(s),
                    **_metrics_env(settings, s),
                },
                self.out,
            )
            for s in services
        ]
        self._stop = asyncio.Event()
        self._lock: IO[str] | None = None
        self._monitors: list[ServiceChild] = []
        self._supervisors: list[asyncio.Task[None]] = []

    # ---- start-up ----

    def _nats_env(self, svc: ServiceProcess) -> dict[str, str]:
        """The embedded NATS: each service's own seed, by path (and nothing else that would
        compete with it). An outside NATS: the credentials in the environment, as given; with none
        given, each service's own seed where `bay nats init` made the users in the data directory."""
        if not svc.nats_role:
            return {}
        own = self.nats_users.seed_path(svc.nats_role)
        if self.nats is None and (self.settings.nats_credentials() != NatsCredentials() or not own.exists()):
            return {}
        return {"BAY_NATS_NKEY_SEED": str(own)}

    def _write_nats_config(self) -> None:
        """Seeds for the set-up and every service (kept across runs), the authorization block of
        those, of any audit credential and of any group's metric publisher, and the server's
        configuration including it."""
        s = self.settings
        roles = ["setup", *(svc.nats_role for svc in self.services if svc.nats_role)]
        auth = self.nats_users.write_auth_config(roles)
        conf = server_config(s.nats_config_path, include=auth)
        write_private(s.nats_config_path, conf.encode())

    async def _set_up_nats(self) -> None:
        """The stream and the lease bucket, as the set-up (embedded) or with the environment's
        credentials (an outside NATS, where the operator may have run `bay nats setup` already)."""
        s = self.settings
        creds = (
            s.nats_credentials()
            if self.nats is None
            else NatsCredentials(nkey_seed=self.nats_users.service_seed("setup"))
        )
        own = self.nats_users.seed_path("setup")
        if creds == NatsCredentials() and own.exists():  # users made by `bay nats init`
            creds = NatsCredentials(nkey_seed=own)
        try:
            conn = await connect(s.effective_nats_url, name="bay-setup", wait_seconds=10, credentials=creds)
        except BayError as exc:
            raise StartupError(f"cannot reach NATS for the set-up: {exc.message}") from exc
        try:
            await set_up(conn, s, [s.lease_seconds], wait_seconds=10 if self.nats is None else 5)
        except BayError as exc:
            if self.nats is not None:
                raise StartupError(f"the set-up of JetStream failed: {exc.message}") from exc
            self.out.say(
                f"could not create or update the stream {s.stream} with these NATS credentials "
                f"({exc.message}); the services wait for it: run `bay nats setup` as the set-up user"
            )
        finally:
            await conn.close()

    def _check(self) -> None:
        s = self.settings
        s.data_path.mkdir(parents=True, exist_ok=True)
        # not world-readable; searchable (x) so that a task can reach its own sandbox by path
        s.data_path.chmod(0o711)
        self._lock = open(s.data_path / "bay.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise StartupError(
                f"another `bay up` is using {s.data_dir}; stop it or set BAY_DATA_DIR"
            ) from exc
        wanted = [("BAY_GATEWAY_LISTEN", s.gateway_listen), ("BAY_REGISTRY_LISTEN", s.registry_listen)]
        wanted += [svc.listen(s) for svc in self.services if svc.listen is not None]
        if self.monitoring is not None:
            self.monitoring.check()
            wanted += [
                ("BAY_PROMETHEUS_LISTEN", s.prometheus_listen),
                ("BAY_ALERTMANAGER_LISTEN", s.alertmanager_listen),
            ]
        names = {svc.name for svc in self.services}
        wanted += [pair for name, pair in s.metrics_listens().items() if name in names]
        if self.nats is not None:
            s.data_path.joinpath("nats").mkdir(mode=0o700, exist_ok=True)
            s.data_path.joinpath("nats").chmod(0o700)
            if (leftover := self.nats.stop_leftover()) is not None:
                self.out.say(f"stopped the nats-server an earlier `bay up` left running (pid {leftover})")
            wanted.append(("BAY_NATS_PORT", f"127.0.0.1:{s.nats_port}"))
        for var, addr in wanted:
            if _port_taken(addr):
                raise StartupError(f"{addr} is already in use (another `bay up`?); choose another with {var}")

    def _admin_token(self) -> str:
        s = self.settings
        token = ensure_token_file(s.data_path, TokenStore(s.tokens_path), "admin", "admin")
        self.out.say(
            f"admin token in {s.admin_token_path} (the CLI reads it from there; BAY_TOKEN overrides)"
        )
        return token

    def _monitoring_children(self) -> list[ServiceChild]:
        """Alertmanager, then Prometheus (which sends to it), from configuration written now; they
        get no BAY_* variable (none is theirs, and some are secrets)."""
        if self.monitoring is None:
            return []
        self.monitoring.write()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        return [
            ServiceChild(
                "alertmanager", self.monitoring.alertmanager_argv(), env, self.out, self.monitoring.redact
            ),
            ServiceChild("prometheus", self.monitoring.prometheus_argv(), env, self.out),
        ]

    async def _start(self, m: Managed, verb: str = "started") -> None:
        pid = await m.start()
        self.out.say(f"{m.name} {verb} (pid {pid})")

    # ---- running ----

    async def _until_stop(self, aw: Awaitable[T]) -> T | None:
        """``aw``'s result, or None if the stack is told to stop first."""
        work = asyncio.ensure_future(aw)
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work.done():
            return work.result()
        work.cancel()
        return None

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _supervise(self, m: Managed) -> None:
        backoff = RestartBackoff()
        while True:
            code = await self._until_stop(m.wait())
            if code is None:
                return
            delay = backoff.delay(time.monotonic() - m.started_at)
            self.out.say(f"{m.name} exited ({describe_exit(code)}); restarting in {delay:.1f}s")
            while True:
                if await self._stopped_within(delay):
                    return
                try:
                    await self._start(m, "restarted")
                    break
                except Exception as exc:  # e.g. its port is still taken: try again later
                    delay = backoff.delay(0.0)
                    self.out.say(f"{m.name} could not start ({exc}); retrying in {delay:.1f}s")

    async def _announce_ready(self, token: str) -> None:
        s = self.settings
        pending = {svc.name for svc in self.services if svc.probe}
        if self.monitoring is not None:
            pending.update({"prometheus", "alertmanager"})

        async def probe(svc: ServiceProcess) -> None:
            assert svc.probe is not None
            await svc.probe(s)
            pending.discard(svc.name)

        async def nag() -> None:
            while pending:
                await asyncio.sleep(s.slow_start_warning_seconds)
                if pending:
                    self.out.say(f"still waiting for {', '.join(sorted(pending))} to answer")

        async def register() -> None:
            for cluster in clusters_of(s):
                try:
                    await register_cluster(s, token, cluster)
                except BayError as exc:
                    self.out.say(
                        f"could not register the cluster `{cluster.name}`: {exc.message} ({exc.hint})"
                    )

        async def monitoring() -> None:
            """Started once the gateway answers: Prometheus asks its service discovery first thing
            (and would otherwise wait a whole refresh interval after a refused first try)."""
            if self.monitoring is None:
                return
            await readiness.gateway_healthy(s)
            for child in self._monitors:
                await self._start(child)
                self._supervisors.append(asyncio.create_task(self._supervise(child)))
            await asyncio.gather(readiness.prometheus_ready(s), readiness.alertmanager_ready(s))
            pending.difference_update({"prometheus", "alertmanager"})
            to = "the webhook BAY_ALERT_WEBHOOK_URL" if s.alert_webhook_url.get_secret_value() else "nowhere"
            self.out.say(
                f"monitoring — prometheus {s.prometheus_url}, alertmanager {s.alertmanager_url}, "
                f"rules {self.monitoring.rules_file}; notifications to {to}"
            )

        nagger = asyncio.create_task(nag())
        try:
            await asyncio.gather(
                register(), monitoring(), *(probe(svc) for svc in self.services if svc.probe)
            )
        finally:
            nagger.cancel()
        schedulers = ", ".join(
            f"{svc.cluster} {s.schedulers[svc.cluster]}" for svc in self.services if svc.cluster
        )
        self.out.say(
            f"ready — gateway {s.gateway_url}, registry {s.registry_address}, "
            f"nats {redact_url(s.effective_nats_url)}, data {s.data_dir}"
            + (f"; schedulers {schedulers}" if schedulers else "")
            + (f"; dns {s.dns_listen}" if any(svc.name == "dns" for svc in self.services) else "")
        )

    def _report_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.out.say(f"readiness check failed: {task.exception()!r}")

    # ---- stopping ----

    async def _shutdown(self, supervisors: list[asyncio.Task[None]]) -> None:
        self._stop.set()
        await asyncio.gather(*supervisors, return_exceptions=True)
        timeout = self.settings.stop_timeout_seconds
        await self._end_local_tasks(timeout)
        await asyncio.gather(
            *(c.stop(timeout) for c in [*self.children, *self._monitors]), return_exceptions=True
        )
        if self.nats is not None:
            await self.nats.stop(timeout)
        self.out.say("stopped")

    async def _end_local_tasks(self, timeout: float) -> None:
        """The local cluster's tasks are this stack's: its scheduler ends them (SIGUSR1: stored kills,
        SIGTERM, SIGKILL after the grace) before the rest stops, unless ``--keep-tasks``."""
        scheduler = next((c for c in self.children if c.name == "scheduler"), None)
        if scheduler is None:
            return
        if not scheduler.running:
            self.out.say("the local scheduler is not running: its tasks are left to the next `bay up`")
            return
        if self.settings.keep_tasks:
            self.out.say("leaving the local cluster's tasks running (--keep-tasks)")
            return
        self.out.say("stopping the local cluster's tasks")
        if not await scheduler.signal_and_wait(signal.SIGUSR1, self.settings.kill_grace_seconds + timeout):
            self.out.say("the scheduler did not end its tasks in time; stopping it anyway")

    def stop(self) -> None:
        """Ask :meth:`run` to stop everything and return (what SIGINT and SIGTERM do)."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop.set)
        supervisors = self._supervisors
        ready: asyncio.Task[None] | None = None
        try:
            self._check()
            token = self._admin_token()
            if self.nats is not None:
                self._write_nats_config()
                await self._start(self.nats)
                supervisors.append(asyncio.create_task(self._supervise(self.nats)))
            await self._set_up_nats()
            self._monitors = self._monitoring_children()
            for child in self.children:
                await self._start(child)
                supervisors.append(asyncio.create_task(self._supervise(child)))
            ready = asyncio.create_task(self._announce_ready(token))
            ready.add_done_callback(self._report_failure)
            await self._stop.wait()
            self.out.say("stopping")
            return 0
        except (StartupError, MonitoringError, BayError, OSError, RuntimeError) as exc:
            self.out.say(f"error: {exc}")
            return 1
        finally:
            if ready is not None:
                ready.cancel()
            await self._shutdown(supervisors)
            if self._lock is not None:
                self._lock.close()


def run_stack(settings: StackSettings) -> int:
    """Run the stack until SIGINT/SIGTERM; the process exit code."""
    os.umask(0o077)  # the data directory's files (tokens, the NATS store, bay.db) are the platform's
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(encoding="utf-8", line_buffering=True)  # type: ignore[union-attr]
    return asyncio.run(Supervisor(settings, services_for(settings)).run())
