"""The shipped alert rules: `promtool test rules` passes (a never-succeeded schedule included), the
PrometheusRule holds the same rules, and both runtimes export every series the rules read, from the
schedule's first minute."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from tibackup.control.alerting import schedule_signals
from tibackup.embedded.metrics import ScheduleCollector, SkipCounter
from tibackup.embedded.store import Store
from tibackup.operator.metrics import ScheduleMetrics
from tibackup.resources import Backup, BackupSchedule, Phase, load_resources, set_condition

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "tibackup-rules.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: scripts/setup.sh installs Debian's prometheus package"
    return found


def test_promtool_checks_and_tests_the_rules() -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool(), "test", "rules", "tibackup-rules.test.yaml"],
        cwd=ROOT / "tests" / "data" / "prometheus", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_prometheusrule_holds_the_same_rules() -> None:
    rule = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheusrule.yaml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def rule_metrics() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    return {m for g in rules["groups"] for r in g["rules"] for m in re.findall(r"tibackup_\w+", r["expr"])}


def schedule(name: str = "never") -> BackupSchedule:
    [resource] = load_resources(
        (ROOT / "tests" / "data" / "seed" / "06-schedule-ceph-secret.yaml").read_text()
    )
    assert isinstance(resource, BackupSchedule)
    resource.metadata.name, resource.metadata.namespace = name, "test1"
    resource.metadata.creation_timestamp = T0
    return resource


def backup(name: str, phase: Phase, at: datetime) -> Backup:
    made = Backup(
        metadata={"name": name, "namespace": "test1", "creationTimestamp": at},
        spec=schedule().spec.backup_template,
    )
    made.status = set_condition(made.status, phase, None, None, at)
    made.status.time_started = at
    if phase == Phase.COMPLETE:
        made.status.time_completed = at + timedelta(minutes=5)
    return made


def value(text: str, metric: str, schedule_name: str = "never") -> float:
    found = re.search(rf'^{metric}\{{namespace="test1",schedule="{schedule_name}"\}} (\S+)$', text, re.M)
    assert found, (metric, text)
    return float(found.group(1))


def test_operator_exports_every_rule_series_for_a_never_succeeded_schedule() -> None:
    metrics = ScheduleMetrics()
    metrics.observe(schedule(), [])
    text = generate_latest(metrics.registry).decode()
    for name in rule_metrics() - {"tibackup_schedule_last_backup_success"}:  # none finished: no outcome
        assert f"\n{name}" in text or text.startswith(name), name
    assert value(text, "tibackup_schedule_last_success_timestamp_seconds") == 0.0
    assert value(text, "tibackup_schedule_created_timestamp_seconds") == T0.timestamp()
    assert "tibackup_controller_up 1.0" in text


def test_embedded_exports_every_rule_series_for_a_never_succeeded_schedule(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create(schedule(), T0)
    store.close()
    registry = CollectorRegistry()
    registry.register(ScheduleCollector(tmp_path, SkipCounter()))
    text = generate_latest(registry).decode()
    for name in rule_metrics() - {"tibackup_schedule_last_backup_success"}:
        assert f"\n{name}" in text or text.startswith(name), name
    assert value(text, "tibackup_schedule_last_success_timestamp_seconds") == 0.0
    assert value(text, "tibackup_schedule_created_timestamp_seconds") > 0


def test_signals_remember_a_failure_retention_pruned_and_a_pruned_success() -> None:
    sched = schedule()
    ok = backup("never-ok", Phase.COMPLETE, T0 + timedelta(hours=1))
    failed = backup("never-failed", Phase.FAILED, T0 + timedelta(hours=2))
    sched.status.last_backup = failed.metadata.name
    sched.status.last_successful_backup = ok.metadata.name
    sched.status.last_successful_backup_time = ok.status.time_completed
    assert schedule_signals(sched, [ok, failed]).last_ok == 0.0
    # Retention pruned the failed one; the kept success must not make the schedule look healthy.
    pruned = schedule_signals(sched, [ok])
    assert pruned.last_ok == 0.0
    assert ok.status.time_completed is not None
    assert pruned.last_success == ok.status.time_completed.timestamp()
    # Even with the success gone too, the schedule's status remembers when it last succeeded.
    assert schedule_signals(sched, []).last_success == ok.status.time_completed.timestamp()
    sched.status.last_backup = ok.metadata.name
    assert schedule_signals(sched, []).last_ok == 1.0
    # A Backup that runs now (the schedule's lastBackup) leaves the newest finished one's outcome.
    running = backup("never-3", Phase.RUNNING, T0 + timedelta(hours=3))
    sched.status.last_backup = running.metadata.name
    assert schedule_signals(sched, [ok, running]).last_ok == 1.0
    fresh = schedule()
    assert schedule_signals(fresh, []).last_ok is None and schedule_signals(fresh, []).last_success == 0.0


@pytest.mark.parametrize("phase", [Phase.COMPLETE, Phase.FAILED])
def test_operator_last_backup_success_follows_the_newest_finished(phase: Phase) -> None:
    metrics = ScheduleMetrics()
    sched = schedule()
    newest = backup("never-2", phase, T0 + timedelta(hours=2))
    metrics.observe(sched, [backup("never-1", Phase.COMPLETE, T0 + timedelta(hours=1)), newest])
    text = generate_latest(metrics.registry).decode()
    assert value(text, "tibackup_schedule_last_backup_success") == (1.0 if phase == Phase.COMPLETE else 0.0)
