"""verify_complete on a local folder: what the run wrote must be there at its size and content identity,
and nothing else but the claim; each kind of problem is named in one line with reason VerifyFailed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tibackup.manager.claim import is_claim
from tibackup.manager.verify import IncompleteBackup, Recorder, verify_complete
from tibackup.storage import LocalStorage


def written(tmp_path: Path) -> Recorder:
    storage = Recorder(LocalStorage(tmp_path))
    storage.put("db.t.000000000.sql", b"INSERT INTO t VALUES (1);\n")
    with storage.create("metadata") as writer:
        writer.write(b"Started dump at: x\n")
        writer.write(memoryview(b"Finished dump at: y\n"))
    return storage


def failure(storage: Recorder) -> str:
    with pytest.raises(IncompleteBackup) as caught:
        verify_complete(storage, storage.written, is_claim)
    assert caught.value.reason == "VerifyFailed" and "\n" not in caught.value.message
    return caught.value.message


def test_complete_folder_passes_and_counts_every_byte(tmp_path: Path) -> None:
    storage = written(tmp_path)
    storage.inner.put("tibackup-claim.json", b"{}")
    assert storage.written["metadata"][0] == 39
    assert verify_complete(storage, storage.written, is_claim) == 26 + 39 + 2


def test_same_size_other_content_is_named(tmp_path: Path) -> None:
    storage = written(tmp_path)
    path = tmp_path / "db.t.000000000.sql"
    stat = path.stat()
    path.write_bytes(b"INSERT INTO t VALUES (2);\n")  # another writer, same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    message = failure(storage)
    assert (
        "1 file(s) whose content differs from what was uploaded (overwritten by another writer?)" in message
    )
    assert "db.t.000000000.sql" in message


def test_missing_short_and_foreign_files_are_named(tmp_path: Path) -> None:
    storage = written(tmp_path)
    (tmp_path / "metadata").write_bytes(b"short")
    storage.inner.delete(["db.t.000000000.sql"])
    storage.inner.put("other.t.000000000.sql", b"rows of another backup")
    message = failure(storage)
    assert "1 file(s) missing, e.g. db.t.000000000.sql" in message
    assert "metadata (5 bytes, expected 39)" in message
    assert "1 file(s) this backup did not write (another writer in the same folder?), e.g. other.t" in message


def test_metadata_never_written_is_incomplete(tmp_path: Path) -> None:
    storage = Recorder(LocalStorage(tmp_path))
    storage.put("db.t.000000000.sql", b"x")
    assert "metadata (never written)" in failure(storage)
