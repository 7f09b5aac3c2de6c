"""Re-running a Backup: the annotation ``tibackup.pingcap.com/rerun: <token>`` asks for a new run.

A Backup runs once (the reference never retries, and neither do we on our own); applying the same YAML
again changes nothing. To run a Failed Backup again, set the annotation to a value it has not had
(``kubectl annotate --overwrite bk NAME tibackup.pingcap.com/rerun=$(date +%s)``, or ``tibackup rerun
bk NAME``). The runtime then resets the status and runs the Backup again: a staged dump kept after a
failed upload is uploaded to the same backupPath without dumping again.

Pure: a Backup in, a decision (and the status to start from) out. Rules:
- the token is acted on once: it is recorded in ``status.rerunToken``;
- ``Failed`` and ``Invalid`` Backups run again (an Invalid one after its spec was fixed);
- a ``Complete`` Backup is never run again: its data is a finished backup, and a new run would replace
  its record (the request is refused, with a Warning event saying to create a new Backup);
- a Backup that has not finished, or is being deleted, is left alone; the request waits for it to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tibackup.resources import Backup, ConditionType, Phase, Restore
from tibackup.resources.status import S

RERUN_ANNOTATION = "tibackup.pingcap.com/rerun"
RERUNNABLE = frozenset({Phase.FAILED, Phase.INVALID})


class RerunAction(StrEnum):
    RUN = "run"
    REFUSE = "refuse"


@dataclass(frozen=True)
class RerunDecision:
    action: RerunAction
    token: str
    message: str


def rerun_token(now: datetime) -> str:
    """A fresh token for the annotation: the time, to the microsecond."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide_rerun(backup: Backup | Restore) -> RerunDecision | None:
    """What to do about the Backup's rerun annotation now; None when there is nothing to do (yet)."""
    token = ((backup.metadata.annotations or {}).get(RERUN_ANNOTATION) or "").strip()
    status = backup.status
    if not token or token == status.rerun_token or backup.metadata.deletion_timestamp is not None:
        return None
    if status.phase in RERUNNABLE:
        return RerunDecision(RerunAction.RUN, token, f"re-run requested ({RERUN_ANNOTATION}={token})")
    if status.phase == Phase.COMPLETE:
        return RerunDecision(
            RerunAction.REFUSE,
            token,
            f"re-run refused ({RERUN_ANNOTATION}={token}): the {backup.kind.lower()} is Complete; create a "
            f"new {backup.kind} to run another one",
        )
    return None  # not finished yet (or being cleaned): decided once it ends


def rerun_status(status: S, token: str) -> S:
    """The status a re-run starts from: no phase, no outcome, the token recorded.

    Kept: ``backupPath`` (the data the failed run left there stays the Backup's, for its cleanPolicy;
    a staged re-run uploads to it again), ``claimPath`` (a Backup's: a claim a stopped run left, which the
    re-run releases first) and the conditions that are not phases (a GC life time restore
    still pending)."""
    phases = {p.value for p in Phase} | {ConditionType.VERIFIED.value}  # Verified: of that run only
    kept = [c.model_copy() for c in status.conditions or () if c.type not in phases]
    fields = type(status).model_fields
    carried = {name: getattr(status, name) for name in ("backup_path", "claim_path") if name in fields}
    return type(status)(**carried, conditions=kept or None, rerun_token=token)


def refused_status(status: S, token: str) -> S:
    """The status unchanged but the token recorded as handled."""
    return status.model_copy(update={"rerun_token": token})


__all__ = [
    "RERUN_ANNOTATION",
    "RerunAction",
    "RerunDecision",
    "decide_rerun",
    "refused_status",
    "rerun_status",
    "rerun_token",
]
