"""The re-run rules (control.rerun): a new token re-runs a Failed or Invalid Backup once; a Complete
one is refused; an unfinished one waits; the reset status keeps backupPath and a pending GC restore."""

from __future__ import annotations

from datetime import UTC, datetime

from tibackup.control.rerun import RerunAction, decide_rerun, refused_status, rerun_status, rerun_token
from tibackup.resources import Backup, BackupStatus, set_condition, set_side_condition

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def backup(phase: str | None, token: str | None = None, handled: str | None = None) -> Backup:
    body = {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": {"from": {"host": "db", "secretName": "pw"}, "s3": {"provider": "ceph", "bucket": "bk"}},
    }
    if token is not None:
        body["metadata"]["annotations"] = {"tibackup.pingcap.com/rerun": token}  # type: ignore[index]
    made = Backup.model_validate(body)
    status = BackupStatus(backup_path="s3://bk/backup-x/", rerun_token=handled)
    if phase:
        status = set_condition(status, phase, "Reason", "message", NOW)
    made.status = status
    return made


def test_no_annotation_or_handled_token_does_nothing() -> None:
    assert decide_rerun(backup("Failed")) is None
    assert decide_rerun(backup("Failed", "1", handled="1")) is None
    assert decide_rerun(backup("Failed", "  ")) is None


def test_failed_and_invalid_run_again() -> None:
    for phase in ("Failed", "Invalid"):
        decision = decide_rerun(backup(phase, "2", handled="1"))
        assert decision is not None and decision.action is RerunAction.RUN and decision.token == "2"


def test_complete_is_refused_and_unfinished_waits() -> None:
    refused = decide_rerun(backup("Complete", "1"))
    assert refused is not None and refused.action is RerunAction.REFUSE and "new Backup" in refused.message
    for phase in (None, "Scheduled", "Prepare", "Running", "Clean", "CleanFailed"):
        assert decide_rerun(backup(phase, "1")) is None


def test_reset_status_keeps_path_and_pending_gc_restore() -> None:
    status = backup("Failed").status
    status = set_side_condition(status, "GCLifeTimeRestorePending", "GCLifeTimeNotRestored", "down", NOW)
    status = set_side_condition(status, "Verified", "Verified", "of the run before", NOW)  # not kept
    reset = rerun_status(status, "7")
    assert reset.phase is None and reset.rerun_token == "7" and reset.backup_path == "s3://bk/backup-x/"
    assert [c.type for c in reset.conditions or ()] == ["GCLifeTimeRestorePending"]
    assert refused_status(status, "8").phase == "Failed" and refused_status(status, "8").rerun_token == "8"


def test_tokens_differ_within_a_second() -> None:
    assert rerun_token(NOW) != rerun_token(NOW.replace(microsecond=1))
