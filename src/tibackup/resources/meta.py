"""The shared base of the resource models: aliases, strictness, time fields, a minimal ObjectMeta."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

API_GROUP: Final = "pingcap.com"
API_VERSION: Final = "pingcap.com/v1alpha1"

# Names whose Kubernetes spelling is not plain camelCase of the Python name.
_ALIASES = {
    "from_": "from",
    "tikv_gc_life_time": "tikvGCLifeTime",
    "use_kms": "useKMS",
    "volume_az": "volumeAZ",
    "tolerate_single_tikv_outage": "tolerateSingleTiKVOutage",
}


def kube_alias(name: str) -> str:
    """The JSON/YAML spelling of a model field, exactly as TiDB Operator's Go types spell it."""
    return _ALIASES.get(name) or to_camel(name)


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """Kubernetes ``metav1.Time`` text: UTC, whole seconds, ``Z`` suffix."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


# A timestamp as Kubernetes stores it: always UTC, written as RFC 3339 with whole seconds.
KubeTime = Annotated[
    datetime, AfterValidator(utc), PlainSerializer(rfc3339, return_type=str, when_used="json")
]


class SpecModel(BaseModel):
    """User-written fields: unknown keys are an error, so a typo never passes unnoticed."""

    model_config = ConfigDict(
        alias_generator=kube_alias,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class StatusModel(BaseModel):
    """Fields written by tibackup itself: unknown keys (from a newer version) are ignored."""

    model_config = ConfigDict(
        alias_generator=kube_alias,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        validate_assignment=True,  # so an assigned naive time still becomes UTC
    )


class OwnerReference(StatusModel):
    api_version: str
    kind: str
    name: str
    uid: str = ""
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(StatusModel):
    """The part of Kubernetes' ObjectMeta tibackup reads or writes; the API server owns the rest."""

    name: str = ""
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    creation_timestamp: KubeTime | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    deletion_timestamp: KubeTime | None = None
    resource_version: str | None = None
    generation: int | None = None


JSONObject = dict[str, Any]
