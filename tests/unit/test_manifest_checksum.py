"""The manifest's file checksum (dump/checksum.py): the flag, the one map of field names to hashes, and
the loader's check of either kind."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

from tibackup.dump.checksum import ManifestChecksum, entry_checksum
from tibackup.dump.config import Compression
from tibackup.dump.options import build_parser, parse_dumpling_args
from tibackup.dump.writer import write_whole_file
from tibackup.errors import UsageError
from tibackup.load.plan import _read_manifest
from tibackup.load.read import CheckedReader, Expected, VerifyFailed, decompressed
from tibackup.storage import LocalStorage

ROOT = Path(__file__).resolve().parents[2]
DATA = b"INSERT INTO `t` VALUES\n(1,'a'),\n(2,'b');\n" * 1000


def test_the_default_is_xxh128_and_sha256_is_kept_on_request() -> None:
    assert parse_dumpling_args(["-o", "/tmp/x"]).manifest_checksum is ManifestChecksum.XXH128
    config = parse_dumpling_args(["-o", "/tmp/x", "--manifest-checksum", "sha256"])
    assert config.manifest_checksum is ManifestChecksum.SHA256
    assert "--manifest-checksum {xxh128,sha256}" in build_parser().format_help()


def test_an_unknown_checksum_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError) as exc:
        parse_dumpling_args(["-o", "/tmp/x", "--manifest-checksum", "md5"])
    message = exc.value.message
    assert "--manifest-checksum" in message and "'md5'" in message and "xxh128" in message
    assert "\n" not in message and exc.value.exit_code == 2


def test_the_cli_says_it_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = "from tibackup.cli.main import main; main()"
    argv = [sys.executable, "-c", code, "dump", "-o", str(tmp_path / "out"), "--manifest-checksum=crc32"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "--manifest-checksum" in proc.stderr and "'crc32'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_each_field_name_means_its_hash() -> None:
    for kind, expected in (
        (ManifestChecksum.XXH128, xxhash.xxh3_128(DATA)),
        (ManifestChecksum.SHA256, hashlib.sha256(DATA)),
    ):
        digest = kind.new()
        digest.update(DATA[:100])
        digest.update(DATA[100:])
        assert digest.hexdigest() == expected.hexdigest()
    assert len(ManifestChecksum.XXH128.new().hexdigest()) == 32  # as xxh128sum prints it


def test_an_entry_carries_whichever_checksum_it_has() -> None:
    assert entry_checksum({"name": "f", "xxh128": "AB" * 16}) == (ManifestChecksum.XXH128, "ab" * 16)
    assert entry_checksum({"name": "f", "sha256": "cd" * 32}) == (ManifestChecksum.SHA256, "cd" * 32)
    assert entry_checksum({"sha256": "cd" * 32, "xxh128": "ab" * 16}) == (ManifestChecksum.XXH128, "ab" * 16)
    assert entry_checksum({"name": "f", "sha256": ""}) is None  # as an entry without sha256 always was
    assert entry_checksum({"name": "f", "blake3": "ef" * 32}) is None


def test_the_dump_writes_the_chosen_checksum(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    for kind, expected in (
        (ManifestChecksum.XXH128, xxhash.xxh3_128),
        (ManifestChecksum.SHA256, hashlib.sha256),
    ):
        record = write_whole_file(
            storage, f"db.t.{kind}.sql.gz", DATA, Compression.GZIP, "db", "t", checksum=kind
        )
        stored = (tmp_path / record.name).read_bytes()
        assert record.entry()[kind.value] == expected(stored).hexdigest()  # of the stored (compressed) bytes
        assert list(record.entry()) == ["name", "size", "rows", kind.value, "schema", "table"]


def _manifest(entry: str) -> bytes:
    return (
        b'{"files": [{"name": "db.t.000000000.sql", "size": %d, "rows": 2000, %s, "schema": "db", "table": "t"}]}'
        % (len(DATA), entry.encode())
    )


@pytest.mark.parametrize(
    ("field", "digest"),
    [("xxh128", xxhash.xxh3_128(DATA).hexdigest()), ("sha256", hashlib.sha256(DATA).hexdigest())],
)
def test_the_loader_checks_either_kind_and_names_it(field: str, digest: str) -> None:
    expected, _ = _read_manifest(_manifest(f'"{field}": "{digest}"'))
    want = expected["db.t.000000000.sql"]
    assert want == Expected(len(DATA), ManifestChecksum(field), digest)
    reader = CheckedReader(io.BytesIO(DATA), "db.t.000000000.sql", want=want)  # type: ignore[arg-type]
    assert b"".join(decompressed(reader, Compression.NONE)) == DATA
    reader.check()
    bad = bytearray(DATA)
    bad[len(bad) // 2] ^= 0x01  # same size: only the checksum tells
    reader = CheckedReader(io.BytesIO(bytes(bad)), "db.t.000000000.sql", want=want)  # type: ignore[arg-type]
    assert b"".join(decompressed(reader, Compression.NONE)) == bytes(bad)
    with pytest.raises(
        VerifyFailed, match=rf"^db\.t\.000000000\.sql does not match its {field} in the manifest"
    ):
        reader.check()


def test_an_entry_without_a_checksum_is_checked_by_its_size_only() -> None:
    expected, _ = _read_manifest(_manifest('"note": "hand-written"'))
    want = expected["db.t.000000000.sql"]
    assert want == Expected(len(DATA))
    reader = CheckedReader(io.BytesIO(DATA[::-1]), "f", want=want)  # type: ignore[arg-type]
    assert reader.hash is None  # nothing to compare with, so nothing is hashed
    list(decompressed(reader, Compression.NONE))
    reader.check()
    short = CheckedReader(io.BytesIO(DATA[:-1]), "f", want=want)  # type: ignore[arg-type]
    list(decompressed(short, Compression.NONE))
    with pytest.raises(VerifyFailed, match=f"f has {len(DATA) - 1} bytes but the manifest says {len(DATA)}"):
        short.check()
    assert CheckedReader(io.BytesIO(DATA), "f").hash is None  # no manifest: no hash either


def test_a_backup_takes_the_default_or_its_options_and_a_bad_value_is_invalid() -> None:
    from tibackup.errors import InvalidSpecError
    from tibackup.manager.settings import dump_config
    from tibackup.resources import Backup

    def spec(options: list[str]) -> Backup:
        doc = {
            "metadata": {"name": "b", "namespace": "ns"},
            "spec": {
                "from": {"host": "db", "port": 3306, "user": "u", "secretName": "pw"},
                "s3": {"provider": "ceph", "endpoint": "rgw:7480", "bucket": "bkt", "prefix": "p"},
                "dumpling": {"options": options},
            },
        }
        return Backup.model_validate(doc)

    assert dump_config(spec([]).spec, "/s", "").manifest_checksum is ManifestChecksum.XXH128
    sha = dump_config(spec(["--manifest-checksum=sha256"]).spec, "/s", "")
    assert sha.manifest_checksum is ManifestChecksum.SHA256
    with pytest.raises(InvalidSpecError, match=r"spec\.dumpling\.options.*--manifest-checksum.*'md5'") as exc:
        dump_config(spec(["--manifest-checksum=md5"]).spec, "/s", "")
    assert "\n" not in exc.value.message
