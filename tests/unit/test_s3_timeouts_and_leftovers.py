"""S3 timeouts (defaults, ``tibackup dump`` flags, ``spec.s3.options``), the stall message, and the notes a
Backup's status carries about unfinished uploads; pure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.unit.test_manager_settings import backup
from tibackup.dump.options import parse_dumpling_args
from tibackup.errors import InvalidSpecError, StorageError
from tibackup.manager.clean import should_clean
from tibackup.manager.settings import s3_options
from tibackup.manager.uploads import left_note, settle_note
from tibackup.resources import Phase, set_condition
from tibackup.storage.journal import FileJournal, MemoryJournal, UploadRecord
from tibackup.storage.options import S3Options
from tibackup.storage.s3_errors import Where, translate

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_defaults_are_bounded() -> None:
    options = S3Options(bucket="b")
    assert (options.connect_timeout, options.read_timeout, options.max_attempts) == (5.0, 60.0, 3)


def test_dump_flags_set_the_timeouts() -> None:
    config = parse_dumpling_args(
        ["-o", "s3://b/p", "--s3.timeout", "2m", "--s3.connect-timeout", "3s", "--s3.max-attempts", "5"], {}
    )
    assert config.s3 is not None
    assert (config.s3.read_timeout, config.s3.connect_timeout, config.s3.max_attempts) == (120.0, 3.0, 5)


def test_rclone_flags_in_spec_s3_options_set_the_timeouts() -> None:
    spec = backup(
        s3={"provider": "ceph", "bucket": "b", "options": ["--timeout=30s", "--contimeout=2s", "--low-level-retries=4"]}
    ).spec
    options = s3_options(spec)
    assert (options.read_timeout, options.connect_timeout, options.max_attempts) == (30.0, 2.0, 4)
    with pytest.raises(InvalidSpecError, match=r"spec\.s3\.options\[0\]"):
        s3_options(backup(s3={"provider": "ceph", "bucket": "b", "options": ["--timeout=0s"]}).spec)
    with pytest.raises(StorageError, match="attempts"):
        S3Options(bucket="b", max_attempts=0).validate()


def test_a_stall_names_s3_and_how_long_it_was_waited_for() -> None:
    where = Where("http://127.0.0.1:9000", "bkt", timeouts="60 s, 3 attempt(s)")
    error = translate(
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9000"), where, "uploading part 2 of", "k"
    )
    assert "S3 endpoint http://127.0.0.1:9000 stopped answering" in error.message
    assert "60 s, 3 attempt(s)" in error.message and "database" not in error.message


def test_the_failed_message_says_uploads_remain_until_a_later_pass_aborts_them() -> None:
    journal = MemoryJournal()
    assert left_note(journal, "s3://b/backup-x/") == ""
    journal.started(UploadRecord("http://e", "b", "backup-x/t.sql", "u1"))
    note = left_note(journal, "s3://b/backup-x/")
    assert "1 unfinished multipart upload(s) under s3://b/backup-x/" in note and "deleting it" in note
    item = backup()
    item.status = set_condition(item.status, Phase.FAILED, "UploadFailed", "S3 went away" + note, NOW)
    assert settle_note(item)
    failed = item.status.condition(Phase.FAILED)
    assert (
        failed is not None
        and failed.message == "S3 went away; its unfinished multipart uploads were aborted later"
    )
    assert not settle_note(item)


def test_deleting_a_backup_that_did_not_complete_touches_s3_whatever_the_clean_policy() -> None:
    item = backup()
    assert not should_clean(item)  # no backupPath: nothing was ever written
    item.status.backup_path = "s3://b/backup-x/"
    item.status = set_condition(item.status, Phase.FAILED, "UploadFailed", "x", NOW)
    assert should_clean(item)  # Retain, but a failed run may have left unfinished uploads
    item.status = set_condition(item.status, Phase.COMPLETE, "Complete", "x", NOW)
    assert not should_clean(item)


def test_file_journal_note_names_its_folder(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path / "j")
    journal.started(UploadRecord("http://e", "b", "k", "u"))
    assert "the controller aborts them" in left_note(journal, "s3://b/p/")
