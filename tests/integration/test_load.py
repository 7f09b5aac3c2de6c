"""`tibackup load`: every column type back as it was, from a folder and from S3; the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.alltypes import TABLES, create_all_types
from tests.integration.dumputil import dump
from tests.integration.loadutil import db_flags, load, load_cli, s3_env, s3_flags, table_state
from tibackup.errors import DatabaseError, StorageError, UsageError
from tibackup.load.read import VerifyFailed

pytestmark = pytest.mark.integration


@pytest.fixture()
def alltypes(mariadb: MariaDBServer, fresh_db: str) -> str:
    create_all_types(mariadb, fresh_db)
    return fresh_db


def _no_checkpoint_left(server: MariaDBServer, load_id: str) -> bool:
    if not server.execute("SHOW DATABASES LIKE 'tibackup_load'"):
        return True  # the last load to finish drops the schema
    sql = "SELECT COUNT(*) FROM tibackup_load.checkpoints WHERE load_id = %s AND pos <> -3"  # not the finished mark
    return bool(server.execute(sql, (load_id,))[0][0] == 0)


def test_folder_roundtrip_every_type_views_last(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path
) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "--no-views=false", "-t", "2")
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    result = load(mariadb, str(tmp_path), "-t", "3")
    assert table_state(mariadb, alltypes, TABLES) == before
    assert result.rows == 3 * 5 + 4 + 3 + 4 + 3000 + 3000 + 20000
    kinds = dict(
        mariadb.execute(
            f"SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{alltypes}'"
        )
    )
    assert kinds["v_big"] == "VIEW", "the stand-in table was replaced by the view"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.v_big")[0][0] > 0
    assert _no_checkpoint_left(mariadb, result.load_id), "a finished load removes its checkpoint"


def test_s3_folder_roundtrip(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, alltypes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/backups/one/"
    s3_env(s3_server, monkeypatch)
    dump(mariadb, url, "-B", alltypes, "-r", "3000", "-F", "64KiB", *s3_flags(s3_server))
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    load(mariadb, url, "-t", "2", *s3_flags(s3_server))
    assert table_state(mariadb, alltypes, TABLES) == before


def test_no_metadata_is_refused_unless_allowed(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes)
    (tmp_path / "metadata").unlink()
    mariadb.drop_database(alltypes)
    with pytest.raises(StorageError, match=r"no 'metadata' file.*--allow-incomplete"):
        load(mariadb, str(tmp_path))
    assert not mariadb.execute(f"SHOW DATABASES LIKE '{alltypes}'"), "nothing was written"
    load(mariadb, str(tmp_path), "--allow-incomplete")
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.big")[0][0] == 20000


@pytest.mark.parametrize("checksum", ["xxh128", "sha256"])  # sha256: every backup written before XXH3
def test_same_size_corruption_fails_naming_the_file(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path, checksum: str
) -> None:
    """Whichever checksum the manifest carries, the intact backup loads and a file with one byte
    changed (same size: only the checksum can tell) is VerifyFailed naming the file and the checksum."""
    flags = ("-B", alltypes, "-T", f"{alltypes}.big", "-s", "100MiB", "--manifest-checksum", checksum)
    dump(mariadb, tmp_path, *flags)  # one statement
    manifest = json.loads((tmp_path / "tibackup-manifest.json").read_text())
    assert all(checksum in f for f in manifest["files"]) and manifest["files"]
    mariadb.drop_database(alltypes)
    load(mariadb, str(tmp_path))
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.big")[0][0] == 20000
    data = tmp_path / f"{alltypes}.big.000000000.sql"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    mariadb.drop_database(alltypes)
    with pytest.raises(VerifyFailed, match=f"{alltypes}.big.000000000.sql does not match its {checksum} in"):
        load(mariadb, str(tmp_path))
    # The file's one statement waits for the file's check: nothing of it was loaded.
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.big")[0][0] == 0


def test_manifest_size_mismatch_refused_before_writing(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path
) -> None:
    dump(mariadb, tmp_path, "-B", alltypes)
    data = tmp_path / f"{alltypes}.ints.000000000.sql"
    data.write_bytes(data.read_bytes()[:-5])
    mariadb.drop_database(alltypes)
    proc = load_cli("-d", str(tmp_path), *db_flags(mariadb), env={"TIBACKUP_DB_PASSWORD": mariadb.password})
    assert proc.returncode == VerifyFailed.exit_code, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{alltypes}.ints.000000000.sql has" in errors[0], proc.stderr
    assert not mariadb.execute(f"SHOW DATABASES LIKE '{alltypes}'")


def test_non_empty_target_refused_naming_tables(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path
) -> None:
    dump(mariadb, tmp_path, "-B", alltypes)
    mariadb.execute(f"DELETE FROM `{alltypes}`.big WHERE id > 30")  # 10 rows stay
    mariadb.execute(f"TRUNCATE `{alltypes}`.ints")
    with pytest.raises(DatabaseError, match=r"already hold rows: .*\.big.*--on-duplicate") as info:
        load(mariadb, str(tmp_path))
    assert info.value.reason == "TargetNotEmpty"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.ints")[0][0] == 0, "nothing was written"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.big")[0][0] == 10


@pytest.mark.parametrize("mode", ["replace", "ignore"])
def test_on_duplicate(mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, mode: str) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1, 'backup'), (2, 'backup')")
    dump(mariadb, tmp_path, "-B", fresh_db)
    mariadb.execute(f"UPDATE `{fresh_db}`.t SET v = 'target' WHERE id = 1")
    mariadb.execute(f"DELETE FROM `{fresh_db}`.t WHERE id = 2")
    load(mariadb, str(tmp_path), "--on-duplicate", mode)
    rows = dict(mariadb.execute(f"SELECT id, v FROM `{fresh_db}`.t"))
    assert rows == {1: "backup" if mode == "replace" else "target", 2: "backup"}


def test_filter(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes)
    mariadb.drop_database(alltypes)
    load(mariadb, str(tmp_path), "-f", f"{alltypes}.big", "-f", f"{alltypes}.ints")
    names = {r[0] for r in mariadb.execute(f"SHOW TABLES FROM `{alltypes}`")}
    assert names == {"big", "ints"}


def test_manifest_rows_checked(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "-T", f"{alltypes}.ints")
    manifest_path = tmp_path / "tibackup-manifest.json"
    doc = json.loads(manifest_path.read_text())
    for f in doc["files"]:
        if f["name"].endswith(".000000000.sql"):
            f["rows"] += 1  # the manifest promises a row the file does not hold
    manifest_path.write_text(json.dumps(doc))
    mariadb.drop_database(alltypes)
    with pytest.raises(
        VerifyFailed, match=r"ints holds 3 rows after the load but the backup's manifest counts 4"
    ):
        load(mariadb, str(tmp_path))


@pytest.mark.parametrize(
    "flags",
    [
        ["--read-mode", "client", "-r", "1000"],
        ["--read-mode", "stream", "-F", "64KiB"],
        ["--read-mode", "bulk", "-r", "2000", "-F", "100KiB", "-s", "5000"],
        ["-c", "gzip", "-r", "5000"],
        ["-c", "zstd", "-F", "64KiB"],
        ["-c", "snappy", "-r", "3000"],
        ["--complete-insert"],
    ],
    ids=["client-r", "stream-F", "bulk-r-F-s", "gzip", "zstd", "snappy", "complete-insert"],
)
def test_roundtrip_modes(mariadb: MariaDBServer, alltypes: str, tmp_path: Path, flags: list[str]) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "-t", "2", *flags)
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    load(mariadb, str(tmp_path), "-t", "2")
    assert table_state(mariadb, alltypes, TABLES) == before


def test_roundtrip_no_escape_backslash(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "--escape-backslash=false", "-F", "100KiB")
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    load(mariadb, str(tmp_path), "--escape-backslash=false")
    assert table_state(mariadb, alltypes, TABLES) == before


@pytest.mark.parametrize(
    "dump_flags,load_flags",
    [
        ([], []),
        (["-c", "gzip", "-r", "2000"], []),
        (
            ["--csv-separator", "|", "--csv-delimiter", "'", "--csv-null-value", "NIL", "--no-header",
             "--csv-line-terminator", "\\n"],
            ["--csv-separator", "|", "--csv-delimiter", "'", "--csv-null-value", "NIL", "--csv-header=false",
             "--csv-line-terminator", "\\n"],
        ),
    ],
    ids=["default", "gzip-r", "other-settings"],
)  # fmt: skip
def test_csv_roundtrip(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path, dump_flags: list[str], load_flags: list[str]
) -> None:
    tables = TABLES if "--no-header" not in dump_flags else [t for t in TABLES if t != "gen"]
    filter_flags = [] if tables == TABLES else ["-f", f"{alltypes}.*", "-f", f"!{alltypes}.gen"]
    dump(mariadb, tmp_path, "-B", alltypes, "--filetype", "csv", *dump_flags, *filter_flags)
    assert any(p.name.endswith((".csv", ".csv.gz")) for p in tmp_path.iterdir())
    before = table_state(mariadb, alltypes, tables)
    mariadb.drop_database(alltypes)
    load(mariadb, str(tmp_path), "-t", "2", *load_flags)
    assert table_state(mariadb, alltypes, tables) == before


def test_s3_roundtrip_compressed_split(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, alltypes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/z/"
    s3_env(s3_server, monkeypatch)
    dump(mariadb, url, "-B", alltypes, "-r", "2000", "-F", "64KiB", "-c", "zstd", *s3_flags(s3_server))
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    load(mariadb, url, "-t", "3", *s3_flags(s3_server))
    assert table_state(mariadb, alltypes, TABLES) == before


def test_one_big_file_loads_over_every_session(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(100))")
    mariadb.execute("INSERT INTO t SELECT seq, REPEAT('v', 90) FROM seq_1_to_50000", database=fresh_db)
    dump(mariadb, tmp_path, "-B", fresh_db, "-s", "100000")  # one file, ~50 statements
    assert len([p for p in tmp_path.iterdir() if p.name.endswith(".000000000.sql")]) == 1
    mariadb.drop_database(fresh_db)
    from tibackup.load import execute

    monkeypatch.setattr(execute, "GROUP_BYTES", 1 << 20)  # 5 MB: groups of 1 MiB, one transaction each
    seen: set[int] = set()
    original = execute.DataLoader._run

    def spy(self: execute.DataLoader, db: object, work: object) -> int:
        seen.add(id(db))
        return original(self, db, work)  # type: ignore[arg-type]

    execute.DataLoader._run = spy  # type: ignore[method-assign]
    try:
        load(mariadb, str(tmp_path), "-t", "3")
    finally:
        execute.DataLoader._run = original  # type: ignore[method-assign]
    assert len(seen) > 1, "the statements of one file went to several sessions"
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.t")[0][0] == 50000


def test_data_without_schema_needs_the_target_table(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v INT)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1, 10), (2, 20)")
    dump(mariadb, tmp_path, "-B", fresh_db, "-m")  # data only, no schema files
    mariadb.execute(f"DROP TABLE `{fresh_db}`.t")
    with pytest.raises(VerifyFailed, match=rf"data for {fresh_db}\.t but no schema file"):
        load(mariadb, str(tmp_path))
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v INT, extra INT DEFAULT 7)")
    with pytest.raises(DatabaseError, match="Column count"):
        load(mariadb, str(tmp_path))  # the table's definition is the target's: here it does not fit
    mariadb.execute(f"ALTER TABLE `{fresh_db}`.t DROP COLUMN extra")
    load(mariadb, str(tmp_path))
    assert mariadb.execute(f"SELECT id, v FROM `{fresh_db}`.t ORDER BY id") == [(1, 10), (2, 20)]


def test_custom_filename_template(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    template = "{{fn .DB}}-{{fn .Table}}-{{.Index}}"
    dump(mariadb, tmp_path, "-B", alltypes, "-r", "4000", "--output-filename-template", template)
    assert any(p.name.startswith(f"{alltypes}-big-") for p in tmp_path.iterdir())
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    with pytest.raises(UsageError, match="pass the same template to load"):
        load(mariadb, str(tmp_path))
    load(mariadb, str(tmp_path), "--output-filename-template", template)
    assert table_state(mariadb, alltypes, TABLES) == before
