"""What the operator does for one Restore: start its Job ``restore-<name>``, notice a Job that died,
delete the Job with the Restore. The same Job state machine as Backups (``runs.py``) and the same rules as
Backup Jobs (``backups.py``): ``backoffLimit: 0`` (no
automatic retry; a re-run is asked with the ``tibackup.pingcap.com/rerun`` annotation), Secrets by
``secretKeyRef``, the restore itself decided by the manager inside the Job (``manager.restore_run``).
"""

from __future__ import annotations

import logging
from typing import Any

from tibackup.operator import jobs
from tibackup.operator.kube import BACKUPS, JOBS, RESTORES
from tibackup.operator.runs import COMPONENT, RunController
from tibackup.resources import Backup, BackupSpec, Phase, Restore, parse_resource
from tibackup.resources.backup import PASS_THROUGH_POD_FIELDS

# Upstream's additionalVolumes / additionalVolumeMounts go to the restore Job's Pod as to a Backup's.
EXTRA_VOLUMES = frozenset({"additional_volumes", "additional_volume_mounts"})

log = logging.getLogger(__name__)
ANNOTATION_RESTORE = "tibackup.pingcap.com/restore"  # the full Restore name on its Job
UNFINISHED = (None, Phase.SCHEDULED, Phase.RUNNING)


def job_name(restore_name: str) -> str:
    return jobs.short_name(f"restore-{restore_name}")


def restore_of(body: dict[str, Any]) -> Restore:
    resource = parse_resource(body)
    if not isinstance(resource, Restore):
        raise TypeError(f"expected a Restore, got {type(resource).__name__}")
    return resource


def job_manifest(restore: Restore, image: str, s3_secret: str | None) -> dict[str, Any]:
    """The Job that runs ``tibackup job run-restore``: a Backup Job's manifest (one set of rules: env by
    secretKeyRef, TLS volume, pass-through Pod fields, no retry) with the Restore's name, owner and command.
    ``s3_secret``: the S3 Secret (spec.s3's, or the fromBackup Backup's)."""
    meta, spec = restore.metadata, restore.spec
    passed = spec.model_dump(
        by_alias=True, include=set(PASS_THROUGH_POD_FIELDS | EXTRA_VOLUMES), exclude_none=True
    )
    view = Backup(
        api_version=restore.api_version,
        metadata=meta,
        spec=BackupSpec.model_validate(
            {
                "from": spec.to.model_dump(exclude_none=True) if spec.to else None,
                "s3": {"provider": "other", "bucket": "restore", "secretName": s3_secret},
                "serviceAccount": spec.service_account,
                **passed,
            }
        ),
    )
    manifest = jobs.job_manifest(view, image)
    name, namespace = job_name(meta.name), meta.namespace or "default"
    job_labels = {**jobs.labels(view, "backup"), jobs.LABEL_COMPONENT: "restore"}
    job_labels.pop(jobs.LABEL_BACKUP)
    job_labels["tidb.pingcap.com/restore"] = jobs.short_name(meta.name)
    manifest["metadata"].update(
        name=name,
        labels=job_labels,
        annotations={ANNOTATION_RESTORE: meta.name},
        ownerReferences=[{**jobs.owner_reference(view), "kind": "Restore"}],
    )
    template = manifest["spec"]["template"]
    template["metadata"]["labels"] = job_labels
    container = template["spec"]["containers"][0]
    container["command"] = ["tibackup", "job", "run-restore", "--namespace", namespace, "--name", meta.name]
    return manifest


class RestoreController(RunController[Restore]):
    """A Restore's Job state machine (``runs.py``); deleting a Restore deletes its Job."""

    plural = RESTORES
    component = "restore"
    job_annotation = ANNOTATION_RESTORE
    unfinished = UNFINISHED

    def parse(self, body: dict[str, Any]) -> Restore:
        return restore_of(body)

    def job_name(self, name: str) -> str:
        return job_name(name)

    def create_job(self, restore: Restore) -> bool:
        manifest = job_manifest(restore, self.config.image, self._s3_secret(restore))
        return self.api.create(JOBS, restore.metadata.namespace or "default", manifest) is not None

    def _s3_secret(self, restore: Restore) -> str | None:
        spec = restore.spec
        if spec.s3 is not None or not spec.tibackup.from_backup:
            return spec.s3.secret_name if spec.s3 else None
        body = self.api.get(BACKUPS, restore.metadata.namespace or "default", spec.tibackup.from_backup)
        s3 = ((body or {}).get("spec") or {}).get("s3") or {}
        return s3.get("secretName")

    def job_failed_message(self, job: dict[str, Any], outcome: str) -> str:
        detail = self.describe_failure(job) if outcome == "failed" else "it ended without a result"
        return (f"the restore Job {(job.get('metadata') or {}).get('name')} failed: {detail}; what it loaded "
                "is checkpointed: re-run it (annotation tibackup.pingcap.com/rerun) to resume")  # fmt: skip

    def cleanup(self, body: dict[str, Any]) -> None:
        """Deleting a Restore deletes its Job (and so stops a running load); the target keeps its rows."""
        meta = body.get("metadata") or {}
        self.api.delete(JOBS, meta.get("namespace") or "default", job_name(str(meta.get("name"))))


__all__ = ["ANNOTATION_RESTORE", "COMPONENT", "RestoreController", "job_manifest", "job_name"]
