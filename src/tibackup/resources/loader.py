"""YAML/JSON in and out: parse resources with one-line errors naming the field, and dump them back."""

from __future__ import annotations

import difflib
import json
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
from tibackup.resources.restore import Restore

Resource = Backup | BackupSchedule | Restore
M = TypeVar("M", bound=BaseModel)
KINDS: dict[str, type[Backup] | type[BackupSchedule] | type[Restore]] = {
    "Backup": Backup, "BackupSchedule": BackupSchedule, "Restore": Restore,
}  # fmt: skip


# Limits of the Kubernetes API, so that what is accepted here would be accepted there too, and so that
# no input can make the state large or slow to read: a request body of at most 3 MiB (the API server's
# limit), an object of at most 1.5 MiB once stored (etcd's default request limit), and YAML aliases
# expanding a document to at most MAX_NODES values (a "billion laughs" of 1 KB expands to ~10^9).
MAX_TEXT_BYTES = 3 * 1024 * 1024
MAX_OBJECT_BYTES = 3 * 512 * 1024
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that measures each composed document, aliases expanded, before building it."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Count the values of ``root`` as the built document will hold them (an alias counts as a copy of
    what it names), without building anything; refuse a cycle or more than MAX_NODES."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = _children(node)
        if finished:
            on_path.discard(id(node))
            sizes[id(node)] = size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_NODES:
                raise InvalidSpecError(
                    "(document)",
                    f"YAML aliases (*name) expand it to more than {MAX_NODES} values; write the values out "
                    "instead of nesting aliases",
                )
            continue
        if id(node) in sizes:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise InvalidSpecError(
                    "(document)", "a YAML alias refers to its own anchor; remove the cycle"
                )
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_resources(yaml_text: str) -> list[Resource]:
    """Every Backup and BackupSchedule in a (multi-document) YAML text, in order; empty documents skipped.

    Refuses (InvalidSpecError) a text above MAX_TEXT_BYTES, a document whose aliases expand beyond
    MAX_NODES values and a resource above MAX_OBJECT_BYTES, before anything is built or stored."""
    if len(yaml_text) > MAX_TEXT_BYTES or len(yaml_text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise InvalidSpecError(
            "(document)",
            f"larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB, the Kubernetes API's limit; split it",
        )
    try:
        documents = list(yaml.load_all(yaml_text, Loader=_BoundedLoader))
    except yaml.YAMLError as exc:
        raise InvalidSpecError("yaml", f"not valid YAML ({_one_line(exc)}); fix the syntax") from exc
    except RecursionError:
        raise InvalidSpecError("yaml", "nested too deeply to be a resource; fix the document") from None
    resources: list[Resource] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        try:
            resource = parse_resource(document)
            check_object_size(resource)
            resources.append(resource)
        except InvalidSpecError as exc:
            if len(documents) > 1:
                name = _name_of(document)
                raise InvalidSpecError(exc.field, f"{exc.message} (document {index + 1}{name})") from exc
            raise
    return resources


def check_object_size(resource: BaseModel, text: str | None = None) -> None:
    """Refuse a resource whose stored form (``text``, else its JSON) is above MAX_OBJECT_BYTES."""
    size = len(text if text is not None else json.dumps(to_dict(resource)))
    if size > MAX_OBJECT_BYTES:
        raise InvalidSpecError(
            "(document)",
            f"{size / (1024 * 1024):.1f} MiB as stored, above the {MAX_OBJECT_BYTES / (1024 * 1024):.1f} MiB "
            "a Kubernetes object may hold; make it smaller",
        )


def parse_resource(data: Any) -> Resource:
    """One resource from its decoded YAML/JSON form (camelCase keys, as kubectl shows them)."""
    if not isinstance(data, Mapping):
        raise InvalidSpecError("(document)", "expected a mapping with apiVersion, kind, metadata and spec")
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if kind not in KINDS:
        raise InvalidSpecError("kind", f"{kind!r} is not handled by tibackup; use Backup, BackupSchedule or Restore")
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
        if loc and loc[-1] == "backupMode":
            return field, (
                f"{value!r} is not supported: tibackup makes logical snapshot backups only (log and "
                "volume-snapshot backups need TiDB Operator's BR)"
            )
        if loc and loc[-1] == "restoreMode":
            return field, (
                f"{value!r} is not supported: tibackup restores logical snapshot backups only (pitr and "
                "volume-snapshot restores need TiDB Operator's BR)"
            )
        if loc and loc[-1] == "backupType":
            return field, (
                f"{value!r} is not supported: tibackup makes full backups only "
                "(choose tables with spec.tableFilter)"
            )
        case_hint = " (values are case-sensitive)" if str(value).lower() in expected.lower() else ""
        return field, f"{value!r} is not allowed{case_hint}; use one of {expected}"
    msg = error["msg"]
    if kind == "value_error":  # raised by a model's own check, already worded for the user
        return field, str(error.get("ctx", {}).get("error", msg.removeprefix("Value error, ")))
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
