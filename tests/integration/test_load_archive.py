"""A TiDB Operator backup archive (`tar czf backup-<time>.tgz backup-<time>/`), streamed from S3 or disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.alltypes import TABLES, create_all_types
from tests.integration.dumputil import dump
from tests.integration.loadutil import load, s3_env, s3_flags, table_state
from tibackup.errors import StorageError
from tibackup.load.read import VerifyFailed

pytestmark = pytest.mark.integration

NAME = "backup-2026-12-01T08:00:00Z"


def _archive(server: MariaDBServer, database: str, tmp_path: Path, *flags: str) -> Path:
    folder = tmp_path / NAME
    dump(server, folder, "-B", database, "--no-views=false", *flags)
    archive = tmp_path / f"{NAME}.tgz"
    subprocess.run(
        ["tar", "--force-local", "-czf", archive.name, f"{NAME}/"], cwd=tmp_path, check=True
    )  # as TiDB Operator
    return archive


@pytest.fixture()
def alltypes(mariadb: MariaDBServer, fresh_db: str) -> str:
    create_all_types(mariadb, fresh_db)
    return fresh_db


def test_tgz_from_s3_streams(
    mariadb: MariaDBServer,
    s3_server: S3Server,
    bucket: str,
    alltypes: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    archive = _archive(mariadb, alltypes, tmp_path, "-r", "3000")
    s3_server.client().upload_file(str(archive), bucket, f"tidb/{archive.name}")
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    s3_env(s3_server, monkeypatch)
    result = load(mariadb, f"s3://{bucket}/tidb/{archive.name}", "-t", "2", *s3_flags(s3_server))
    assert table_state(mariadb, alltypes, TABLES) == before
    assert result.source.endswith(f"tidb/{archive.name}")
    assert mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.v_big")[0][0] > 0


def test_local_tgz_compressed_files(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    archive = _archive(mariadb, alltypes, tmp_path, "-c", "gzip", "-F", "64KiB")
    before = table_state(mariadb, alltypes, TABLES)
    mariadb.drop_database(alltypes)
    load(mariadb, str(archive))
    assert table_state(mariadb, alltypes, TABLES) == before


def test_tgz_member_corrupted(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    folder = tmp_path / NAME
    dump(mariadb, folder, "-B", alltypes, "-T", f"{alltypes}.big", "-s", "100MiB")
    data = folder / f"{alltypes}.big.000000000.sql"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0x02
    data.write_bytes(bytes(raw))
    subprocess.run(["tar", "--force-local", "-czf", f"{NAME}.tgz", f"{NAME}/"], cwd=tmp_path, check=True)
    mariadb.drop_database(alltypes)
    with pytest.raises(VerifyFailed, match=r"big\.000000000\.sql does not match its xxh128"):
        load(mariadb, str(tmp_path / f"{NAME}.tgz"))


def test_not_an_archive(mariadb: MariaDBServer, tmp_path: Path) -> None:
    bogus = tmp_path / "backup-x.tgz"
    bogus.write_bytes(b"not a gzip file at all")
    with pytest.raises(StorageError, match=r"is not a readable \.tgz archive"):
        load(mariadb, str(bogus))


def _dumpling_archive(server: MariaDBServer, database: str, tmp_path: Path) -> bytes:
    """An archive as TiDB Operator makes of a Dumpling backup: no tibackup manifest to check against."""
    folder = tmp_path / NAME
    dump(server, folder, "-B", database, "-F", "64KiB")
    (folder / "tibackup-manifest.json").unlink()
    subprocess.run(["tar", "--force-local", "-czf", f"{NAME}.tgz", f"{NAME}/"], cwd=tmp_path, check=True)
    return (tmp_path / f"{NAME}.tgz").read_bytes()


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_a_damaged_archive_without_manifest_is_refused_before_anything_is_written(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path, damage: str
) -> None:
    packed = bytearray(_dumpling_archive(mariadb, alltypes, tmp_path))
    mariadb.drop_database(alltypes)
    if damage == "flipped":
        for at in range(len(packed) // 3, len(packed) // 3 + 16):  # gzip's CRC (if nothing else) tells
            packed[at] ^= 0x5A
    else:
        del packed[len(packed) * 2 // 3 :]
    archive = tmp_path / "damaged.tgz"
    archive.write_bytes(bytes(packed))
    # Before, tarfile ended quietly at the damage: a shorter list of files, some tables' data loaded
    # and the rest missing (or a misleading "no schema file" error).
    with pytest.raises(VerifyFailed, match=r"damaged\.tgz(:| ends inside its gzip stream| cannot be decompressed)"):
        load(mariadb, str(archive))
    assert not mariadb.execute("SHOW DATABASES LIKE %s", (alltypes,)), "nothing may be written"
