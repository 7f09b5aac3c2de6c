"""What runs inside the Jobs the operator creates: one backup, one clean, one GC recovery.

Each loads its Backup from the API, builds a ``KubernetesRuntime`` and calls the backup manager — the
same functions the embedded runtime calls. The exit code tells Kubernetes whether the Job succeeded.
"""

from __future__ import annotations

import logging

from tibackup.operator.kube import KubeApi
from tibackup.operator.runtime import KubernetesRuntime
from tibackup.resources import Phase

log = logging.getLogger(__name__)


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
    """Delete the Backup's remote data; 0 when it is gone (or was never there)."""
    from tibackup.manager.clean import clean_backup

    runtime = KubernetesRuntime(api)
    backup, _ = runtime.load_backup(namespace, name)
    return 0 if clean_backup(backup, runtime) else 1


def recover_backup_job(api: KubeApi, namespace: str, name: str) -> int:
    """Restore the GC life time a killed backup had raised (its record is an annotation on the Backup)."""
    from tibackup.manager.recover import recover_interrupted

    runtime = KubernetesRuntime(api)
    backup, _ = runtime.load_backup(namespace, name)
    recover_interrupted(backup, runtime)
    return 0
