"""The manifest's file checksums: which hash each of its field names means (the one place that says it).

A dump writes one checksum field per file in ``tibackup-manifest.json``, named after its hash: ``xxh128``
(XXH3-128, the default: what ``xxh128sum`` prints) or ``sha256`` (``--manifest-checksum sha256``, and
every backup written before XXH3). Whatever reads or compares a file with its manifest entry asks this
module for the hash, so a backup of either kind is checked the same way (docs/load.md).

The checksum catches damaged or changed files, not malice: the manifest lies unsigned beside the
files, so a cryptographic hash buys no tamper protection, and XXH3 is ten times faster than sha256 with
SHA-NI (the hash was 17-22 % of a dump's CPU). Neither hash module is imported before a file is hashed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol


class Digest(Protocol):
    """What both hash objects offer (hashlib's and xxhash's)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class ManifestChecksum(StrEnum):
    """A manifest checksum, named by its field in the manifest's file entries."""

    XXH128 = "xxh128"
    SHA256 = "sha256"

    def new(self) -> Digest:
        """A fresh hash of this kind; its ``hexdigest()`` is what the manifest holds."""
        if self is ManifestChecksum.XXH128:
            import xxhash

            return xxhash.xxh3_128()
        import hashlib

        return hashlib.sha256()


def entry_checksum(entry: Mapping[str, object]) -> tuple[ManifestChecksum, str] | None:
    """The checksum a manifest file entry carries: its kind and (lower-case) hex digest; None when it
    has none this version knows (then only the size is checked, as for an entry without sha256)."""
    for kind in ManifestChecksum:  # xxh128 first: an entry carrying both is checked with the faster
        value = entry.get(kind.value)
        if value:
            return kind, str(value).lower()
    return None
