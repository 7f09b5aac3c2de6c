"""Status transitions of a Backup, and which Backups the clean policy deletes; pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tibackup.manager import phases
from tibackup.manager.clean import completed, should_delete
from tibackup.resources import Backup, BackupStatus, Phase

T0 = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)


def test_happy_path_transitions() -> None:
    status = phases.to_prepare(BackupStatus(), "raising GC", T0)
    assert status.phase == Phase.PREPARE
    status = phases.to_running(status, "s3://b/backup-2024-03-01T02:00:00Z/", "go", T0 + timedelta(seconds=1))
    assert status.phase == Phase.RUNNING and status.time_started == T0 + timedelta(seconds=1)
    status = phases.to_complete(status, 1_300_000_000, "4242", "done", T0 + timedelta(seconds=66))
    assert status.phase == Phase.COMPLETE
    assert (status.backup_size, status.backup_size_readable, status.commit_ts) == (
        1_300_000_000,
        "1.3 GB",
        "4242",
    )
    assert status.time_taken == "1m5s" and status.time_completed == T0 + timedelta(seconds=66)
    assert [c.type for c in status.conditions or []] == [Phase.PREPARE, Phase.RUNNING, Phase.COMPLETE]
    prepare = status.condition(Phase.PREPARE)
    assert prepare is not None and prepare.last_transition_time == T0 and prepare.reason == "Preparing"


def test_failed_message_is_one_line_and_rerun_clears_the_old_outcome() -> None:
    status = phases.to_running(BackupStatus(), "s3://b/x/", "go", T0)
    status = phases.to_failed(status, "UploadFailed", "first line\n  second line", T0 + timedelta(minutes=1))
    cond = status.condition(Phase.FAILED)
    assert cond is not None and cond.message == "first line second line" and cond.reason == "UploadFailed"
    status = phases.to_complete(status, 5, "", "ok", T0 + timedelta(minutes=2))
    status = phases.to_running(status, "s3://b/y/", "again", T0 + timedelta(minutes=3))
    assert status.phase == Phase.RUNNING and status.backup_size is None and status.time_taken is None
    assert status.commit_ts is None and status.backup_path == "s3://b/y/"


def test_verified_is_recorded_while_running_and_only_for_that_run() -> None:
    status = phases.to_running(BackupStatus(), "s3://b/x/", "go", T0)
    assert not phases.verified(status)
    status = phases.to_verified(status, 5, "42", "backed up 5 B to s3://b/x/", T0 + timedelta(seconds=1))
    assert status.phase == Phase.RUNNING and phases.verified(status)
    assert (status.backup_size, status.commit_ts) == (5, "42")
    assert phases.verified(phases.to_failed(status, "JobFailed", "the Job died", T0))  # the operator's
    assert not phases.verified(phases.to_complete(status, 5, "42", "done", T0))
    assert not phases.verified(phases.to_running(status, "s3://b/y/", "again", T0))  # a new run


def test_invalid() -> None:
    status = phases.to_invalid(BackupStatus(), "InvalidSpec", "spec.s3.bucket: required", T0)
    assert status.phase == Phase.INVALID and status.condition(Phase.INVALID).reason == "InvalidSpec"  # type: ignore[union-attr]


def test_time_taken_go_style() -> None:
    assert phases.time_taken(T0, T0 + timedelta(seconds=65.4)) == "1m5s"
    assert phases.time_taken(T0, T0 + timedelta(hours=2, seconds=3)) == "2h0m3s"
    assert phases.time_taken(T0, T0 + timedelta(milliseconds=350)) == "350ms"
    assert phases.time_taken(T0, T0) == "0s"


def _backup(policy: str, status: BackupStatus) -> Backup:
    b = Backup.model_validate({"metadata": {"name": "b"}, "spec": {"cleanPolicy": policy}})
    b.status = status
    return b


def test_clean_policy_decisions() -> None:
    complete = phases.to_complete(phases.to_running(BackupStatus(), "s3://b/x/", "", T0), 1, "", "", T0)
    failed = phases.to_failed(phases.to_running(BackupStatus(), "s3://b/x/", "", T0), "X", "", T0)
    running = phases.to_running(BackupStatus(), "s3://b/x/", "", T0)
    assert not should_delete(_backup("Retain", failed))
    assert should_delete(_backup("Delete", complete))
    assert should_delete(_backup("OnFailure", failed)) and should_delete(_backup("OnFailure", running))
    assert not should_delete(_backup("OnFailure", complete))
    # Once deletion has begun the phase is Clean; the conditions still tell how the backup ended.
    cleaning = complete.model_copy(update={"phase": Phase.CLEAN})
    assert completed(_backup("OnFailure", cleaning)) and not should_delete(_backup("OnFailure", cleaning))
    refailed = phases.to_failed(complete, "X", "", T0 + timedelta(hours=1)).model_copy(
        update={"phase": Phase.CLEAN}
    )
    assert not completed(_backup("OnFailure", refailed))
