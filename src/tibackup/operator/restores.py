"""What the operator does for one Restore: start its Job ``restore-<name>``, notice a Job that died,
delete the Job with the Restore. The same rules as Backup Jobs (``backups.py``): ``backoffLimit: 0`` (no
automatic retry; a re-run is asked with the ``tibackup.pingcap.com/rerun`` annotation), Secrets by
``secretKeyRef``, the restore itself decided by the manager inside the Job (``manager.restore_run``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tibackup.control.rerun import RerunAction, decide_rerun, refused_status, rerun_status
from tibackup.errors import InvalidSpecError
from tibackup.manager.admission import admit
from tibackup.operator import jobs
from tibackup.operator.backups import COMPONENT, BackupController, OperatorConfig, job_outcome
from tibackup.operator.kube import BACKUPS, JOBS, RESTORES, KubeApi
from tibackup.resources import (
    Backup,
    BackupSpec,
    Phase,
    Restore,
    RestoreStatus,
    parse_resource,
    set_condition,
    to_dict,
)
from tibackup.resources.upstream import ignored_fields

log = logging.getLogger(__name__)
ANNOTATION_RESTORE = "tibackup.pingcap.com/restore"  # the full Restore name on its Job
UNFINISHED = (None, Phase.SCHEDULED, Phase.RUNNING)
# The Pod fields a Restore passes to its Job as a Backup does.
_POD_FIELDS = {"env", "resources", "tolerations", "affinity", "pod_security_context", "priority_class_name",
               "image_pull_secrets"}  # fmt: skip


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
    passed = spec.model_dump(by_alias=True, include=_POD_FIELDS, exclude_none=True)
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


class RestoreController:
    def __init__(
        self, api: KubeApi, config: OperatorConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.api, self.config, self.clock = api, config, clock
        self.backups = BackupController(api, config, clock)  # describe_failure, events

    def ensure_job(self, body: dict[str, Any]) -> bool:
        """Start the Restore's Job unless it has started, finished or can never work; a new rerun
        annotation first resets it. False: try again soon (the previous run's Job is going away)."""
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return True
        try:
            restore = restore_of(body)
            admit(restore)
        except InvalidSpecError as exc:
            if (body.get("status") or {}).get("phase") != Phase.INVALID:
                self.backups.event(body, "Warning", exc.reason, exc.message)
                self._patch_status(body["metadata"], set_condition(RestoreStatus(), Phase.INVALID, exc.reason,
                                                                    exc.message, self.clock()))  # fmt: skip
            return True
        ns, name = restore.metadata.namespace or "default", restore.metadata.name
        decision = decide_rerun(restore)
        if decision is not None:
            if decision.action is RerunAction.RUN:
                self.api.delete(JOBS, ns, job_name(name))
                restore.status = rerun_status(restore.status, decision.token)
            else:
                restore.status = refused_status(restore.status, decision.token)
            self.backups.event(to_dict(restore), "Normal", "RerunRequested" if decision.action is RerunAction.RUN
                               else "RerunRefused", decision.message)  # fmt: skip
            cleared = dict.fromkeys(RestoreStatus().model_dump(by_alias=True), None)
            status = {**cleared, **restore.status.model_dump(mode="json", by_alias=True, exclude_none=True)}
            self.api.patch(RESTORES, ns, name, {"status": status})
        phase = restore.status.phase
        if phase not in UNFINISHED:
            return True
        job = self.api.get(JOBS, ns, job_name(name))
        if phase == Phase.RUNNING and job is None:
            self.fail(restore, "JobLost", f"the Job {job_name(name)} of this restore no longer exists")
            return True
        if job is not None:
            return not (phase is None and job_outcome(job) is not None)
        if phase is None:
            self.set_phase(restore, Phase.SCHEDULED, "JobCreated", f"the Job {job_name(name)} runs it")
            for warning in ignored_fields(restore, operator=True):
                self.backups.event(to_dict(restore), "Warning", "IgnoredField", warning)
        if (
            self.api.create(JOBS, ns, job_manifest(restore, self.config.image, self._s3_secret(restore)))
            is None
        ):
            return False
        self.backups.event(to_dict(restore), "Normal", "JobCreated", f"created Job {job_name(name)}")
        return True

    def _s3_secret(self, restore: Restore) -> str | None:
        spec = restore.spec
        if spec.s3 is not None or not spec.tibackup.from_backup:
            return spec.s3.secret_name if spec.s3 else None
        body = self.api.get(BACKUPS, restore.metadata.namespace or "default", spec.tibackup.from_backup)
        s3 = ((body or {}).get("spec") or {}).get("s3") or {}
        return s3.get("secretName")

    def job_changed(self, job: dict[str, Any]) -> None:
        """A restore Job that ended while its Restore had not: ``Failed``, reason ``JobFailed``."""
        meta = job.get("metadata") or {}
        name = (meta.get("annotations") or {}).get(ANNOTATION_RESTORE)
        outcome = job_outcome(job)
        if not name or outcome is None:
            return
        ns = meta.get("namespace") or "default"
        current = self.api.get(JOBS, ns, str(meta.get("name")))
        if current is None or (current.get("metadata") or {}).get("uid") != meta.get("uid"):
            return
        body = self.api.get(RESTORES, ns, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        try:
            restore = restore_of(body)
        except InvalidSpecError:
            return
        if restore.status.phase in UNFINISHED:
            detail = (
                self.backups.describe_failure(job) if outcome == "failed" else "it ended without a result"
            )
            self.fail(restore, "JobFailed", f"the restore Job {meta.get('name')} failed: {detail}; what it "
                      "loaded is checkpointed: re-run it (annotation tibackup.pingcap.com/rerun) to resume")  # fmt: skip

    def cleanup(self, body: dict[str, Any]) -> None:
        """Deleting a Restore deletes its Job (and so stops a running load); the target keeps its rows."""
        meta = body.get("metadata") or {}
        self.api.delete(JOBS, meta.get("namespace") or "default", job_name(str(meta.get("name"))))

    def fail(self, restore: Restore, reason: str, message: str) -> None:
        self.set_phase(restore, Phase.FAILED, reason, message)
        self.backups.event(to_dict(restore), "Warning", reason, message)

    def set_phase(self, restore: Restore, phase: Phase, reason: str, message: str) -> None:
        restore.status = set_condition(restore.status, phase, reason, message, self.clock())
        self._patch_status(to_dict(restore)["metadata"], restore.status)

    def _patch_status(self, meta: dict[str, Any], status: RestoreStatus) -> None:
        patch = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        self.api.patch(RESTORES, meta.get("namespace") or "default", meta["name"], patch)


__all__ = ["ANNOTATION_RESTORE", "COMPONENT", "RestoreController", "job_manifest", "job_name"]
