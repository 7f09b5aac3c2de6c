"""Proof that a backup is complete before it is called ``Complete``: every file there, at its size.

The list of files comes from the dump's manifest (``tibackup-manifest.json``: every data and schema
file with its stored size), or from the dump's own records when the manifest was turned off; the
``metadata`` completion marker must be there too. ``commitTs`` is the ``Pos:`` line of ``metadata``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from tibackup.dump.metadata import MANIFEST_NAME, METADATA_NAME
from tibackup.dump.writer import FileRecord
from tibackup.errors import StorageError
from tibackup.storage.base import Storage

_POS = re.compile(r"^\s*Pos:\s*(\S*)\s*$", re.MULTILINE)


class IncompleteBackup(StorageError):
    reason = "VerifyFailed"


def commit_ts(metadata: bytes) -> str:
    """The ``Pos:`` of Dumpling's ``metadata`` (a binlog position, or the TSO on TiDB); '' if none."""
    match = _POS.search(metadata.decode("utf-8", "replace"))
    return match.group(1) if match else ""


def expected_from_manifest(manifest: bytes) -> dict[str, int | None]:
    """name → stored size of every file the manifest lists, plus the manifest and ``metadata``."""
    try:
        doc = json.loads(manifest)
        files: dict[str, int | None] = {str(f["name"]): int(f["size"]) for f in doc["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompleteBackup(
            f"the backup's {MANIFEST_NAME} cannot be read ({exc}): run the backup again"
        ) from None
    files[MANIFEST_NAME] = len(manifest)
    files[METADATA_NAME] = None
    return files


def expected_from_records(records: Iterable[FileRecord]) -> dict[str, int | None]:
    files: dict[str, int | None] = {r.name: r.size for r in records}
    files[METADATA_NAME] = None
    return files


def expected_files(storage: Storage, records: Iterable[FileRecord] = ()) -> dict[str, int | None]:
    """What the finished dump in ``storage`` must hold: its manifest's list, or ``records``."""
    if storage.exists(MANIFEST_NAME):
        return expected_from_manifest(storage.read(MANIFEST_NAME))
    return expected_from_records(records)


def verify_complete(storage: Storage, expected: Mapping[str, int | None]) -> int:
    """Check every expected file is in ``storage`` with its size (None: any size); return the bytes
    stored there in all. Raise ``IncompleteBackup`` naming the first missing or short files."""
    listing = {info.name: info.size for info in storage.list()}
    missing = sorted(name for name in expected if name not in listing)
    wrong = sorted(
        f"{name} ({listing[name]} bytes, expected {size})"
        for name, size in expected.items()
        if size is not None and name in listing and listing[name] != size
    )
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} file(s) missing, e.g. {', '.join(missing[:3])}")
        if wrong:
            problems.append(f"{len(wrong)} file(s) of the wrong size, e.g. {', '.join(wrong[:3])}")
        raise IncompleteBackup(
            f"the backup at {storage.url} is incomplete: {'; '.join(problems)}; run the backup again"
        )
    return sum(listing.values())
