"""What runs inside the Jobs the operator creates: one backup, one clean, one GC recovery.

Each loads its Backup from the API, builds a ``KubernetesRuntime`` and calls the backup manager — the
same functions the embedded runtime calls. The exit code tells Kubernetes whether the Job succeeded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tibackup.operator.kube import KubeApi
from tibackup.operator.runtime import KubernetesRuntime
from tibackup.resources import Phase, set_condition

log = logging.getLogger(__name__)
# The reasons the operator gives a Backup whose Job died: its recovery is the whole of recover_interrupted.
OPERATOR_FAILURES = frozenset({"JobFailed", "JobLost"})


def run_backup_job(api: KubeApi, namespace: str, name: str) -> int:
    """Run the Backup; 0 when it is Complete (or had already finished), 1 when it Failed or is Invalid."""
    from tibackup.manager.run import run_backup  # the manager is imported only where a backup runs

    runtime = KubernetesRuntime(api)
    backup, _ = runtime.load_backup(namespace, name)
    if backup.status.phase in (Phase.COMPLETE, Phase.FAILED, Phase.INVALID):
        log.info(
            "Backup %s/%s has already finished (%s); nothing to do", namespace, name, backup.status.phase
        )
        return 0 if backup.status.phase == Phase.COMPLETE else 1
    result = run_backup(backup, runtime)
    phase = result.status.phase
    log.info("Backup %s/%s: %s", namespace, name, phase)
    return 0 if phase == Phase.COMPLETE else 1


def clean_backup_job(api: KubeApi, namespace: str, name: str) -> int:
    """Apply the Backup's cleanPolicy to its remote data; 0 when done, even with nothing to delete.

    A failure to delete raises (a TibackupError: one line, non-zero exit), which fails the clean Job.
    """
    from tibackup.manager.clean import clean_backup

    runtime = KubernetesRuntime(api)
    backup, _ = runtime.load_backup(namespace, name)
    deleted = clean_backup(backup, runtime)
    log.info("Backup %s/%s: %s", namespace, name, "data deleted" if deleted else "no data to delete")
    return 0


def recover_backup_job(api: KubeApi, namespace: str, name: str) -> int:
    """Undo what a killed backup left behind: restore the GC life time (its record is an annotation on
    the Backup) and abort unfinished uploads. The operator has already said why the Job died
    (reason JobFailed); that reason stays, with what the recovery could not do appended.

    On a Backup that finished by itself (Complete, or Failed by its manager) only the GC life time is
    restored (the operator's retry of a pending restore) and the phase stays. 0 when nothing is left to
    restore, 1 while the restore is still pending (the operator retries)."""
    from tibackup.manager.recover import pending_gc_restore, recover_interrupted, retry_gc_restore

    runtime = KubernetesRuntime(api)
    backup, _ = runtime.load_backup(namespace, name)
    before = backup.status.condition(Phase.FAILED)
    if backup.status.phase != Phase.FAILED or before is None or before.reason not in OPERATOR_FAILURES:
        result = retry_gc_restore(backup, runtime)
        return 1 if pending_gc_restore(result, runtime) else 0
    result = recover_interrupted(backup, runtime)
    after = result.status.condition(Phase.FAILED)
    if before.reason and after is not None and after.reason != before.reason:
        message = before.message or ""
        extra = (after.message or "").partition("; also: ")[2]
        if extra:
            message += f"; also: {extra}"
        result.status = set_condition(result.status, Phase.FAILED, before.reason, message, datetime.now(UTC))
        runtime.save_status(result)
    return 0


def run_restore_job(api: KubeApi, namespace: str, name: str) -> int:
    """Run the Restore; 0 when it is Complete (or had already completed), 1 otherwise."""
    from tibackup.manager.restore_run import run_restore
    from tibackup.operator.kube import RESTORES
    from tibackup.operator.restores import restore_of

    runtime = KubernetesRuntime(api)
    body = api.get(RESTORES, namespace, name)
    if body is None:
        log.error("Restore %s/%s not found; was it deleted while its Job ran?", namespace, name)
        return 1
    restore = restore_of(body)
    if restore.status.phase in (Phase.COMPLETE, Phase.FAILED, Phase.INVALID):
        return 0 if restore.status.phase == Phase.COMPLETE else 1
    result = run_restore(restore, runtime)
    log.info("Restore %s/%s: %s", namespace, name, result.status.phase)
    return 0 if result.status.phase == Phase.COMPLETE else 1
