"""CustomResourceDefinitions generated from the models, so the schema is written once.

Two renderings of each model's JSON schema:
- ``crd_schema`` for the API server: structural (a type on every node), no defaults (the models apply
  them, some depend on other fields), pass-through blobs marked ``x-kubernetes-preserve-unknown-fields``,
  and no ``additionalProperties: false`` — the API server forbids it next to ``properties``; it prunes
  or (with kubectl's strict field validation) rejects unknown fields instead.
- ``strict_schema``: the same plus ``additionalProperties: false`` wherever a model rejects unknown
  fields — what strict field validation means, usable with any JSON-schema validator.

The same CRDs are rendered for each API group (``apigroups``): ``pingcap.com`` (deploy/crds/) and
tibackup's own group (deploy/overlays/beside-tidb-operator/crds/). Each carries ``OWNER_LABEL``: the
operator refuses to serve a group whose CRDs lack it (they belong to another controller, e.g. TiDB
Operator). Backups and Restores have no status subresource, as upstream's CRDs: the backup and restore
Jobs write status with ``update`` on ``backups``/``restores``, the one write upstream's
``backup-rbac.yaml`` Role allows.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from tibackup.resources.apigroups import PINGCAP_GROUP, TIBACKUP_GROUP, VERSION, api_version
from tibackup.resources.backup import Backup
from tibackup.resources.backup_schedule import BackupSchedule
from tibackup.resources.restore import RESTORE_STATUS_VALUES, Restore

CRD_FILES: dict[str, type[BaseModel]] = {
    "backups.yaml": Backup, "backupschedules.yaml": BackupSchedule, "restores.yaml": Restore,
}  # fmt: skip

_NAMES: dict[type[BaseModel], dict[str, Any]] = {
    Backup: {"kind": "Backup", "listKind": "BackupList", "plural": "backups", "singular": "backup",
             "shortNames": ["bk"]},
    BackupSchedule: {"kind": "BackupSchedule", "listKind": "BackupScheduleList", "plural": "backupschedules",
                     "singular": "backupschedule", "shortNames": ["bks"]},
    Restore: {"kind": "Restore", "listKind": "RestoreList", "plural": "restores", "singular": "restore",
              "shortNames": ["rt"]},
}  # fmt: skip


def _column(name: str, type_: str, path: str, description: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        column["priority"] = priority
    return column


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
# As TiDB Operator shows them; priority 1 columns appear with `-o wide`.
_COLUMNS: dict[type[BaseModel], list[dict[str, Any]]] = {
    Backup: [
        _column("Type", "string", ".spec.backupType", "The type of backup, such as full"),
        _column("Status", "string", ".status.phase", "The current status of the backup"),
        _column("BackupPath", "string", ".status.backupPath", "The full path of backup data"),
        _column("BackupSize", "string", ".status.backupSizeReadable", "The data size of the backup"),
        _column("CommitTS", "string", ".status.commitTs", "The commit ts of the backup"),
        _column("Started", "date", ".status.timeStarted", "The time at which the backup was started", 1),
        _column("Completed", "date", ".status.timeCompleted", "The time at which the backup completed", 1),
        _column("TimeTaken", "string", ".status.timeTaken", "The time that the backup takes"),
        _AGE,
    ],
    BackupSchedule: [
        _column("Schedule", "string", ".spec.schedule", "The cron format string used for backup scheduling"),
        _column("MaxBackups", "integer", ".spec.maxBackups", "The max number of backups we want to keep"),
        _column("MaxReservedTime", "string", ".spec.maxReservedTime", "How long backups we want to keep"),
        _column("LastBackup", "string", ".status.lastBackup", "The last backup CR name", 1),
        _column(
            "LastBackupTime", "date", ".status.lastBackupTime", "The last time the backup was created", 1
        ),
        _AGE,
    ],
    Restore: [
        _column("Status", "string", ".status.phase", "The current status of the restore"),
        _column("Started", "date", ".status.timeStarted", "The time at which the restore was started", 1),
        _column("Completed", "date", ".status.timeCompleted", "The time at which the restore was completed", 1),
        _column("TimeTaken", "string", ".status.timeTaken", "The time that the restore takes"),
        _column("CommitTS", "string", ".status.commitTs", "The commit ts of tidb cluster restore"),
        _AGE,
    ],
}


# Marks a CRD as tibackup's (see operator/crdcheck.py); TiDB Operator's CRDs do not carry it.
OWNER_LABEL = ("app.kubernetes.io/part-of", "tibackup")
# Where each group's generated CRDs are committed, relative to deploy/.
CRD_DIRS: dict[str, str] = {PINGCAP_GROUP: "crds", TIBACKUP_GROUP: "overlays/beside-tidb-operator/crds"}


def crd_name(model: type[BaseModel], group: str) -> str:
    return f"{_NAMES[model]['plural']}.{group}"


def crd(model: type[BaseModel], group: str = PINGCAP_GROUP) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of Backup or BackupSchedule in ``group``."""
    names = _NAMES[model]
    schema = crd_schema(model)
    schema["properties"]["apiVersion"]["description"] = api_version(group)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(model, group), "labels": {OWNER_LABEL[0]: OWNER_LABEL[1]}},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {} if model in (Backup, Restore) else {"status": {}},
                    "additionalPrinterColumns": _COLUMNS[model],
                }
            ],
        },
    }


def render_crds(group: str = PINGCAP_GROUP) -> dict[str, str]:
    """File name → YAML text of every CRD of ``group``, as committed under deploy/``CRD_DIRS[group]``."""
    header = "# Generated from the models in src/tibackup/resources by scripts/gen_crds.py; do not edit.\n"
    return {
        name: header + yaml.safe_dump(crd(model, group), sort_keys=False, default_flow_style=False, width=100)
        for name, model in CRD_FILES.items()
    }


def crd_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural openAPIV3Schema of a resource, for the API server."""
    return _convert(model, strict=False)


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``crd_schema`` with unknown fields forbidden, as kubectl's strict field validation treats them."""
    return _convert(model, strict=True)


def _convert(model: type[BaseModel], strict: bool) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    schema = _node(raw, definitions, strict)
    properties = schema["properties"]
    properties["apiVersion"] = {"type": "string", "description": api_version(PINGCAP_GROUP)}
    properties["kind"] = {"type": "string", "description": _kind(model)}
    # The API server owns metadata's schema; a CRD may only say it is an object.
    properties["metadata"] = {"type": "object"}
    schema["description"] = (model.__doc__ or "").strip()
    schema["required"] = ["spec"]
    if model is Restore:
        _restore_status_values(properties["status"]["properties"])
    return schema


def _restore_status_values(status: dict[str, Any]) -> None:
    """A Restore shares a Backup's status model, whose phase and condition types include Backup-only
    values (Prepare, Clean, Verified, …): its CRD lists only those a Restore can have."""
    phase = status["phase"]
    phase["enum"] = list(RESTORE_STATUS_VALUES)
    phase["description"] = "Where a Restore is in its life; also the type of its conditions."
    condition = status["conditions"]["items"]["properties"]["type"]
    condition["enum"] = list(RESTORE_STATUS_VALUES)
    condition["description"] = "The type of a condition: a phase of the Restore."


def _kind(model: type[BaseModel]) -> str:
    return str(_NAMES[model]["kind"])


_DROPPED = ("title", "default", "$defs")


def _node(raw: dict[str, Any], definitions: dict[str, Any], strict: bool) -> dict[str, Any]:
    node = copy.deepcopy(raw)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        description = node.get("description")
        node = {**copy.deepcopy(target), **node}
        if description:
            node["description"] = description
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"a CRD cannot express the union {options!r}")
        inner = _node(options[0], definitions, strict)
        if node.get("description"):
            inner["description"] = node["description"]
        node = {**node, **inner}
    for key in _DROPPED:
        node.pop(key, None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].replace("``", "`").split())
    if "properties" in node:
        node["properties"] = {k: _node(v, definitions, strict) for k, v in node["properties"].items()}
        forbid = node.pop("additionalProperties", None) is False
        if strict and forbid:
            node["additionalProperties"] = False
    elif node.get("type") == "object":
        extra = node.pop("additionalProperties", True)
        if extra is True or extra == {}:
            node["x-kubernetes-preserve-unknown-fields"] = True
        else:
            node["additionalProperties"] = _node(extra, definitions, strict)
    if "items" in node:
        node["items"] = _node(node["items"], definitions, strict)
    return node
