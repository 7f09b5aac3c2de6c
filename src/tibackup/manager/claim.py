"""A folder of its own for every Backup, claimed before the first byte is written (SPEC §4c).

The candidates are the seed's ``backup-<RFC 3339 UTC>``, then ``backup-<…>-2``, ``-3``, … (a suffix
only when that second's folder is taken). For each candidate folder F, under the bucket/prefix:

1. List F/. Any object there → taken: a folder that already holds files is never written into.
2. Gate: PUT ``F/tibackup-claim.json`` with ``If-None-Match: *``. 412 (or 409) → taken. Where the
   server enforces the condition atomically (AWS S3, SeaweedFS 4.x, MinIO; measured in
   docs/guarantees-folders.md) exactly one claimant gets past, and the others move on at once.
3. Evidence: PUT ``F/tibackup-claim.<token>.json``, a key nobody else writes (a random token).
4. List F/ again. Anything but the gate and my own evidence → lost: delete my evidence, move on.
   Otherwise F is mine, and only then is the first byte of the dump written.

Why this stays safe where the server ignores the condition (or checks it non-atomically, as
SeaweedFS before 4.17 did): suppose claimants A and B both won F. Each wrote its evidence before its
second listing, and a winner never deletes its evidence. Say A's evidence was stored first; B's
listing came after B's evidence, hence after A's, so it showed A's evidence and B lost. The only
assumption is that a listing shows every object whose PUT finished before it started (strong
read-after-write consistency: AWS S3 since December 2020, Ceph RGW, SeaweedFS, MinIO). Both may
lose the same round; they then try the next name after a short random pause.

A kept staged dump goes back to the folder its earlier run claimed (``reclaim``): the folder must hold
that Backup's own evidence (same namespace, name and uid), or be empty (then it is claimed afresh).

A run can be stopped (SIGTERM, SIGKILL, a killed Pod) between its gate and the status that records the
folder. So the caller records each candidate (``before_gate``) before its gate is written, and whoever
finds that record later (the run's own interruption handler, recovery, deletion, a re-run) calls
``release``: it deletes only claim objects whose document names this Backup, and the gate only when
nothing else is left, so a folder another Backup owns keeps everything it holds.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import tibackup
from tibackup.errors import StorageError
from tibackup.resources import Backup
from tibackup.resources.meta import rfc3339
from tibackup.storage import S3Options
from tibackup.storage.base import Storage

GATE_NAME = "tibackup-claim.json"
_EVIDENCE = re.compile(r"^tibackup-claim\.[0-9a-f]{16}\.json$")
MAX_CANDIDATES = 100  # folders tried for one start second before giving up


class FolderTaken(StorageError):
    reason = "FolderTaken"


def is_claim(name: str) -> bool:
    """A claim object at the top of a backup folder (the gate, or anyone's evidence)."""
    return name == GATE_NAME or bool(_EVIDENCE.match(name))


def claim_document(backup: Backup, started: datetime) -> dict[str, Any]:
    """Who claims the folder: enough for a human (and for ``reclaim``) to tell; each attempt adds its token."""
    meta = backup.metadata
    return {
        "tool": "tibackup",
        "version": tibackup.__version__,
        "namespace": meta.namespace,
        "name": meta.name,
        "uid": meta.uid,
        "started": rfc3339(started),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def claim_folder(
    root: Storage,
    candidates: Iterable[str],
    document: dict[str, Any],
    *,
    pause: Callable[[float], None] = time.sleep,
    before_gate: Callable[[str], None] = lambda folder: None,
) -> str:
    """The first candidate folder (relative to ``root``) this run wins; ``FolderTaken`` after
    ``MAX_CANDIDATES`` taken ones. ``before_gate(folder)`` runs before anything is written into a
    candidate: the caller records it durably there, so a run stopped mid-claim leaves no unknown folder."""
    tried: list[str] = []
    for folder in candidates:
        if len(tried) == MAX_CANDIDATES:
            break
        tried.append(folder)
        outcome = _try_claim(root, folder, document, before_gate)
        if outcome == "won":
            return folder
        if outcome == "contended":  # two claimants got past the gate: the server ignored the condition
            pause(random.uniform(0.0, 0.2))
    raise FolderTaken(
        f"no free backup folder under {root.url}: {len(tried)} folder(s) from {tried[0] if tried else '?'} on "
        "are taken by other backups; check for runaway backups writing to this bucket/prefix, then run it again"
    )


def reclaim(
    root: Storage, folder: str, document: dict[str, Any], before_gate: Callable[[str], None] = lambda f: None
) -> None:
    """Make sure ``folder`` (where a kept staged dump goes) belongs to the same Backup: its evidence
    names this Backup, or the folder is empty and is claimed now. Else ``FolderTaken``."""
    names = _names(root, folder)
    if not names and _try_claim(root, folder, document, before_gate) == "won":
        return
    for name in names:
        if _EVIDENCE.match(name) and _same_backup(root, f"{folder}/{name}", document):
            return
    raise FolderTaken(
        f"{root.url}{folder}/, where the kept staged dump of this Backup was to be uploaded, is held by another "
        "backup: delete this Backup (its staged dump goes with it) and create it again"
    )


def release(root: Storage, folder: str, document: dict[str, Any]) -> int:
    """Take back the claim objects this Backup's unfinished claim left in ``folder``; return how many.

    Deleted: every claim object whose document names this Backup (namespace, name and uid), except
    the gate while anything else stays in the folder (someone else's evidence or files: a folder
    another Backup owns loses nothing it needs). Nothing else is touched, whatever the folder holds."""
    names = _names(root, folder)
    mine = {name for name in names if is_claim(name) and _same_backup(root, f"{folder}/{name}", document)}
    if GATE_NAME in mine and any(name not in mine for name in names):
        mine.discard(GATE_NAME)
    root.delete(sorted(f"{folder}/{name}" for name in mine))
    return len(mine)


def discard(root: Storage, folder: str, document: dict[str, Any]) -> int:
    """Empty the folder of a failed run that a re-run of the same Backup replaces; return how many
    objects went. Only a folder this Backup won (its evidence there, nobody else's) is touched; the
    claim goes last, so a run stopped halfway leaves a folder that still reads as this Backup's."""
    names = _names(root, folder)
    evidence = [name for name in names if _EVIDENCE.match(name)]
    if not evidence or not all(_same_backup(root, f"{folder}/{name}", document) for name in evidence):
        return 0
    root.delete([f"{folder}/{name}" for name in names if not is_claim(name)])
    root.delete([f"{folder}/{name}" for name in names if is_claim(name)])
    return len(names)


def release_pending(backup: Backup, s3: S3Options) -> int:
    """``release`` the folder named by ``status.claimPath`` (a run stopped between its claim and
    ``Running``); the Backup's own ``backupPath`` is left to its cleanPolicy. Raises a StorageError while
    S3 does not answer; the caller clears ``claimPath`` once this returns."""
    from tibackup.manager import remote, settings

    path = backup.status.claim_path
    if not path or path == backup.status.backup_path:
        return 0
    parent, _, folder = path.rstrip("/").rpartition("/")
    root = remote.open_backup_storage(settings.at_path(s3, parent + "/"))
    try:
        return release(root, folder, claim_document(backup, datetime.now()))
    finally:
        remote.close_storage(root)


def _names(root: Storage, folder: str) -> list[str]:
    """The names of the objects in ``folder`` (relative to it)."""
    return [info.name[len(folder) + 1 :] for info in root.list(folder + "/")]


def _try_claim(
    root: Storage, folder: str, document: dict[str, Any], before_gate: Callable[[str], None]
) -> str:
    """'won', 'taken' (the folder is someone else's) or 'contended' (lost a race past the gate)."""
    if next(iter(root.list(folder + "/")), None) is not None:
        return "taken"
    before_gate(folder)
    token = secrets.token_hex(8)
    body = (json.dumps({**document, "token": token}, indent=1) + "\n").encode()
    if root.put_if_absent(f"{folder}/{GATE_NAME}", body) is None:
        return "taken"
    mine = f"tibackup-claim.{token}.json"
    root.put(f"{folder}/{mine}", body)
    others = [
        info.name[len(folder) + 1 :]
        for info in root.list(folder + "/")
        if info.name not in (f"{folder}/{GATE_NAME}", f"{folder}/{mine}")
    ]
    if not others:
        return "won"
    root.delete([f"{folder}/{mine}"])  # lost: leave the folder to whoever else is in it
    return "contended" if any(_EVIDENCE.match(name) for name in others) else "taken"


def _same_backup(root: Storage, key: str, document: dict[str, Any]) -> bool:
    """Whether the evidence at ``key`` names this Backup. A read that fails raises (S3 listing but not
    yet serving objects, e.g. just restarted): an unread claim is no proof that another backup holds the
    folder, and ``FolderTaken``'s advice (delete the Backup) would throw the kept dump away."""
    try:
        doc = json.loads(root.read(key))
    except ValueError:
        return False
    return isinstance(doc, dict) and all(doc.get(k) == document.get(k) for k in ("namespace", "name", "uid"))
