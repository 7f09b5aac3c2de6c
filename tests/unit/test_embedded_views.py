"""Pure pieces of the embedded runtime's CLI: label selectors, AGE, tables, describe titles, redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tibackup.cli.describe_view import title
from tibackup.cli.table_view import human_age, render_table, resource_table
from tibackup.embedded.paths import default_state_dir
from tibackup.embedded.runtime import redact
from tibackup.embedded.selector import parse_selector
from tibackup.errors import UsageError
from tibackup.resources import Backup, BackupSchedule, parse_resource, set_condition

LABELS = {"tidb.pingcap.com/backup-schedule": "nightly", "app.kubernetes.io/name": "backup-schedule"}


@pytest.mark.parametrize(
    "selector,expected",
    [
        ("tidb.pingcap.com/backup-schedule=nightly", True),
        ("tidb.pingcap.com/backup-schedule==nightly", True),
        ("tidb.pingcap.com/backup-schedule=other", False),
        ("tidb.pingcap.com/backup-schedule!=other", True),
        ("tidb.pingcap.com/backup-schedule!=nightly", False),
        ("missing!=x", True),
        ("app.kubernetes.io/name", True),
        ("!app.kubernetes.io/name", False),
        ("!missing", True),
        ("tidb.pingcap.com/backup-schedule in (a, nightly)", True),
        ("tidb.pingcap.com/backup-schedule notin (a,nightly)", False),
        ("tidb.pingcap.com/backup-schedule=nightly,app.kubernetes.io/name=backup-schedule", True),
        ("tidb.pingcap.com/backup-schedule=nightly, app.kubernetes.io/name!=backup-schedule", False),
        ("", True),
    ],
)
def test_selector_matches(selector: str, expected: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize("bad", ["a b=c", "k in (a", "k in ()", "=v", "k=v v", "k)"])
def test_selector_rejects_malformed(bad: str) -> None:
    with pytest.raises(UsageError, match="label selector"):
        parse_selector(bad)


@pytest.mark.parametrize(
    "seconds,expected",
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (180, "3m"),
        (185, "3m5s"),
        (12 * 60 + 30, "12m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 7 * 60, "5h7m"),
        (20 * 3600, "20h"),
        (47 * 3600, "47h"),
        (4 * 86400, "4d"),
        (4 * 86400 + 3 * 3600, "4d3h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_human_age_like_kubectl(seconds: float, expected: str) -> None:
    assert human_age(timedelta(seconds=seconds)) == expected


def test_render_table_aligns_with_three_spaces() -> None:
    text = render_table(["NAME", "STATUS", "AGE"], [["a", "Complete", "5s"], ["longer-name", "", "3m"]])
    assert text.splitlines() == [
        "NAME          STATUS     AGE",
        "a             Complete   5s",
        "longer-name              3m",
    ]


def _backup(now: datetime) -> Backup:
    backup = parse_resource(
        {
            "apiVersion": "pingcap.com/v1alpha1",
            "kind": "Backup",
            "metadata": {"name": "b1", "namespace": "test1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "from": {"host": "db", "secretName": "s"},
                "s3": {"provider": "ceph", "endpoint": "rgw:7480", "bucket": "bkt"},
            },
        }
    )
    assert isinstance(backup, Backup)
    backup.metadata.creation_timestamp = now - timedelta(minutes=3)
    backup.status = set_condition(backup.status, "Complete", None, None, now)
    backup.status.backup_path = "s3://bkt/backup-2026-01-01T00:00:00Z/"
    backup.status.backup_size_readable = "1.3 GB"
    backup.status.time_started = now - timedelta(seconds=90)
    backup.status.time_completed = now - timedelta(seconds=30)
    backup.status.time_taken = "1m0s"
    return backup


def test_backup_table_columns_normal_and_wide() -> None:
    now = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)
    normal = resource_table([_backup(now)], Backup, now).splitlines()
    assert normal[0].split() == [
        "NAME",
        "TYPE",
        "STATUS",
        "BACKUPPATH",
        "BACKUPSIZE",
        "COMMITTS",
        "TIMETAKEN",
        "AGE",
    ]
    assert normal[1].split() == [
        "b1",
        "full",
        "Complete",
        "s3://bkt/backup-2026-01-01T00:00:00Z/",
        "1.3",
        "GB",
        "1m0s",
        "3m",
    ]
    wide = resource_table([_backup(now)], Backup, now, wide=True, all_namespaces=True).splitlines()
    assert wide[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "STARTED" in wide[0] and "COMPLETED" in wide[0]
    assert wide[1].split()[-4:] == ["90s", "30s", "1m0s", "3m"]


def test_schedule_table_columns() -> None:
    now = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)
    schedule = parse_resource(
        {
            "apiVersion": "pingcap.com/v1alpha1",
            "kind": "BackupSchedule",
            "metadata": {"name": "s1", "creationTimestamp": "2026-11-24T19:00:00Z"},
            "spec": {
                "schedule": "*/2 * * * *",
                "maxBackups": 5,
                "backupTemplate": {"from": {"host": "db", "secretName": "s"}},
            },
        }
    )
    assert isinstance(schedule, BackupSchedule)
    wide = resource_table([schedule], BackupSchedule, now, wide=True).splitlines()
    assert wide[0].split() == [
        "NAME",
        "SCHEDULE",
        "MAXBACKUPS",
        "MAXRESERVEDTIME",
        "LASTBACKUP",
        "LASTBACKUPTIME",
        "AGE",
    ]
    assert wide[1].split() == ["s1", "*/2", "*", "*", "*", "*", "5", "30m"]


def test_titles_as_kubectl_describe() -> None:
    assert title("secretName") == "Secret Name"
    assert title("tikvGCLifeTime") == "Tikv GC Life Time"
    assert title("backupSizeReadable") == "Backup Size Readable"
    assert title("s3") == "S 3"  # kubectl splits letters from digits too


def test_redact_masks_long_values_only() -> None:
    assert (
        redact("login as root with hunter22 failed", {"hunter22", "ab"}) == "login as root with ****** failed"
    )
    assert redact("ab cd", {"ab"}) == "ab cd"


def test_default_state_dir() -> None:
    assert str(default_state_dir({"TIBACKUP_STATE_DIR": "/x/y", "HOME": "/h"})) == "/x/y"
    assert str(default_state_dir({"XDG_STATE_HOME": "/xdg", "HOME": "/h"})) == "/xdg/tibackup"
    assert str(default_state_dir({"HOME": "/h"})) == "/h/.local/state/tibackup"
