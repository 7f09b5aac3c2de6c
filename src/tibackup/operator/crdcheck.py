"""Before serving a group, make sure its CRDs are tibackup's: never act on another controller's objects.

TiDB Operator owns ``backups.pingcap.com`` on clusters where it runs. Its CRDs lack tibackup's
``OWNER_LABEL`` (and carry controller-gen's annotation), so the operator refuses to start on them and
says how to run beside TiDB Operator instead. A missing CRD is named with the command that installs it.
"""

from __future__ import annotations

from typing import Any

from tibackup.errors import TibackupError
from tibackup.resources.apigroups import PINGCAP_GROUP, TIBACKUP_GROUP
from tibackup.resources.crd import CRD_DIRS, CRD_FILES, OWNER_LABEL, crd_name

_CONTROLLER_GEN = "controller-gen.kubebuilder.io/version"


class ForeignCRDError(TibackupError):
    """The group's CRDs are missing or belong to another controller."""

    exit_code = 2
    reason = "ForeignCRD"


def install_hint(group: str) -> str:
    return (
        f"kubectl apply -k deploy/{'' if group == PINGCAP_GROUP else CRD_DIRS[group].removesuffix('/crds')}"
    )


def crd_problem(name: str, group: str, body: dict[str, Any] | None) -> str | None:
    """Why the operator must not serve ``group`` with this CRD object (None: it is tibackup's)."""
    if body is None:
        return f"CRD {name} is not installed; install it with {install_hint(group)}"
    meta = body.get("metadata") or {}
    if (meta.get("labels") or {}).get(OWNER_LABEL[0]) == OWNER_LABEL[1]:
        return None
    owner = "TiDB Operator" if _CONTROLLER_GEN in (meta.get("annotations") or {}) else "another controller"
    hint = (
        f"run tibackup beside it with --api-group {TIBACKUP_GROUP} ({install_hint(TIBACKUP_GROUP)})"
        if group == PINGCAP_GROUP
        else f"remove it or install tibackup's with {install_hint(group)}"
    )
    return (
        f"CRD {name} belongs to {owner} (no label {OWNER_LABEL[0]}={OWNER_LABEL[1]}); tibackup will not "
        f"take it over: {hint}"
    )


def check_crds(get: Any, group: str) -> None:
    """Raise ForeignCRDError unless every CRD of ``group`` (Backups, BackupSchedules, Restores) is
    tibackup's. ``get(name)`` reads one CRD."""
    for model in CRD_FILES.values():
        name = crd_name(model, group)
        problem = crd_problem(name, group, get(name))
        if problem:
            raise ForeignCRDError(problem)
