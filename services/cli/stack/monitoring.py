"""``bay up --monitoring``: Prometheus and Alertmanager as two more supervised children.

Bay writes their configuration from its settings at every start (``<data dir>/monitoring/``), so
that nothing there is edited by hand and a changed setting takes effect on the next ``bay up``:

- Prometheus finds what to scrape from the gateway's service discovery (``/v1/sd/prometheus``, with
  a viewer token of its own read from a file, never put in the configuration: every Bay process,
  the gateway itself included, and the tasks declaring a metrics port), evaluates the shipped
  rules (or ``BAY_ALERT_RULES_FILE``) and sends alerts to the Alertmanager;
- Alertmanager routes every alert to one receiver: the webhook ``BAY_ALERT_WEBHOOK_URL``, or, with
  none, a receiver that sends nothing (the alerts are still listed by ``bay alerts``).

Both listen on 127.0.0.1 by default; Alertmanager's gossip for HA pairs (0.0.0.0:9094 by default)
is turned off. The same functions write the committed configuration of docker-compose
(``deploy/prometheus/prometheus.yml``, ``deploy/alertmanager/alertmanager.yml``; a test keeps the
two in step), with the compose network's addresses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from libs.auth import TokenStore, ensure_token_file
from libs.natsusers import write_private
from services.cli.stack.settings import StackSettings, connect_address

#: the rules Bay ships, in the source checkout ``bay`` runs from
SHIPPED_RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "bay-rules.yml"
#: Debian names Alertmanager's binary prometheus-alertmanager; upstream's archive, alertmanager
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
#: what ``bay up --monitoring`` heads its files with
GENERATED = "Written by `bay up --monitoring` from its BAY_* settings at every start: edits are overwritten."
NULL_RECEIVER = "nowhere"
WEBHOOK_RECEIVER = "webhook"


class MonitoringError(Exception):
    """Monitoring cannot start: a program is missing, or the rules file is not there."""


def duration(seconds: float) -> str:
    """Seconds as a Prometheus/Alertmanager duration: ``4h``, ``5m``, ``15s``, ``1500ms``, ``0s``."""
    ms = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0s"


@dataclass(frozen=True)
class Intervals:
    scrape: float = 15.0
    evaluation: float = 15.0
    sd_refresh: float = 30.0
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat: float = 14400.0

    @classmethod
    def of(cls, s: StackSettings) -> Intervals:
        return cls(
            scrape=s.prometheus_scrape_interval_seconds,
            evaluation=s.prometheus_evaluation_interval_seconds,
            sd_refresh=s.prometheus_sd_refresh_seconds,
            group_wait=s.alertmanager_group_wait_seconds,
            group_interval=s.alertmanager_group_interval_seconds,
            repeat=s.alertmanager_repeat_interval_seconds,
        )


def _sd_job(name: str, kind: str, gateway: str, token_file: str, intervals: Intervals) -> dict[str, Any]:
    """A job of the targets of one ``bay_kind`` in the gateway's service discovery."""
    return {
        "job_name": name,
        "http_sd_configs": [
            {
                "url": f"http://{gateway}/v1/sd/prometheus",
                "refresh_interval": duration(intervals.sd_refresh),
                "authorization": {"type": "Bearer", "credentials_file": token_file},
            }
        ],
        "relabel_configs": [{"source_labels": ["bay_kind"], "regex": kind, "action": "keep"}],
    }


def prometheus_config(
    *, gateway: str, alertmanager: str, rules_file: str, token_file: str, intervals: Intervals
) -> dict[str, Any]:
    """Scrape what the gateway's service discovery lists, evaluate the rules, alert the Alertmanager.

    Two jobs over the one list: ``bay`` scrapes Bay's processes (the gateway's own ``/metrics``
    among them) and keeps their labels as they say them (``honor_labels``: the scheduler's
    ``cluster`` is the target's too, and would otherwise come out again as ``exported_cluster``);
    ``bay-tasks`` scrapes the tasks that declare a ``metrics`` port, whose code is not Bay's: there
    the discovery's labels (group, cluster, host...) win over anything a task's metrics claim.
    """
    process_job = {**_sd_job("bay", "process", gateway, token_file, intervals), "honor_labels": True}
    return {
        "global": {
            "scrape_interval": duration(intervals.scrape),
            # Prometheus refuses a timeout longer than the interval
            "scrape_timeout": duration(min(10.0, intervals.scrape)),
            "evaluation_interval": duration(intervals.evaluation),
        },
        "rule_files": [rules_file],
        "alerting": {
            "alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [alertmanager]}]}]
        },
        "scrape_configs": [process_job, _sd_job("bay-tasks", "task", gateway, token_file, intervals)],
    }


def alertmanager_config(*, webhook_url: str, intervals: Intervals) -> dict[str, Any]:
    """One route: alerts grouped per rule, cluster and group, to the webhook (or to nowhere)."""
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    if webhook_url:
        receivers.append(
            {"name": WEBHOOK_RECEIVER, "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        )
    return {
        "route": {
            "receiver": WEBHOOK_RECEIVER if webhook_url else NULL_RECEIVER,
            "group_by": ["alertname", "cluster", "group"],
            "group_wait": duration(intervals.group_wait),
            "group_interval": duration(intervals.group_interval),
            "repeat_interval": duration(intervals.repeat),
        },
        "receivers": receivers,
    }


def render(config: dict[str, Any], header: str = GENERATED) -> str:
    """YAML under a comment saying where it comes from."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _binary(names: tuple[str, ...], package: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    raise MonitoringError(
        f"--monitoring needs {names[0]}, which is not installed (Debian's package {package}: "
        "`make setup` installs it)"
    )


@dataclass(frozen=True)
class Monitoring:
    """Where the two programs' files live, and their command lines."""

    settings: StackSettings

    @property
    def root(self) -> Path:
        return self.settings.monitoring_path

    @property
    def rules_file(self) -> Path:
        return (self.settings.alert_rules_file or SHIPPED_RULES).resolve()

    def prometheus_argv(self) -> list[str]:
        return [
            _binary(("prometheus",), "prometheus"),
            f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'prometheus'}",
            f"--web.listen-address={self.settings.prometheus_listen}",
            "--log.level=warn",
        ]

    def alertmanager_argv(self) -> list[str]:
        return [
            _binary(ALERTMANAGER_BINARIES, "prometheus-alertmanager"),
            f"--config.file={self.root / 'alertmanager.yml'}",
            f"--storage.path={self.root / 'alertmanager'}",
            f"--web.listen-address={self.settings.alertmanager_listen}",
            "--cluster.listen-address=",  # no HA gossip: it would listen on 0.0.0.0:9094
            "--log.level=warn",
        ]

    def check(self) -> None:
        """Both programs installed and the rules there: said before anything starts."""
        self.prometheus_argv()
        self.alertmanager_argv()
        if not self.rules_file.is_file():
            raise MonitoringError(f"no alert rules at {self.rules_file}: set BAY_ALERT_RULES_FILE")

    def redact(self, line: str) -> str:
        """Alertmanager's line without the webhook URL beyond its host: a failed notification logs
        the URL, whose path or query may be the receiver's secret (a Slack-style hook)."""
        url = self.settings.alert_webhook_url.get_secret_value()
        if not url:
            return line
        parts = urlsplit(url)
        secret = url[len(f"{parts.scheme}://{parts.netloc}") :]
        line = line.replace(url, f"{parts.scheme}://{parts.netloc}/<redacted>")
        return line.replace(secret, "/<redacted>") if len(secret) > 1 else line

    def write(self) -> None:
        """The viewer token Prometheus reads the service discovery with, and both configurations
        (mode 0600: the webhook URL may carry a secret of its receiver)."""
        s = self.settings
        self.check()
        self.root.mkdir(mode=0o700, exist_ok=True)
        ensure_token_file(self.root, TokenStore(s.tokens_path), "prometheus", "viewer")
        intervals = Intervals.of(s)
        prometheus = prometheus_config(
            gateway=connect_address(s.gateway_listen),
            alertmanager=connect_address(s.alertmanager_listen),
            rules_file=str(self.rules_file),
            token_file=str(self.root / "prometheus.token"),
            intervals=intervals,
        )
        write_private(self.root / "prometheus.yml", render(prometheus).encode())
        alertmanager = alertmanager_config(
            webhook_url=s.alert_webhook_url.get_secret_value(), intervals=intervals
        )
        write_private(self.root / "alertmanager.yml", render(alertmanager).encode())
