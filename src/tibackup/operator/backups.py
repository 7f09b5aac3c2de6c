"""What the operator does for one Backup: start its Job, notice a Job that died, clean up on deletion.
The Job state machine is the one every run resource shares (``runs.py``); here are the Backup's own parts.

Thin over the API: every decision about the backup itself belongs to the manager running in the Job.
The operator writes a Backup's status only for what the manager cannot see from inside: the Job was
created (``Scheduled``), the Job died (``Failed``, reason ``JobFailed``), the spec can never work
(``Invalid``), and the clean Job's outcome (``Clean`` / ``CleanFailed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tibackup.errors import InvalidSpecError
from tibackup.operator import jobs
from tibackup.operator.kube import BACKUPS, JOBS, PVCS
from tibackup.operator.runs import COMPONENT, OperatorConfig, RunController, job_outcome
from tibackup.resources import FINISHED_PHASES, Backup, Phase, to_dict

log = logging.getLogger(__name__)
UNFINISHED = (None, Phase.SCHEDULED, Phase.PREPARE, Phase.RUNNING)


@dataclass(frozen=True)
class CleanProgress:
    done: bool
    delay: float = 0.0


class BackupController(RunController[Backup]):
    """A Backup's Job state machine (``runs.py``), its staging volume, GC life time recovery and clean."""

    plural = BACKUPS
    component = "backup"
    job_annotation = jobs.ANNOTATION_BACKUP
    unfinished = UNFINISHED

    def parse(self, body: dict[str, Any]) -> Backup:
        return jobs.backup_of(body)

    def job_name(self, name: str) -> str:
        return jobs.job_name(name)

    def may_rerun(self, backup: Backup) -> bool:
        recovery = self.api.get(JOBS, _ns(backup), jobs.job_name(backup.metadata.name, "recover"))
        # A recovery still running would mark the new run Failed: re-run once it has ended.
        return recovery is None or job_outcome(recovery) is not None

    def create_job(self, backup: Backup) -> bool:
        if jobs.is_staged(backup):
            self.api.create(PVCS, _ns(backup), jobs.pvc_manifest(backup))  # a re-run finds its kept volume
        return self.api.create(JOBS, _ns(backup), jobs.job_manifest(backup, self.config.image)) is not None

    def job_failed_message(self, job: dict[str, Any], outcome: str) -> str:
        name = (job.get("metadata") or {}).get("name")
        if outcome == "failed":
            return f"the backup Job {name} failed: {self.describe_failure(job)}"
        return f"the backup Job {name} ended without a result"

    def other_job_ended(self, body: dict[str, Any], job: dict[str, Any], action: str, outcome: str) -> None:
        if action == "recover" and outcome == "failed":
            self.event(body, "Warning", "GCRestoreFailed", f"Job {job['metadata'].get('name')} could not "
                       "restore the GC life time; see its logs and restore tikv_gc_life_time by hand")  # fmt: skip

    def run_job_ended(self, backup: Backup) -> None:
        if backup.status.phase == Phase.COMPLETE and jobs.is_staged(backup):
            # Uploaded and the local files deleted: give the staging volume back.
            self.api.delete(PVCS, _ns(backup), jobs.pvc_name(backup.metadata.name))

    def fail(self, backup: Backup, reason: str, message: str) -> None:
        """Mark the Backup Failed; if its backup had raised the GC life time, a Job restores it."""
        super().fail(backup, reason, message)
        # Left behind: a raised GC life time (its record), unfinished multipart uploads (a path) or the
        # claim of a Job killed between claiming its folder and Running (claimPath).
        status = backup.status
        if (
            (backup.metadata.annotations or {}).get(jobs.ANNOTATION_GC_RECORD)
            or status.backup_path
            or status.claim_path
        ):
            self.api.create(JOBS, _ns(backup), jobs.job_manifest(backup, self.config.image, "recover"))
            self.event(to_dict(backup), "Normal", "RecoveryStarted",
                       f"created Job {jobs.job_name(backup.metadata.name, 'recover')} to restore the GC life time")  # fmt: skip

    # --- a GC life time restore still pending (the database was down or frozen when the backup ended)
    def retry_gc_restore(self, body: dict[str, Any]) -> None:
        """A finished Backup still carrying its GC record: run a recover Job (again) to restore the value.

        Called on a timer while the annotation is there; the Job removes it once the value is back."""
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        try:
            backup = jobs.backup_of(body)
        except InvalidSpecError:
            return
        annotations = backup.metadata.annotations or {}
        if not annotations.get(jobs.ANNOTATION_GC_RECORD) or backup.status.phase not in FINISHED_PHASES:
            return  # nothing to restore, or the backup's own Job (or fail()) still takes care of it
        ns, name = _ns(backup), jobs.job_name(backup.metadata.name, "recover")
        job = self.api.get(JOBS, ns, name)
        if job is not None:
            if job_outcome(job) is None:
                return  # a recovery runs now
            self.api.delete(JOBS, ns, name)
        if self.api.create(JOBS, ns, jobs.job_manifest(backup, self.config.image, "recover")) is None:
            return  # the finished Job is still going away: the next tick creates it
        self.event(body, "Normal", "GCRestoreRetried",
                   f"created Job {name} to restore tikv_gc_life_time (still raised by this backup)")  # fmt: skip

    # --- deletion
    def cleanup(self, body: dict[str, Any]) -> CleanProgress:
        """Remove the remote data if the cleanPolicy says so; done=True lets the Backup go."""
        try:
            backup = jobs.backup_of(body)
        except InvalidSpecError:
            return CleanProgress(True)  # never valid: it never wrote anything
        ns, name = _ns(backup), backup.metadata.name
        annotations = backup.metadata.annotations or {}
        backup_job = self.api.get(JOBS, ns, jobs.job_name(name))
        if backup_job is not None and job_outcome(backup_job) is None:
            self.api.delete(JOBS, ns, jobs.job_name(name))  # stop it writing while we clean
        if annotations.get(jobs.ANNOTATION_SKIP_CLEAN, "").lower() == "true" or not needs_clean(backup):
            return CleanProgress(True)
        clean_name = jobs.job_name(name, "clean")
        clean_job = self.api.get(JOBS, ns, clean_name)
        if clean_job is None:
            self.api.create(JOBS, ns, jobs.job_manifest(backup, self.config.image, "clean"))
            self.event(
                body,
                "Normal",
                "CleanJobCreated",
                f"created Job {clean_name} to delete {backup.status.backup_path}",
            )
            return CleanProgress(False, self.config.poll_delay)
        outcome = job_outcome(clean_job)
        if outcome == "succeeded":
            self.event(body, "Normal", "Cleaned", f"deleted the backup data at {backup.status.backup_path}")
            return CleanProgress(True)
        if outcome == "failed":
            message = (f"the clean Job {clean_name} failed: {self.describe_failure(clean_job)}; the operator "
                       f"retries, or annotate {jobs.ANNOTATION_SKIP_CLEAN}=true to keep the data and delete")  # fmt: skip
            self.set_phase(backup, Phase.CLEAN_FAILED, "CleanFailed", message)
            self.event(body, "Warning", "CleanFailed", message)
            self.api.delete(JOBS, ns, clean_name)
            return CleanProgress(False, self.config.clean_retry_delay)
        return CleanProgress(False, self.config.poll_delay)


def needs_clean(backup: Backup) -> bool:
    """Whether deleting this Backup needs a clean Job: data may exist and its cleanPolicy deletes it, or
    a run that did not complete may have left unfinished uploads (the manager's rule, should_clean)."""
    from tibackup.manager.clean import should_clean

    return should_clean(backup)


def _ns(backup: Backup) -> str:
    return backup.metadata.namespace or "default"


__all__ = [
    "COMPONENT",
    "FINISHED_PHASES",
    "BackupController",
    "CleanProgress",
    "OperatorConfig",
    "job_outcome",
    "needs_clean",
]
