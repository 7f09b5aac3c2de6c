"""Retention: by count (every backup counts), by age, age winning, never the newest success nor a running
backup, failures pruned after a success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tibackup.control.retention import BackupRecord, expired_backups
from tibackup.errors import InvalidSpecError
from tibackup.resources import Phase

NOW = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


def rec(name: str, hours_ago: float, phase: Phase | str | None = Phase.COMPLETE) -> BackupRecord:
    created = NOW - timedelta(hours=hours_ago)
    done = created + timedelta(minutes=5) if phase in (Phase.COMPLETE, Phase.FAILED) else None
    return BackupRecord(name=name, created=created, phase=phase, completed=done)


def test_no_limits_keeps_everything() -> None:
    backups = [rec(f"b{i}", i) for i in range(10)] + [rec("f", 20, Phase.FAILED)]
    assert expired_backups(backups, None, None, NOW) == []
    assert expired_backups(backups, 0, None, NOW) == []  # 0 means unlimited, as in TiDB Operator


def test_by_count_keeps_newest_successes_oldest_first() -> None:
    backups = [rec(f"b{i}", i) for i in range(6)]
    assert expired_backups(backups, 3, None, NOW) == ["b5", "b4", "b3"]


def test_count_counts_every_backup_but_keeps_running_and_newest_success() -> None:
    backups = [
        rec("new-failed", 0.5, Phase.FAILED),
        rec("ok1", 1),
        rec("running", 0.1, Phase.RUNNING),
        rec("ok2", 2),
        rec("ok3", 3),
    ]
    # Every backup counts, as in TiDB Operator: "running" and "new-failed" use up the quota of two; the
    # running one is never deleted, nor ok1 (the newest success); the older successes go.
    assert expired_backups(backups, 2, None, NOW) == ["ok3", "ok2"]


def test_failing_schedule_cannot_pile_up_failed_backups() -> None:
    failures = [rec(f"f{i}", i, Phase.FAILED) for i in range(1, 8)]
    assert expired_backups(failures, 3, None, NOW) == ["f7", "f6", "f5", "f4"]
    # The newest success stays even when newer failures fill the count.
    mixed = [rec(f"f{i}", i, Phase.FAILED) for i in range(1, 5)] + [rec("ok", 10), rec("ok-old", 11)]
    assert expired_backups(mixed, 2, None, NOW) == ["ok-old", "f4", "f3"]


def test_by_time() -> None:
    backups = [rec("b1", 1), rec("b2", 2.5), rec("b4", 4), rec("b5", 5)]
    assert expired_backups(backups, None, "3h", NOW) == ["b5", "b4"]
    assert expired_backups(backups, None, timedelta(hours=3), NOW) == ["b5", "b4"]


def test_time_wins_over_count() -> None:
    backups = [rec(f"b{i}", i) for i in range(1, 7)]
    # maxBackups alone would keep five; maxReservedTime keeps what is younger than 2h30m.
    assert expired_backups(backups, 5, "2h30m", NOW) == ["b6", "b5", "b4", "b3"]
    # maxBackups alone would delete; maxReservedTime keeps all.
    assert expired_backups(backups, 1, "72h", NOW) == []


def test_never_deletes_the_newest_success() -> None:
    backups = [rec("failed", 1, Phase.FAILED), rec("old-ok", 100), rec("older-ok", 200)]
    assert expired_backups(backups, None, "3h", NOW) == ["older-ok"]
    only = [rec("only", 500)]
    assert expired_backups(only, None, "1h", NOW) == []
    assert expired_backups(only, 1, None, NOW) == []


def test_failed_pruned_once_a_newer_success_exists() -> None:
    backups = [
        rec("ok-new", 1),
        rec("failed-old", 2, Phase.FAILED),
        rec("invalid-old", 3, Phase.INVALID),
        rec("ok-old", 4),
        rec("failed-newest", 0.5, Phase.FAILED),
    ]
    assert expired_backups(backups, 5, None, NOW) == ["invalid-old", "failed-old"]
    # Without any success, failures are counted like any backup: the newest maxBackups of them stay.
    failures = [rec("f1", 1, Phase.FAILED), rec("f2", 2, Phase.FAILED)]
    assert expired_backups(failures, 2, None, NOW) == []
    assert expired_backups(failures, 1, None, NOW) == ["f2"]


def test_unfinished_and_deleting_backups_are_never_listed() -> None:
    backups = [
        rec("ok", 1),
        rec("stuck-running", 50, Phase.RUNNING),
        rec("prepare", 50, Phase.PREPARE),
        rec("scheduled", 50, Phase.SCHEDULED),
        rec("new", 50, None),
        rec("cleaning", 50, Phase.CLEAN),
        rec("clean-failed", 50, Phase.CLEAN_FAILED),
        rec("old-ok", 50),
    ]
    assert expired_backups(backups, None, "3h", NOW) == ["old-ok"]
    assert expired_backups(backups, 1, None, NOW) == ["old-ok"]
    # Deleting backups do not count: with them gone, the newest success and unfinished ones fill 6.
    assert expired_backups(backups, 6, None, NOW) == []


def test_phase_as_plain_string() -> None:
    backups = [rec("a", 1, "Complete"), rec("b", 2, "Complete"), rec("c", 3, "Failed")]
    assert expired_backups(backups, 1, None, NOW) == ["c", "b"]


def test_bad_reserved_time_names_field() -> None:
    with pytest.raises(InvalidSpecError) as info:
        expired_backups([rec("a", 1)], None, "3 days", NOW)
    assert info.value.field == "spec.maxReservedTime"
