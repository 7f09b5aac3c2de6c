"""YAML/JSON in and out: parse resources with one-line errors naming the field, and dump them back."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tibackup.errors import InvalidSpecError
from tibackup.resources import defaults
from tibackup.resources.apigroups import API_VERSIONS
from tibackup.resources.backup import Backup
from tibackup.resources.backup_schedule import BackupSchedule

Resource = Backup | BackupSchedule
M = TypeVar("M", bound=BaseModel)
KINDS: dict[str, type[Backup] | type[BackupSchedule]] = {"Backup": Backup, "BackupSchedule": BackupSchedule}


def load_resources(yaml_text: str) -> list[Resource]:
    """Every Backup and BackupSchedule in a (multi-document) YAML text, in order; empty documents skipped."""
    try:
        documents = list(yaml.safe_load_all(yaml_text))
    except yaml.YAMLError as exc:
        raise InvalidSpecError("yaml", f"not valid YAML ({_one_line(exc)}); fix the syntax") from exc
    resources: list[Resource] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        try:
            resources.append(parse_resource(document))
        except InvalidSpecError as exc:
            if len(documents) > 1:
                name = _name_of(document)
                raise InvalidSpecError(exc.field, f"{exc.message} (document {index + 1}{name})") from exc
            raise
    return resources


def parse_resource(data: Any) -> Resource:
    """One resource from its decoded YAML/JSON form (camelCase keys, as kubectl shows them)."""
    if not isinstance(data, Mapping):
        raise InvalidSpecError("(document)", "expected a mapping with apiVersion, kind, metadata and spec")
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if kind not in KINDS:
        raise InvalidSpecError("kind", f"{kind!r} is not handled by tibackup; use Backup or BackupSchedule")
    if api_version not in API_VERSIONS:
        raise InvalidSpecError(
            "apiVersion", f"{api_version!r} is not supported; use {' or '.join(API_VERSIONS)}"
        )
    return validate_model(KINDS[kind], data)


def validate_model(model: type[M], data: Any, prefix: str = "") -> M:
    """``model.model_validate(data)`` by the Kubernetes spellings only, errors as InvalidSpecError."""
    try:
        return model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        errors = exc.errors()
        field, message = _describe(errors[0], model)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise InvalidSpecError(_join(prefix, field), message) from None


def to_dict(resource: BaseModel) -> dict[str, Any]:
    """The resource as Kubernetes JSON: camelCase keys, RFC 3339 times, None and empty status left out."""
    data = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    if data.get("status") == {}:
        del data["status"]
    return data


def dump_yaml(resources: BaseModel | list[BaseModel]) -> str:
    """YAML text of one resource or several (as a multi-document stream)."""
    items = resources if isinstance(resources, list) else [resources]
    return yaml.safe_dump_all([to_dict(item) for item in items], sort_keys=False, default_flow_style=False)


def _describe(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    loc = error["loc"]
    field = _path(loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key in defaults.UNSUPPORTED_STORAGE:
            return field, "this storage is not supported by tibackup: use s3"
        if key in defaults.UNSUPPORTED_TOOLS:
            return field, (
                "not supported by tibackup, which makes logical backups with its Dumpling-compatible "
                "dumper: remove it (use dumpling.options)"
            )
        known = _known_fields(model, loc[:-1])
        hint = difflib.get_close_matches(key, known, n=1)
        suggestion = f"did you mean {hint[0]!r}? " if hint else ""
        return field, f"unknown field; {suggestion}known fields here: {', '.join(sorted(known))}"
    if kind == "missing":
        return field, "required field is missing; add it"
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", ""))
        if loc and loc[-1] == "backupType":
            return field, (
                f"{value!r} is not supported: tibackup makes full backups only "
                "(choose tables with spec.tableFilter)"
            )
        case_hint = " (values are case-sensitive)" if str(value).lower() in expected.lower() else ""
        return field, f"{value!r} is not allowed{case_hint}; use one of {expected}"
    msg = error["msg"]
    return field, f"{msg[:1].lower()}{msg[1:]} (got {value!r}); fix the value"


def _known_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Aliases of the fields of the model found at ``loc`` inside ``model`` (best effort, for hints)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or isinstance(part, int):
            continue
        nested: type[BaseModel] | None = None
        for name, info in current.model_fields.items():
            if part in (name, info.alias):
                nested = _model_in(info.annotation)
        current = nested
    if current is None:
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = str(part)
        else:
            text += f".{part}"
    return text or "(document)"


def _join(prefix: str, field: str) -> str:
    if not prefix:
        return field
    return prefix if field == "(document)" else f"{prefix}.{field}"


def _name_of(document: Any) -> str:
    if isinstance(document, Mapping):
        meta = document.get("metadata")
        if isinstance(meta, Mapping) and meta.get("name"):
            return f", {document.get('kind')} {meta['name']}"
    return ""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
