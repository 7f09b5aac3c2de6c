"""Dump every column type, load it back with the plain mariadb client, and get the same tables."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server

from tests.integration.alltypes import TABLES, create_all_types
from tests.integration.dumputil import dump, read_file, roundtrip

pytestmark = pytest.mark.integration


@pytest.fixture()
def alltypes(mariadb: MariaDBServer, fresh_db: str) -> str:
    create_all_types(mariadb, fresh_db)
    return fresh_db


def _data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith("-schema.sql") and ".0" in p.name)


def test_sql_roundtrip_every_type(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    result = dump(mariadb, tmp_path, "-B", alltypes, "--no-views=false", "-t", "2")
    assert (tmp_path / "metadata").read_text().startswith("Started dump at: ")
    names = {p.name for p in tmp_path.iterdir()}
    assert f"{alltypes}-schema-create.sql" in names
    assert f"{alltypes}.v_big-schema-view.sql" in names and f"{alltypes}.v_big-schema.sql" in names
    assert f"{alltypes}.empty_t-schema.sql" in names
    assert not any(n.startswith(f"{alltypes}.empty_t.") for n in names), "an empty table writes no data file"
    assert result.rows == 3 * 5 + 4 + 3 + 4 + 3000 + 3000 + 20000
    roundtrip(mariadb, alltypes, TABLES, tmp_path)
    # The view came back as a view, with its rows.
    rows = mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.v_big")
    assert rows[0][0] == mariadb.execute(f"SELECT COUNT(*) FROM `{alltypes}`.big WHERE n < 10")[0][0] > 0


def test_chunked_and_split_roundtrip(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "-t", "3", "-r", "1000", "-F", "64KiB", "-s", "5000")
    big_files = [n for n in _data_files(tmp_path) if n.startswith(f"{alltypes}.big.")]
    assert len(big_files) > 5
    # -r with -F: %09d%04d (chunk, file within chunk)
    assert all(len(n.split(".")[2]) == 13 for n in big_files)
    composite = [n for n in _data_files(tmp_path) if n.startswith(f"{alltypes}.composite.")]
    strkey = [n for n in _data_files(tmp_path) if n.startswith(f"{alltypes}.strkey.")]
    assert len(composite) > 1 and len(strkey) > 1, "composite and string keys are chunked too"
    text = (tmp_path / big_files[0]).read_bytes()
    assert text.count(b"INSERT INTO") > 1, "-s starts new statements"
    roundtrip(mariadb, alltypes, TABLES, tmp_path)


@pytest.mark.parametrize("codec,suffix", [("gzip", ".gz"), ("zstd", ".zst"), ("snappy", ".snappy")])
def test_compressed_roundtrip(
    mariadb: MariaDBServer, alltypes: str, tmp_path: Path, codec: str, suffix: str
) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "-c", codec, "-r", "5000")
    data = [n for n in _data_files(tmp_path)]
    assert data and all(n.endswith(".sql" + suffix) for n in data)
    assert (tmp_path / "metadata").exists(), "metadata is never compressed"
    roundtrip(mariadb, alltypes, TABLES, tmp_path)


def test_csv_roundtrip(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "--filetype", "csv", "-r", "2000")
    first = (tmp_path / f"{alltypes}.ints.000000000.csv").read_bytes()
    assert first.startswith(b'"id","ti","tu"')
    assert b"\r\n3,\\N,\\N," in first, "NULL is \\N, numbers bare, lines end in CRLF"
    roundtrip(mariadb, alltypes, TABLES, tmp_path)


def test_no_escape_backslash_roundtrip(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    dump(mariadb, tmp_path, "-B", alltypes, "--escape-backslash=false", "-F", "100KiB")
    text = (tmp_path / f"{alltypes}.strs.000000000.sql").read_bytes()
    assert b"'a''b\"c\\d\ne\rf" in text, "only quotes are doubled; everything else is raw"
    # The mariadb client interprets backslashes unless told not to, exactly as for Dumpling's output.
    from tests.integration import dumputil

    original = dumputil._mariadb

    def no_backslash(server, database, sql, *extra):  # type: ignore[no-untyped-def]
        return original(server, database, b"SET SESSION sql_mode='NO_BACKSLASH_ESCAPES';\n" + sql, *extra)

    dumputil._mariadb = no_backslash
    try:
        roundtrip(mariadb, alltypes, TABLES, tmp_path)
    finally:
        dumputil._mariadb = original


def test_manifest_lists_every_file(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    """Every file with its size and XXH3-128 (the default checksum), computed here from the file's bytes."""
    import xxhash

    result = dump(mariadb, tmp_path, "-B", alltypes, "-r", "5000", "-c", "gzip")
    manifest = json.loads((tmp_path / "tibackup-manifest.json").read_text())
    listed = {f["name"]: f for f in manifest["files"]}
    on_disk = {p.name for p in tmp_path.iterdir()} - {"metadata", "tibackup-manifest.json"}
    assert set(listed) == on_disk
    for name, entry in listed.items():
        data = (tmp_path / name).read_bytes()
        assert entry["size"] == len(data)
        assert entry["xxh128"] == xxhash.xxh3_128(data).hexdigest()
        assert list(entry) == ["name", "size", "rows", "xxh128", "schema", "table"]  # no sha256 beside it
    assert manifest["totals"]["rows"] == result.rows
    big_rows = sum(f["rows"] for f in manifest["files"] if f["table"] == "big")
    assert big_rows == 20000
    assert manifest["position"]["pos"] == result.commit_ts != ""


def test_the_manifests_xxh128_is_what_xxh128sum_checks(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    """docs/load.md's shell check: the manifest's entries as an ``xxh128sum -c`` list pass, and a file
    with one byte changed fails it (Debian's xxhash package, installed by scripts/setup.sh)."""
    xxh128sum = shutil.which("xxh128sum")
    assert xxh128sum, "xxh128sum is missing: scripts/setup.sh installs Debian's xxhash package"
    out = tmp_path / "out"
    dump(mariadb, out, "-B", alltypes, "-c", "zstd")
    manifest = json.loads((out / "tibackup-manifest.json").read_text())
    sums = "".join(f"{f['xxh128']}  {f['name']}\n" for f in manifest["files"])
    check = [xxh128sum, "--quiet", "-c", "-"]
    ok = subprocess.run(check, input=sums, cwd=out, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    victim = out / next(f["name"] for f in manifest["files"] if f["table"] == "big" and f["rows"])
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    bad = subprocess.run(check, input=sums, cwd=out, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and f"{victim.name}: FAILED" in bad.stdout, bad.stdout + bad.stderr


def test_manifest_checksum_sha256_writes_sha256(mariadb: MariaDBServer, alltypes: str, tmp_path: Path) -> None:
    """``--manifest-checksum sha256``: the manifest as before XXH3 (what sha256sum checks)."""
    import hashlib

    dump(mariadb, tmp_path, "-B", alltypes, "-r", "5000", "--manifest-checksum", "sha256")
    manifest = json.loads((tmp_path / "tibackup-manifest.json").read_text())
    assert manifest["files"]
    for entry in manifest["files"]:
        data = (tmp_path / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert list(entry) == ["name", "size", "rows", "sha256", "schema", "table"]


def test_s3_roundtrip(
    mariadb: MariaDBServer, s3_server: S3Server, bucket: str, alltypes: str, tmp_path: Path
) -> None:
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    import os

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        dump(
            mariadb, f"s3://{bucket}/backups/one", "-B", alltypes, "-r", "3000", "-c", "zstd",
            "--s3.endpoint", s3_server.endpoint, "--s3.region", s3_server.region, "--s3.provider", "other",
        )  # fmt: skip
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    client = s3_server.client()
    keys = s3_server.list_keys(bucket, "backups/one/")
    assert "backups/one/metadata" in keys
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    local = tmp_path / "fetched"
    local.mkdir()
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        (local / key.rsplit("/", 1)[1]).write_bytes(body)
    assert read_file(next(local.glob(f"{alltypes}.big.*.sql.zst"))).startswith(
        b"/*!40101 SET NAMES binary*/;\n"
    )
    roundtrip(mariadb, alltypes, TABLES, local)
    assert boto3  # the S3 client library is the real one
