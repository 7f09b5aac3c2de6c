"""What happens to one object, shared by the CLI verbs and the controller: run a Backup in this process,
recover one whose process died, delete a Backup (its data per ``cleanPolicy``) or a BackupSchedule (with
the Backups it owns).

The backup manager (``tibackup.manager``) does the work; this module only claims the run, hands it the
embedded runtime, and keeps the store's bookkeeping (run records, deletion marks) right.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tibackup.control.interrupted import StateSpace
from tibackup.embedded.procs import process_alive, start_ticks
from tibackup.embedded.runtime import EmbeddedRuntime
from tibackup.embedded.statedb import free_bytes
from tibackup.embedded.store import KIND_BACKUP, ConflictError, RunRecord, Store
from tibackup.errors import TibackupError
from tibackup.resources import FINISHED_PHASES, Backup, BackupSchedule, Phase, Restore, set_condition
from tibackup.resources.meta import utc

log = logging.getLogger("tibackup.embedded")
STOP_GRACE_SECONDS = 30.0


def now() -> datetime:
    return datetime.now(UTC)


def namespace_of(resource: Backup | BackupSchedule | Restore) -> str:
    return resource.metadata.namespace or "default"


def is_finished(backup: Backup) -> bool:
    return backup.status.phase in FINISHED_PHASES


def live_run(store: Store, backup: Backup) -> RunRecord | None:
    """The run record of the Backup when its process is still alive."""
    for record in store.runs():
        if record.namespace == namespace_of(backup) and record.name == backup.metadata.name:
            return record if process_alive(record.pid, record.pid_started) else None
    return None


def run_in_process(store: Store, backup: Backup, adopt: bool = False) -> Backup:
    """Run the Backup to its end here and now; its pid is recorded so a crash can be recovered later.

    ``adopt``: the controller claimed the run for this process (a child it started); take it over."""
    from tibackup.manager.run import run_backup

    ns, name = namespace_of(backup), backup.metadata.name
    pid = os.getpid()
    if adopt:
        store.set_run_pid(ns, name, pid, start_ticks(pid))
        existing = None
    else:
        existing = store.claim_run(ns, name, backup.metadata.uid or "", pid, start_ticks(pid))
    if existing is not None and existing.pid != pid:
        if process_alive(existing.pid, existing.pid_started):
            raise ConflictError(f"backup {ns}/{name} is already being run by process {existing.pid}")
        recovered = recover(store, backup)
        if recovered is not None:
            return recovered
        store.claim_run(ns, name, backup.metadata.uid or "", pid, start_ticks(pid))
    try:
        if is_finished(backup):
            return backup
        return run_backup(backup, EmbeddedRuntime(store))
    finally:
        store.clear_run(ns, name, pid)


def accept_rerun(store: Store, backup: Backup) -> Backup | None:
    """Act on a new ``tibackup.pingcap.com/rerun`` annotation (``control.rerun``): reset a Failed/Invalid
    Backup so that it runs again (the controller or ``apply --wait`` then runs it), or record a refusal.
    Returns the Backup as stored afterwards, or None when there was nothing to do."""
    from tibackup.control.rerun import RerunAction, decide_rerun, refused_status, rerun_status

    current = store.get(KIND_BACKUP, namespace_of(backup), backup.metadata.name)
    if not isinstance(current, Backup):
        return None
    running = live_run(store, current)
    if running is not None and running.pid != os.getpid():
        return None  # another process runs it: the request waits for that run to end
    decision = decide_rerun(current)
    if decision is None:
        return None
    ns, name = namespace_of(current), current.metadata.name
    if decision.action is RerunAction.RUN:
        current.status = rerun_status(current.status, decision.token)
        store.add_event(current, "Normal", "RerunRequested", decision.message)
        log.info("backup %s/%s: %s", ns, name, decision.message)
    else:
        current.status = refused_status(current.status, decision.token)
        store.add_event(current, "Warning", "RerunRefused", decision.message)
        log.warning("backup %s/%s: %s", ns, name, decision.message)
    updated = store.update_status(current)
    return updated if isinstance(updated, Backup) else None


def recover(store: Store, backup: Backup) -> Backup | None:
    """A Backup whose process died: Failed (Interrupted), GC life time restored. None when nothing to do."""
    from tibackup.manager.recover import recover_interrupted

    ns, name = namespace_of(backup), backup.metadata.name
    store.clear_run(ns, name)
    current = store.get(KIND_BACKUP, ns, name)  # re-read: it may have ended since the caller looked
    if not isinstance(current, Backup):
        return None
    backup = current
    if is_finished(backup) or backup.status.phase in (Phase.CLEAN, Phase.CLEAN_FAILED):
        return None
    log.warning("backup %s/%s: its process is gone (phase %s); recovering", ns, name, backup.status.phase)
    return recover_interrupted(backup, EmbeddedRuntime(store), state_space=state_space(store))


def state_space(store: Store) -> StateSpace | None:
    """The state directory and the space free on its disk, for the message of a run found stopped."""
    free = free_bytes(store.state_dir)
    return None if free is None else StateSpace(str(store.state_dir), free)


def stop_run(store: Store, backup: Backup, grace: float = STOP_GRACE_SECONDS) -> None:
    """Interrupt the process running the Backup (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    record = live_run(store, backup)
    if record is None or record.pid == os.getpid():
        return
    log.info("backup %s/%s: stopping process %d", record.namespace, record.name, record.pid)
    terminate(record, grace)
    current = store.get(KIND_BACKUP, record.namespace, record.name)
    if isinstance(current, Backup) and not is_finished(current):
        recover(store, current)


def terminate(record: RunRecord, grace: float) -> None:
    """SIGTERM the recorded process, SIGKILL it if it is still there after ``grace`` seconds."""
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while process_alive(record.pid, record.pid_started):
        if time.monotonic() > deadline:
            os.kill(record.pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.1)


def delete_backup(store: Store, backup: Backup) -> Backup | None:
    """Delete a Backup: stop its run, clean its data per ``cleanPolicy`` (phase ``Clean``), remove the object.

    Returns None when it is gone, or the Backup as it stays (``CleanFailed``, with the reason)."""
    from tibackup.manager.clean import clean_backup

    marked = store.mark_deleted(backup)
    if marked is None:
        return None
    assert isinstance(marked, Backup)
    stop_run(store, marked)
    current = store.get(KIND_BACKUP, namespace_of(marked), marked.metadata.name)
    if not isinstance(current, Backup):
        return None
    ns, name, policy = namespace_of(current), current.metadata.name, current.spec.clean_policy
    log.info("backup %s/%s: deleting (cleanPolicy %s)", ns, name, policy)
    runtime = EmbeddedRuntime(store)
    current.status = set_condition(current.status, Phase.CLEAN, "Deleting", f"cleanPolicy {policy}", now())
    runtime.save_status(current)
    try:
        clean_backup(current, runtime)
    except TibackupError as exc:
        current.status = set_condition(current.status, Phase.CLEAN_FAILED, exc.reason, exc.message, now())
        runtime.save_status(current)
        runtime.event(current, "Warning", "CleanFailed", exc.message)
        log.error("backup %s/%s: clean failed: %s", ns, name, exc.message)
        return current
    _restore_gc_before_forgetting(store, current)
    store.remove(current)
    log.info("backup %s/%s: deleted", ns, name)
    return None


def _restore_gc_before_forgetting(store: Store, backup: Backup) -> None:
    """Deleting a Backup forgets its GC record: a pending restore gets one last try first."""
    from tibackup.manager.gcnotes import PENDING
    from tibackup.manager.recover import retry_gc_restore

    runtime = EmbeddedRuntime(store)
    if runtime.load_gc_record(backup) is None:
        return
    left = retry_gc_restore(backup, runtime).status.condition(PENDING)
    if left is not None:
        log.warning(
            "backup %s/%s: deleted with tikv_gc_life_time still raised: %s",
            namespace_of(backup), backup.metadata.name, left.message,
        )  # fmt: skip


def owned_backups(store: Store, schedule: BackupSchedule) -> list[Backup]:
    """The Backups the schedule owns (by owner reference; by label for ones created before a re-apply)."""
    from tibackup.control.naming import LABEL_SCHEDULE

    meta = schedule.metadata
    out = []
    for backup in store.list_resources(KIND_BACKUP, namespace_of(schedule)):
        owners = backup.metadata.owner_references or []
        by_owner = any(o.kind == "BackupSchedule" and o.name == meta.name for o in owners)
        by_label = (backup.metadata.labels or {}).get(LABEL_SCHEDULE) == meta.name
        if by_owner or (by_label and not owners):
            out.append(backup)
    return out


@dataclass
class ScheduleDeletion:
    deleted: list[str] = field(default_factory=list)
    failed: list[Backup] = field(default_factory=list)


def delete_schedule(store: Store, schedule: BackupSchedule) -> ScheduleDeletion:
    """Delete a BackupSchedule and, as owned objects, its Backups (each per its cleanPolicy).

    The schedule goes even when a Backup cannot be cleaned; that Backup stays (``CleanFailed``)."""
    result = ScheduleDeletion()
    if store.mark_deleted(schedule) is None:
        return result
    for backup in sorted(
        owned_backups(store, schedule), key=lambda b: utc(b.metadata.creation_timestamp or now())
    ):
        remaining = delete_backup(store, backup)
        if remaining is None:
            result.deleted.append(backup.metadata.name)
        else:
            result.failed.append(remaining)
    store.remove(schedule)
    log.info("backupschedule %s/%s: deleted", namespace_of(schedule), schedule.metadata.name)
    return result
