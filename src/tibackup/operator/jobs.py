"""The Kubernetes objects a Backup runs as: its Job (backup, clean or recover) and its staging PVC.

Pure: a Backup in, manifests (plain dicts) out. Secrets never enter a manifest: the database password
and the S3 keys reach the container as environment variables by ``secretKeyRef`` (``optional``, so a
missing Secret fails the backup with a clear message from the manager instead of a Pod stuck in
CreateContainerConfigError), and the TLS client Secret as a read-only volume.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from tibackup.resources import Backup

Action = Literal["backup", "clean", "recover"]

LABEL_BACKUP = "tidb.pingcap.com/backup"
LABEL_COMPONENT = "app.kubernetes.io/component"
ANNOTATION_BACKUP = "tibackup.pingcap.com/backup"  # the full Backup name (labels are cut at 63)
ANNOTATION_GC_RECORD = "tibackup.pingcap.com/gc-record"
ANNOTATION_SKIP_CLEAN = "tibackup.pingcap.com/skip-clean"  # "true": delete without cleaning the data
ANNOTATION_IMAGE = "tibackup.pingcap.com/image"  # tibackup's image for this Backup's Jobs

ENV_DB_PASSWORD = "TIBACKUP_DB_PASSWORD"
ENV_S3_ACCESS_KEY = "TIBACKUP_S3_ACCESS_KEY"
ENV_S3_SECRET_KEY = "TIBACKUP_S3_SECRET_KEY"
ENV_STAGING_DIR = "TIBACKUP_STAGING_DIR"
ENV_SECRET_NAMES = "TIBACKUP_SECRET_NAMES"
ENV_TLS_DIR = "TIBACKUP_TLS_DIR"
ENV_API_GROUP = "TIBACKUP_API_GROUP"  # read by operator.kube
STAGING_MOUNT = "/var/lib/tibackup/staging"
TLS_MOUNT = "/var/run/tibackup/tls"
TMP_MOUNT = "/tmp"  # the root filesystem is read-only: temporary files go to an emptyDir
# The image's user (Dockerfile). fsGroup makes a fresh staging volume writable by it. With the container
# settings below the Pod passes the `restricted` Pod Security Standard; spec.podSecurityContext wins.
RUN_AS = 10001
POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}  # fmt: skip
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}  # fmt: skip
DEFAULT_IMAGE = "tibackup:latest"
CONTAINER = "tibackup"
JOB_COMMANDS: dict[str, str] = {"backup": "run-backup", "clean": "clean-backup", "recover": "recover-backup"}

# Annotations that describe the Backup object itself (kubectl, kopf, tibackup's own bookkeeping):
# they are not meant for the Pod, unlike e.g. iam.amazonaws.com/role.
_NOT_FOR_POD = ("kubectl.kubernetes.io/", "kopf.zalando.org/", "tibackup.pingcap.com/", "operator.tibackup")
MAX_NAME = 63  # Job names end up in the Pods' job-name label, which is limited to 63 characters


def short_name(name: str, limit: int = MAX_NAME) -> str:
    """``name`` when it fits, else its head and a hash of the whole: stable, unique, at most ``limit``."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: limit - len(digest) - 1].rstrip('-.')}-{digest}"


def job_name(backup_name: str, action: Action = "backup") -> str:
    return short_name(f"{action}-{backup_name}")


def pvc_name(backup_name: str) -> str:
    return short_name(f"backup-{backup_name}")


def is_staged(backup: Backup) -> bool:
    """Staged mode (dump to a volume, then upload) needs a PVC: the manager's rule decides.

    A bad mode annotation gets no volume here; the manager then marks the Backup Invalid, naming it."""
    from tibackup.errors import InvalidSpecError
    from tibackup.manager.settings import DataPath, choose_mode

    try:
        return choose_mode(backup) is DataPath.STAGED
    except InvalidSpecError:
        return False


def labels(backup: Backup, action: Action) -> dict[str, str]:
    value = short_name(backup.metadata.name)
    return {
        "app.kubernetes.io/name": "tibackup",
        LABEL_COMPONENT: action,
        "app.kubernetes.io/managed-by": "tibackup-operator",
        "app.kubernetes.io/instance": value,
        LABEL_BACKUP: value,
    }


def owner_reference(backup: Backup) -> dict[str, Any]:
    return {
        "apiVersion": backup.api_version,
        "kind": "Backup",
        "name": backup.metadata.name,
        "uid": backup.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pvc_manifest(backup: Backup) -> dict[str, Any]:
    """The staging volume of a staged backup, owned by the Backup."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": backup.spec.storage_size or "10Gi"}},
    }
    if backup.spec.storage_class_name:
        spec["storageClassName"] = backup.spec.storage_class_name
    if backup.spec.volume_attributes_class_name:
        spec["volumeAttributesClassName"] = backup.spec.volume_attributes_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc_name(backup.metadata.name),
            "namespace": backup.metadata.namespace,
            "labels": labels(backup, "backup"),
            "annotations": {ANNOTATION_BACKUP: backup.metadata.name},
            "ownerReferences": [owner_reference(backup)],
        },
        "spec": spec,
    }


def secret_env(backup: Backup) -> list[dict[str, Any]]:
    """The credentials as environment variables by reference; never their values."""
    refs: list[tuple[str, str, str]] = []
    source = backup.spec.from_
    if source is not None and source.secret_name:
        refs.append((ENV_DB_PASSWORD, source.secret_name, "password"))
    s3 = backup.spec.s3
    if s3 is not None and s3.secret_name:
        refs.append((ENV_S3_ACCESS_KEY, s3.secret_name, "access_key"))
        refs.append((ENV_S3_SECRET_KEY, s3.secret_name, "secret_key"))
    env = [_from_secret(env_name, secret, key) for env_name, secret, key in refs]
    # Which variable holds which Secret's key, so the manager can ask for the Secret by its name.
    names = {env_name: [secret, key] for env_name, secret, key in refs}
    env.append({"name": ENV_SECRET_NAMES, "value": json.dumps(names, sort_keys=True)})
    return env


def _from_secret(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}


def job_image(backup: Backup, default: str) -> str:
    """tibackup's image for the Backup's Jobs: the annotation ``tibackup.pingcap.com/image``, else the
    operator's. Never ``spec.toolImage``: upstream that is the Dumpling image (tibackup needs none)."""
    return (backup.metadata.annotations or {}).get(ANNOTATION_IMAGE) or default


def job_manifest(backup: Backup, image: str, action: Action = "backup") -> dict[str, Any]:
    """The Job that runs ``tibackup job <action>-backup`` for this Backup."""
    meta = backup.metadata
    namespace = meta.namespace or "default"
    spec = backup.spec
    env: list[dict[str, Any]] = [dict(item) for item in spec.env or ()]
    env += secret_env(backup)
    env.append({"name": ENV_STAGING_DIR, "value": STAGING_MOUNT})
    # The Job reads and writes its Backup in the Backup's own group (pingcap.com or tibackup's).
    env.append({"name": ENV_API_GROUP, "value": backup.api_version.partition("/")[0]})
    env.append({"name": "TMPDIR", "value": TMP_MOUNT})
    mounts: list[dict[str, Any]] = [
        {"name": "staging", "mountPath": STAGING_MOUNT},
        {"name": "tmp", "mountPath": TMP_MOUNT},
    ]
    volumes: list[dict[str, Any]] = [_staging_volume(backup, action), {"name": "tmp", "emptyDir": {}}]
    tls_secret = spec.from_.tls_client_secret_name if spec.from_ else None
    if tls_secret:
        env.append({"name": ENV_TLS_DIR, "value": TLS_MOUNT})
        mounts.append({"name": "tls", "mountPath": f"{TLS_MOUNT}/{tls_secret}", "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": tls_secret, "optional": True}})
    mounts += [dict(item) for item in spec.additional_volume_mounts or ()]  # upstream's extra volumes
    volumes += [dict(item) for item in spec.additional_volumes or ()]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": job_image(backup, image),
        "imagePullPolicy": "IfNotPresent",
        "command": ["tibackup", "job", JOB_COMMANDS[action], "--namespace", namespace, "--name", meta.name],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY),
    }
    if spec.resources:
        container["resources"] = dict(spec.resources)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": spec.service_account,
        "containers": [container],
        "volumes": volumes,
        "securityContext": {**POD_SECURITY, **(spec.pod_security_context or {})},
    }
    for key, value in (
        ("tolerations", spec.tolerations),
        ("affinity", spec.affinity),
        ("priorityClassName", spec.priority_class_name),
        ("imagePullSecrets", spec.image_pull_secrets),
    ):
        if value:
            pod_spec[key] = value
    job_labels = labels(backup, action)
    pod_annotations = {k: v for k, v in (meta.annotations or {}).items() if not k.startswith(_NOT_FOR_POD)}
    template_meta: dict[str, Any] = {"labels": job_labels}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(meta.name, action),
            "namespace": namespace,
            "labels": job_labels,
            "annotations": {ANNOTATION_BACKUP: meta.name},
            "ownerReferences": [owner_reference(backup)],
        },
        "spec": {
            "backoffLimit": 0,  # no automatic retry, as the reference: the error says what to fix
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def _staging_volume(backup: Backup, action: Action) -> dict[str, Any]:
    # Only the backup itself stages files; clean and recover Jobs never need the volume.
    if action == "backup" and is_staged(backup):
        return {"name": "staging", "persistentVolumeClaim": {"claimName": pvc_name(backup.metadata.name)}}
    return {"name": "staging", "emptyDir": {}}


def backup_of(body: dict[str, Any]) -> Backup:
    """The Backup model of an API object (status fields a newer version wrote are ignored)."""
    from tibackup.resources import parse_resource

    resource = parse_resource(body)
    if not isinstance(resource, Backup):
        raise TypeError(f"expected a Backup, got {type(resource).__name__}")
    return resource
