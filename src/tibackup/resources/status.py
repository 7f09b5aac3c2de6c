"""Status of a Backup (and the part a Restore's shares): phases, conditions, sizes, times; and the pure
helpers that update it."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal, Self, TypeVar

from pydantic import model_validator

from tibackup.resources.meta import KubeTime, StatusModel, utc


class Phase(StrEnum):
    """Where a Backup is in its life; also the type of its conditions."""

    SCHEDULED = "Scheduled"
    PREPARE = "Prepare"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    INVALID = "Invalid"
    CLEAN = "Clean"
    CLEAN_FAILED = "CleanFailed"


class ConditionType(StrEnum):
    """The type of a condition: every phase, and conditions that are not phases (they never set it)."""

    SCHEDULED = Phase.SCHEDULED.value
    PREPARE = Phase.PREPARE.value
    RUNNING = Phase.RUNNING.value
    COMPLETE = Phase.COMPLETE.value
    FAILED = Phase.FAILED.value
    INVALID = Phase.INVALID.value
    CLEAN = Phase.CLEAN.value
    CLEAN_FAILED = Phase.CLEAN_FAILED.value
    # The backup raised TiKV's GC life time and could not set it back yet: retried until it is.
    GC_LIFE_TIME_RESTORE_PENDING = "GCLifeTimeRestorePending"
    # The backup's folder was verified complete (``backupSize``/``commitTs`` recorded): a run stopped
    # after this point ends ``Complete`` (docs/recovery-and-rerun.md), never ``Failed``.
    VERIFIED = "Verified"


# A backup in one of these phases has ended: it will not change until it is deleted.
FINISHED_PHASES: frozenset[Phase] = frozenset({Phase.COMPLETE, Phase.FAILED, Phase.INVALID})
DELETING_PHASES: frozenset[Phase] = frozenset({Phase.CLEAN, Phase.CLEAN_FAILED})

ConditionStatus = Literal["True", "False", "Unknown"]


class BackupCondition(StatusModel):
    type: ConditionType
    status: ConditionStatus = "True"
    last_transition_time: KubeTime | None = None
    reason: str | None = None
    message: str | None = None


class RunStatus(StatusModel):
    """What the status of a Backup and of a Restore share (each adds only fields it sets itself)."""

    # The phases and condition types this status may hold, and whose status it is: a Backup's has every
    # one; a Restore's narrows them (resources.restore, whose list its CRD takes too).
    allowed_types: ClassVar[frozenset[str]] = frozenset(kind.value for kind in ConditionType)
    owner_kind: ClassVar[str] = "Backup"

    phase: Phase | None = None
    conditions: list[BackupCondition] | None = None
    backup_path: str | None = None
    backup_size: int | None = None
    backup_size_readable: str | None = None
    commit_ts: str | None = None
    time_started: KubeTime | None = None
    time_completed: KubeTime | None = None
    time_taken: str | None = None
    # Beyond the reference: the ``tibackup.pingcap.com/rerun`` annotation value last acted on (a new
    # value asks for a new run of a Failed Backup; see tibackup.control.rerun).
    rerun_token: str | None = None

    def condition(self, type_: ConditionType | Phase | str) -> BackupCondition | None:
        """The condition of that type, if it was ever set."""
        for cond in self.conditions or ():
            if cond.type == type_:
                return cond
        return None

    @model_validator(mode="after")
    def _only_allowed_types(self) -> Self:
        for value in (self.phase, *(cond.type for cond in self.conditions or ())):
            if value is not None:
                refuse_foreign_type(type(self), value)
        return self


def refuse_foreign_type(status_type: type[RunStatus], value: str) -> None:
    """Raise ValueError when ``value`` is no phase or condition type of ``status_type`` (a Restore's
    status cannot be ``Prepare``, ``Clean``, ``Verified``, …)."""
    allowed = status_type.allowed_types
    if value not in allowed:
        listed = ", ".join(kind.value for kind in ConditionType if kind.value in allowed)
        raise ValueError(f"{str(value)!r} is no status of a {status_type.owner_kind}: "
                         f"a {status_type.owner_kind}'s status is one of {listed}")  # fmt: skip


class BackupStatus(RunStatus):
    # The status of a Backup: TiDB Operator's fields (``RunStatus``), and ``claimPath``.
    # Beyond the reference: the folder whose claim this Backup's run is writing, recorded before the
    # claim's first object and cleared when ``Running`` records ``backupPath``; left set by a run stopped
    # in between, so recovery and deletion can take back its claim files (manager.claim.release).
    claim_path: str | None = None


S = TypeVar("S", bound=RunStatus)  # a Backup's status, or a Restore's


def set_condition(
    status: S,
    type_: Phase | str,
    reason: str | None,
    message: str | None,
    now: datetime,
    condition_status: ConditionStatus = "True",
) -> S:
    """A copy of ``status`` with the condition ``type_`` set and ``phase`` = ``type_``.

    There is one condition per type; setting it again updates its reason and message and keeps
    ``lastTransitionTime`` unless its ``status`` changes (the Kubernetes convention).
    """
    phase = Phase(type_)
    new = set_side_condition(status, ConditionType(phase), reason, message, now, condition_status)
    return new.model_copy(update={"phase": phase})


def set_side_condition(
    status: S,
    type_: ConditionType | str,
    reason: str | None,
    message: str | None,
    now: datetime,
    condition_status: ConditionStatus = "True",
) -> S:
    """A copy of ``status`` with the condition ``type_`` set as ``set_condition`` does, phase untouched."""
    kind = ConditionType(type_)
    refuse_foreign_type(type(status), kind)
    conditions = [cond.model_copy() for cond in status.conditions or ()]
    for index, cond in enumerate(conditions):
        if cond.type == kind:
            changed = cond.status != condition_status
            conditions[index] = cond.model_copy(
                update={
                    "status": condition_status,
                    "reason": reason,
                    "message": message,
                    "last_transition_time": utc(now) if changed else cond.last_transition_time,
                }
            )
            break
    else:
        conditions.append(
            BackupCondition(
                type=kind,
                status=condition_status,
                last_transition_time=utc(now),
                reason=reason,
                message=message,
            )
        )
    return status.model_copy(update={"conditions": conditions})


def drop_condition(status: S, type_: ConditionType | str) -> S:
    """A copy of ``status`` without the condition ``type_`` (the same object when it has none)."""
    if status.condition(type_) is None:
        return status
    kept = [cond.model_copy() for cond in status.conditions or () if cond.type != type_]
    return status.model_copy(update={"conditions": kept or None})


_SI_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_size_si(size: int) -> str:
    """Bytes in SI units as TiDB Operator shows them: ``0 B``, ``999 B``, ``1.3 GB``, ``83 MB``."""
    if size < 0:
        raise ValueError(f"a size cannot be negative: {size}")
    if size < 10:
        return f"{size} B"
    exponent = min(math.floor(math.log(size, 1000)), len(_SI_UNITS) - 1)
    # Guard against log() landing just below an exact power of 1000.
    if exponent + 1 < len(_SI_UNITS) and size >= 1000 ** (exponent + 1):
        exponent += 1
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{text} {_SI_UNITS[exponent]}"
