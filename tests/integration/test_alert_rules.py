"""The shipped alert rules and the monitoring configuration, checked by Prometheus' and
Alertmanager's own tools: ``promtool test rules`` runs the unit tests beside the rules
(deploy/prometheus/bay-rules.test.yml), and every rule must have there a case that fires and one
that stays quiet; ``promtool check config`` and ``amtool check-config`` read what ``bay up
--monitoring`` writes; the configuration committed for docker-compose is what the same code writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.auth import TokenStore
from services.cli.stack.monitoring import (
    SHIPPED_RULES,
    Intervals,
    Monitoring,
    alertmanager_config,
    prometheus_config,
    render,
)
from services.cli.stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
RULES_TESTS = SHIPPED_RULES.with_name("bay-rules.test.yml")
#: where docker-compose.yml mounts them (deploy/prometheus, deploy/alertmanager, the token volume)
COMPOSE = {
    "gateway": "gateway:8080",
    "alertmanager": "alertmanager:9093",
    "rules_file": "/etc/prometheus/bay-rules.yml",
    "token_file": "/etc/prometheus/token/prometheus.token",
}
#: the committed files' heading (the rest is the generator's)
COMPOSE_PROMETHEUS = """Prometheus for docker-compose.yml: what `bay up --monitoring` writes,
for the compose network (services/cli/stack/monitoring.py writes it;
tests/integration/test_alert_rules.py keeps them equal).
The viewer token is made by the one-shot `prometheus-token`."""
COMPOSE_ALERTMANAGER = """Alertmanager for docker-compose.yml: what `bay up --monitoring` writes
without a webhook (services/cli/stack/monitoring.py writes it;
tests/integration/test_alert_rules.py keeps them equal).
To be notified, add a receiver with webhook_configs (or email, Slack...) and route to it."""
#: who names a group in its summary: every rule whose alert carries the label group
GROUP_RULES = {
    "BayGroupBelowDesired",
    "BayTaskCrashLooping",
    "BayDeploymentPastDeadline",
    "BayAutoscalerAtMax",
}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is installed by `make setup`"
)


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


@needs_promtool
def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    checked = run("promtool", "check", "rules", SHIPPED_RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = run("promtool", "test", "rules", RULES_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_promtool
def test_promtool_fails_a_rule_that_no_longer_fires(tmp_path: Path) -> None:
    """The unit tests would catch a broken rule: with the crash loop's threshold raised past what
    its case restarts, the same tests fail."""
    text = SHIPPED_RULES.read_text()
    broken = text.replace(
        "(increase(bay_task_restarts_total[15m])) > 2", "(increase(bay_task_restarts_total[15m])) > 200"
    )
    assert broken != text
    (tmp_path / "bay-rules.yml").write_text(broken)
    shutil.copy(RULES_TESTS, tmp_path / "bay-rules.test.yml")
    tested = run("promtool", "test", "rules", tmp_path / "bay-rules.test.yml")
    assert tested.returncode != 0
    assert "alertname: BayTaskCrashLooping" in tested.stdout + tested.stderr


def test_every_rule_has_a_case_that_fires_and_one_that_does_not() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULES_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for rule in rules():
        assert cases.get(rule["alert"]) == {True, False}, f"{rule['alert']}: cases that fire / stay quiet"


def test_every_rule_waits_is_labelled_and_names_what_it_is_about() -> None:
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names))
    assert GROUP_RULES <= set(names)
    for rule in rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        summary = rule["annotations"]["summary"]
        if rule["alert"] in GROUP_RULES:
            assert "group" in rule["expr"], rule["alert"]  # the alert keeps the label group
            assert "{{ $labels.group }}" in summary, rule["alert"]
        else:
            assert "{{ $labels." in summary or "DNS" in summary, rule["alert"]


def test_committed_compose_configuration_is_what_bay_writes() -> None:
    """deploy/prometheus/prometheus.yml and deploy/alertmanager/alertmanager.yml are the generator's
    output for the compose network (default intervals, no webhook): they cannot drift apart."""
    prometheus = render(prometheus_config(**COMPOSE, intervals=Intervals()), COMPOSE_PROMETHEUS)
    assert (ROOT / "deploy/prometheus/prometheus.yml").read_text() == prometheus
    alertmanager = render(alertmanager_config(webhook_url="", intervals=Intervals()), COMPOSE_ALERTMANAGER)
    assert (ROOT / "deploy/alertmanager/alertmanager.yml").read_text() == alertmanager


def stack_settings(tmp_path: Path, **extra: Any) -> StackSettings:
    return StackSettings(data_dir=tmp_path / ".bay", monitoring=True, **extra)


@needs_promtool
@pytest.mark.parametrize("webhook", ["", "http://127.0.0.1:9/hook?key=s3cret"])
def test_bay_up_writes_configuration_the_programs_accept(tmp_path: Path, webhook: str) -> None:
    settings = stack_settings(
        tmp_path,
        alert_webhook_url=webhook,
        prometheus_scrape_interval_seconds=0.5,
        prometheus_evaluation_interval_seconds=1,
        alertmanager_group_wait_seconds=0,
        alertmanager_group_interval_seconds=2,
        alertmanager_repeat_interval_seconds=3600,
    )
    settings.data_path.mkdir(parents=True)
    Monitoring(settings).write()
    root = settings.monitoring_path
    checked = run("promtool", "check", "config", root / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    amtool = shutil.which("amtool")
    if amtool:
        am = run(amtool, "check-config", root / "alertmanager.yml")
        assert am.returncode == 0, am.stdout + am.stderr

    prom = yaml.safe_load((root / "prometheus.yml").read_text())
    assert prom["global"] == {
        "scrape_interval": "500ms",
        "scrape_timeout": "500ms",
        "evaluation_interval": "1s",
    }
    processes, tasks = prom["scrape_configs"]
    # Bay's own processes keep their labels; a task's metrics cannot override the discovery's
    assert (processes["job_name"], processes["honor_labels"]) == ("bay", True)
    assert (tasks["job_name"], tasks.get("honor_labels", False)) == ("bay-tasks", False)
    assert [r["regex"] for r in (*processes["relabel_configs"], *tasks["relabel_configs"])] == [
        "process",
        "task",
    ]
    sd = processes["http_sd_configs"][0]
    assert sd == tasks["http_sd_configs"][0]
    assert sd["url"] == f"http://{settings.gateway_listen}/v1/sd/prometheus"
    # the viewer token is in its own file (0600), not in the configuration, and the gateway takes it
    token = Path(sd["authorization"]["credentials_file"]).read_text().strip()
    assert token not in (root / "prometheus.yml").read_text()
    assert (root / "prometheus.token").stat().st_mode & 0o077 == 0
    assert (
        TokenStore(settings.tokens_path).authenticate(f"Bearer {token}", needed="viewer").name == "prometheus"
    )
    am_doc = yaml.safe_load((root / "alertmanager.yml").read_text())
    assert am_doc["route"]["group_wait"] == "0s" and am_doc["route"]["group_interval"] == "2s"
    assert am_doc["route"]["repeat_interval"] == "1h"
    if webhook:
        assert am_doc["route"]["receiver"] == "webhook"
        assert am_doc["receivers"][1]["webhook_configs"] == [{"url": webhook, "send_resolved": True}]
        assert (root / "alertmanager.yml").stat().st_mode & 0o077 == 0
    else:
        assert am_doc["route"]["receiver"] == "nowhere" and am_doc["receivers"] == [{"name": "nowhere"}]


def test_bad_monitoring_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="alert_webhook_url"):
        stack_settings(tmp_path, alert_webhook_url="ftp://example.com/hook")
    with pytest.raises(ValueError, match="prometheus_listen"):
        stack_settings(tmp_path, prometheus_listen="nowhere")
    missing = stack_settings(tmp_path, alert_rules_file=tmp_path / "none.yml")
    missing.data_path.mkdir(parents=True)
    with pytest.raises(Exception, match="BAY_ALERT_RULES_FILE"):
        Monitoring(missing).write()


def test_compose_runs_both_with_the_committed_configuration() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prom, am = compose["prometheus"], compose["alertmanager"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    assert f"./deploy/prometheus/bay-rules.yml:{COMPOSE['rules_file']}:ro" in prom["volumes"]
    assert f"prometheus-token:{Path(COMPOSE['token_file']).parent}:ro" in prom["volumes"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in am["volumes"]
    assert "--cluster.listen-address=" in am["command"]
    token = compose["prometheus-token"]
    assert "prometheus-token:/etc/bay-monitoring" in token["volumes"]
    assert token["command"][3:6] == ["token", "ensure-file", Path(COMPOSE["token_file"]).stem]
    assert compose["gateway"]["environment"]["BAY_ALERTMANAGER_URL"] == f"http://{COMPOSE['alertmanager']}"


def test_token_ensure_file_keeps_one_token(tmp_path: Path) -> None:
    """`bay token ensure-file` (compose's prometheus-token): the same token on every run, readable
    by another user only when asked, and the gateway's tokens file knows it as a viewer."""
    bay = Path(sys.executable).parent / "bay"
    env = {"BAY_DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    argv = [str(bay), "token", "ensure-file", "prometheus", "--role", "viewer", "--dir", str(tmp_path / "t")]
    first = subprocess.run([*argv, "--readable"], capture_output=True, text=True, env=env, timeout=30)
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    token = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o644
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    assert again.returncode == 0, again.stderr
    assert path.read_text().strip() == token and path.stat().st_mode & 0o777 == 0o600
    assert (
        TokenStore(tmp_path / "tokens.json").authenticate(f"Bearer {token}", needed="viewer").role == "viewer"
    )
