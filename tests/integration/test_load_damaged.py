"""`tibackup load` of a damaged backup without a manifest (as Dumpling writes them), and of a filter
that matches nothing: one line naming the cause, exit 4 / 2, never "load complete" with rows missing."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.dumputil import dump
from tests.integration.loadutil import db_flags, load_cli, s3_flags
from tests.integration.test_load_errors import _one_error

pytestmark = pytest.mark.integration


@pytest.fixture()
def backup(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path) -> Path:
    _table_of_3000_rows(mariadb, fresh_db)
    # Statements of ~4 kB (several per file); no manifest, as Dumpling's own backups: nothing to check against.
    return _dumped(mariadb, fresh_db, tmp_path / "backup", "-s", "4096")


def _table_of_3000_rows(mariadb: MariaDBServer, db: str) -> None:
    mariadb.execute(f"CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(f"INSERT INTO `{db}`.t SELECT seq, CONCAT('v', seq) FROM `{db}`.seq_1_to_3000")


def _dumped(mariadb: MariaDBServer, db: str, folder: Path, *flags: str, manifest: bool = False) -> Path:
    """A dump of ``db`` (its table, then the database dropped), without its manifest unless asked."""
    dump(mariadb, folder, "-B", db, *flags)
    mariadb.drop_database(db)
    if not manifest:
        (folder / "tibackup-manifest.json").unlink()
    return folder


def _pw(server: MariaDBServer) -> dict[str, str]:
    return {"TIBACKUP_DB_PASSWORD": server.password}


def _data_file(folder: Path, db: str, kind: str = "sql") -> Path:
    (path,) = folder.glob(f"{db}.t.*.{kind}*")
    return path


def test_a_data_file_cut_after_a_row_fails_instead_of_losing_the_rest(
    mariadb: MariaDBServer, fresh_db: str, backup: Path
) -> None:
    path = _data_file(backup, fresh_db)
    data = path.read_bytes()
    cut = data.index(b"),\n(", len(data) // 2) + 1  # right after a row: a valid INSERT of fewer rows
    path.write_bytes(data[:cut])
    proc = load_cli("-d", str(backup), *db_flags(mariadb), env=_pw(mariadb))
    _one_error(proc, 4, f"{path.name} ends in the middle of its statement", "cut short")
    assert "load complete" not in proc.stderr + proc.stdout
    mariadb.drop_database(fresh_db)


def test_a_gzip_data_file_cut_short_is_named(mariadb: MariaDBServer, fresh_db: str, backup: Path) -> None:
    path = _data_file(backup, fresh_db)
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes())[:-8])  # the stream's end (CRC, size) is gone
    path.unlink()
    proc = load_cli("-d", str(backup), *db_flags(mariadb), env=_pw(mariadb))
    _one_error(proc, 4, f"{packed.name} ends inside its gzip stream", "cut short")
    mariadb.drop_database(fresh_db)


def test_a_filter_that_matches_nothing_loads_nothing_and_says_so(
    mariadb: MariaDBServer, fresh_db: str, backup: Path
) -> None:
    proc = load_cli("-d", str(backup), *db_flags(mariadb), "-f", f"{fresh_db}.nosuch", env=_pw(mariadb))
    _one_error(proc, 2, "matches nothing", f"{fresh_db}.t", "fix the rules")
    assert not mariadb.execute("SHOW DATABASES LIKE %s", (fresh_db,))  # nothing created


def test_a_folder_of_other_files_is_not_a_backup(mariadb: MariaDBServer, tmp_path: Path, backup: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(backup / "metadata", other / "metadata.txt")
    proc = load_cli("-d", str(other), *db_flags(mariadb), "--allow-incomplete", env=_pw(mariadb))
    _one_error(proc, 4, "no file of Dumpling's layout", "metadata.txt", "check -d")


def test_a_damaged_gzip_object_of_a_tibackup_backup_is_verify_failed_not_an_internal_error(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    _table_of_3000_rows(mariadb, fresh_db)
    folder = _dumped(mariadb, fresh_db, tmp_path / "gz", "-c", "gzip", manifest=True)  # checked this time
    path = _data_file(folder, fresh_db)
    packed = bytearray(path.read_bytes())
    packed[len(packed) // 2] ^= 0xFF  # the same size: only the content check (or gzip's) can tell
    path.write_bytes(bytes(packed))
    proc = load_cli("-d", str(folder), *db_flags(mariadb), env=_pw(mariadb))
    line = _one_error(proc, 4, path.name, "damaged")
    assert "internal error" not in line
    mariadb.drop_database(fresh_db)


def test_a_csv_data_file_cut_inside_a_line_fails_instead_of_loading_a_changed_row(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    _table_of_3000_rows(mariadb, fresh_db)
    folder = _dumped(mariadb, fresh_db, tmp_path / "csv", "--filetype", "csv")
    path = _data_file(folder, fresh_db, "csv")
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b",", len(data) // 2) + 1])  # "1234," — the old load: (1234,'')
    proc = load_cli("-d", str(folder), *db_flags(mariadb), env=_pw(mariadb))
    _one_error(proc, 4, f"{path.name} ends in the middle of its line", "cut short")
    mariadb.drop_database(fresh_db)


def test_a_missing_bucket_names_the_commands_own_flag(mariadb: MariaDBServer, s3_server: S3Server) -> None:
    creds = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    proc = load_cli(
        "-d", "s3://no-such-bucket-tryout/backup/", *db_flags(mariadb), *s3_flags(s3_server),
        env={**_pw(mariadb), **creds},
    )  # fmt: skip
    line = _one_error(proc, 4, "bucket 'no-such-bucket-tryout' does not exist", "-d of load")
    assert "s3.bucket" not in line  # a Backup's field: the command line has none


def _flip_a_digit_in_a_snappy_block(framed: bytes) -> bytes:
    """``framed`` (snappy's framing format) with one bit of its first compressed block flipped where the block still decompresses
    and reads as valid SQL with one digit changed: only the block's CRC-32C can tell."""
    import cramjam

    start = 10  # after the stream identifier; find the first compressed block (type 0x00)
    while framed[start] != 0x00:
        start += 4 + int.from_bytes(framed[start + 1 : start + 4], "little")
    length = int.from_bytes(framed[start + 1 : start + 4], "little")
    head, body, tail = framed[: start + 8], framed[start + 8 : start + 4 + length], framed[start + 4 + length :]
    original = bytes(cramjam.snappy.decompress_raw(body))
    for at in range(len(body) // 2, len(body)):
        changed = bytearray(body)
        changed[at] ^= 0x01
        try:
            out = bytes(cramjam.snappy.decompress_raw(bytes(changed)))
        except Exception:
            continue
        diff = [i for i in range(min(len(out), len(original))) if out[i] != original[i]]
        digits = len(diff) == 1 and chr(out[diff[0]]).isdigit() and chr(original[diff[0]]).isdigit()
        if len(out) == len(original) and digits:
            return head + bytes(changed) + tail
    raise AssertionError("no digit to flip in the first block")


def test_a_snappy_block_whose_crc_fails_is_verify_failed_naming_the_file(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    """A flipped byte inside a snappy block that still decompresses (to a row with one digit changed)
    fails the load, exit 4 naming the file, as gzip's CRC does — never a changed row loaded."""
    _table_of_3000_rows(mariadb, fresh_db)
    folder = _dumped(mariadb, fresh_db, tmp_path / "snappy", "-c", "snappy")  # no manifest: Dumpling's
    path = _data_file(folder, fresh_db)
    path.write_bytes(_flip_a_digit_in_a_snappy_block(path.read_bytes()))
    proc = load_cli("-d", str(folder), *db_flags(mariadb), env=_pw(mariadb))
    line = _one_error(proc, 4, path.name, "CRC-32C", "damaged")
    assert "internal error" not in line and "load complete" not in proc.stdout + proc.stderr
    mariadb.drop_database(fresh_db)
