"""A small JSON client of the Kubernetes API, shared by the operator and the Jobs it starts.

The official client's typed models are not used: tibackup builds its manifests as plain dicts (the
same shapes kubectl shows), so this client only adds authentication and TLS (from the official client's
configuration loaders: in-cluster service account or kubeconfig) and turns HTTP errors into exceptions.
Patches are JSON merge patches, which every API server and emulator understands the same way.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tibackup.errors import TibackupError, UsageError
from tibackup.resources.apigroups import GROUPS, PINGCAP_GROUP, VERSION
from tibackup.resources.meta import rfc3339

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_UPDATE_ATTEMPTS = 5
MERGE_PATCH = "application/merge-patch+json"
# The API group of the Backups this process serves: the operator's --api-group, passed on to its Jobs.
ENV_API_GROUP = "TIBACKUP_API_GROUP"
SERVED = "(served)"  # Kind.group of tibackup's own kinds: whatever group is served
_served_group = [os.environ.get(ENV_API_GROUP) or PINGCAP_GROUP]


def api_group() -> str:
    """The group of tibackup's kinds in this process (pingcap.com unless --api-group/$TIBACKUP_API_GROUP)."""
    return _served_group[0]


def set_api_group(group: str) -> None:
    if group not in GROUPS:
        raise UsageError(f"--api-group {group!r} is not one of tibackup's groups; use {' or '.join(GROUPS)}")
    _served_group[0] = group


class KubeError(TibackupError):
    """The Kubernetes API refused a request."""

    reason = "KubernetesAPIError"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Kind:
    """Where a resource lives in the API: ``/api/v1`` or ``/apis/<group>/<version>``, and its plural."""

    group: str  # "" for the core API, SERVED for tibackup's kinds
    version: str
    plural: str

    @property
    def api_group(self) -> str:
        return api_group() if self.group == SERVED else self.group

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        group = self.api_group
        base = f"/api/{self.version}" if not group else f"/apis/{group}/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if subresource is not None:
            base += f"/{subresource}"
        return base


BACKUPS = Kind(SERVED, VERSION, "backups")
SCHEDULES = Kind(SERVED, VERSION, "backupschedules")
RESTORES = Kind(SERVED, VERSION, "restores")
CRDS = Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions")
JOBS = Kind("batch", "v1", "jobs")
PODS = Kind("", "v1", "pods")
PVCS = Kind("", "v1", "persistentvolumeclaims")
SECRETS = Kind("", "v1", "secrets")
EVENTS = Kind("", "v1", "events")


def load_configuration(kubeconfig: str | None = None) -> k8s_client.Configuration:
    """In-cluster service account when running in a Pod, else the kubeconfig (``--kubeconfig`` or $KUBECONFIG)."""
    configuration = k8s_client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return configuration
        except k8s_config.ConfigException:
            log.debug("in-cluster configuration not usable; trying kubeconfig")
    try:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (k8s_config.ConfigException, OSError) as exc:
        raise TibackupError(
            f"cannot reach Kubernetes: no in-cluster service account and no usable kubeconfig ({exc}); "
            "run inside a Pod or pass --kubeconfig",
            reason="KubernetesConfig",
        ) from exc
    return configuration


class KubeApi:
    """JSON requests to one API server. Thread-safe enough for kopf's sync handlers (one pool per client)."""

    def __init__(self, configuration: k8s_client.Configuration, timeout: float = 30.0) -> None:
        self._client = k8s_client.ApiClient(configuration)
        self._timeout = timeout

    @classmethod
    def for_host(cls, host: str, token: str | None = None) -> KubeApi:
        """A client of an API server at ``host`` (tests: the API emulator) without kubeconfig."""
        configuration = k8s_client.Configuration()
        configuration.host = host.rstrip("/")
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return cls(configuration)

    @property
    def host(self) -> str:
        return str(self._client.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> JSON | None:
        """The decoded response; None for 404 on GET/DELETE; KubeError for every other failure."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        method_, url, header_params, data = serialized[0], serialized[1], serialized[2], serialized[3]
        try:
            response = self._client.call_api(
                method_, url, header_params=header_params, body=data, _request_timeout=self._timeout
            )
            response.read()
        except k8s_client.ApiException as exc:
            raise KubeError(exc.status or 0, f"{method} {path}: {exc.reason}") from exc
        except Exception as exc:  # urllib3 connection errors and the like
            raise KubeError(0, f"{method} {path}: cannot reach the Kubernetes API ({exc})") from exc
        status = response.status
        text = response.data.decode("utf-8", "replace") if response.data else ""
        if status == 404 and method in ("GET", "DELETE"):
            return None
        if status >= 400:
            raise KubeError(status, f"{method} {path}: HTTP {status}: {_status_message(text)}")
        return json.loads(text) if text else {}

    # Convenience verbs over Kind.
    def get(self, kind: Kind, namespace: str | None, name: str) -> JSON | None:
        return self.request("GET", kind.path(namespace, name))

    def list(self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None) -> list[JSON]:
        """Objects of ``kind``; the label filter is also applied here, whatever the server did with it."""
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        found = self.request("GET", kind.path(namespace), query=query) or {}
        items = [item for item in found.get("items") or [] if isinstance(item, dict)]
        if labels:
            items = [i for i in items if _has_labels(i, labels)]
        return items

    def create(self, kind: Kind, namespace: str, body: JSON) -> JSON | None:
        """The created object, or None when one of that name exists already (409)."""
        try:
            return self.request("POST", kind.path(namespace), body)
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise

    def patch(
        self, kind: Kind, namespace: str, name: str, body: JSON, subresource: str | None = None
    ) -> JSON:
        return (
            self.request("PATCH", kind.path(namespace, name, subresource), body, content_type=MERGE_PATCH)
            or {}
        )

    def update(self, kind: Kind, namespace: str, name: str, change: Callable[[JSON], None]) -> JSON:
        """Read the object, apply ``change`` to it and write it back (PUT, the verb ``update``), again on
        a conflict. The one write upstream's backup-rbac.yaml Role gives a backup Job."""
        for _ in range(_UPDATE_ATTEMPTS - 1):
            try:
                return self._update_once(kind, namespace, name, change)
            except KubeError as exc:
                if exc.status != 409:  # someone else wrote in between: read again
                    raise
        return self._update_once(kind, namespace, name, change)

    def _update_once(self, kind: Kind, namespace: str, name: str, change: Callable[[JSON], None]) -> JSON:
        body = self.get(kind, namespace, name)
        if body is None:
            raise KubeError(404, f"{kind.plural} {namespace}/{name} not found")
        change(body)
        return self.request("PUT", kind.path(namespace, name), body) or {}

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """True when deleted (or being deleted); False when it was not there. Dependents go in the background."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        return self.request("DELETE", kind.path(namespace, name), body) is not None

    def event(
        self, involved: JSON, type_: str, reason: str, message: str, now: datetime, component: str
    ) -> None:
        """A core/v1 Event about ``involved`` (never raises: events are best effort)."""
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        stamp = rfc3339(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'tibackup')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.request("POST", EVENTS.path(namespace), body)
        except KubeError as exc:
            log.warning("could not record event %s on %s: %s", reason, meta.get("name"), exc.message)


def _has_labels(item: JSON, labels: dict[str, str]) -> bool:
    have = (item.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def _status_message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"]).splitlines()[0][:300]
    return " ".join(text.split())[:300]
