"""``KubernetesRuntime``: the BackupRuntime of the backup manager inside a backup Job.

Decisions:
- Secrets come only from the environment the Job got by ``secretKeyRef`` (and the TLS Secret from its
  mounted volume): the Job has no right to read Secrets. A Secret or key that is not there fails the
  backup naming the Secret and the key.
- Every write fits upstream's ``backup-rbac.yaml`` Role (``get``/``update`` on ``backups``, ``restores``, events):
  status and the GC record are written by reading the Backup and writing it back (``update``); Backups
  have no status subresource, as upstream's CRD. Events are core/v1 Events on the Backup.
- The GC record is kept as an annotation on the Backup, so it survives the Pod: the operator (or a
  later Job) can restore the GC life time of a killed backup.
- The staging directory is the mounted volume (``$TIBACKUP_STAGING_DIR``), one subfolder per Backup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tibackup.errors import NotFoundError
from tibackup.operator import jobs
from tibackup.operator.kube import BACKUPS, RESTORES, KubeApi
from tibackup.resources import Backup, Restore, to_dict
from tibackup.resources.validation import object_dir, validate_name

COMPONENT = "tibackup-backup-manager"


class KubernetesRuntime:
    """BackupRuntime over the Kubernetes API for one Backup's Job."""

    def __init__(self, api: KubeApi, env: Mapping[str, str] | None = None) -> None:
        self.api = api
        self.env = dict(os.environ if env is None else env)

    def load_backup(self, namespace: str, name: str) -> tuple[Backup, dict[str, Any]]:
        """The Backup model and its raw API object; NotFoundError when it does not exist."""
        body = self.api.get(BACKUPS, namespace, name)
        if body is None:
            raise NotFoundError(f"Backup {namespace}/{name} not found; was it deleted while its Job ran?")
        return jobs.backup_of(body), body

    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's keys as the Job received them (the kubelet resolved the secretKeyRefs).

        The references are optional, so a missing Secret or key leaves its variable out; the manager then
        names the missing key (SecretKeyMissing), or here the Secret when none of its keys came."""
        keys = self._from_environment(name)
        if not keys:
            raise NotFoundError(
                f"Secret {namespace}/{name} not found (or it has none of the keys the Backup needs); create "
                f"it, e.g. kubectl create secret generic {name} --namespace={namespace} --from-literal=…",
                reason="SecretNotFound",
            )
        return keys

    def _from_environment(self, name: str) -> dict[str, str]:
        """The keys of the Secret ``name`` the Job received: environment variables and the TLS volume."""
        backup_env = self.env
        names = json.loads(backup_env.get(jobs.ENV_SECRET_NAMES) or "{}")
        keys: dict[str, str] = {}
        for env_name, (secret, key) in names.items():
            if secret == name and env_name in backup_env:
                keys[key] = backup_env[env_name]
        tls_dir = backup_env.get(jobs.ENV_TLS_DIR)
        validate_name(name, "secret name")  # a folder name below: never a path of its own
        if tls_dir and (Path(tls_dir) / name).is_dir():
            for path in sorted((Path(tls_dir) / name).iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    keys[path.name] = path.read_text()
        return keys

    def save_status(self, backup: Backup | Restore) -> None:
        status = to_dict(backup).get("status", {})

        def write(body: dict[str, Any]) -> None:
            body["status"] = status

        kind = BACKUPS if isinstance(backup, Backup) else RESTORES
        self.api.update(kind, _ns(backup), backup.metadata.name, write)

    def event(self, backup: Backup | Restore, type_: str, reason: str, message: str) -> None:
        self.api.event(to_dict(backup), type_, reason, message, datetime.now(UTC), COMPONENT)

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        value = None if record is None else json.dumps(record, sort_keys=True, default=str)

        def write(body: dict[str, Any]) -> None:
            stored = body.setdefault("metadata", {}).get("annotations") or {}
            if value is None:
                stored.pop(jobs.ANNOTATION_GC_RECORD, None)
            else:
                stored[jobs.ANNOTATION_GC_RECORD] = value
            body["metadata"]["annotations"] = stored

        self.api.update(BACKUPS, _ns(backup), backup.metadata.name, write)
        annotations = dict(backup.metadata.annotations or {})
        if value is None:
            annotations.pop(jobs.ANNOTATION_GC_RECORD, None)
        else:
            annotations[jobs.ANNOTATION_GC_RECORD] = value
        backup.metadata.annotations = annotations or None

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None:
        body = self.api.get(BACKUPS, _ns(backup), backup.metadata.name)
        source = (body or {}).get("metadata", {}).get("annotations") or backup.metadata.annotations or {}
        text = source.get(jobs.ANNOTATION_GC_RECORD)
        if not text:
            return None
        record = json.loads(text)
        return record if isinstance(record, dict) else None

    def get_backup(self, namespace: str, name: str) -> Backup | None:
        from tibackup.resources import parse_resource

        body = self.api.get(BACKUPS, namespace, name)
        found = parse_resource(body) if body else None
        return found if isinstance(found, Backup) else None

    def staging_dir(self, backup: Backup) -> Path:
        root = Path(self.env.get(jobs.ENV_STAGING_DIR) or jobs.STAGING_MOUNT)
        path = object_dir(root, _ns(backup), backup.metadata.name)  # never a path outside the volume
        path.mkdir(parents=True, exist_ok=True)
        return path


def _ns(backup: Backup | Restore) -> str:
    return backup.metadata.namespace or "default"
