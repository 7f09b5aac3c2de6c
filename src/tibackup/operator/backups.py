"""What the operator does for one Backup: start its Job, notice a Job that died, clean up on deletion.

Thin over the API: every decision about the backup itself belongs to the manager running in the Job.
The operator writes a Backup's status only for what the manager cannot see from inside: the Job was
created (``Scheduled``), the Job died (``Failed``, reason ``JobFailed``), the spec can never work
(``Invalid``), and the clean Job's outcome (``Clean`` / ``CleanFailed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tibackup.control.rerun import RerunAction, RerunDecision, decide_rerun, refused_status, rerun_status
from tibackup.errors import InvalidSpecError
from tibackup.manager.admission import admit
from tibackup.operator import jobs
from tibackup.operator.kube import BACKUPS, JOBS, PODS, PVCS, KubeApi
from tibackup.resources import (
    FINISHED_PHASES,
    Backup,
    BackupStatus,
    Phase,
    set_condition,
    to_dict,
)
from tibackup.resources.upstream import ignored_fields

log = logging.getLogger(__name__)
COMPONENT = "tibackup-operator"
UNFINISHED = (None, Phase.SCHEDULED, Phase.PREPARE, Phase.RUNNING)


@dataclass
class OperatorConfig:
    image: str = jobs.DEFAULT_IMAGE
    schedule_interval: float = 15.0  # seconds between two looks at every BackupSchedule
    poll_delay: float = 5.0  # seconds between two looks at a clean Job being waited for
    clean_retry_delay: float = 60.0  # after a failed clean Job, before the next attempt
    gc_retry_interval: float = 60.0  # between two recover Jobs for a GC life time still to restore


@dataclass(frozen=True)
class CleanProgress:
    done: bool
    delay: float = 0.0


def job_outcome(job: dict[str, Any]) -> str | None:
    """ "succeeded", "failed", or None while the Job runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    if (status.get("succeeded") or 0) > 0:
        return "succeeded"
    if (status.get("failed") or 0) > 0:
        return "failed"
    return None


class BackupController:
    def __init__(
        self, api: KubeApi, config: OperatorConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.api = api
        self.config = config
        self.clock = clock

    # --- creation (and resumption after an operator restart, and re-runs)
    def ensure_job(self, body: dict[str, Any]) -> bool:
        """Start the Backup's Job unless it has started, finished or cannot ever work; act on a new
        ``tibackup.pingcap.com/rerun`` annotation first (``control.rerun``). False: try again soon
        (the previous run's Job is still going away)."""
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return True
        try:
            backup = jobs.backup_of(body)
            admit(backup)  # the run's own checks, so a spec that can never run gets no Job
        except InvalidSpecError as exc:
            if (body.get("status") or {}).get("phase") != Phase.INVALID:
                self._set_phase_raw(body, Phase.INVALID, exc.reason, exc.message)
                self.event(body, "Warning", exc.reason, exc.message)
            return True
        decision = decide_rerun(backup)
        if decision is not None:
            recovery = self.api.get(JOBS, _ns(backup), jobs.job_name(backup.metadata.name, "recover"))
            if recovery is not None and job_outcome(recovery) is None:
                return False  # it would mark the new run Failed: re-run once the recovery has ended
            self._accept_rerun(backup, decision)
        phase = backup.status.phase
        if phase not in UNFINISHED:
            return True
        ns, name = _ns(backup), backup.metadata.name
        job = self.api.get(JOBS, ns, jobs.job_name(name))
        if phase in (Phase.PREPARE, Phase.RUNNING) and job is None:
            # The Job vanished (deleted by hand, lost with its node's etcd record): nothing runs it.
            self.fail(backup, "JobLost", f"the Job {jobs.job_name(name)} of this backup no longer exists")
            return True
        if job is not None:
            # A finished Job of a Backup that has not started: the previous run's, still being deleted.
            return not (phase is None and job_outcome(job) is not None)
        if phase is None:
            self.set_phase(backup, Phase.SCHEDULED, "JobCreated", f"the Job {jobs.job_name(name)} runs it")
            for warning in ignored_fields(backup, operator=True):
                self.event(to_dict(backup), "Warning", "IgnoredField", warning)
        if jobs.is_staged(backup):
            self.api.create(PVCS, ns, jobs.pvc_manifest(backup))  # a re-run finds its kept volume
        if self.api.create(JOBS, ns, jobs.job_manifest(backup, self.config.image)) is None:
            return False
        self.event(to_dict(backup), "Normal", "JobCreated", f"created Job {jobs.job_name(name)}")
        return True

    def _accept_rerun(self, backup: Backup, decision: RerunDecision) -> None:
        """Reset the status (the previous Job goes) so the Backup runs again, or record the refusal."""
        ns, name = _ns(backup), backup.metadata.name
        if decision.action is RerunAction.REFUSE:
            backup.status = refused_status(backup.status, decision.token)
            self.event(to_dict(backup), "Warning", "RerunRefused", decision.message)
        else:
            self.api.delete(JOBS, ns, jobs.job_name(name))
            backup.status = rerun_status(backup.status, decision.token)
            self.event(to_dict(backup), "Normal", "RerunRequested", decision.message)
        # A merge patch keeps what it does not name: every field is named, null when the reset clears it.
        cleared = dict.fromkeys(BackupStatus().model_dump(by_alias=True), None)
        status = {**cleared, **backup.status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        self.api.patch(BACKUPS, ns, name, {"status": status})

    # --- Jobs finishing
    def job_changed(self, job: dict[str, Any]) -> None:
        """React to a backup/clean/recover Job that ended; a running Job needs nothing."""
        meta = job.get("metadata") or {}
        backup_name = (meta.get("annotations") or {}).get(jobs.ANNOTATION_BACKUP)
        action = (meta.get("labels") or {}).get(jobs.LABEL_COMPONENT)
        outcome = job_outcome(job)
        if not backup_name or outcome is None:
            return
        ns = meta.get("namespace") or "default"
        current = self.api.get(JOBS, ns, str(meta.get("name")))
        if current is None or (current.get("metadata") or {}).get("uid") != meta.get("uid"):
            return  # a late event of a Job already deleted (a re-run replaced it): not this run's outcome
        body = self.api.get(BACKUPS, ns, backup_name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        if action == "recover" and outcome == "failed":
            self.event(body, "Warning", "GCRestoreFailed", f"Job {meta.get('name')} could not restore the "
                       "GC life time; see its logs and restore tikv_gc_life_time by hand")  # fmt: skip
        if action != "backup":
            return
        try:
            backup = jobs.backup_of(body)
        except InvalidSpecError:
            return
        phase = backup.status.phase
        if phase in UNFINISHED:
            if outcome == "failed":
                message = f"the backup Job {meta.get('name')} failed: {self.describe_failure(job)}"
                self.fail(backup, "JobFailed", message)
            else:
                self.fail(backup, "JobFailed", f"the backup Job {meta.get('name')} ended without a result")
        elif phase == Phase.COMPLETE and jobs.is_staged(backup):
            # Uploaded and the local files deleted: give the staging volume back.
            self.api.delete(PVCS, ns, jobs.pvc_name(backup.metadata.name))

    def describe_failure(self, job: dict[str, Any]) -> str:
        """Why the Job failed, from its conditions and its Pods' container states, in one line."""
        meta = job.get("metadata") or {}
        parts: list[str] = []
        for cond in (job.get("status") or {}).get("conditions") or ():
            if cond.get("type") in ("Failed", "FailureTarget") and cond.get("status") == "True":
                parts.append(f"{cond.get('reason') or 'Failed'}: {cond.get('message') or 'no message'}")
                break
        pods = self.api.list(PODS, meta.get("namespace"), {"job-name": str(meta.get("name"))})
        for pod in pods:
            parts.extend(_pod_failure(pod))
        text = "; ".join(dict.fromkeys(parts)) or "no reason recorded"
        if "OOMKilled" in text:
            text += " (raise spec.resources.limits.memory, or lower --threads in spec.dumpling.options)"
        return text

    def fail(self, backup: Backup, reason: str, message: str) -> None:
        """Mark the Backup Failed; if its backup had raised the GC life time, a Job restores it."""
        self.set_phase(backup, Phase.FAILED, reason, message)
        self.event(to_dict(backup), "Warning", reason, message)
        # Left behind: a raised GC life time (its record) or unfinished multipart uploads (a path).
        if (backup.metadata.annotations or {}).get(jobs.ANNOTATION_GC_RECORD) or backup.status.backup_path:
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

    # --- helpers
    def set_phase(self, backup: Backup, phase: Phase, reason: str, message: str) -> None:
        backup.status = set_condition(backup.status, phase, reason, message, self.clock())
        status = to_dict(backup).get("status", {})
        self.api.patch(BACKUPS, _ns(backup), backup.metadata.name, {"status": status})

    def _set_phase_raw(self, body: dict[str, Any], phase: Phase, reason: str, message: str) -> None:
        """Set a phase on a Backup that does not even parse (written without the model)."""
        meta = body.get("metadata") or {}
        stamp = self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [c for c in (body.get("status") or {}).get("conditions") or () if c.get("type") != phase]
        conditions.append({"type": str(phase), "status": "True", "lastTransitionTime": stamp,
                           "reason": reason, "message": message})  # fmt: skip
        patch = {"status": {"phase": str(phase), "conditions": conditions}}
        self.api.patch(BACKUPS, meta.get("namespace") or "default", meta["name"], patch)

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.api.event(involved, type_, reason, message, self.clock(), COMPONENT)


def needs_clean(backup: Backup) -> bool:
    """Whether deleting this Backup needs a clean Job: data may exist and its cleanPolicy deletes it, or
    a run that did not complete may have left unfinished uploads (the manager's rule, should_clean)."""
    from tibackup.manager.clean import should_clean

    return should_clean(backup)


def _pod_failure(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "pod")
    found: list[str] = []
    if status.get("reason"):  # Evicted, DeadlineExceeded, NodeLost…
        found.append(f"pod {name}: {status['reason']}: {status.get('message') or ''}".rstrip(": "))
    for container in status.get("containerStatuses") or ():
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated and (terminated.get("exitCode") or 0) != 0:
            detail = (
                f"pod {name}: {terminated.get('reason') or 'Error'} (exit code {terminated.get('exitCode')})"
            )
            if terminated.get("message"):
                detail += f": {' '.join(str(terminated['message']).split())[:200]}"
            found.append(detail)
    return found


def _ns(backup: Backup) -> str:
    return backup.metadata.namespace or "default"


__all__ = [
    "FINISHED_PHASES",
    "BackupController",
    "CleanProgress",
    "OperatorConfig",
    "job_outcome",
    "needs_clean",
]
