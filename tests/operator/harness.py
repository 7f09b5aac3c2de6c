"""The stand-ins of an operator test: an API server (the kmock emulator) and a kubelet.

This is an emulator, not a cluster: kmock stores and serves objects over the real Kubernetes HTTP API,
validates nothing and runs nothing. ``ApiServer`` adds the few things a real API server does on create
that the operator relies on (uid, creationTimestamp, generateName, a resourceVersion). ``Kubelet`` plays the node: when a
Job appears it runs the Job's container command as a local process, with the environment resolved
from the Secrets the Job references (secretKeyRef) and its volumes mapped to local folders, then
records the outcome in the Job's status and a Pod, as the Job controller would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import os
import sys
import uuid
from pathlib import Path
from typing import Any, ClassVar

import aiohttp.web
import kmock
import yaml

from tibackup.operator.kube import JOBS, PODS, SECRETS, KubeApi

ROOT = Path(__file__).resolve().parents[2]
# Who is calling: the test itself and the kubelet stand-in (no RBAC), the operator, a Job's Pod.
ADMIN_TOKEN, OPERATOR_TOKEN, JOB_TOKEN = "test-token", "operator-token", "job-token"
# TiDB Operator's manifests/backup/backup-rbac.yaml Role, the one the seed tells users to apply.
UPSTREAM_BACKUP_RBAC = ROOT / "tests" / "data" / "upstream" / "backup-rbac.yaml"


def resources(group: str = "pingcap.com") -> dict[str, kmock.ResourceInfo]:
    """The API the operator needs, with tibackup's kinds in ``group``; Backups and Restores have no status
    subresource (as the shipped CRDs), BackupSchedules have one."""
    return {
        "apiextensions.k8s.io/v1/customresourcedefinitions": kmock.ResourceInfo(
            kind="CustomResourceDefinition", namespaced=False, verbs={"list", "watch", "get"}
        ),
        "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}),
        f"{group}/v1alpha1/backups": kmock.ResourceInfo(
            kind="Backup", namespaced=True, singular="backup", shortnames={"bk"},
            verbs={"list", "watch", "get", "patch", "create", "delete", "update"},
        ),
        f"{group}/v1alpha1/backupschedules": kmock.ResourceInfo(
            kind="BackupSchedule", namespaced=True, singular="backupschedule", shortnames={"bks"},
            verbs={"list", "watch", "get", "patch", "create", "delete", "update"}, subresources={"status"},
        ),
        f"{group}/v1alpha1/restores": kmock.ResourceInfo(
            kind="Restore", namespaced=True, singular="restore", shortnames={"rt"},
            verbs={"list", "watch", "get", "patch", "create", "delete", "update"},
        ),
        "batch/v1/jobs": kmock.ResourceInfo(
            kind="Job", namespaced=True, verbs={"list", "watch", "get", "patch", "create", "delete"},
            subresources={"status"},
        ),
        "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True, verbs={"list", "watch", "get", "create"}),
        "v1/persistentvolumeclaims": kmock.ResourceInfo(
            kind="PersistentVolumeClaim", namespaced=True, verbs={"list", "get", "create", "delete"}
        ),
        "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True, verbs={"get", "list", "create"}),
        "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True, verbs={"create", "list", "patch"}),
    }  # fmt: skip


RESOURCES = resources()
Rule = tuple[frozenset[str], frozenset[str], frozenset[str]]  # apiGroups, resources, verbs


def role_rules(path: Path, kind: str = "Role", group: str | None = None) -> list[Rule]:
    """The rules of the Role (or ClusterRole) in a manifest; ``group`` replaces pingcap.com (an overlay)."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == kind:
            return [
                (frozenset(group if group and g == "pingcap.com" else g for g in r["apiGroups"]),
                 frozenset(r["resources"]), frozenset(r["verbs"]))
                for r in doc["rules"]
            ]  # fmt: skip
    raise AssertionError(f"no {kind} in {path}")


def allowed(rules: list[Rule], group: str, resource: str, verb: str) -> bool:
    return any(
        (group in groups or "*" in groups)
        and (resource in names or "*" in names)
        and (verb in verbs or "*" in verbs)
        for groups, names, verbs in rules
    )


class ApiServer(kmock.KubernetesEmulator):
    """The emulator plus what an API server does that the operator and its Jobs rely on.

    - stamps uid, creationTimestamp, generateName and a resourceVersion on every new object;
    - serves PUT (the verb ``update``) as a replacement of the object;
    - status subresources: a write to ``…/status`` of a resource without one is 404; where there is
      one, a PUT of the object leaves status alone;
    - RBAC: the operator's requests are checked against deploy/operator/rbac.yaml's ClusterRole, a
      Job's against ``job_rules`` (by default TiDB Operator's backup-rbac.yaml Role); a request the
      rules do not allow is 403 and recorded in ``forbidden``.
    """

    operator_rules: ClassVar[list[Rule]] = []  # set per instance by the fixtures
    job_rules: ClassVar[list[Rule]] = []
    forbidden: ClassVar[list[str]] = []

    async def _handle(self, request: kmock.Request) -> Any:
        if "forbidden" not in vars(self):
            self.forbidden = []
        if request.resource is not None and request.resource.plural:
            denied = self._forbidden(request)
            if denied:
                self.forbidden.append(denied)
                return aiohttp.web.json_response(
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                     "code": 403, "message": denied}, status=403)  # fmt: skip
            subresources = self._subresources(request)
            if request.subresource == "status" and "status" not in subresources:
                return aiohttp.web.json_response(
                    {"kind": "Status", "code": 404, "message": "no status"}, status=404
                )
            if request.method == kmock.method.PUT and request.name:
                return await self._replace(request, keep_status="status" in subresources)
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            meta.setdefault("uid", str(uuid.uuid4()))
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta.setdefault("creationTimestamp", stamp)
            # kopf guards its JSON patches with a test of resourceVersion. The emulator cannot bump it
            # on every write without its watch events going stale, so it stays fixed per object.
            meta.setdefault("resourceVersion", "1")
            if request.namespace and not meta.get("namespace"):
                meta["namespace"] = request.namespace
        return await super()._handle(request)

    def _subresources(self, request: kmock.Request) -> set[str]:
        info = self.resources.get(request.resource)
        return set(getattr(info, "subresources", None) or ())

    def _forbidden(self, request: kmock.Request) -> str | None:
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        rules = {OPERATOR_TOKEN: self.operator_rules, JOB_TOKEN: self.job_rules}.get(token)
        if rules is None:
            return None
        res = request.resource
        verb = _verb(request)
        name = f"{res.plural}/{request.subresource}" if request.subresource else str(res.plural)
        if allowed(rules, res.group or "", name, verb):
            return None
        who = "the operator" if token == OPERATOR_TOKEN else "a backup Job"
        return f"{who} may not {verb} {name} in group {res.group or 'core'!r}"

    async def _replace(self, request: kmock.Request, keep_status: bool) -> Any:
        """PUT: the stored object becomes the request's (its status kept where a subresource owns it)."""
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                return aiohttp.web.json_response(
                    {"kind": "Status", "code": 404, "message": "not found"}, status=404
                )
            stored = self.objects[key]
            old = dict(stored.raw)
            new = dict(request.data or {})
            if keep_status:
                new["status"] = old.get("status")
            stored.patch(_merge_patch(old, new))
            raw = stored.raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)


def _verb(request: kmock.Request) -> str:
    action = request.action
    if request.method == kmock.method.PUT:
        return "update"
    return {
        kmock.action.WATCH: "watch", kmock.action.LIST: "list", kmock.action.FETCH: "get",
        kmock.action.CREATE: "create", kmock.action.UPDATE: "patch", kmock.action.DELETE: "delete",
    }.get(action, str(request.method).lower())  # fmt: skip


def _merge_patch(old: Any, new: Any) -> Any:
    """The merge patch that turns ``old`` into ``new``."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch = {k: None for k in old if k not in new}
    for k, v in new.items():
        patch[k] = _merge_patch(old.get(k), v) if isinstance(old.get(k), dict) and isinstance(v, dict) else v
    return patch


def kubeconfig(path: Path, server: str, token: str = JOB_TOKEN) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": token}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "test"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Kubelet:
    """Runs every new Job once, as a local process, and writes the outcome back through the API."""

    def __init__(self, api: KubeApi, workdir: Path, kubeconfig_path: Path, namespace: str) -> None:
        self.api = api
        self.workdir = workdir
        self.kubeconfig = kubeconfig_path
        self.namespace = namespace
        self.seen: set[str] = set()
        self.kill: dict[str, str] = {}  # job name → container termination reason (e.g. OOMKilled)
        self.logs: dict[str, str] = {}
        self.exit_codes: dict[str, int] = {}
        self.pids: dict[str, int] = {}  # job name → its process (a test may kill it, as a node would)
        self.running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            jobs = await asyncio.to_thread(self.api.list, JOBS, self.namespace)
            for job in jobs:
                key = job["metadata"].get("uid") or job["metadata"]["name"]  # a Job made again runs again
                if key not in self.seen and not job.get("status"):
                    self.seen.add(key)
                    task = asyncio.create_task(self._run_job(job))
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
            await asyncio.sleep(0.2)

    async def _run_job(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        ns = job["metadata"]["namespace"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        start = _now()
        await self._patch_status(ns, name, {"active": 1, "startTime": start})
        if name in self.kill:
            await self._finish(job, exit_code=137, reason=self.kill[name], start=start)
            return
        env = await asyncio.to_thread(self._environment, job, container)
        command = [sys.executable, "-m", "tibackup.cli.main", *container["command"][1:]]
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        self.pids[name] = proc.pid
        out, _ = await proc.communicate()
        self.logs[name] = out.decode(errors="replace")
        code = proc.returncode or 0
        self.exit_codes[name] = code
        await self._finish(job, exit_code=code, reason="Completed" if code == 0 else "Error", start=start)

    def _environment(self, job: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        ns = job["metadata"]["namespace"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TIBACKUP_", "KUBERNETES_"))}
        env["KUBECONFIG"] = str(self.kubeconfig)
        mounts = self._mounts(job, container)
        for item in container.get("env") or ():
            if "value" in item:
                value = str(item["value"])
                for mount_path, local in mounts.items():
                    if value == mount_path or value.startswith(mount_path + "/"):
                        value = str(local) + value[len(mount_path) :]
                env[item["name"]] = value
                continue
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                continue
            secret = self.api.get(SECRETS, ns, ref["name"])
            data = (secret or {}).get("data") or {}
            if ref["key"] in data:
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                raise AssertionError(
                    f"the Pod would not start: Secret {ref['name']} key {ref['key']} missing"
                )
        return env

    def _mounts(self, job: dict[str, Any], container: dict[str, Any]) -> dict[str, Path]:
        """Mount paths → local folders: one per PVC (kept across Jobs) or per Job for other volumes."""
        volumes = {v["name"]: v for v in job["spec"]["template"]["spec"].get("volumes") or ()}
        mapped: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or ():
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                local = self.workdir / "pvc" / volume["persistentVolumeClaim"]["claimName"]
            else:
                local = self.workdir / "jobs" / job["metadata"]["name"] / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            mapped[mount["mountPath"]] = local
        return mapped

    async def _finish(self, job: dict[str, Any], exit_code: int, reason: str, start: str) -> None:
        name, ns = job["metadata"]["name"], job["metadata"]["namespace"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-{uuid.uuid4().hex[:5]}", "namespace": ns,
                         "labels": {"job-name": name, **(job["spec"]["template"]["metadata"].get("labels") or {})}},
            "spec": job["spec"]["template"]["spec"],
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [{"name": "tibackup", "state": {"terminated": {
                    "exitCode": exit_code, "reason": reason, "startedAt": start, "finishedAt": _now()}}}],
            },
        }  # fmt: skip
        await asyncio.to_thread(self.api.create, PODS, ns, pod)
        if exit_code == 0:
            status = {"active": None, "succeeded": 1, "completionTime": _now(),
                      "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": _now()}]}  # fmt: skip
        else:
            status = {"active": None, "failed": 1, "conditions": [{
                "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit", "lastTransitionTime": _now()}]}  # fmt: skip
        await self._patch_status(ns, name, status)

    async def _patch_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the Job may be gone (deleted with its Backup)
            await asyncio.to_thread(self.api.patch, JOBS, ns, name, {"status": status}, "status")


class AsyncKube:
    """KubeApi's verbs as coroutines (run in a thread)."""

    def __init__(self, api: KubeApi) -> None:
        self.sync = api

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(fn, *args, **kwargs)

        return call


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` (sync, run in a thread) until it returns something truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
