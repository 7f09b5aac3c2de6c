"""The upload journal: records survive the process, finished ones go, live processes' uploads are left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tibackup.errors import StorageError
from tibackup.storage.journal import (
    FileJournal,
    MemoryJournal,
    UploadRecord,
    abort_recorded,
    open_dump_journal,
    uploads_left_note,
)

RECORD = UploadRecord("http://127.0.0.1:9", "bucket", "prefix/a.sql", "upload-1")


class FakeS3:
    endpoint = "http://127.0.0.1:9"

    def __init__(self, fail: StorageError | None = None) -> None:
        self.aborted: list[str] = []
        self.fail = fail

    def abort_upload(self, key: str, upload_id: str, bucket: str | None = None) -> None:
        if self.fail is not None:
            raise self.fail
        self.aborted.append(f"{bucket}/{key}#{upload_id}")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_file_journal_keeps_records_until_finished(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path / "j", owner="tibackup dump")
    journal.started(RECORD)
    (stored,) = FileJournal(tmp_path / "j").pending()  # another process' view
    assert (stored.key, stored.upload_id, stored.owner) == (RECORD.key, RECORD.upload_id, "tibackup dump")
    assert stored.process_alive()  # this process
    assert journal.left_here() == [stored]
    assert "1 unfinished multipart upload(s)" in uploads_left_note(journal)
    journal.finished(RECORD)
    assert journal.pending() == [] and journal.left_here() == [] and uploads_left_note(journal) == ""
    assert (tmp_path / "j").stat().st_mode & 0o777 == 0o700


def test_abort_recorded_leaves_live_processes_and_other_endpoints(tmp_path: Path) -> None:
    journal = MemoryJournal()
    gone = UploadRecord(RECORD.endpoint, "bucket", "k1", "u1", pid=dead_pid())
    alive = UploadRecord(RECORD.endpoint, "bucket", "k2", "u2", pid=1)  # init never dies
    elsewhere = UploadRecord("http://127.0.0.1:10", "bucket", "k3", "u3", pid=dead_pid())
    for record in (gone, alive, elsewhere):
        journal.started(record)
    s3 = FakeS3()
    assert abort_recorded(s3, journal) == (1, 0)
    assert s3.aborted == ["bucket/k1#u1"]
    assert {r.key for r in journal.pending()} == {"k2", "k3"}


def test_abort_recorded_keeps_everything_while_s3_is_unreachable() -> None:
    journal = MemoryJournal()
    journal.started(UploadRecord(RECORD.endpoint, "b", "k1", "u1", pid=dead_pid()))
    journal.started(UploadRecord(RECORD.endpoint, "b", "k2", "u2", pid=dead_pid()))
    down = StorageError("cannot reach S3 endpoint: connection refused")
    assert abort_recorded(FakeS3(fail=down), journal) == (0, 2)
    assert len(journal.pending()) == 2


def test_unwritable_journal_folder_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    journal = open_dump_journal(str(blocker / "journal"))
    assert isinstance(journal, MemoryJournal)
    assert "cannot be created" in caplog.text
    assert isinstance(open_dump_journal(str(tmp_path / "ok")), FileJournal)


def test_a_journal_that_cannot_be_written_fails_the_upload_with_a_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=r"cannot record the multipart upload .* upload journal"):
        FileJournal(blocker / "j").started(RECORD)
