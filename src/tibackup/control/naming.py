"""How a BackupSchedule names, labels and owns the Backups it creates, and where a backup's files go."""

from __future__ import annotations

from datetime import datetime

from tibackup.resources.backup import Backup
from tibackup.resources.backup_schedule import BackupSchedule
from tibackup.resources.meta import ObjectMeta, OwnerReference, rfc3339, utc

LABEL_SCHEDULE = "tidb.pingcap.com/backup-schedule"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "app.kubernetes.io/instance"
# kubectl's and the operator's (kopf's) bookkeeping of the schedule; it must not travel to the Backups
# (a copied kopf diffbase would make a new Backup look handled already).
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_NOT_COPIED_PREFIXES = ("operator.tibackup.pingcap.com/", "kopf.zalando.org/")


def backup_name(schedule_name: str, tick: datetime) -> str:
    """``<schedule>-<UTC time as Go's 2006-01-02t15-04-05>``, e.g. ``nightly-2024-03-01t02-00-00``."""
    return f"{schedule_name}-{utc(tick).strftime('%Y-%m-%dt%H-%M-%S')}"


def schedule_labels(schedule_name: str) -> dict[str, str]:
    """The labels of every Backup of a schedule (``kubectl get bk -l tidb.pingcap.com/backup-schedule=…``)."""
    return {
        LABEL_SCHEDULE: schedule_name,
        LABEL_NAME: "backup-schedule",
        LABEL_MANAGED_BY: "backup-schedule-operator",
        LABEL_INSTANCE: schedule_name,
    }


def owner_reference(schedule: BackupSchedule) -> OwnerReference:
    """Makes the schedule own its Backups (and lets Kubernetes find them by owner)."""
    return OwnerReference(
        api_version=schedule.api_version,
        kind="BackupSchedule",
        name=schedule.metadata.name,
        uid=schedule.metadata.uid or "",
        controller=True,
        block_owner_deletion=True,
    )


def backup_from_schedule(schedule: BackupSchedule, tick: datetime) -> Backup:
    """The Backup a schedule creates for the scheduled time ``tick``: its template, named, labelled, owned."""
    meta = schedule.metadata
    annotations = {
        k: v
        for k, v in (meta.annotations or {}).items()
        if k not in _NOT_COPIED and not k.startswith(_NOT_COPIED_PREFIXES)
    }
    return Backup(
        api_version=schedule.api_version,  # a schedule's Backups live in its API group
        metadata=ObjectMeta(
            name=backup_name(meta.name, tick),
            namespace=meta.namespace,
            labels=schedule_labels(meta.name),
            annotations=annotations or None,
            owner_references=[owner_reference(schedule)],
        ),
        spec=schedule.spec.backup_template.model_copy(deep=True),
    )


def backup_path(bucket: str, prefix: str | None, started: datetime) -> str:
    """``s3://<bucket>[/<prefix>]/backup-<RFC 3339 UTC time>/``: the folder of one backup's files."""
    parts = [bucket.strip("/")]
    if prefix and prefix.strip("/"):
        parts.append(prefix.strip("/"))
    parts.append(f"backup-{rfc3339(started)}")
    return "s3://" + "/".join(parts) + "/"
