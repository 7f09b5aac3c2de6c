"""The Job state machine the operator runs for every resource that is one run in a Job: a Backup
(``backups.py``) and a Restore (``restores.py``). One set of rules, the kinds' differences as hooks:

- a new resource whose spec can never work is ``Invalid`` and gets no Job;
- a new ``tibackup.pingcap.com/rerun`` annotation resets a ``Failed``/``Invalid`` run (its Job goes) or is
  refused on a ``Complete`` one (``control.rerun``);
- a new resource becomes ``Scheduled`` (one ``IgnoredField`` Warning per accepted-but-unused field) and
  gets its Job; a finished Job of a run that has not started is the previous run's, still going away:
  wait for it;
- a started run whose Job vanished is ``Failed`` (``JobLost``); a Job that ended while its run had not
  is ``Failed`` (``JobFailed``); a late event of a Job already replaced changes nothing.

Thin over the API: every decision about the run itself belongs to the manager running in the Job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from tibackup.control.rerun import RerunAction, RerunDecision, decide_rerun, refused_status, rerun_status
from tibackup.errors import InvalidSpecError
from tibackup.manager.admission import admit
from tibackup.operator import jobs
from tibackup.operator.kube import JOBS, PODS, Kind, KubeApi
from tibackup.resources import Backup, Phase, Restore, set_condition, to_dict
from tibackup.resources.upstream import ignored_fields

COMPONENT = "tibackup-operator"
Run = TypeVar("Run", Backup, Restore)


@dataclass
class OperatorConfig:
    image: str = jobs.DEFAULT_IMAGE
    schedule_interval: float = 15.0  # seconds between two looks at every BackupSchedule
    poll_delay: float = 5.0  # seconds between two looks at a clean Job being waited for
    clean_retry_delay: float = 60.0  # after a failed clean Job, before the next attempt
    gc_retry_interval: float = 60.0  # between two recover Jobs for a GC life time still to restore


def job_outcome(job: dict[str, Any]) -> str | None:
    """ "succeeded", "failed", or None while the Job runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    if (status.get("succeeded") or 0) > 0:
        return "succeeded"
    if (status.get("failed") or 0) > 0:
        return "failed"
    return None


class RunController(Generic[Run]):
    """One kind's Job state machine. A subclass names its kind (the class attributes) and fills in the
    hooks: how its Job is named and created, how a run fails, what else its Jobs' ends mean."""

    plural: ClassVar[Kind]  # where the resources live (BACKUPS, RESTORES)
    component: ClassVar[str]  # the run Job's app.kubernetes.io/component label: "backup", "restore"
    job_annotation: ClassVar[str]  # the annotation naming the resource on its Jobs
    unfinished: ClassVar[tuple[Phase | None, ...]]  # the phases of a run that has not ended

    def __init__(
        self, api: KubeApi, config: OperatorConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.api = api
        self.config = config
        self.clock = clock

    # --- the kind's hooks
    def parse(self, body: dict[str, Any]) -> Run:
        raise NotImplementedError

    def job_name(self, name: str) -> str:
        raise NotImplementedError

    def may_rerun(self, run: Run) -> bool:
        """False: act on the rerun annotation later (something of the previous run still works)."""
        return True

    def create_job(self, run: Run) -> bool:
        """Create the run's Job (and what it needs); False when one of that name still exists."""
        raise NotImplementedError

    def job_failed_message(self, job: dict[str, Any], outcome: str) -> str:
        raise NotImplementedError

    def other_job_ended(self, body: dict[str, Any], job: dict[str, Any], action: str, outcome: str) -> None:
        """A Job of the resource that is not its run's (a Backup's clean or recover Job) ended."""

    def run_job_ended(self, run: Run) -> None:
        """The run's Job ended after the run itself did (what the run leaves can go now)."""

    def fail(self, run: Run, reason: str, message: str) -> None:
        self.set_phase(run, Phase.FAILED, reason, message)
        self.event(to_dict(run), "Warning", reason, message)

    # --- creation (and resumption after an operator restart, and re-runs)
    def ensure_job(self, body: dict[str, Any]) -> bool:
        """Start the run's Job unless it has started, finished or cannot ever work; act on a new
        ``tibackup.pingcap.com/rerun`` annotation first (``control.rerun``). False: try again soon
        (the previous run's Job is still going away)."""
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return True
        try:
            run = self.parse(body)
            admit(run)  # the run's own checks, so a spec that can never run gets no Job
        except InvalidSpecError as exc:
            if (body.get("status") or {}).get("phase") != Phase.INVALID:
                self._set_phase_raw(body, Phase.INVALID, exc.reason, exc.message)
                self.event(body, "Warning", exc.reason, exc.message)
            return True
        decision = decide_rerun(run)
        if decision is not None:
            if not self.may_rerun(run):
                return False
            self._accept_rerun(run, decision)
        phase = run.status.phase
        if phase not in self.unfinished:
            return True
        job_name = self.job_name(run.metadata.name)
        job = self.api.get(JOBS, _ns(run), job_name)
        if phase not in (None, Phase.SCHEDULED) and job is None:
            # The Job vanished (deleted by hand, lost with its node's etcd record): nothing runs it.
            self.fail(run, "JobLost", f"the Job {job_name} of this {self.component} no longer exists")
            return True
        if job is not None:
            # A finished Job of a run that has not started: the previous run's, still being deleted.
            return not (phase is None and job_outcome(job) is not None)
        if phase is None:
            self.set_phase(run, Phase.SCHEDULED, "JobCreated", f"the Job {job_name} runs it")
            for warning in ignored_fields(run, operator=True):
                self.event(to_dict(run), "Warning", "IgnoredField", warning)
        if not self.create_job(run):
            return False
        self.event(to_dict(run), "Normal", "JobCreated", f"created Job {job_name}")
        return True

    def _accept_rerun(self, run: Run, decision: RerunDecision) -> None:
        """Reset the status (the previous Job goes) so the resource runs again, or record the refusal."""
        ns, name = _ns(run), run.metadata.name
        if decision.action is RerunAction.REFUSE:
            run.status = refused_status(run.status, decision.token)
            self.event(to_dict(run), "Warning", "RerunRefused", decision.message)
        else:
            self.api.delete(JOBS, ns, self.job_name(name))
            run.status = rerun_status(run.status, decision.token)
            self.event(to_dict(run), "Normal", "RerunRequested", decision.message)
        # A merge patch keeps what it does not name: every field is named, null when the reset clears it.
        cleared = dict.fromkeys(type(run.status)().model_dump(by_alias=True), None)
        status = {**cleared, **run.status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        self.api.patch(self.plural, ns, name, {"status": status})

    # --- Jobs finishing
    def job_changed(self, job: dict[str, Any]) -> None:
        """React to a Job of this kind that ended; a running Job needs nothing."""
        meta = job.get("metadata") or {}
        name = (meta.get("annotations") or {}).get(self.job_annotation)
        action = (meta.get("labels") or {}).get(jobs.LABEL_COMPONENT)
        outcome = job_outcome(job)
        if not name or outcome is None:
            return
        ns = meta.get("namespace") or "default"
        current = self.api.get(JOBS, ns, str(meta.get("name")))
        if current is None or (current.get("metadata") or {}).get("uid") != meta.get("uid"):
            return  # a late event of a Job already deleted (a re-run replaced it): not this run's outcome
        body = self.api.get(self.plural, ns, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        if action != self.component:
            self.other_job_ended(body, job, str(action), outcome)
            return
        try:
            run = self.parse(body)
        except InvalidSpecError:
            return
        if run.status.phase in self.unfinished:
            self.fail(run, "JobFailed", self.job_failed_message(job, outcome))
        else:
            self.run_job_ended(run)

    def describe_failure(self, job: dict[str, Any]) -> str:
        """Why the Job failed, from its conditions and its Pods' container states, in one line."""
        meta = job.get("metadata") or {}
        parts: list[str] = []
        for cond in (job.get("status") or {}).get("conditions") or ():
            if cond.get("type") in ("Failed", "FailureTarget") and cond.get("status") == "True":
                parts.append(f"{cond.get('reason') or 'Failed'}: {cond.get('message') or 'no message'}")
                break
        pods = self.api.list(PODS, meta.get("namespace"), {"job-name": str(meta.get("name"))})
        for pod in pods:
            parts.extend(_pod_failure(pod))
        text = "; ".join(dict.fromkeys(parts)) or "no reason recorded"
        if "OOMKilled" in text:
            text += " (raise spec.resources.limits.memory, or lower --threads in spec.dumpling.options)"
        return text

    # --- helpers
    def set_phase(self, run: Run, phase: Phase, reason: str, message: str) -> None:
        run.status = set_condition(run.status, phase, reason, message, self.clock())
        status = to_dict(run).get("status", {})
        self.api.patch(self.plural, _ns(run), run.metadata.name, {"status": status})

    def _set_phase_raw(self, body: dict[str, Any], phase: Phase, reason: str, message: str) -> None:
        """Set a phase on a resource that does not even parse (written without the model)."""
        meta = body.get("metadata") or {}
        stamp = self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [c for c in (body.get("status") or {}).get("conditions") or () if c.get("type") != phase]
        conditions.append({"type": str(phase), "status": "True", "lastTransitionTime": stamp,
                           "reason": reason, "message": message})  # fmt: skip
        patch = {"status": {"phase": str(phase), "conditions": conditions}}
        self.api.patch(self.plural, meta.get("namespace") or "default", meta["name"], patch)

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.api.event(involved, type_, reason, message, self.clock(), COMPONENT)


def _pod_failure(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "pod")
    found: list[str] = []
    if status.get("reason"):  # Evicted, DeadlineExceeded, NodeLost…
        found.append(f"pod {name}: {status['reason']}: {status.get('message') or ''}".rstrip(": "))
    for container in status.get("containerStatuses") or ():
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated and (terminated.get("exitCode") or 0) != 0:
            detail = (
                f"pod {name}: {terminated.get('reason') or 'Error'} (exit code {terminated.get('exitCode')})"
            )
            if terminated.get("message"):
                detail += f": {' '.join(str(terminated['message']).split())[:200]}"
            found.append(detail)
    return found


def _ns(run: Backup | Restore) -> str:
    return run.metadata.namespace or "default"


__all__ = ["COMPONENT", "OperatorConfig", "RunController", "job_outcome"]
