"""CRDs: generated from the models, committed up to date, structural, and accepting what the models accept."""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tibackup.control.naming import backup_from_schedule
from tibackup.manager import phases
from tibackup.resources import Backup, BackupSchedule, Phase, load_resources, set_condition, to_dict
from tibackup.resources.apigroups import GROUPS, TIBACKUP_GROUP
from tibackup.resources.crd import CRD_DIRS, CRD_FILES, OWNER_LABEL, crd_schema, render_crds, strict_schema
from tibackup.resources.meta import kube_alias
from tibackup.resources.restore import Restore, RestoreStatus

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"
SEED_FILES = sorted((ROOT / "tests" / "data" / "seed").glob("*.yaml"))


def committed(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CRDS / name).read_text())
    assert isinstance(data, dict)
    return data


def committed_schema(kind: str) -> dict[str, Any]:
    name = {"Backup": "backups.yaml", "Restore": "restores.yaml"}.get(kind, "backupschedules.yaml")
    schema = committed(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def forbid_unknown(schema: dict[str, Any]) -> dict[str, Any]:
    """What the API server's strict field validation does with a structural schema, for jsonschema."""
    node = copy.deepcopy(schema)
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
        node["properties"] = {k: forbid_unknown(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        node["items"] = forbid_unknown(node["items"])
    return node


def seed(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("group", GROUPS)
def test_committed_crds_are_generated_ones(group: str) -> None:
    rendered = render_crds(group)
    assert set(rendered) == {"backups.yaml", "backupschedules.yaml", "restores.yaml"}
    folder = ROOT / "deploy" / CRD_DIRS[group]
    for name, text in rendered.items():
        assert (folder / name).read_text() == text, f"{folder}/{name} is stale: run scripts/gen_crds.py"


def test_both_groups_serve_the_same_schema_and_carry_the_owner_label() -> None:
    """One model, two groups: only the group (and the names that contain it) differ."""
    for name in CRD_FILES:
        ours = yaml.safe_load((ROOT / "deploy" / CRD_DIRS[TIBACKUP_GROUP] / name).read_text())
        theirs = committed(name)
        assert ours["spec"]["group"] == TIBACKUP_GROUP and theirs["spec"]["group"] == "pingcap.com"
        assert ours["metadata"]["name"] == theirs["metadata"]["name"].replace("pingcap.com", TIBACKUP_GROUP)
        for crd in (ours, theirs):
            assert crd["metadata"]["labels"][OWNER_LABEL[0]] == OWNER_LABEL[1]
        [a], [b] = ours["spec"]["versions"], theirs["spec"]["versions"]
        a["schema"]["openAPIV3Schema"]["properties"].pop("apiVersion")
        b["schema"]["openAPIV3Schema"]["properties"].pop("apiVersion")
        assert a == b
        assert ours["spec"]["names"] == theirs["spec"]["names"]


def test_gen_script_check_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_crds.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(CRD_FILES))
def test_kubernetes_validate_strict_accepts_crd(name: str) -> None:
    kubernetes_validate.validate(committed(name), kubernetes_validate.latest_version(), strict=True)


def test_names_short_names_scope_and_status_subresource() -> None:
    """Backups have no status subresource, as upstream's CRD: under upstream's backup-rbac.yaml the
    Job may only ``update`` backups, which writes status only without the subresource."""
    backups, schedules = committed("backups.yaml"), committed("backupschedules.yaml")
    assert backups["metadata"]["name"] == "backups.pingcap.com"
    assert schedules["metadata"]["name"] == "backupschedules.pingcap.com"
    assert backups["spec"]["names"]["shortNames"] == ["bk"]
    assert schedules["spec"]["names"]["shortNames"] == ["bks"]
    for crd in (backups, schedules):
        assert crd["spec"]["group"] == "pingcap.com"
        assert crd["spec"]["scope"] == "Namespaced"
        [version] = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
        assert version["subresources"] == ({} if crd is backups else {"status": {}})


def columns(name: str) -> list[tuple[str, str, int]]:
    [version] = committed(name)["spec"]["versions"]
    return [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]]


def test_printer_columns() -> None:
    assert columns("backups.yaml") == [
        ("Type", ".spec.backupType", 0),
        ("Status", ".status.phase", 0),
        ("BackupPath", ".status.backupPath", 0),
        ("BackupSize", ".status.backupSizeReadable", 0),
        ("CommitTS", ".status.commitTs", 0),
        ("Started", ".status.timeStarted", 1),
        ("Completed", ".status.timeCompleted", 1),
        ("TimeTaken", ".status.timeTaken", 0),
        ("Age", ".metadata.creationTimestamp", 0),
    ]
    assert columns("backupschedules.yaml") == [
        ("Schedule", ".spec.schedule", 0),
        ("MaxBackups", ".spec.maxBackups", 0),
        ("MaxReservedTime", ".spec.maxReservedTime", 0),
        ("LastBackup", ".status.lastBackup", 1),
        ("LastBackupTime", ".status.lastBackupTime", 1),
        ("Age", ".metadata.creationTimestamp", 0),
    ]


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for key, child in node.get("properties", {}).items():
        found += walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("kind", ["Backup", "BackupSchedule"])
def test_schema_is_structural(kind: str) -> None:
    for path, node in walk(committed_schema(kind)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ({"properties", "additionalProperties"} <= node.keys()), path
        assert not {"$ref", "anyOf", "oneOf", "allOf", "default", "title", "const"} & node.keys(), path
    assert committed_schema(kind)["properties"]["metadata"] == {"type": "object"}


def test_pass_through_blobs_preserve_unknown_fields() -> None:
    spec = committed_schema("Backup")["properties"]["spec"]["properties"]
    for key in ("affinity", "resources", "podSecurityContext", "cleanOption"):
        assert spec[key] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}, key
    for key in ("tolerations", "env", "imagePullSecrets"):
        assert spec[key]["items"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}, key
    assert spec["cleanPolicy"]["enum"] == ["Retain", "OnFailure", "Delete"]
    provider = spec["s3"]["properties"]["provider"]
    assert provider["type"] == "string" and "enum" not in provider  # any rclone name, any case, as upstream
    assert spec["s3"]["required"] == ["provider"]
    template = committed_schema("BackupSchedule")["properties"]["spec"]
    assert set(template["required"]) == {"schedule", "backupTemplate"}
    assert template["properties"]["backupTemplate"]["properties"].keys() == spec.keys()


SCHEMAS = {
    "generated strict": lambda kind: strict_schema(Backup if kind == "Backup" else BackupSchedule),
    "committed CRD, strict field validation": lambda kind: forbid_unknown(committed_schema(kind)),
}


@pytest.mark.parametrize("schema_of", SCHEMAS.values(), ids=list(SCHEMAS))
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_seed_examples_validate_against_schema(path: Path, schema_of: Any) -> None:
    data = seed(path)
    jsonschema.validate(data, schema_of(data["kind"]))


@pytest.mark.parametrize("schema_of", SCHEMAS.values(), ids=list(SCHEMAS))
def test_typo_and_bad_enum_fail_schema(schema_of: Any) -> None:
    schema = schema_of("Backup")
    good = seed(SEED_FILES[0])
    typo = copy.deepcopy(good)
    typo["spec"]["s3"]["secretNmae"] = typo["spec"]["s3"].pop("secretName")
    with pytest.raises(jsonschema.ValidationError, match="secretNmae"):
        jsonschema.validate(typo, schema)
    bad_enum = copy.deepcopy(good)
    bad_enum["spec"]["cleanPolicy"] = "delete"
    with pytest.raises(jsonschema.ValidationError, match="delete"):
        jsonschema.validate(bad_enum, schema)
    no_provider = copy.deepcopy(good)
    del no_provider["spec"]["s3"]["provider"]
    with pytest.raises(jsonschema.ValidationError, match="provider"):
        jsonschema.validate(no_provider, schema)
    schedule = seed(SEED_FILES[4])
    schedule["spec"]["backupTemplate"]["from"]["hots"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="hots"):
        jsonschema.validate(schedule, schema_of("BackupSchedule"))


def test_crd_schema_has_no_additional_properties_false() -> None:
    for model in (Backup, BackupSchedule):
        for path, node in walk(crd_schema(model)):
            assert node.get("additionalProperties") is not False, path


def test_dumped_resources_validate_against_crd() -> None:
    [schedule] = load_resources(SEED_FILES[4].read_text())
    assert isinstance(schedule, BackupSchedule)
    now = datetime(2024, 3, 1, tzinfo=UTC)
    backup = backup_from_schedule(schedule, now)
    backup.status = set_condition(backup.status, Phase.COMPLETE, "Done", "ok", now)
    backup.status.backup_size = 1_300_000_000
    backup.status.backup_size_readable = "1.3 GB"
    backup.status.time_started = now
    schedule.status.last_backup = backup.metadata.name
    schedule.status.last_backup_time = now
    jsonschema.validate(to_dict(backup), forbid_unknown(committed_schema("Backup")))
    jsonschema.validate(to_dict(schedule), forbid_unknown(committed_schema("BackupSchedule")))


def test_restore_crd_names_columns_and_kustomization() -> None:
    restores = committed("restores.yaml")
    assert restores["metadata"]["name"] == "restores.pingcap.com"
    names = restores["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("Restore", "restores", ["rt"])
    version = restores["spec"]["versions"][0]
    # No status subresource, as upstream's CRD: the restore Job writes status with `update` on restores,
    # the one write upstream's backup-rbac.yaml Role allows.
    assert version["subresources"] == {}
    # As TiDB Operator's Restore type prints them (`kubectl get rt -o wide` adds the priority-1 ones).
    assert [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]] == [
        ("Status", ".status.phase", 0),
        ("Started", ".status.timeStarted", 1),
        ("Completed", ".status.timeCompleted", 1),
        ("TimeTaken", ".status.timeTaken", 0),
        ("CommitTS", ".status.commitTs", 0),
        ("Age", ".metadata.creationTimestamp", 0),
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert {"to", "backupType", "s3", "storageClassName", "storageSize", "serviceAccount", "tikvGCLifeTime",
            "tableFilter", "tibackup"} <= set(spec)  # fmt: skip
    assert {"path", "bucket", "prefix", "secretName", "endpoint", "provider", "options"} <= set(
        spec["s3"]["properties"]
    )
    assert set(spec["tibackup"]["properties"]) == {"threads", "onDuplicate", "fromBackup"}
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert "crds/restores.yaml" in kustomization["resources"]
    overlay = ROOT / "deploy" / "overlays" / "beside-tidb-operator"
    assert "crds/restores.yaml" in yaml.safe_load((overlay / "kustomization.yaml").read_text())["resources"]
    ours = yaml.safe_load((overlay / "crds" / "restores.yaml").read_text())
    assert (ours["metadata"]["name"], ours["spec"]["group"]) == ("restores.backup.tibackup.io", "backup.tibackup.io")


@pytest.mark.parametrize("group", GROUPS)
def test_restore_status_has_only_fields_a_restore_sets(group: str) -> None:
    """A Restore never records a claim (that is a Backup's folder being written): its status has no
    ``claimPath``, in the model, in both groups' CRDs; a Backup's status keeps it. Every field of TiDB
    Operator's RestoreStatus that tibackup sets is there."""
    rendered = {name: yaml.safe_load(text) for name, text in render_crds(group).items()}

    def status_fields(name: str) -> set[str]:
        schema = rendered[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return set(schema["properties"]["status"]["properties"])

    restore, backup = status_fields("restores.yaml"), status_fields("backups.yaml")
    assert "claimPath" not in restore and "claimPath" in backup
    assert {"phase", "conditions", "timeStarted", "timeCompleted", "timeTaken", "commitTs"} <= restore
    assert {"backupPath", "backupSize", "backupSizeReadable", "rerunToken", "restoredRows"} <= restore
    assert "claim_path" not in RestoreStatus.model_fields
    assert restore == {kube_alias(name) for name in RestoreStatus.model_fields}


def test_a_restores_status_as_get_shows_it_fits_the_restore_crd() -> None:
    """What ``get restore -o json|yaml`` prints (``to_dict``) of a Restore taken through its phases
    validates, unknown fields forbidden, against the committed Restore CRD; a stored Restore of an
    older tibackup that still carries ``claimPath`` loads, without it."""
    now = datetime(2024, 3, 1, tzinfo=UTC)
    restore = Restore.model_validate(
        {"metadata": {"name": "back", "namespace": "test1"}, "spec": {"to": {"host": "db", "secretName": "s"}}}
    )
    status = phases.to_running(restore.status, "s3://bucket/backup-1/", "restoring", now)
    status = phases.to_complete(status.model_copy(update={"restored_rows": 7}), 1_300, "4242", "done", now)
    restore.status = status
    document = to_dict(restore)
    assert "claimPath" not in document["status"] and document["status"]["restoredRows"] == 7
    jsonschema.validate(document, forbid_unknown(committed_schema("Restore")))
    older = Restore.model_validate({**document, "status": {**document["status"], "claimPath": "s3://b/x/"}})
    assert "claimPath" not in to_dict(older)["status"]


def _status_enums(name: str) -> tuple[list[str], list[str]]:
    crd = yaml.safe_load(render_crds()[name])
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    return status["phase"]["enum"], status["conditions"]["items"]["properties"]["type"]["enum"]


def test_restore_crd_lists_only_the_phases_a_restore_can_have() -> None:
    """A Restore is Scheduled, Running, Complete, Failed or Invalid (docs/restore.md); the Backup-only
    values (Prepare, Clean, CleanFailed, GCLifeTimeRestorePending, Verified) stay the Backup's."""
    restore_values = ["Scheduled", "Running", "Complete", "Failed", "Invalid"]
    assert _status_enums("restores.yaml") == (restore_values, restore_values)
    backup_phases, backup_conditions = _status_enums("backups.yaml")
    assert {"Prepare", "Clean", "CleanFailed"} <= set(backup_phases)
    assert {"Prepare", "Clean", "CleanFailed", "GCLifeTimeRestorePending", "Verified"} <= set(backup_conditions)
