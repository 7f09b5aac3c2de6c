"""The Job state machine the operator runs for Backups and Restores alike, on an in-memory API (no kopf):
a new resource is Scheduled and gets its Job, a Job that vanished is JobLost, a finished Job of a run
that has not started is waited for, a re-run resets the status, an ended Job of an unfinished run is
JobFailed, a late event of a replaced Job changes nothing."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tibackup.operator.backups import BackupController, OperatorConfig
from tibackup.operator.kube import BACKUPS, JOBS, RESTORES, Kind
from tibackup.operator.restores import RestoreController

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NS = "test1"


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """A JSON merge patch (RFC 7386), as the API server applies it."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class MemoryApi:
    """KubeApi's verbs over a dict: enough of an API server for the controllers' decisions."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[tuple[str, str, str]] = []  # (type, reason, object name)
        self.uids = itertools.count(1)

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind.plural, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None) -> list[Any]:
        return [copy.deepcopy(o) for (plural, ns, _), o in self.objects.items()
                if plural == kind.plural and ns == namespace
                and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in (labels or {}).items())]  # fmt: skip

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        key = (kind.plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            return None
        stored = copy.deepcopy(body)
        stored["metadata"]["uid"] = f"uid-{next(self.uids)}"
        stored["metadata"].setdefault("namespace", namespace)
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        merge(self.objects[(kind.plural, namespace, name)], patch)
        return copy.deepcopy(self.objects[(kind.plural, namespace, name)])

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        return self.objects.pop((kind.plural, namespace, name), None) is not None

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: datetime,
              component: str) -> None:  # fmt: skip
        self.events.append((type_, reason, involved["metadata"]["name"]))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


BACKUP_SPEC = {
    "from": {"host": "127.0.0.1", "port": 1, "user": "root", "secretName": "db"},
    "s3": {"provider": "ceph", "secretName": "s3", "endpoint": "http://127.0.0.1:1", "bucket": "bucket",
           "region": "us-east-1"},
    "tableFilter": ["db.*"],
}  # fmt: skip
RESTORE_SPEC = {
    "to": {"host": "127.0.0.1", "port": 1, "user": "root", "secretName": "db"},
    "s3": {"provider": "ceph", "secretName": "s3", "endpoint": "http://127.0.0.1:1", "bucket": "bucket",
           "region": "us-east-1", "path": "s3://bucket/backup-x/"},
}  # fmt: skip


class Case:
    """One kind's names: its collection, its Job's name, a valid spec and one that can never run."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.plural = BACKUPS if kind == "Backup" else RESTORES
        self.job = f"{kind.lower()}-x"
        self.spec = BACKUP_SPEC if kind == "Backup" else RESTORE_SPEC
        self.invalid_spec = {k: v for k, v in self.spec.items() if k != "s3"}
        # An accepted-but-unused upstream field of each kind (an IgnoredField warning).
        self.ignored = {"tikvGCLifeTime": "72h"} if kind == "Restore" else {"toolImage": "pingcap/dumpling"}

    def controller(self, api: MemoryApi) -> Any:
        make: Callable[..., Any] = BackupController if self.kind == "Backup" else RestoreController
        return make(api, OperatorConfig(image="registry.example.com/tibackup:test"), lambda: NOW)

    def create(self, api: MemoryApi, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
               annotations: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {
            "apiVersion": "pingcap.com/v1alpha1", "kind": self.kind,
            "metadata": {"name": "x", "namespace": NS, "annotations": annotations or {}},
            "spec": copy.deepcopy(spec if spec is not None else self.spec),
        }  # fmt: skip
        if status:
            body["status"] = status
        created = api.create(self.plural, NS, body)
        assert created is not None
        return created

    def body(self, api: MemoryApi) -> dict[str, Any]:
        found = api.get(self.plural, NS, "x")
        assert found is not None
        return found

    def status(self, api: MemoryApi) -> dict[str, Any]:
        return dict(self.body(api).get("status") or {})

    def finished_job(self, api: MemoryApi, outcome: str = "Failed") -> dict[str, Any]:
        annotation = (
            "tibackup.pingcap.com/backup" if self.kind == "Backup" else "tibackup.pingcap.com/restore"
        )
        component = "backup" if self.kind == "Backup" else "restore"
        job = {"metadata": {"name": self.job, "namespace": NS, "annotations": {annotation: "x"},
                            "labels": {"app.kubernetes.io/component": component}},
               "status": {"conditions": [{"type": outcome, "status": "True", "reason": "BackoffLimitExceeded",
                                          "message": "Job has reached the specified backoff limit"}]}}  # fmt: skip
        created = api.create(JOBS, NS, job)
        assert created is not None
        return created


@pytest.fixture(params=["Backup", "Restore"])
def case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param)


def phase(status: str, *conditions: str) -> dict[str, Any]:
    stamp = "2026-12-01T11:00:00Z"
    return {"phase": status, "conditions": [
        {"type": c, "status": "True", "lastTransitionTime": stamp, "reason": c, "message": c} for c in conditions]}  # fmt: skip


def test_new_resource_is_scheduled_once_and_gets_its_job(case: Case) -> None:
    api = MemoryApi()
    body = case.create(api, spec={**case.spec, **case.ignored})
    controller = case.controller(api)
    assert controller.ensure_job(body) is True
    status = case.status(api)
    assert status["phase"] == "Scheduled"
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [("Scheduled", "JobCreated")]
    job = api.get(JOBS, NS, case.job)
    assert job is not None and job["metadata"]["ownerReferences"][0]["kind"] == case.kind
    assert [e for e in api.events if e[1] == "IgnoredField"] == [("Warning", "IgnoredField", "x")]
    assert api.events[-1] == ("Normal", "JobCreated", "x")
    # The next event (resume, update) of the Scheduled resource with its Job: nothing new.
    assert controller.ensure_job(case.body(api)) is True
    assert len(api.reasons()) == 2 and len(api.list(JOBS, NS)) == 1


def test_finished_job_of_a_run_not_started_is_waited_for(case: Case) -> None:
    api = MemoryApi()
    body = case.create(api)
    case.finished_job(api)  # the previous run's, still being deleted
    assert case.controller(api).ensure_job(body) is False
    assert "status" not in case.body(api) and api.events == []


def test_running_resource_without_job_is_job_lost(case: Case) -> None:
    api = MemoryApi()
    body = case.create(api, status=phase("Running", "Scheduled", "Running"))
    assert case.controller(api).ensure_job(body) is True
    status = case.status(api)
    assert status["phase"] == "Failed"
    failed = status["conditions"][-1]
    assert failed["reason"] == "JobLost" and f"the Job {case.job} of this" in failed["message"]
    assert ("Warning", "JobLost", "x") in api.events
    assert api.get(JOBS, NS, case.job) is None  # no new Job: nothing is retried on its own


def test_backup_in_prepare_without_job_is_job_lost() -> None:
    api, case = MemoryApi(), Case("Backup")
    body = case.create(api, status=phase("Prepare", "Scheduled", "Prepare"))
    case.controller(api).ensure_job(body)
    assert case.status(api)["conditions"][-1]["reason"] == "JobLost"


def test_spec_that_can_never_run_is_invalid_without_a_job(case: Case) -> None:
    api = MemoryApi()
    body = case.create(api, spec=case.invalid_spec)
    controller = case.controller(api)
    assert controller.ensure_job(body) is True
    status = case.status(api)
    assert status["phase"] == "Invalid" and status["conditions"][-1]["reason"] == "InvalidSpec"
    assert api.events == [("Warning", "InvalidSpec", "x")]
    assert api.list(JOBS, NS) == []
    controller.ensure_job(case.body(api))  # already Invalid: no second event
    assert len(api.events) == 1


def test_rerun_of_a_failed_run_replaces_its_job(case: Case) -> None:
    api = MemoryApi()
    annotations = {"tibackup.pingcap.com/rerun": "t1"}
    body = case.create(api, status=phase("Failed", "Scheduled", "Failed"), annotations=annotations)
    old = case.finished_job(api)
    assert case.controller(api).ensure_job(body) is True
    status = case.status(api)
    assert status["rerunToken"] == "t1" and status["phase"] == "Scheduled"
    assert [c["type"] for c in status["conditions"]] == ["Scheduled"]
    job = api.get(JOBS, NS, case.job)
    assert job is not None and job["metadata"]["uid"] != old["metadata"]["uid"]
    assert api.reasons() == ["RerunRequested", "JobCreated"]


def test_rerun_of_a_complete_run_is_refused_with_a_warning(case: Case) -> None:
    api = MemoryApi()
    annotations = {"tibackup.pingcap.com/rerun": "t1"}
    body = case.create(api, status=phase("Complete", "Scheduled", "Complete"), annotations=annotations)
    assert case.controller(api).ensure_job(body) is True
    status = case.status(api)
    assert status["rerunToken"] == "t1" and status["phase"] == "Complete"
    assert api.events == [("Warning", "RerunRefused", "x")]
    assert api.list(JOBS, NS) == []


def test_failed_job_of_an_unfinished_run_fails_it(case: Case) -> None:
    api = MemoryApi()
    case.create(api, status=phase("Running", "Scheduled", "Running"))
    job = case.finished_job(api)
    case.controller(api).job_changed(job)
    failed = case.status(api)["conditions"][-1]
    assert (failed["type"], failed["reason"]) == ("Failed", "JobFailed")
    assert f"Job {case.job} failed: BackoffLimitExceeded" in failed["message"]
    assert ("Warning", "JobFailed", "x") in api.events


def test_late_event_of_a_replaced_job_changes_nothing(case: Case) -> None:
    api = MemoryApi()
    case.create(api, status=phase("Running", "Scheduled", "Running"))
    job = case.finished_job(api)
    api.delete(JOBS, NS, case.job)
    case.finished_job(api, outcome="Complete")  # the re-run's Job, same name, new uid
    case.controller(api).job_changed(job)
    assert case.status(api)["phase"] == "Running" and api.events == []


def test_job_of_a_finished_run_changes_nothing(case: Case) -> None:
    api = MemoryApi()
    case.create(api, status=phase("Complete", "Scheduled", "Complete"))
    case.controller(api).job_changed(case.finished_job(api))
    assert case.status(api)["phase"] == "Complete" and api.events == []
