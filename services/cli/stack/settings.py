"""Settings of the embedded stack (``bay up``): one object, read once, passed down.

Every address binds 127.0.0.1 by default; ``BAY_NATS_URL`` in the environment means "use that
NATS, start none" (the supervisor checks whether it was *set*, not only its value).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from libs import defaults
from libs.addresses import format_host_port, parse_host_port
from libs.errors import ValidationFailed
from libs.settings import CommonSettings


def connect_address(listen: str) -> str:
    """Where a client reaches a listen address (``0.0.0.0:8080`` is reached at 127.0.0.1)."""
    host, port = parse_host_port(listen, allow_zero=True)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return format_host_port(host, port)


class StackSettings(CommonSettings):
    gateway_listen: str = Field(defaults.GATEWAY_ADDRESS, description="where the gateway's HTTP listens")
    registry_listen: str = Field(defaults.REGISTRY_ADDRESS, description="where the registry's gRPC listens")
    scheduler_listen: str = Field(
        defaults.SCHEDULER_ADDRESS, description="where the scheduler of the cluster `local` listens (gRPC)"
    )
    deployer_listen: str = Field(defaults.DEPLOYER_ADDRESS, description="where the deployer's gRPC listens")
    autoscaler_listen: str = Field(
        defaults.AUTOSCALER_ADDRESS, description="where the autoscaler's gRPC listens"
    )
    dns_listen: str = Field(defaults.DNS_ADDRESS, description="where the DNS service answers (UDP+TCP)")
    dns_grpc_listen: str = Field(
        defaults.DNS_GRPC_ADDRESS, description="where the DNS service's gRPC (its listing) listens"
    )
    sim_cluster: str = Field(
        "", pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$",
        description="demo/test: also run a Mesos master simulator as this cluster (backend mesos)",
    )  # fmt: skip
    sim_agents: int = Field(3, ge=1, le=10_000, description="the simulator's agents")
    sim_run_commands: bool = Field(
        False, description="the simulator's agents run tasks' commands as real processes on this machine"
    )
    sim_port: int = Field(
        defaults.MESOS_MASTER_PORT, gt=0, lt=65536, description="the simulated Mesos master's port"
    )
    sim_scheduler_listen: str = Field(
        defaults.SIM_SCHEDULER_ADDRESS, description="where the simulated cluster's scheduler listens (gRPC)"
    )
    registry_metrics_listen: str = Field(
        defaults.REGISTRY_METRICS_ADDRESS, description='the registry\'s Prometheus /metrics ("": none)'
    )
    scheduler_metrics_listen: str = Field(
        defaults.SCHEDULER_METRICS_ADDRESS, description='the `local` scheduler\'s /metrics ("": none)'
    )
    sim_scheduler_metrics_listen: str = Field(
        defaults.SIM_SCHEDULER_METRICS_ADDRESS,
        description="the simulated cluster's scheduler's /metrics (\"\": none)",
    )
    deployer_metrics_listen: str = Field(
        defaults.DEPLOYER_METRICS_ADDRESS, description='the deployer\'s /metrics ("": none)'
    )
    autoscaler_metrics_listen: str = Field(
        defaults.AUTOSCALER_METRICS_ADDRESS, description='the autoscaler\'s /metrics ("": none)'
    )
    dns_metrics_listen: str = Field(
        defaults.DNS_METRICS_ADDRESS, description='the DNS service\'s /metrics ("": none)'
    )
    nats_port: int = Field(defaults.NATS_PORT, gt=0, lt=65536, description="the embedded nats-server's port")
    lease_seconds: float = Field(
        10.0, ge=1, description="the schedulers' lease TTL (the set-up makes its bucket)"
    )
    stop_timeout_seconds: float = Field(10.0, gt=0, description="SIGTERM to SIGKILL, per service")
    keep_tasks: bool = Field(
        False, description="on stop, leave the local cluster's tasks running (the next start adopts them)"
    )
    kill_grace_seconds: float = Field(5.0, ge=0, description="a task's SIGTERM to SIGKILL (the scheduler's)")
    slow_start_warning_seconds: float = Field(30.0, gt=0, description="say what is not ready yet")
    # ---- `bay up --monitoring` (services/cli/stack/monitoring.py) ----
    monitoring: bool = Field(False, description="also run Prometheus and Alertmanager")
    prometheus_listen: str = Field(defaults.PROMETHEUS_ADDRESS, description="where Prometheus listens")
    alertmanager_listen: str = Field(defaults.ALERTMANAGER_ADDRESS, description="where Alertmanager listens")
    prometheus_scrape_interval_seconds: float = Field(15.0, gt=0, description="Prometheus scrapes this often")
    prometheus_evaluation_interval_seconds: float = Field(
        15.0, gt=0, description="Prometheus evaluates the alert rules this often"
    )
    prometheus_sd_refresh_seconds: float = Field(
        30.0, gt=0, description="Prometheus asks the gateway's service discovery this often"
    )
    alert_rules_file: Path | None = Field(
        None,
        description="the rules Prometheus evaluates; default the shipped deploy/prometheus/bay-rules.yml",
    )
    alert_webhook_url: SecretStr = Field(
        SecretStr(""),
        description="where Alertmanager sends notifications (its webhook payload); empty: nowhere",
    )
    alertmanager_group_wait_seconds: float = Field(
        30.0, ge=0, description="a new alert group waits this long for others before its first notification"
    )
    alertmanager_group_interval_seconds: float = Field(
        300.0, gt=0, description="a group's changes (new alerts, resolved ones) are sent at most this often"
    )
    alertmanager_repeat_interval_seconds: float = Field(
        14400.0, gt=0, description="a notification still true is sent again after this long"
    )

    @field_validator(
        "gateway_listen", "registry_listen", "scheduler_listen", "dns_listen", "dns_grpc_listen",
        "sim_scheduler_listen", "deployer_listen", "autoscaler_listen", "prometheus_listen",
        "alertmanager_listen",
    )  # fmt: skip
    @classmethod
    def _host_port(cls, value: str) -> str:
        try:
            parse_host_port(value, allow_zero=True)
        except ValidationFailed as exc:  # pydantic names the variable; it wants a ValueError
            raise ValueError(exc.violations[0].description) from None
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not (url.startswith(("http://", "https://")) and len(url.split()) == 1):
            raise ValueError("must be an http:// or https:// URL (or empty: no notifications)")
        return value

    @field_validator(
        "registry_metrics_listen", "scheduler_metrics_listen", "sim_scheduler_metrics_listen",
        "deployer_metrics_listen", "autoscaler_metrics_listen", "dns_metrics_listen",
    )  # fmt: skip
    @classmethod
    def _metrics_listen(cls, value: str) -> str:
        return cls._host_port(value) if value.strip() else ""

    @field_validator("sim_cluster")
    @classmethod
    def _not_local(cls, value: str) -> str:
        if value == "local":
            raise ValueError("`local` is the local cluster: name the simulated one otherwise, e.g. sim")
        return value

    @property
    def external_nats(self) -> bool:
        return "nats_url" in self.model_fields_set

    @property
    def effective_nats_url(self) -> str:
        return self.nats_url if self.external_nats else f"nats://127.0.0.1:{self.nats_port}"

    @property
    def nats_config_path(self) -> Path:
        """The embedded nats-server's configuration (listen, JetStream, authorization)."""
        return self.data_path / "nats" / "nats.conf"

    @property
    def nats_pidfile(self) -> Path:
        return self.data_path / "nats" / "bay-nats.pid"

    @property
    def registry_address(self) -> str:
        return connect_address(self.registry_listen)

    @property
    def gateway_url(self) -> str:
        return f"http://{connect_address(self.gateway_listen)}"

    @property
    def scheduler_address(self) -> str:
        return connect_address(self.scheduler_listen)

    @property
    def deployer_address(self) -> str:
        return connect_address(self.deployer_listen)

    @property
    def autoscaler_address(self) -> str:
        return connect_address(self.autoscaler_listen)

    @property
    def dns_grpc_address(self) -> str:
        return connect_address(self.dns_grpc_listen)

    @property
    def sim_master_address(self) -> str:
        return f"127.0.0.1:{self.sim_port}"

    @property
    def schedulers(self) -> dict[str, str]:
        """Each cluster's scheduler, as the gateway is told (``BAY_SCHEDULERS``)."""
        out = {"local": self.scheduler_address}
        if self.sim_cluster:
            out[self.sim_cluster] = connect_address(self.sim_scheduler_listen)
        return out

    def metrics_listens(self) -> dict[str, tuple[str, str]]:
        """Each process's metrics listen address by the process's name in ``bay up``, with the setting
        it comes from (those set to "" are left out)."""
        out = {
            "registry": ("BAY_REGISTRY_METRICS_LISTEN", self.registry_metrics_listen),
            "scheduler": ("BAY_SCHEDULER_METRICS_LISTEN", self.scheduler_metrics_listen),
            "dns": ("BAY_DNS_METRICS_LISTEN", self.dns_metrics_listen),
            "deployer": ("BAY_DEPLOYER_METRICS_LISTEN", self.deployer_metrics_listen),
            "autoscaler": ("BAY_AUTOSCALER_METRICS_LISTEN", self.autoscaler_metrics_listen),
        }
        if self.sim_cluster:
            out[f"scheduler-{self.sim_cluster}"] = (
                "BAY_SIM_SCHEDULER_METRICS_LISTEN", self.sim_scheduler_metrics_listen,
            )  # fmt: skip
        return {name: (var, listen) for name, (var, listen) in out.items() if listen}

    @property
    def metrics_targets(self) -> list[dict[str, object]]:
        """What service discovery lists (the gateway's ``BAY_METRICS_TARGETS``): every process's
        metrics address, the gateway's own ``/metrics`` on its HTTP port included."""
        targets: list[dict[str, object]] = [
            {"address": connect_address(self.gateway_listen), "labels": {"bay_service": "gateway"}}
        ]
        for name, (_, listen) in self.metrics_listens().items():
            service, _, cluster = name.partition("-")
            labels = {"bay_service": service}
            if service == "scheduler":
                labels["cluster"] = cluster or "local"
            targets.append({"address": connect_address(listen), "labels": labels})
        return targets

    @property
    def prometheus_url(self) -> str:
        return f"http://{connect_address(self.prometheus_listen)}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{connect_address(self.alertmanager_listen)}"

    @property
    def monitoring_path(self) -> Path:
        """Prometheus' and Alertmanager's configuration, token and data."""
        return self.data_path / "monitoring"

    @property
    def data_path(self) -> Path:
        return self.data_dir.resolve()

    @property
    def tokens_path(self) -> Path:
        return self.resolved_tokens_file().resolve()

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    def child_environment(self, base: dict[str, str]) -> dict[str, str]:
        """What every service process gets: the caller's environment plus the stack's wiring,
        spelled out so that a service never guesses (absolute paths: a child's cwd may differ)."""
        return {
            **base,
            "BAY_NATS_URL": self.effective_nats_url,
            "BAY_DATA_DIR": str(self.data_path),
            "BAY_TOKENS_FILE": str(self.tokens_path),
            "BAY_STREAM": self.stream,
            "BAY_REGISTRY_LISTEN": self.registry_listen,
            "BAY_REGISTRY_ADDR": self.registry_address,
            "BAY_GATEWAY_LISTEN": self.gateway_listen,
            "BAY_SCHEDULERS": json.dumps(self.schedulers),
            # the scheduler of `local`; a simulated cluster's scheduler gets its own (see table.py)
            "BAY_CLUSTER": "local",
            "BAY_SCHEDULER_LISTEN": self.scheduler_listen,
            "BAY_BACKEND": "",  # from the cluster's registration, which `bay up` makes
            "BAY_MESOS_MASTER": "",
            "BAY_DEPLOYER_LISTEN": self.deployer_listen,
            "BAY_DEPLOYER_ADDR": self.deployer_address,
            "BAY_AUTOSCALER_LISTEN": self.autoscaler_listen,
            "BAY_AUTOSCALER_ADDR": self.autoscaler_address,
            "BAY_DNS_LISTEN": self.dns_listen,
            "BAY_DNS_GRPC_LISTEN": self.dns_grpc_listen,
            "BAY_DNS_ADDR": self.dns_grpc_address,  # the gateway's way to the DNS service's listing
            "BAY_LOG_LEVEL": self.log_level,
            "BAY_KILL_GRACE_SECONDS": str(self.kill_grace_seconds),
            # each process's own is set by the supervisor (table.py); one not told serves none
            "BAY_METRICS_LISTEN": "",
            "BAY_METRICS_TARGETS": json.dumps(self.metrics_targets),
            "PYTHONUNBUFFERED": "1",
            # without --monitoring, an Alertmanager the operator names in the environment is kept
            **({"BAY_ALERTMANAGER_URL": self.alertmanager_url} if self.monitoring else {}),
        }
