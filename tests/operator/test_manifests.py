"""Offline checks of every manifest shipped in deploy/ and of the Jobs and PVCs the operator creates.

kubernetes-validate checks them against the real Kubernetes schemas with --strict (unknown fields
fail). The seed examples against the CRD schema are tested in tests/unit/test_crd.py; here each seed
example goes one step further: the Job and PVC the operator would create for it must be valid too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tibackup.control.naming import backup_from_schedule
from tibackup.manager.settings import MODE_ANNOTATION
from tibackup.operator import jobs
from tibackup.resources import Backup, BackupSchedule, load_resources, to_dict
from tibackup.resources.apigroups import PINGCAP_GROUP
from tibackup.resources.upstream import ignored_fields

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SEEDS = sorted((ROOT / "tests" / "data" / "seed").glob("*.yaml"))
VERSION = kubernetes_validate.latest_version()


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# Kubernetes manifests (deploy/prometheus/ holds alert rules: tests/unit/test_alert_rules.py).
MANIFESTS = [
    p for p in sorted(DEPLOY.rglob("*.yaml")) if p.name != "kustomization.yaml" and p.parent.name != "prometheus"
]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_manifest_is_valid_strict(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_kustomizations_list_every_manifest() -> None:
    """deploy/ = the pingcap.com CRDs + deploy/operator/; the overlay = its CRDs + the same operator."""
    base = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert base["resources"] == ["crds/backups.yaml", "crds/backupschedules.yaml", "crds/restores.yaml", "operator"]
    operator = yaml.safe_load((DEPLOY / "operator" / "kustomization.yaml").read_text())
    assert set(operator["resources"]) == {p.name for p in (DEPLOY / "operator").glob("*.yaml")} - {
        "kustomization.yaml"
    }
    overlay = yaml.safe_load((DEPLOY / "overlays" / "beside-tidb-operator" / "kustomization.yaml").read_text())
    assert overlay["resources"] == [
        "crds/backups.yaml", "crds/backupschedules.yaml", "crds/restores.yaml", "../../operator"
    ]  # fmt: skip


def rules_of(path: Path) -> dict[tuple[tuple[str, ...], tuple[str, ...]], set[str]]:
    role = next(d for d in documents(path) if d["kind"] == "Role")
    return {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}


def test_backup_rbac_is_minimal_named_as_the_reference_and_within_upstreams() -> None:
    """The Job's Role: read and update its Backup, record events; no Secrets. Upstream's Role grants
    all of it (so the Jobs also run under TiDB Operator's backup-rbac.yaml, as the e2e tests do)."""
    docs = {d["kind"]: d for d in documents(DEPLOY / "backup-rbac.yaml")}
    assert set(docs) == {"Role", "ServiceAccount", "RoleBinding"}
    assert {d["metadata"]["name"] for d in docs.values()} == {"tidb-backup-manager"}
    ours = rules_of(DEPLOY / "backup-rbac.yaml")
    assert ours == {
        (("pingcap.com",), ("backups",)): {"get", "update"},
        (("pingcap.com",), ("restores",)): {"get", "update"},
        (("",), ("events",)): {"create"},
    }
    upstream = rules_of(ROOT / "tests" / "data" / "upstream" / "backup-rbac.yaml")
    for (groups, resources), verbs in ours.items():
        assert any(
            set(groups) <= set(g) and set(resources) <= set(r) and (verbs <= v or "*" in v)
            for (g, r), v in upstream.items()
        ), (groups, resources, verbs)
    overlay = DEPLOY / "overlays" / "beside-tidb-operator" / "backup-rbac.yaml"
    assert rules_of(overlay) == {
        (("backup.tibackup.io",), ("backups",)): {"get", "update"},
        (("backup.tibackup.io",), ("restores",)): {"get", "update"},
        (("",), ("events",)): {"create"},
    }
    # Beside TiDB Operator its own Role tidb-backup-manager stays untouched: ours has another name.
    names = {d["kind"]: d["metadata"]["name"] for d in documents(overlay)}
    assert names == {"Role": "tibackup-backup-manager", "RoleBinding": "tibackup-backup-manager",
                     "ServiceAccount": "tidb-backup-manager"}  # fmt: skip


def test_operator_cannot_read_secrets_and_runs_tibackup_operator() -> None:
    role = next(d for d in documents(DEPLOY / "operator" / "rbac.yaml") if d["kind"] == "ClusterRole")
    assert not any("secrets" in rule["resources"] for rule in role["rules"])
    [deployment] = documents(DEPLOY / "operator" / "deployment.yaml")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["tibackup", "operator"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def seed_backups() -> list[tuple[str, Backup]]:
    found: list[tuple[str, Backup]] = []
    for path in SEEDS:
        [resource] = load_resources(path.read_text())
        if isinstance(resource, BackupSchedule):
            resource.metadata.uid = "8a1f0c2e-0000-4000-8000-000000000001"
            resource = backup_from_schedule(resource, __import__("datetime").datetime(2024, 3, 1, 2, 0))
        resource.metadata.uid = resource.metadata.uid or "8a1f0c2e-0000-4000-8000-000000000002"
        found.append((path.stem, resource))
    return found


@pytest.mark.parametrize(("stem", "backup"), seed_backups(), ids=[s for s, _ in seed_backups()])
@pytest.mark.parametrize("action", ["backup", "clean", "recover"])
def test_jobs_for_seed_examples_are_valid(stem: str, backup: Backup, action: jobs.Action) -> None:
    job = jobs.job_manifest(backup, "tibackup:test", action)
    kubernetes_validate.validate(job, VERSION, strict=True)
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "tidb-backup-manager"
    if action == "backup" and jobs.is_staged(backup):
        pvc = jobs.pvc_manifest(backup)
        kubernetes_validate.validate(pvc, VERSION, strict=True)
        assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    annotations = backup.metadata.annotations or {}
    if "iam.amazonaws.com/role" in annotations:
        assert job["spec"]["template"]["metadata"]["annotations"]["iam.amazonaws.com/role"].startswith("arn:")


def test_job_passes_spec_through_and_never_holds_secret_values() -> None:
    [backup] = load_resources((SEEDS[0]).read_text())
    assert isinstance(backup, Backup)
    backup.metadata.uid = "u-1"
    backup.metadata.annotations = {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "db"}
    backup.spec.tool_image = "example.com/tibackup:1.2"
    backup.spec.env = [{"name": "TZ", "value": "UTC"}]
    backup.spec.resources = {"limits": {"memory": "2Gi"}}
    backup.spec.tolerations = [
        {"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}
    ]
    backup.spec.affinity = {"nodeAffinity": {}}
    backup.spec.from_.tls_client_secret_name = "db-tls"  # type: ignore[union-attr]
    job = jobs.job_manifest(backup, "fallback:image")
    kubernetes_validate.validate(job, VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "fallback:image"  # spec.toolImage is upstream's Dumpling image: ignored
    assert container["resources"] == {"limits": {"memory": "2Gi"}}
    assert pod["tolerations"][0]["key"] == "dedicated" and pod["affinity"] == {"nodeAffinity": {}}
    assert job["spec"]["template"]["metadata"]["annotations"] == {"team": "db"}
    env = {e["name"]: e for e in container["env"]}
    assert env["TZ"]["value"] == "UTC"
    assert env["TIBACKUP_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "backup-demo1-tidb-secret"
    assert json.loads(env["TIBACKUP_SECRET_NAMES"]["value"])["TIBACKUP_S3_SECRET_KEY"] == [
        "s3-secret",
        "secret_key",
    ]
    assert {"name": "tls", "secret": {"secretName": "db-tls", "optional": True}} in pod["volumes"]


def test_long_names_are_cut_with_a_hash() -> None:
    [backup] = load_resources((SEEDS[0]).read_text())
    assert isinstance(backup, Backup)
    long = copy.deepcopy(backup)
    long.metadata.name = "a" * 70 + ".b"
    other = copy.deepcopy(backup)
    other.metadata.name = "a" * 70 + ".c"
    first, second = jobs.job_name(long.metadata.name), jobs.job_name(other.metadata.name)
    assert len(first) <= 63 and len(second) <= 63 and first != second
    assert first == jobs.job_name(long.metadata.name)
    job = jobs.job_manifest(long, "img")
    assert job["metadata"]["annotations"][jobs.ANNOTATION_BACKUP] == long.metadata.name
    assert len(job["metadata"]["labels"][jobs.LABEL_BACKUP]) <= 63
    kubernetes_validate.validate(job, VERSION, strict=True)


def test_staged_mode_follows_the_manager_rule() -> None:
    [backup] = load_resources((SEEDS[0]).read_text())
    assert isinstance(backup, Backup)
    assert jobs.is_staged(backup)  # the seed gives storageSize
    backup.metadata.annotations = {MODE_ANNOTATION: "direct"}
    assert not jobs.is_staged(backup)
    backup.spec.storage_size = None
    backup.metadata.annotations = {MODE_ANNOTATION: "staged"}
    assert jobs.is_staged(backup)


def test_tool_image_is_ignored_with_a_warning_and_the_annotation_chooses_the_image() -> None:
    """Upstream's spec.toolImage names a Dumpling image (e.g. pingcap/dumpling:v8.1.0), in which
    tibackup's Job could not run: it is ignored and said so; tibackup.pingcap.com/image chooses."""
    [backup] = load_resources((SEEDS[0]).read_text())
    assert isinstance(backup, Backup)
    assert ignored_fields(backup, operator=True) == []
    backup.spec.tool_image = "pingcap/dumpling:v8.1.0"
    [container] = jobs.job_manifest(backup, "tibackup:1.0")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "tibackup:1.0"
    [warning] = ignored_fields(backup, operator=True)
    assert "spec.toolImage" in warning and jobs.ANNOTATION_IMAGE in warning
    backup.metadata.annotations = {jobs.ANNOTATION_IMAGE: "registry.example.com/tibackup:1.1"}
    job = jobs.job_manifest(backup, "tibackup:1.0")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/tibackup:1.1"
    assert "annotations" not in job["spec"]["template"]["metadata"]  # tibackup's own, not the Pod's


POD_FIELDS = {
    "env": [{"name": "TZ", "value": "UTC"}],
    "resources": {"limits": {"memory": "2Gi"}},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {}},
    "podSecurityContext": {"fsGroup": 2000},
    "priorityClassName": "low",
    "imagePullSecrets": [{"name": "regcred"}],
}


def test_restore_job_gets_every_pass_through_pod_field_as_a_backup_job() -> None:
    """One definition of the pass-through Pod fields: both CRDs describe them alike, and a Restore's Job
    Pod carries each of them exactly where a Backup's Job Pod does."""
    from tibackup.operator.restores import job_manifest as restore_job
    from tibackup.resources import Restore, parse_resource
    from tibackup.resources.crd import render_crds

    schemas = {}
    for name in ("backups.yaml", "restores.yaml"):
        crd = yaml.safe_load(render_crds(PINGCAP_GROUP)[name])
        schemas[name] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for key in [*POD_FIELDS, "toolImage"]:
        assert schemas["backups.yaml"][key] == schemas["restores.yaml"][key], key
    [backup] = load_resources((SEEDS[0]).read_text())
    assert isinstance(backup, Backup)
    backup = Backup.model_validate({**to_dict(backup), "spec": {**to_dict(backup)["spec"], **POD_FIELDS}})
    restore = parse_resource({
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Restore", "metadata": {"name": "r", "namespace": "n"},
        "spec": {"to": {"host": "db", "secretName": "db-secret"}, "s3": {"provider": "aws", "path": "s3://b/x/"},
                 **POD_FIELDS},
    })  # fmt: skip
    assert isinstance(restore, Restore)
    backup_pod = jobs.job_manifest(backup, "image:1")["spec"]["template"]["spec"]
    restore_job_body = restore_job(restore, "image:1", "s3-secret")
    kubernetes_validate.validate(restore_job_body, VERSION, strict=True)
    restore_pod = restore_job_body["spec"]["template"]["spec"]
    for key in ("tolerations", "affinity", "securityContext", "priorityClassName", "imagePullSecrets"):
        assert restore_pod[key] == backup_pod[key], key
    [backup_container], [restore_container] = backup_pod["containers"], restore_pod["containers"]
    assert restore_container["resources"] == backup_container["resources"] == POD_FIELDS["resources"]
    assert {"name": "TZ", "value": "UTC"} in restore_container["env"]


def test_restore_job_gets_upstreams_additional_volumes_as_a_backup_job() -> None:
    from tibackup.operator.restores import job_manifest as restore_job
    from tibackup.resources import Restore, parse_resource

    volume = {"name": "extra", "emptyDir": {}}
    mount = {"name": "extra", "mountPath": "/extra"}
    restore = parse_resource({
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Restore", "metadata": {"name": "r", "namespace": "n"},
        "spec": {"to": {"host": "db", "secretName": "db-secret"}, "s3": {"provider": "aws", "path": "s3://b/x/"},
                 "additionalVolumes": [volume], "additionalVolumeMounts": [mount]},
    })  # fmt: skip
    assert isinstance(restore, Restore)
    body = restore_job(restore, "image:1", "s3-secret")
    kubernetes_validate.validate(body, VERSION, strict=True)
    pod = body["spec"]["template"]["spec"]
    assert volume in pod["volumes"] and mount in pod["containers"][0]["volumeMounts"]
    assert ignored_fields(restore, operator=True) == []  # the operator uses them
    assert {w.split(" ", 1)[0] for w in ignored_fields(restore)} == {  # the embedded runtime cannot
        "spec.additionalVolumes", "spec.additionalVolumeMounts"
    }
