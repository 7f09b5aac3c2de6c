"""Start-up of `tibackup dump`: a sub-second dump pays for every module it imports before the first query."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tibackup.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]

# Modules the dump path must not load unless asked: TOML and the column-filter parser (only
# --column-filter), platform (the welcome line's Python version comes from sys), the compressors (only
# -c), the control plane's CLI library, the S3 client, its options and multipart sizes and the upload
# journal (only S3 output), the thread pool of background commits (only S3: a local folder's files are
# closed by the worker), json (only the manifest, written at the end), dataclasses with inspect (the
# records are tibackup.record's; the S3 options, a dataclass, load only for S3 output), hashlib with
# OpenSSL (~4 ms: only --manifest-checksum sha256; xxhash, ~1.4 ms, loads with the first file written).
NOT_AT_START = (
    "tomllib",
    "platform",
    "zstandard",
    "cramjam",
    "click",
    "boto3",
    "tibackup.dump.columnfilter",
    "tibackup.storage.journal",
    "tibackup.storage.options",
    "tibackup.storage.multipart",
    "concurrent.futures",
    "json",
    "dataclasses",
    "inspect",
    "hashlib",
    "xxhash",
)

_LOAD_DUMP_PATH = (
    "import sys; before = set(sys.modules)\n"
    "import tibackup.cli.main, tibackup.cli.dump_cmd, tibackup.dump.dumper\n"
    "from tibackup.dump.about import welcome_line; welcome_line()\n"
)


def _run_bare(code: str) -> str:
    """``code`` in a Python without the site module: no .pth file of this machine (certifi's, say) loads
    modules first and hides what the dump path itself imports."""
    paths = [str(ROOT / "src"), *site.getsitepackages(), site.getusersitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
        check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_the_dump_command_loads_no_module_it_does_not_use() -> None:
    code = _LOAD_DUMP_PATH + f"print(sorted(m for m in {NOT_AT_START!r} if m in sys.modules and m not in before))\n"
    assert _run_bare(code) == "[]"


def test_the_dump_paths_classes_are_records_not_dataclasses() -> None:
    """``dataclasses`` (with inspect, ast and dis) and the functions it compiles per class through ``exec``
    were the largest item of the start-up (docs/dump-performance.md, sixth pass): the dump path's records
    are tibackup.record's, compared by identity except the two compared by value."""
    code = _LOAD_DUMP_PATH + (
        "from tibackup.record import is_record\n"
        "classes = [v for n, m in list(sys.modules.items()) if n.startswith('tibackup') and n not in before\n"
        "    for v in vars(m).values() if isinstance(v, type) and v.__module__ == n]\n"
        "print(sorted(f'{v.__module__}.{v.__qualname__}' for v in classes if hasattr(v, '__dataclass_fields__')))\n"
        "print(len([v for v in classes if is_record(v)]))\n"
        "print(sorted(f'{v.__module__}.{v.__qualname__}' for v in classes if is_record(v) and '__eq__' in vars(v)))\n"
    )
    dataclasses, records, by_value = _run_bare(code).splitlines()
    assert dataclasses == "[]"
    assert int(records) >= 15
    assert by_value == "['tibackup.dump.config.CSVOptions', 'tibackup.storage.base.ObjectInfo']"


def test_the_records_share_one_repr_that_reads_as_a_dataclasss_own() -> None:
    """A record's ``__repr__`` is record.py's one function, not one compiled per class at start-up; it
    gives a dataclass's text (fields with repr=False left out), and a class's own ``__repr__`` stays."""
    import dataclasses

    from tibackup.dump.chunks import Chunk
    from tibackup.dump.config import Connection, TLSFiles
    from tibackup.record import _record_repr, field, record

    @record
    class Shown:
        """a record"""

        name: str
        secret: str = field(default="", repr=False)
        sizes: tuple[int, ...] = ()

    @dataclasses.dataclass
    class Same:
        """the dataclass it reads as"""

        name: str
        secret: str = dataclasses.field(default="", repr=False)
        sizes: tuple[int, ...] = ()

    assert Shown.__repr__ is _record_repr and Chunk.__repr__ is _record_repr
    assert repr(Shown("a'b", "pw", (1, 2))) == repr(Same("a'b", "pw", (1, 2))).replace("Same", "Shown")
    assert repr(TLSFiles(ca="ca.pem")) == "TLSFiles(ca='ca.pem', cert=None, key=None)"
    assert repr(Connection(password="pw")) == "Connection(host='127.0.0.1', port=4000, user='root')"


def test_the_records_are_still_frozen_for_the_type_checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mypy reports an assignment to a record's field (through ``dataclass_transform(frozen_default=True)``)
    and checks ``evolve``'s changes as it checks ``dataclasses.replace``'s."""
    from mypy import api

    monkeypatch.setenv("MYPYPATH", str(ROOT / "src"))  # this checkout's code, not an installed one

    (tmp_path / "change.py").write_text(
        "from tibackup.record import evolve\n"
        "from tibackup.dump.catalog import Table\n"
        "from tibackup.dump.chunks import Chunk\n"
        "from tibackup.dump.config import DumpConfig\n\n\n"
        "def change(chunk: Chunk, config: DumpConfig, table: Table) -> None:\n"
        "    chunk.index = 3\n"
        "    config.threads = 2\n"
        "    table.name = 'x'\n"
        "    evolve(chunk, index=3)\n"
        "    evolve(chunk, index='3')\n"
    )
    out, _, status = api.run(
        ["--cache-dir", str(tmp_path / "cache"), "--follow-imports=silent", "--no-error-summary",
         str(tmp_path / "change.py")]
    )  # fmt: skip
    errors = [line.split(": error: ")[1] for line in out.splitlines() if ": error: " in line]
    assert status == 1 and errors == [
        'Property "index" defined in "Chunk" is read-only  [misc]',
        'Property "threads" defined in "DumpConfig" is read-only  [misc]',
        'Property "name" defined in "Table" is read-only  [misc]',
        'Argument "index" to "replace" of "Chunk" has incompatible type "str"; expected "int"  [arg-type]',
    ]


def test_the_parts_loaded_on_first_use_still_work() -> None:
    """The imports moved into functions: the manifest (json), the S3 endpoint check (urllib.parse) and
    TiDB's GC duration (its pattern compiled on first use)."""
    import json
    from datetime import datetime

    from tibackup.dump import tidb
    from tibackup.dump.conn import ServerInfo
    from tibackup.dump.metadata import manifest_json
    from tibackup.errors import StorageError
    from tibackup.storage.options import S3Options

    now = datetime(2026, 12, 1, 12, 0, 0)
    doc = json.loads(
        manifest_json(
            started=now, finished=now, server=ServerInfo.parse("10.11.6-MariaDB"), consistency="flush",
            position=None, files=[],
        )
    )  # fmt: skip
    assert doc["tool"] == "tibackup"
    S3Options(bucket="b", endpoint="http://127.0.0.1:9000").validate()
    with pytest.raises(StorageError, match=r"invalid s3\.endpoint"):
        S3Options(bucket="b", endpoint="ftp://127.0.0.1").validate()
    assert tidb.parse_go_duration("1h10m0s") == 4200.0
    with pytest.raises(ValueError):
        tidb.parse_go_duration("ten minutes")


def test_the_s3_parts_loaded_on_first_use_still_work(tmp_path: Path) -> None:
    """The storage package's S3 names load when asked for, S3 flags still build their options, and a
    Finisher with background commits still gets its thread pool."""
    import tibackup.storage as storage
    from tibackup.dump.config import Compression
    from tibackup.dump.options import build_parser, config_from_namespace
    from tibackup.dump.writer import Finisher
    from tibackup.storage import multipart, options

    assert storage.S3Options is options.S3Options and storage.parse_s3_url is options.parse_s3_url
    assert storage.part_size_for is multipart.part_size_for
    with pytest.raises(AttributeError):
        storage.NoSuchName  # noqa: B018
    ns = build_parser().parse_args(["-o", "s3://bucket/prefix", "--s3.endpoint", "http://127.0.0.1:9"])
    config = config_from_namespace(ns, {}, default_output="unused")
    assert config.s3 is not None and (config.s3.bucket, config.s3.prefix) == ("bucket", "prefix")
    finisher = Finisher(2, background=True)
    written = []
    finisher.write_whole(storage.LocalStorage(tmp_path), "f", b"x", Compression.NONE, "db", "t", written.append)
    finisher.wait()
    assert (tmp_path / "f").read_bytes() == b"x" and len(written) == 1


def test_the_welcome_line_names_the_python_as_platform_does() -> None:
    import platform

    from tibackup.dump.about import python_version

    assert python_version() == f"{platform.python_implementation()} {platform.python_version()}"


def test_the_default_sizes_durations_and_csv_texts_are_read_without_a_regular_expression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every dump reads -s, --tidb-mem-quota-query, --read-timeout and the CSV texts: their defaults take
    no pattern (each one compiled costs start-up); values with units, fractions or escapes still go
    through one, and read as before."""
    from tibackup.dump import flagvalues as values

    def no_regex(*args: object, **kwargs: object) -> None:
        raise AssertionError("a regular expression was used")

    with monkeypatch.context() as patched:
        patched.setattr(values.re, "fullmatch", no_regex)
        patched.setattr(values.re, "sub", no_regex)
        assert values.parse_size("1000000", "-s") == 1_000_000
        assert values.parse_size("0", "--tidb-mem-quota-query") == 0
        assert values.unescape(",") == b","
        assert values.unescape("\r\n") == b"\r\n"
        assert values.parse_duration_seconds("15m", "--read-timeout") == 900.0
        assert values.parse_duration_seconds(" 30s", "--read-timeout") == 30.0
        assert values.parse_duration_seconds("0", "--read-timeout") is None  # never
    assert values.parse_size("256MiB", "-F") == 256 * 1024 * 1024
    assert values.unescape("\\r\\n") == b"\r\n"
    assert values.parse_duration_seconds("1h30m", "--read-timeout") == 5400.0
    assert values.parse_duration_seconds("1.5s", "--read-timeout") == 1.5
    with pytest.raises(UsageError):
        values.parse_size("12 parsecs", "-s")
    for bad in ("", "m", "15 minutes", "\u00b2m"):
        with pytest.raises(UsageError, match="cannot read duration"):
            values.parse_duration_seconds(bad, "--read-timeout")


class _Exited(BaseException):  # not an Exception: main reports those as internal errors
    pass


def test_a_finished_dump_exits_without_the_interpreter_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own ``tibackup dump`` ends with os._exit once the logs and the output are flushed
    (the teardown of every module and object is ~3 ms of a sub-second dump); called with arguments, as
    by a program or a test, main returns."""
    import logging

    from tibackup.cli import dump_cmd
    from tibackup.cli import main as cli_main

    events: list[str] = []
    monkeypatch.setattr(dump_cmd, "run", lambda args: events.append("dumped"))
    monkeypatch.setattr(logging, "shutdown", lambda: events.append("logs flushed"))

    def fake_exit(code: int) -> None:
        events.append(f"exit {code}")
        raise _Exited

    monkeypatch.setattr(cli_main.os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["tibackup", "dump", "-o", "/tmp/unused-out"])
    with pytest.raises(_Exited):
        cli_main.main()
    assert events == ["dumped", "logs flushed", "exit 0"]
    events.clear()
    cli_main.main(["dump", "-o", "/tmp/unused-out"])
    assert events == ["dumped"]


def test_the_manifest_lists_each_file_without_a_deep_copy_of_its_record() -> None:
    """The manifest is written after the last file, so its cost is paid by every dump's wall time:
    each record's fields go in as they are, in field order (dataclasses.asdict copied them deeply,
    ~6 µs a file), and the position too."""
    import json
    from datetime import datetime

    from tibackup.dump import metadata
    from tibackup.dump.checksum import ManifestChecksum
    from tibackup.dump.conn import ServerInfo
    from tibackup.dump.writer import FileRecord

    xxh = ManifestChecksum.XXH128
    files = [FileRecord(f"db.t{i}.000000000.sql", 10 + i, i, xxh, "ab" * 16, "db", f"t{i}") for i in (2, 1)]
    files.append(FileRecord(table="t0", schema="db", checksum=xxh, digest="cd" * 16, rows=0, size=3, name="db.t0.000000000.sql"))
    now = datetime(2026, 12, 1, 12, 0, 0)
    doc = json.loads(
        metadata.manifest_json(
            started=now, finished=now, server=ServerInfo.parse("10.11.6-MariaDB"), consistency="flush",
            position=metadata.BinlogPosition("bin.000002", "342", "0-1-7"), files=files,
        )
    )  # fmt: skip
    assert doc["files"] == [f.entry() for f in reversed(files)]  # sorted by name
    t0 = {"name": "db.t0.000000000.sql", "size": 3, "rows": 0, "xxh128": "cd" * 16, "schema": "db", "table": "t0"}
    assert doc["files"][0] == t0  # the digest under its checksum's name
    order = ["name", "size", "rows", "xxh128", "schema", "table"]  # the field order, whatever the call's
    assert [list(entry) for entry in doc["files"]] == [order] * 3
    assert doc["position"] == {"log": "bin.000002", "pos": "342", "gtid": "0-1-7"}
