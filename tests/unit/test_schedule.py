"""Schedules: parsing, next ticks, what to do now; and the names, labels and owner of created Backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tibackup.control.naming import backup_from_schedule, backup_name, backup_path, schedule_labels
from tibackup.control.schedule import (
    Action,
    ScheduleState,
    decide,
    parse_schedule,
    validate_backup_schedule,
)
from tibackup.errors import InvalidSpecError
from tibackup.resources import Backup, BackupSchedule, dump_yaml, load_resources, to_dict, validate_backup


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_schedule(expr: str = "0 * * * *", pause: bool = False, **meta: object) -> BackupSchedule:
    [resource] = load_resources(
        f"""
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: nightly
  namespace: test1
  uid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427
  annotations:
    iam.amazonaws.com/role: arn:aws:iam::123456789012:role/user
    kubectl.kubernetes.io/last-applied-configuration: "{{}}"
spec:
  schedule: "{expr}"
  pause: {str(pause).lower()}
  maxBackups: 3
  storageSize: 20Gi
  backupTemplate:
    from: {{host: tidb.test1, secretName: backup-demo1-tidb-secret}}
    s3: {{provider: aws, region: us-west-2, bucket: my-bucket, prefix: team/db}}
"""
    )
    assert isinstance(resource, BackupSchedule)
    return resource


# --- parsing and next ticks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/2 * * * *", "2024-03-01T12:00:30", "2024-03-01T12:02:00"),
        ("*/2 * * * *", "2024-03-01T12:02:00", "2024-03-01T12:04:00"),  # strictly after
        ("0 2 * * *", "2024-01-31T03:00:00", "2024-02-01T02:00:00"),  # month boundary
        ("30 23 31 12 *", "2024-06-01T00:00:00", "2024-12-31T23:30:00"),
        ("0 0 1 1 *", "2024-12-31T23:59:59", "2025-01-01T00:00:00"),  # year boundary
        ("0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap day
        ("0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),  # April has no 31st
        ("0 3 * * MON", "2024-03-01T00:00:00", "2024-03-04T03:00:00"),
        ("0 3 * JAN,JUL *", "2024-03-01T00:00:00", "2024-07-01T03:00:00"),
        ("0 0 ? * 0", "2024-03-01T00:00:00", "2024-03-03T00:00:00"),
        ("@hourly", "2024-03-01T12:00:00", "2024-03-01T13:00:00"),
        ("@daily", "2024-12-31T12:00:00", "2025-01-01T00:00:00"),
        ("@midnight", "2024-03-01T12:00:00", "2024-03-02T00:00:00"),
        ("@weekly", "2024-03-01T12:00:00", "2024-03-03T00:00:00"),  # Sunday
        ("@monthly", "2024-12-15T00:00:00", "2025-01-01T00:00:00"),
        ("@yearly", "2024-03-01T00:00:00", "2025-01-01T00:00:00"),
        ("@annually", "2024-03-01T00:00:00", "2025-01-01T00:00:00"),
        ("@every 90m", "2024-03-01T12:00:00.700", "2024-03-01T13:30:00"),
        ("@every 1h30m", "2024-12-31T23:00:00", "2025-01-01T00:30:00"),
        ("  0   2 * * *  ", "2024-03-01T00:00:00", "2024-03-01T02:00:00"),
    ],
)
def test_next_tick(expr: str, after: str, expected: str) -> None:
    assert parse_schedule(expr).next_after(at(after)) == at(expected)


def test_next_tick_from_other_time_zone_is_utc() -> None:
    tokyo = datetime.fromisoformat("2024-03-01T09:00:00+09:00")
    assert parse_schedule("@hourly").next_after(tokyo) == at("2024-03-01T01:00:00")


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * * *",  # 6 fields (seconds): not ours to guess
        "0 0 * *",
        "",
        "@sometimes",
        "@reboot",
        "@every",
        "@every 0s",
        "@every -5m",
        "@every 10",
        "@every 500ms",
        "@daily 3",
        "61 * * * *",
        "0 25 * * *",
        "0 0 32 * *",
        "*/0 * * * *",
        "H * * * *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "every day",
    ],
)
def test_bad_schedules_rejected(expr: str) -> None:
    with pytest.raises(InvalidSpecError) as info:
        parse_schedule(expr)
    assert info.value.field == "spec.schedule"
    assert "\n" not in info.value.message


def test_validate_backup_schedule_names_fields() -> None:
    validate_backup_schedule(make_schedule())
    bad_time = make_schedule()
    bad_time.spec.max_reserved_time = "3 hours"
    with pytest.raises(InvalidSpecError) as info:
        validate_backup_schedule(bad_time)
    assert info.value.field == "spec.maxReservedTime"
    no_bucket = make_schedule()
    assert no_bucket.spec.backup_template.s3 is not None
    no_bucket.spec.backup_template.s3.bucket = None
    with pytest.raises(InvalidSpecError) as info:
        validate_backup_schedule(no_bucket)
    assert info.value.field == "spec.backupTemplate.s3.bucket"


# --- decisions ---------------------------------------------------------------------------------------

CREATED = at("2024-03-01T10:20:00")


def test_waits_for_first_tick_after_creation() -> None:
    decision = decide(make_schedule(), ScheduleState(created=CREATED), at("2024-03-01T10:59:59"))
    assert decision.action == Action.WAIT
    assert decision.next_backup_time == at("2024-03-01T11:00:00")
    assert decision.backup_name is None


def test_first_backup_at_first_tick() -> None:
    decision = decide(make_schedule(), ScheduleState(created=CREATED), at("2024-03-01T11:00:05"))
    assert decision.action == Action.CREATE
    assert decision.tick == at("2024-03-01T11:00:00")
    assert decision.backup_name == "nightly-2024-03-01t11-00-00"
    assert decision.next_backup_time == at("2024-03-01T12:00:00")


def test_created_exactly_on_a_tick_waits_for_the_next() -> None:
    decision = decide(
        make_schedule(), ScheduleState(created=at("2024-03-01T11:00:00")), at("2024-03-01T11:00:00")
    )
    assert decision.action == Action.WAIT
    assert decision.next_backup_time == at("2024-03-01T12:00:00")


def test_after_a_backup_waits_for_next_tick() -> None:
    state = ScheduleState(created=CREATED, last_backup_time=at("2024-03-01T11:00:00"))
    decision = decide(make_schedule(), state, at("2024-03-01T11:30:00"))
    assert decision.action == Action.WAIT
    assert decision.next_backup_time == at("2024-03-01T12:00:00")


def test_missed_ticks_collapse_into_one_backup() -> None:
    state = ScheduleState(created=CREATED, last_backup_time=at("2024-03-01T11:00:00"))
    now = at("2024-03-02T03:17:00")  # 16 ticks missed (controller down overnight)
    decision = decide(make_schedule(), state, now)
    assert decision.action == Action.CREATE
    assert decision.tick == at("2024-03-02T03:00:00")  # the latest, not the first, missed tick
    assert decision.backup_name == "nightly-2024-03-02t03-00-00"
    assert decision.next_backup_time == at("2024-03-02T04:00:00")
    # Once it is recorded, nothing more is due until the next tick.
    after = ScheduleState(created=CREATED, last_backup_time=decision.tick)
    assert decide(make_schedule(), after, now).action == Action.WAIT


def test_missed_every_ticks_collapse_on_the_interval_grid() -> None:
    state = ScheduleState(created=at("2024-03-01T00:00:00"))
    decision = decide(make_schedule("@every 6h"), state, at("2024-03-02T01:00:00"))
    assert decision.action == Action.CREATE
    assert decision.tick == at("2024-03-02T00:00:00")
    assert decision.next_backup_time == at("2024-03-02T06:00:00")


def test_overlap_skips_the_tick_and_records_why() -> None:
    state = ScheduleState(
        created=CREATED, last_backup_time=at("2024-03-01T11:00:00"), last_backup_running=True
    )
    decision = decide(make_schedule(), state, at("2024-03-01T12:00:10"))
    assert decision.action == Action.SKIP
    assert decision.tick == at("2024-03-01T12:00:00")
    assert decision.reason and "not finished" in decision.reason
    assert decision.backup_name is None
    assert decision.next_backup_time == at("2024-03-01T13:00:00")
    # The skipped tick stays skipped: when the backup ends, nothing runs until the next tick.
    done = ScheduleState(
        created=CREATED, last_backup_time=at("2024-03-01T11:00:00"), last_skipped=decision.tick
    )
    assert decide(make_schedule(), done, at("2024-03-01T12:20:00")).action == Action.WAIT
    assert decide(make_schedule(), done, at("2024-03-01T13:00:00")).action == Action.CREATE


def test_running_backup_without_due_tick_just_waits() -> None:
    state = ScheduleState(
        created=CREATED, last_backup_time=at("2024-03-01T11:00:00"), last_backup_running=True
    )
    assert decide(make_schedule(), state, at("2024-03-01T11:40:00")).action == Action.WAIT


def test_pause_takes_no_backup() -> None:
    paused = make_schedule(pause=True)
    state = ScheduleState(created=CREATED, last_backup_time=at("2024-03-01T11:00:00"))
    due = decide(paused, state, at("2024-03-01T12:00:30"))
    assert due.action == Action.PAUSED
    assert due.tick == at("2024-03-01T12:00:00")  # recorded as skipped, so unpausing does not catch up
    assert due.next_backup_time is None and due.backup_name is None
    idle = decide(paused, state, at("2024-03-01T11:30:00"))
    assert idle.action == Action.PAUSED and idle.tick is None


def test_state_of_schedule_status() -> None:
    schedule = make_schedule()
    schedule.status.last_backup_time = at("2024-03-01T11:00:00")
    schedule.status.last_skipped = at("2024-03-01T12:00:00")
    state = ScheduleState.of(schedule, last_backup_running=False, created=CREATED)
    assert state == ScheduleState(
        created=CREATED, last_backup_time=at("2024-03-01T11:00:00"), last_skipped=at("2024-03-01T12:00:00")
    )
    assert decide(schedule, state, at("2024-03-01T12:30:00")).action == Action.WAIT


def test_decide_rejects_bad_schedule() -> None:
    with pytest.raises(InvalidSpecError):
        decide(make_schedule("*/5 * * * * *"), ScheduleState(created=CREATED), at("2024-03-01T12:00:00"))


# --- names, labels, owner, paths ------------------------------------------------------------------


def test_backup_name_format() -> None:
    assert backup_name("demo1-backup-schedule-s3", at("2024-03-01T02:04:06")) == (
        "demo1-backup-schedule-s3-2024-03-01t02-04-06"
    )
    tokyo = datetime.fromisoformat("2024-03-01T09:00:00+09:00")
    assert backup_name("s", tokyo) == "s-2024-03-01t00-00-00"


def test_backup_from_schedule() -> None:
    schedule = make_schedule()
    backup = backup_from_schedule(schedule, at("2024-03-01T11:00:00"))
    assert isinstance(backup, Backup)
    meta = backup.metadata
    assert meta.name == "nightly-2024-03-01t11-00-00"
    assert meta.namespace == "test1"
    assert meta.labels == {
        "tidb.pingcap.com/backup-schedule": "nightly",
        "app.kubernetes.io/name": "backup-schedule",
        "app.kubernetes.io/managed-by": "backup-schedule-operator",
        "app.kubernetes.io/instance": "nightly",
    }
    assert meta.annotations == {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"}
    assert meta.owner_references is not None
    [owner] = meta.owner_references
    assert (owner.api_version, owner.kind, owner.name) == (
        "pingcap.com/v1alpha1",
        "BackupSchedule",
        "nightly",
    )
    assert owner.uid == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert owner.controller and owner.block_owner_deletion
    assert backup.spec.storage_size == "20Gi"  # from the schedule level
    assert backup.spec.from_ is not None and backup.spec.from_.host == "tidb.test1"
    validate_backup(backup)
    data = to_dict(backup)
    assert data["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    assert "status" not in data
    # The template is copied, not shared.
    assert backup.spec is not schedule.spec.backup_template
    [again] = load_resources(dump_yaml(backup))
    assert again == backup


def test_schedule_labels_select_its_backups() -> None:
    assert schedule_labels("demo1-backup-schedule-s3")["tidb.pingcap.com/backup-schedule"] == (
        "demo1-backup-schedule-s3"
    )


@pytest.mark.parametrize(
    ("bucket", "prefix", "expected"),
    [
        ("my-bucket", None, "s3://my-bucket/backup-2024-03-01T11:00:00Z/"),
        ("my-bucket", "", "s3://my-bucket/backup-2024-03-01T11:00:00Z/"),
        ("my-bucket", "team/db", "s3://my-bucket/team/db/backup-2024-03-01T11:00:00Z/"),
        ("my-bucket", "/team/db/", "s3://my-bucket/team/db/backup-2024-03-01T11:00:00Z/"),
    ],
)
def test_backup_path(bucket: str, prefix: str | None, expected: str) -> None:
    assert backup_path(bucket, prefix, at("2024-03-01T11:00:00.250")) == expected
    assert backup_path(bucket, prefix, datetime.fromisoformat("2024-03-01T12:00:00+01:00")) == expected


def test_every_interval_shorter_than_a_second_rejected() -> None:
    with pytest.raises(InvalidSpecError, match="at least 1s"):
        parse_schedule("@every 500ms")
    assert parse_schedule("@every 1s").every == timedelta(seconds=1)
