"""The staged data path: dump to the staging volume, then upload (the reference system's way).

Layout of a Backup's staging folder (``runtime.staging_dir(backup)``)::

    tibackup-staging.json   which Backup (and which spec) the dump belongs to, and its backupPath
    dump/                   the Dumpling files; ``dump/metadata`` exists only once the dump finished

On upload success the folder is emptied; on failure it is kept, and a later run of the same Backup
with the same spec finds the finished dump and uploads it instead of dumping again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tibackup.dump.metadata import METADATA_NAME
from tibackup.dump.progress import Progress
from tibackup.errors import StorageError
from tibackup.resources import Backup
from tibackup.storage import LocalStorage
from tibackup.storage.base import Storage

log = logging.getLogger("tibackup.manager")

MARKER_NAME = "tibackup-staging.json"
DUMP_FOLDER = "dump"
COPY_CHUNK = 8 * 1024 * 1024


class UploadFailed(StorageError):
    reason = "UploadFailed"


def spec_fingerprint(backup: Backup) -> str:
    """Changes when anything that shapes the dump's content or destination changes."""
    spec = backup.spec
    shape = {
        "from": spec.from_.model_dump(mode="json") if spec.from_ else None,
        "dumpling": spec.dumpling.model_dump(mode="json"),
        "tableFilter": spec.table_filter,
        "bucket": spec.s3.bucket if spec.s3 else None,
        "prefix": spec.s3.prefix if spec.s3 else None,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StagedDump:
    backup_path: str  # where this dump goes (kept from the run that dumped it)


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dump_dir = root / DUMP_FOLDER
        self.marker = root / MARKER_NAME

    def storage(self) -> LocalStorage:
        return LocalStorage(self.dump_dir)

    def _identity(self, backup: Backup) -> dict[str, str | None]:
        meta = backup.metadata
        return {"namespace": meta.namespace, "name": meta.name, "spec": spec_fingerprint(backup)}

    def finished_dump(self, backup: Backup) -> StagedDump | None:
        """A complete dump (its ``metadata`` exists) staged by an earlier run of this same Backup."""
        if not (self.dump_dir / METADATA_NAME).is_file() or not self.marker.is_file():
            return None
        try:
            doc = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        identity = self._identity(backup)
        if any(doc.get(key) != value for key, value in identity.items()):
            return None
        uid = backup.metadata.uid
        if uid and doc.get("uid") and doc["uid"] != uid:
            return None  # a Backup of the same name, deleted and created again
        path = doc.get("backupPath")
        return StagedDump(str(path)) if path else None

    def start(self, backup: Backup, backup_path: str) -> None:
        """Empty the folder and note which Backup the coming dump belongs to."""
        self.clear()
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {**self._identity(backup), "uid": backup.metadata.uid, "backupPath": backup_path}
        self.marker.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

    def clear(self) -> None:
        shutil.rmtree(self.dump_dir, ignore_errors=True)
        self.marker.unlink(missing_ok=True)


def upload(local: LocalStorage, remote: Storage, concurrency: int, progress: Progress) -> dict[str, int]:
    """Copy every staged file to ``remote``, ``metadata`` last; return name → size of what was sent.

    The first failure stops the upload and raises ``UploadFailed``; files are never deleted here.
    """
    files = {info.name: info.size for info in local.list()}
    if METADATA_NAME not in files:
        raise UploadFailed(f"the staged dump in {local.url} has no metadata file: it is incomplete")
    first = [name for name in sorted(files, key=lambda n: -files[n]) if name != METADATA_NAME]
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="upload") as pool:
        futures: list[Future[None]] = [pool.submit(_copy, local, remote, n, progress) for n in first]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
    # Leaving the pool waited for the uploads already running; the cancelled ones never started.
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    if errors:
        error = errors[0]
        message = error.message if isinstance(error, StorageError) else f"{type(error).__name__}: {error}"
        raise UploadFailed(message) from error
    _copy(local, remote, METADATA_NAME, progress)  # the completion marker, only after everything else
    return files


def _copy(local: LocalStorage, remote: Storage, name: str, progress: Progress) -> None:
    writer = remote.create(name)
    try:
        with local.open_read(name) as source:
            while chunk := source.read(COPY_CHUNK):
                writer.write(chunk)
                progress.add(0, len(chunk))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    progress.file_done()
