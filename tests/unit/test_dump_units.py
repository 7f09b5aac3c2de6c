"""Pure parts of the dumper: flags, file names, statement and file framing, CSV rendering."""

from __future__ import annotations

import threading

import pytest

from tibackup.dump.catalog import Column, Kind, kind_of
from tibackup.dump.config import Compression, Consistency, CSVOptions, FileType
from tibackup.dump.flagvalues import parse_size
from tibackup.dump.naming import DataFileNamer, escape_name, schema_create_name, table_schema_name
from tibackup.dump.options import parse_dumpling_args
from tibackup.dump.render import RowFormat
from tibackup.dump.writer import ChunkWriter, FileRecord, Finisher
from tibackup.errors import StorageError, UsageError
from tibackup.storage.local import LocalStorage

# -- flags ------------------------------------------------------------------------------------------


def test_dumpling_defaults() -> None:
    config = parse_dumpling_args(["-o", "/tmp/x"], env={})
    assert (config.connection.host, config.connection.port, config.connection.user) == (
        "127.0.0.1",
        4000,
        "root",
    )
    assert config.threads == 4 and config.rows == 0 and config.file_size == 0
    assert config.statement_size == 1_000_000
    assert config.filetype is FileType.SQL and config.consistency is Consistency.AUTO
    assert config.no_views is True and config.escape_backslash is True
    assert config.table_filter is None, "no user filter: the default one applies"
    assert config.csv == CSVOptions()


def test_short_and_long_forms() -> None:
    config = parse_dumpling_args(
        ["-h", "db", "-P", "3306", "-u", "bk", "-t", "8", "-r", "200000", "-F", "256MiB", "-s", "2000",
         "-c", "zstd", "--filetype", "csv", "-W=false", "-d", "-o", "s3://bucket/some/prefix",
         "--s3.endpoint", "http://ceph:7480", "--s3.provider", "ceph", "--params", "sql_mode=,time_zone=+00:00"],
        env={},
    )  # fmt: skip
    assert (
        config.connection.host == "db" and config.connection.port == 3306 and config.connection.user == "bk"
    )
    assert (config.threads, config.rows, config.file_size, config.statement_size) == (
        8,
        200000,
        256 << 20,
        2000,
    )
    assert config.compression is Compression.ZSTD and config.filetype is FileType.CSV
    assert config.no_views is False and config.no_data is True
    assert (
        config.s3 is not None
        and config.s3.bucket == "bucket"
        and config.s3.prefix.strip("/") == "some/prefix"
    )
    assert config.params == (("sql_mode", ""), ("time_zone", "+00:00"))


def test_password_from_environment_never_needs_the_command_line() -> None:
    assert (
        parse_dumpling_args(["-o", "x"], env={"TIBACKUP_DB_PASSWORD": "s3cr3t"}).connection.password
        == "s3cr3t"
    )
    assert parse_dumpling_args(["-o", "x"], env={"MYSQL_PWD": "other"}).connection.password == "other"
    config = parse_dumpling_args(["-o", "x", "-p", "flag"], env={"TIBACKUP_DB_PASSWORD": "env"})
    assert config.connection.password == "flag"
    assert "s3cr3t" not in repr(parse_dumpling_args(["-o", "x"], env={"TIBACKUP_DB_PASSWORD": "s3cr3t"}))


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--no-such-flag"], "--no-such-flag"),
        (["-F", "lots"], "--filesize"),
        (["-t", "0"], "--threads"),
        (["--params", "novalue"], "--params"),
        (["--s3.region", "x"], "s3://"),
        (["-c", "lz4"], "--compress"),
        (["--output-filename-template", "{{.Nope}}"], "output-filename-template"),
    ],
)
def test_bad_flags_name_themselves(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace(".", r"\.")):
        config = parse_dumpling_args([*argv, "-o", "x"], env={})
        DataFileNamer(config.filename_template, "d", "t", 0, rows=False, file_size=False)


def test_sizes() -> None:
    assert parse_size("1024", "-F") == 1024
    assert parse_size("64KiB", "-F") == 65536 and parse_size("1GB", "-F") == 10**9
    assert parse_size("1.5MiB", "-F") == 1572864


def test_filter_flags_split_on_commas() -> None:
    config = parse_dumpling_args(["-f", "a.*,b.t", "-f", "!a.skip", "-o", "x"], env={})
    assert config.table_filter is not None
    assert config.table_filter.match_table("a", "x") and config.table_filter.match_table("b", "t")
    assert not config.table_filter.match_table("a", "skip") and not config.table_filter.match_table("c", "t")


# -- names ------------------------------------------------------------------------------------------


def test_dumpling_file_names() -> None:
    assert schema_create_name("shop") == "shop-schema-create.sql"
    assert table_schema_name("shop", "orders") == "shop.orders-schema.sql"
    assert escape_name("a.b/c") == "a%2Eb%2Fc"
    assert escape_name("t-schema") == "t%2Dschema"
    plain = DataFileNamer("", "db", "t", 3, rows=True, file_size=False)
    assert plain.name(0, "sql") == "db.t.000000003.sql"
    both = DataFileNamer("", "db", "t", 3, rows=True, file_size=True)
    assert both.name(2, "csv.gz") == "db.t.0000000030002.csv.gz"
    size_only = DataFileNamer("", "db", "t", 0, rows=False, file_size=True)
    assert size_only.name(7, "sql") == "db.t.000000007.sql"
    custom = DataFileNamer("{{.DB}}-{{.Table}}-{{.Index}}", "d.b", "t", 0, rows=False, file_size=False)
    assert custom.name(0, "sql") == "d.b-t-000000000.sql"


# -- framing ----------------------------------------------------------------------------------------


def _writer(tmp_path, filetype=FileType.SQL, statement_size=1_000_000, file_size=0, header=b""):  # type: ignore[no-untyped-def]
    files: list[FileRecord] = []
    writer = ChunkWriter(
        LocalStorage(tmp_path), DataFileNamer("", "d", "t", 0, rows=False, file_size=bool(file_size)),
        filetype=filetype, compression=Compression.NONE, statement_prefix=b"INSERT INTO `t` VALUES\n",
        csv_header=header, statement_size=statement_size, file_size=file_size, on_file=files.append,
    )  # fmt: skip
    return writer, files


def test_sql_statements_split_at_statement_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The prefix counts; a statement ends after the row that makes it reach -s (23 + 3 rows ≥ 50).
    writer, files = _writer(tmp_path, statement_size=50)
    writer.add_blob(b"(1,'aaaa'),\n(2,'bbbb'),\n(3,'cccc')", b",\n")
    writer.add_blob(b"(4,'dddd')", b",\n")
    writer.close()
    text = (tmp_path / "d.t.000000000.sql").read_bytes()
    assert text == (
        b"/*!40101 SET NAMES binary*/;\n"
        b"INSERT INTO `t` VALUES\n(1,'aaaa'),\n(2,'bbbb'),\n(3,'cccc');\n"
        b"INSERT INTO `t` VALUES\n(4,'dddd');\n"
    )
    assert files[0].rows == 4 and writer.rows == 4


def test_streamed_rows_frame_the_same_way(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer, _ = _writer(tmp_path, statement_size=50)
    writer.add_rows([b"(1,'aaaa')", b"(2,'bbbb')", b"(3,'cccc')", b"(4,'dddd')"], b",\n")
    writer.close()
    text = (tmp_path / "d.t.000000000.sql").read_bytes()
    assert text.count(b"INSERT INTO") == 2 and text.endswith(b"(4,'dddd');\n")


def test_files_split_at_file_size_on_row_boundaries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer, files = _writer(tmp_path, file_size=80)
    rows = b",\n".join(b"(%d,'%s')" % (i, b"x" * 10) for i in range(20))
    writer.add_blob(rows, b",\n")
    writer.close()
    assert len(files) > 2
    total = 0
    for record in files:
        text = (tmp_path / record.name).read_bytes()
        assert text.startswith(b"/*!40101 SET NAMES binary*/;\nINSERT INTO `t` VALUES\n") and text.endswith(
            b");\n"
        )
        total += record.rows
    assert total == 20
    assert [r.name for r in files][:2] == ["d.t.000000000.sql", "d.t.000000001.sql"]


@pytest.mark.parametrize(
    ("filetype", "statement_size", "file_size"),
    [(FileType.SQL, 50, 0), (FileType.SQL, 120, 300), (FileType.SQL, 1_000_000, 90), (FileType.SQL, 64, 64),
     (FileType.CSV, 1_000_000, 90), (FileType.CSV, 1_000_000, 333)],
)  # fmt: skip
def test_reads_sized_by_next_room_frame_like_one_blob(tmp_path, filetype, statement_size, file_size) -> None:  # type: ignore[no-untyped-def]
    """The C reader's batches end where next_room() says: the files are those of one big blob, and
    add_blob never has to search a batch for rows (its row count is trusted)."""
    sep = b",\n" if filetype is FileType.SQL else b"\r\n"
    rows = [b"(%d,'%s')" % (i, b"x" * (i * 7 % 23)) for i in range(200)]
    settings = {
        "filetype": filetype,
        "statement_size": statement_size,
        "file_size": file_size,
        "header": b"h\r\n",
    }
    whole, whole_files = _writer(tmp_path / "whole", **settings)
    whole.add_blob(sep.join(rows), sep)
    whole.close()

    aligned, aligned_files = _writer(tmp_path / "aligned", **settings)
    pieces: list[int] = []
    account = aligned._account

    def counted(n: int, size: int) -> None:
        pieces.append(n)
        account(n, size)

    aligned._account = counted
    i = batches = 0
    while i < len(rows):  # what _rowcodec.Reader.read(max_bytes) does: add rows while shorter than max
        batches += 1
        limit, batch = aligned.next_room() - len(sep) + 1, [rows[i]]
        i += 1
        while i < len(rows) and len(sep.join(batch)) < limit:
            batch.append(rows[i])
            i += 1
        pieces.clear()
        aligned.add_blob(sep.join(batch), sep, len(batch))
        assert pieces == [len(batch)], "the batch was written whole, in one statement"
    aligned.close()

    assert batches > 5, "statements or files ended many times"
    assert [(f.name, f.rows, f.size) for f in aligned_files] == [
        (f.name, f.rows, f.size) for f in whole_files
    ]
    for record in whole_files:
        assert (tmp_path / "aligned" / record.name).read_bytes() == (
            tmp_path / "whole" / record.name
        ).read_bytes()
    assert sum(f.rows for f in aligned_files) == 200


def test_finisher_commits_files_in_the_background(tmp_path) -> None:  # type: ignore[no-untyped-def]
    finisher = Finisher(2)
    files: list[FileRecord] = []
    writer, _ = _writer(tmp_path, statement_size=50)
    writer._finisher, writer._on_file = finisher, files.append
    writer.add_blob(b",\n".join(b"(%d)" % i for i in range(100)), b",\n")
    writer.close()
    finisher.write_whole(
        LocalStorage(tmp_path),
        "d.t-schema.sql",
        b"CREATE TABLE t (a int);\n",
        Compression.NONE,
        "d",
        "t",
        files.append,
    )
    finisher.wait()
    assert sorted(f.name for f in files) == ["d.t-schema.sql", "d.t.000000000.sql"]
    assert {f.name: f.rows for f in files}["d.t.000000000.sql"] == 100
    assert all((tmp_path / f.name).stat().st_size == f.size for f in files)


class FailingStorage(LocalStorage):
    """A folder whose files fail as they are closed (a full disk)."""

    def create(self, name: str):  # type: ignore[no-untyped-def]
        inner = super().create(name)

        class Failing:
            write, abort = inner.write, inner.abort

            def close(self) -> None:
                raise StorageError(f"writing {name} failed: the disk is full")

        return Failing()


def test_finisher_reports_a_failed_commit_and_leaves_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stopped: list[bool] = []
    finisher = Finisher(2, on_error=lambda: stopped.append(True))
    recorded: list[FileRecord] = []
    finisher.write_whole(
        FailingStorage(tmp_path), "d.t-schema.sql", b"x", Compression.NONE, "d", "t", recorded.append
    )
    with pytest.raises(StorageError, match="disk is full"):
        finisher.wait()
    assert stopped == [True] and recorded == []
    assert list(tmp_path.iterdir()) == [], "the temporary file was removed"


def test_finisher_without_background_closes_on_the_callers_thread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A local folder's files: each is committed before close returns, on the worker's own thread; a
    failure still stops the workers and is raised by wait, as in the background."""
    threads: list[str] = []
    files: list[FileRecord] = []

    def on_file(record: FileRecord) -> None:
        threads.append(threading.current_thread().name)
        files.append(record)

    finisher = Finisher(2, background=False)
    finisher.write_whole(
        LocalStorage(tmp_path), "d.t-schema.sql", b"x;\n", Compression.NONE, "d", "t", on_file
    )
    assert [f.name for f in files] == ["d.t-schema.sql"] and threads == [threading.current_thread().name]
    assert (tmp_path / "d.t-schema.sql").read_bytes() == b"x;\n"
    finisher.wait()

    stopped: list[bool] = []
    failing = Finisher(2, on_error=lambda: stopped.append(True), background=False)
    failing.write_whole(
        FailingStorage(tmp_path / "f"), "d.u-schema.sql", b"x", Compression.NONE, "d", "u", on_file
    )
    assert stopped == [True] and len(files) == 1
    with pytest.raises(StorageError, match="disk is full"):
        failing.wait()
    assert list((tmp_path / "f").iterdir()) == []


def test_empty_chunk_writes_no_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer, files = _writer(tmp_path)
    writer.close()
    assert files == [] and list(tmp_path.iterdir()) == []


def test_csv_rows_end_with_the_terminator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer, files = _writer(tmp_path, filetype=FileType.CSV, header=b'"a","b"\r\n')
    writer.add_blob(b'1,"x"\r\n2,"y"', b"\r\n")
    writer.close()
    assert (tmp_path / "d.t.000000000.csv").read_bytes() == b'"a","b"\r\n1,"x"\r\n2,"y"\r\n'
    assert files[0].rows == 2


# -- rendering --------------------------------------------------------------------------------------


def test_kinds_follow_dumpling() -> None:
    assert kind_of("decimal") is Kind.NUMBER and kind_of("double") is Kind.NUMBER
    assert (
        kind_of("varbinary") is Kind.BYTES
        and kind_of("geometry") is Kind.BYTES
        and kind_of("bit") is Kind.BIT
    )
    assert (
        kind_of("year") is Kind.STRING and kind_of("json") is Kind.STRING and kind_of("enum") is Kind.STRING
    )


def test_bulk_path_only_when_newlines_cannot_hide_in_values() -> None:
    assert RowFormat(FileType.SQL, True, CSVOptions()).bulk_safe
    assert not RowFormat(FileType.SQL, False, CSVOptions()).bulk_safe
    assert RowFormat(FileType.CSV, True, CSVOptions()).bulk_safe
    assert not RowFormat(FileType.CSV, True, CSVOptions(line_terminator=b";")).bulk_safe


def test_csv_header_quotes_and_escapes_names() -> None:
    fmt = RowFormat(FileType.CSV, True, CSVOptions())
    columns = (Column("id", "int", "int", False), Column('we"ird', "varchar", "varchar(3)", False))
    assert fmt.csv_header(columns) == b'"id","we\\"ird"\r\n'
    assert "IFNULL(`id`,X'5c4e')" in fmt.row_expr(columns)


def test_auto_read_mode_prefers_the_c_reader() -> None:
    from tibackup.dump.conn import HAVE_ROW_READER
    from tibackup.dump.dumper import read_mode_for

    auto = parse_dumpling_args(["-o", "x"], env={})
    fmt = RowFormat(FileType.SQL, True, CSVOptions())
    assert HAVE_ROW_READER, "the C row reader is built by pip install -e ."
    assert read_mode_for(auto, fmt, False) == "client"
    assert read_mode_for(auto, fmt, True) == "client"
    csv = RowFormat(FileType.CSV, True, CSVOptions())
    assert read_mode_for(auto, csv, False) == "client" and read_mode_for(auto, csv, True) == "client"
    odd_csv = RowFormat(FileType.CSV, True, CSVOptions(line_terminator=b";"))
    assert read_mode_for(auto, odd_csv, False) == "stream", "rows that do not end in a newline"
    no_escape = RowFormat(FileType.SQL, False, CSVOptions())
    assert read_mode_for(auto, no_escape, False) == "stream"
    forced = parse_dumpling_args(["-o", "x", "--read-mode", "stream"], env={})
    assert read_mode_for(forced, fmt, False) == "stream"


def test_without_the_c_reader_the_server_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    from tibackup.dump import dumper

    monkeypatch.setattr(dumper, "HAVE_ROW_READER", False)  # an install without a compiler
    auto = parse_dumpling_args(["-o", "x"], env={})
    fmt = RowFormat(FileType.SQL, True, CSVOptions())
    assert dumper.read_mode_for(auto, fmt, False) == "bulk"
    assert dumper.read_mode_for(auto, fmt, True) == "stream", "no bulk on TiDB"
    client = parse_dumpling_args(["-o", "x", "--read-mode", "client"], env={})
    assert dumper.read_mode_for(client, fmt, False) == "stream"


class _BlobLog:
    """A ChunkWriter stand-in: the blobs in the order they reach the file, and the closes."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.closed = 0

    def next_room(self) -> int:
        return 1 << 20

    def add_blob(self, blob: bytes, separator: bytes, rows: int = 0) -> None:
        self.blobs.append(blob)

    def close(self) -> None:
        self.closed += 1


def test_a_chunk_read_in_quarters_writes_them_in_key_order_whatever_order_they_end_in() -> None:
    from tibackup.dump.clientread import SharedChunk

    log = _BlobLog()
    shared = SharedChunk(log, b",", 4)  # type: ignore[arg-type]
    shared.add(2, b"c1", 1)  # later parts keep their rows until every part before them is done
    shared.add(0, b"a1", 1)
    shared.add(3, b"d1", 1)
    shared.add(1, b"b1", 1)
    shared.finish(3)
    shared.add(0, b"a2", 1)
    shared.finish(1)
    assert log.blobs == [b"a1", b"a2"]
    shared.finish(0)  # parts 1 (done) and 2 (still reading) follow
    assert log.blobs == [b"a1", b"a2", b"b1", b"c1"]
    shared.add(2, b"c2", 1)  # part 2 now writes directly
    assert log.closed == 0
    shared.finish(2)  # completes the chunk: part 3's kept rows, then the close
    assert log.blobs == [b"a1", b"a2", b"b1", b"c1", b"c2", b"d1"] and log.closed == 1
