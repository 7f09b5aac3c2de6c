"""The upload journal: what multipart uploads were started and not yet completed or aborted.

S3 keeps an unfinished multipart upload (and bills its parts) until someone aborts it. A writer aborts
its upload when it fails, but when S3 itself is down or frozen that abort cannot reach it either. So the
S3 storage notes every upload it starts in a journal, and removes the note once the upload is completed
or aborted; whatever is left names exactly what a later pass must abort once S3 answers again.

The engine only calls ``started``/``finished``; the runtime decides where the journal lives (a folder
under the embedded state directory, a per-user state folder for ``tibackup dump``, or only in memory
where the Backup's own folder is listed instead). ``FileJournal`` keeps one small JSON file per
unfinished upload, written to a temporary name, fsynced and renamed, so a record is either whole or
absent even after SIGKILL or a power cut, and several processes may share one folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tibackup.errors import StorageError

log = logging.getLogger(__name__)

JOURNAL_ENV = "TIBACKUP_UPLOAD_JOURNAL"


@dataclass(frozen=True)
class UploadRecord:
    endpoint: str  # the endpoint URL as the client used it
    bucket: str
    key: str  # the full object key
    upload_id: str
    owner: str = ""  # who started it, for humans: "test1/nightly", "tibackup dump"
    pid: int = 0  # the process that started it, and that process' start time (clock ticks since boot):
    ticks: int = 0  # a later pass never aborts the uploads of a process that is still running

    @property
    def ident(self) -> str:
        text = "\n".join((self.endpoint, self.bucket, self.key, self.upload_id))
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def process_alive(self) -> bool:
        if not self.pid:
            return False
        ticks = process_ticks(self.pid)
        return ticks is not None and (not self.ticks or ticks == self.ticks)


def process_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot; 0 where /proc is missing; None
    when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[19])


class UploadJournal(Protocol):
    def started(self, record: UploadRecord) -> None:
        """Note an upload S3 just created; raise StorageError when it cannot be noted."""

    def finished(self, record: UploadRecord) -> None:
        """Forget an upload that was completed or aborted."""

    def pending(self) -> list[UploadRecord]:
        """The uploads started and not finished (by any process sharing this journal)."""

    def left_here(self) -> list[UploadRecord]:
        """The uploads this process started and did not finish."""


class MemoryJournal:
    """A journal that lives as long as the process: enough to say what is left when a run ends."""

    def __init__(self) -> None:
        self._records: dict[str, UploadRecord] = {}
        self._lock = threading.Lock()

    def started(self, record: UploadRecord) -> None:
        with self._lock:
            self._records[record.ident] = record

    def finished(self, record: UploadRecord) -> None:
        with self._lock:
            self._records.pop(record.ident, None)

    def pending(self) -> list[UploadRecord]:
        with self._lock:
            return list(self._records.values())

    def left_here(self) -> list[UploadRecord]:
        return self.pending()


class FileJournal:
    """One JSON file per unfinished upload in ``folder`` (created 0700 on first use)."""

    def __init__(self, folder: Path, owner: str = "") -> None:
        self.folder = folder
        self.owner = owner
        self._here = MemoryJournal()
        self._pid = os.getpid()
        self._ticks = process_ticks(self._pid) or 0

    def _path(self, record: UploadRecord) -> Path:
        return self.folder / f"{record.ident}.json"

    def started(self, record: UploadRecord) -> None:
        record = dataclasses.replace(
            record, owner=record.owner or self.owner, pid=self._pid, ticks=self._ticks
        )
        path = self._path(record)
        temporary = path.with_suffix(f".tmp{self._pid}-{threading.get_ident()}")
        try:
            for attempt in range(2):
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    file = open(temporary, "w", encoding="utf-8")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    if attempt:
                        raise
                    continue  # a cleanup pass removed the empty folder just now: make it again
                with file:
                    json.dump(dataclasses.asdict(record), file)
                    file.flush()
                    os.fsync(file.fileno())
                break
            os.replace(temporary, path)
            _fsync_folder(self.folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise StorageError(
                f"cannot record the multipart upload of s3://{record.bucket}/{record.key} in the upload "
                f"journal {self.folder} ({exc.strerror or exc}): free space there or choose another "
                f"folder ({JOURNAL_ENV} or --s3.upload-journal)"
            ) from exc
        self._here.started(record)

    def finished(self, record: UploadRecord) -> None:
        self._here.finished(record)
        try:
            self._path(record).unlink(missing_ok=True)
        except OSError as exc:  # the record stays; a later pass finds the upload gone and drops it
            log.warning("could not remove %s from the upload journal: %s", record.key, exc)

    def pending(self) -> list[UploadRecord]:
        records = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(UploadRecord(**json.loads(path.read_text(encoding="utf-8"))))
            except FileNotFoundError:
                continue  # finished meanwhile
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable upload journal entry %s: %s", path, exc)
        return records

    def left_here(self) -> list[UploadRecord]:
        return self._here.pending()


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Aborter(Protocol):
    """What ``abort_recorded`` needs of a storage (``S3Storage``)."""

    @property
    def endpoint(self) -> str: ...

    def abort_upload(self, key: str, upload_id: str, bucket: str | None = None) -> None: ...


def abort_recorded(storage: Aborter, journal: UploadJournal) -> tuple[int, int]:
    """Abort the journal's uploads started at ``storage``'s endpoint (in any bucket its credentials
    reach) by processes that are gone; return (aborted, still recorded). One already gone counts as
    aborted. Stops at the first failure that is not S3's answer (S3 still unreachable: next time)."""
    records = [r for r in journal.pending() if r.endpoint == storage.endpoint and not r.process_alive()]
    aborted = 0
    for index, record in enumerate(records):
        try:
            storage.abort_upload(record.key, record.upload_id, record.bucket)
        except StorageError as exc:
            log.warning(
                "could not abort the recorded upload of s3://%s/%s: %s", record.bucket, record.key, exc
            )
            if not _answered(exc):
                return aborted, len(records) - index
            continue
        journal.finished(record)
        aborted += 1
    return aborted, len(records) - aborted


def _answered(exc: BaseException) -> bool:
    """Whether S3 answered (refused) rather than failed to answer: botocore's ClientError carries the
    server's response (checked by shape, so that this module never imports botocore)."""
    return isinstance(getattr(exc.__cause__, "response", None), dict)


def default_journal_folder(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """``$TIBACKUP_UPLOAD_JOURNAL``, else ``$XDG_STATE_HOME/tibackup/uploads``, else
    ``~/.local/state/tibackup/uploads``: where ``tibackup dump`` keeps its journal."""
    if environ.get(JOURNAL_ENV):
        return Path(environ[JOURNAL_ENV])
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tibackup" / "uploads"


def open_dump_journal(folder: str = "") -> UploadJournal:
    """The journal of ``tibackup dump``: a FileJournal in ``folder`` (or the default folder); in memory
    only, with a warning, where that folder cannot be created (a read-only home in a container)."""
    path = Path(folder) if folder else default_journal_folder()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.warning(
            "upload journal %s cannot be created (%s): uploads left by a crash will not be recorded; "
            "set --s3.upload-journal or %s to a writable folder", path, exc.strerror or exc, JOURNAL_ENV,
        )  # fmt: skip
        return MemoryJournal()
    return FileJournal(path, owner="tibackup dump")


def abort_leftovers(storage: object, journal: UploadJournal) -> None:
    """Before a run: abort what earlier runs to the same endpoint left recorded (their S3 was down)."""
    if not isinstance(journal, FileJournal) or not hasattr(storage, "abort_upload"):
        return
    aborted, left = abort_recorded(storage, journal)  # type: ignore[arg-type]
    if aborted:
        log.info(
            "aborted %d unfinished multipart upload(s) left by an earlier run (%s)", aborted, journal.folder
        )
    if left:
        log.warning("%d unfinished multipart upload(s) in %s could not be aborted yet", left, journal.folder)


def uploads_left_note(journal: UploadJournal) -> str:
    """For the end of a failed run: what could not be aborted, and what will abort it."""
    left = journal.left_here()
    if not left:
        return ""
    where = f"noted in {journal.folder}" if isinstance(journal, FileJournal) else "not recorded"
    return (
        f"; {len(left)} unfinished multipart upload(s) could not be aborted (S3 did not answer) and are "
        f"{where}: the next run against this endpoint aborts them (a bucket lifecycle rule "
        "AbortIncompleteMultipartUpload is the safety net)"
    )


__all__ = [
    "JOURNAL_ENV",
    "FileJournal",
    "MemoryJournal",
    "UploadJournal",
    "UploadRecord",
    "abort_leftovers",
    "abort_recorded",
    "default_journal_folder",
    "open_dump_journal",
    "uploads_left_note",
]
