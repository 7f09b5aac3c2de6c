"""The loader's pure parts: file names, the statement splitter, CSV conversion, decompression."""

from __future__ import annotations

import gzip
import io

import cramjam
import pytest
import zstandard

from tibackup.dump.checksum import ManifestChecksum
from tibackup.dump.config import Compression, Connection, CSVOptions
from tibackup.errors import UsageError
from tibackup.load.config import LoadConfig, OnDuplicate
from tibackup.load.csvdata import csv_statements
from tibackup.load.execute import rewrite
from tibackup.load.read import (
    _STATEMENT_ESCAPED,
    CheckedReader,
    Expected,
    VerifyFailed,
    _plain_end,
    decompressed,
    split_statements,
)
from tibackup.load.source import BackupFile, FileKind, classify, template_pattern

SQL = (
    b"/*!40101 SET NAMES binary*/;\n"
    b"INSERT INTO `t` VALUES\n(1,'a;b\\';c','x'';\\n'),\n(2,\"q;\\\"\",NULL);\n"
    b"-- a comment; with 'a quote\n"
    b"INSERT INTO `t` VALUES\n(3,'/* not a comment; */',-1),\n(4,x'3b',`w;`);\n"
    b"INSERT INTO `t` VALUES (5,'the last one');\n-- a trailer without a statement\n"
)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_split_statements_at_any_read_size(size: int) -> None:
    statements = list(split_statements(_pieces(SQL, size)))
    texts = [sql.strip() for _, sql in statements]
    assert texts[0] == b"/*!40101 SET NAMES binary*/;"
    assert texts[1].endswith(b'(2,"q;\\"",NULL);')
    assert texts[2].startswith(b"-- a comment") and texts[2].endswith(b"`w;`);")
    assert texts[3] == b"INSERT INTO `t` VALUES (5,'the last one');"
    assert texts[4] == b"-- a trailer without a statement"
    assert len(texts) == 5
    assert [o for o, _ in statements] == [o for o, _ in split_statements([SQL])], (
        "offsets do not depend on reads"
    )
    assert b"".join(sql for _, sql in statements) == SQL


def test_split_without_backslash_escapes() -> None:
    data = b"INSERT INTO t VALUES ('a\\'),('b;''c');\nINSERT INTO t VALUES (1);"
    texts = [sql.strip() for _, sql in split_statements([data], backslash_escapes=False)]
    assert texts == [b"INSERT INTO t VALUES ('a\\'),('b;''c');", b"INSERT INTO t VALUES (1);"]


@pytest.mark.parametrize(
    "text, fast",
    [
        (b"INSERT INTO `t` VALUES (1,'a'),(2,'b''c');", True),  # what a dump writes: no regex needed
        (b'INSERT INTO `t` VALUES (1,"a"),(2,"b");', True),
        (b"INSERT INTO t VALUES (1,2);", True),
        (b"INSERT INTO `t;x` VALUES (1);", False),  # a ';' inside a name
        (b"INSERT INTO `t` VALUES ('a;b');", False),  # inside a string
        (b"INSERT INTO `t` VALUES ('a\\';');", False),  # after an escaped quote
        (b"INSERT INTO `t` VALUES ('x','\"');", False),  # quotes of both kinds
        (b"INSERT INTO t VALUES ('`', 1);", False),  # a backquote inside a string
        (b"/* c; */ INSERT INTO t VALUES (1);", False),
        (b"-- c;\nINSERT INTO t VALUES (1);", False),
        (b"# c;\nINSERT INTO t VALUES (1);", False),
    ],
)
def test_statement_end_found_without_the_regex_only_where_certain(text: bytes, fast: bool) -> None:
    m = _STATEMENT_ESCAPED.match(text + b" INSERT INTO t VALUES (9);")
    assert m is not None
    end = _plain_end(text + b" INSERT INTO t VALUES (9);", 0)
    assert (end > 0) is fast
    if fast:
        assert end == m.end() == len(text)
    assert _plain_end(b"INSERT INTO t VALUES (1,'no end yet", 0) == 0


def test_classify_dumpling_names() -> None:
    assert classify("db-schema-create.sql", 1) == BackupFile(
        "db-schema-create.sql", 1, FileKind.DATABASE, "db"
    )
    f = classify("d%2Eb.t%2Dschema-schema.sql.gz", 1)
    assert (f.kind, f.db, f.table, f.compression) == (FileKind.TABLE, "d.b", "t-schema", Compression.GZIP)
    f = classify("db.v-schema-view.sql", 1)
    assert (f.kind, f.table) == (FileKind.VIEW, "v")
    f = classify("db.t.0000000010002.csv.zst", 1)
    assert (f.kind, f.db, f.table, f.csv, f.compression) == (FileKind.DATA, "db", "t", True, Compression.ZSTD)
    assert classify("metadata", 1).kind is FileKind.OTHER
    assert classify("notes.txt", 1).kind is FileKind.OTHER
    with pytest.raises(UsageError, match=r"cannot tell which table x-y-000000001\.sql holds"):
        classify("x-y-000000001.sql", 1)
    custom = template_pattern("{{.DB}}-{{fn .Table}}-{{.Index}}")
    f = classify("my.db-t%2Ex-000000001.sql.gz", 1, custom)
    assert (f.kind, f.db, f.table) == (FileKind.DATA, "my.db", "t.x")


def test_rewrite_on_duplicate() -> None:
    sql = b"INSERT INTO `t` VALUES (1);"
    assert rewrite(sql, OnDuplicate.ERROR) == sql
    assert rewrite(sql, OnDuplicate.REPLACE) == b"REPLACE INTO `t` VALUES (1);"
    assert (
        rewrite(b"\ninsert  into `t` VALUES (1);", OnDuplicate.IGNORE)
        == b"INSERT IGNORE INTO `t` VALUES (1);"
    )


@pytest.mark.parametrize("codec", list(Compression))
def test_decompress_and_check(codec: Compression) -> None:
    raw = SQL * 5000
    stored = {
        Compression.NONE: raw,
        Compression.GZIP: gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]),  # two gzip members
        Compression.ZSTD: zstandard.ZstdCompressor().compress(raw),
        Compression.SNAPPY: bytes(cramjam.snappy.compress(raw)),
    }[codec]
    import xxhash

    digest = xxhash.xxh3_128(stored).hexdigest()
    reader = CheckedReader(io.BytesIO(stored), "f", want=Expected(len(stored), ManifestChecksum.XXH128, digest))  # type: ignore[arg-type]
    assert b"".join(decompressed(reader, codec)) == raw
    reader.check()
    reader.want = Expected(len(stored), ManifestChecksum.XXH128, "0" * 32)
    with pytest.raises(VerifyFailed, match="f does not match its xxh128"):
        reader.check()
    reader.want = Expected(len(stored) + 1)
    with pytest.raises(VerifyFailed, match="f has"):
        reader.check()


def test_snappy_blocks_are_checked_against_their_crc32c() -> None:
    """Each block of snappy's framing format carries a masked CRC-32C of its data: a flipped bit in a
    compressed block that still decompresses, or in an uncompressed block, is VerifyFailed naming
    the file (a backup without a manifest has nothing else to catch it)."""
    import os

    import cramjam

    text = b"".join(b"(%d,'v%d')," % (n, n) for n in range(20_000))
    noise = os.urandom(100_000)  # incompressible: written as uncompressed blocks (type 0x01)
    for raw, kind in ((text, 0x00), (noise, 0x01)):
        stored = bytes(cramjam.snappy.compress(raw))
        assert stored[10] == kind
        assert b"".join(decompressed(CheckedReader(io.BytesIO(stored), "f"), Compression.SNAPPY)) == raw  # type: ignore[arg-type]
        length = int.from_bytes(stored[11:14], "little")
        bad = bytearray(stored)
        for at in range(14 + length - 1, 18, -1):  # the last data byte of the first block that still decodes
            bad = bytearray(stored)
            bad[at] ^= 0x01
            if kind == 0x01 or _decodes(bytes(bad[18 : 14 + length])):
                break
        reader = CheckedReader(io.BytesIO(bytes(bad)), "db.t.000000000.sql.snappy")  # type: ignore[arg-type]
        with pytest.raises(VerifyFailed, match=r"db\.t\.000000000\.sql\.snappy .*CRC-32C.*damaged"):
            b"".join(decompressed(reader, Compression.SNAPPY))


def _decodes(block: bytes) -> bool:
    import cramjam

    try:
        cramjam.snappy.decompress_raw(block)
    except Exception:
        return False
    return True


def _csv_config(**csv: object) -> LoadConfig:
    return LoadConfig(Connection(), "x", csv=CSVOptions(**csv))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [1, 5, 1 << 20])
def test_csv_to_insert(size: int) -> None:
    data = b'"id","s","n"\r\n1,"a\\"b\'c;\\n",\\N\r\n2,"",3.5e2\r\n3,"x\\\\",-4\r\n'
    file = BackupFile("db.t.000000000.csv", len(data), FileKind.DATA, "db", "t", csv=True)
    out = list(csv_statements(_pieces(data, size), file, _csv_config()))
    assert len(out) == 1
    offset, sql = out[0]
    assert offset == len(b'"id","s","n"\r\n'), "the offset of the first row"
    assert sql == (
        b"INSERT INTO `t` (`id`,`s`,`n`) VALUES\n(1,'a\\\"b\\'c;\\n',NULL),\n(2,'',3.5e2),\n(3,'x\\\\',-4);\n"
    )


def test_csv_other_settings_no_header() -> None:
    data = b"1|'it''s'|NULL\n2|'a|b'|x\n"
    file = BackupFile("db.t.000000000.csv", len(data), FileKind.DATA, "db", "t", csv=True)
    config = LoadConfig(
        Connection(), "x", csv=CSVOptions(separator=b"|", delimiter=b"'", null_value=b"NULL",
                                         line_terminator=b"\n", no_header=True),
        escape_backslash=False,
    )  # fmt: skip
    [(_, sql)] = csv_statements([data], file, config)
    assert sql == b"INSERT INTO `t` VALUES\n(1,'it''s',NULL),\n(2,'a|b','x');\n"


def test_progress_line_has_files_rows_bytes_rate_eta() -> None:
    from tibackup.load.progress import LoadProgress

    progress = LoadProgress(total_bytes=4_000_000, total_files=4)
    progress.add(12_345, 1_000_000)
    progress.file_done()
    line = progress.line()
    assert line.startswith("25.0%") and "1/4 files" in line and "12,345 rows" in line
    assert "1.0 MB/4.0 MB" in line and "/s" in line and "ETA" in line


def test_a_long_statement_is_rescanned_a_few_times_not_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    from tibackup.load import read

    long_statement = b"INSERT INTO t VALUES ('" + b"x" * 100_000 + b"');\nINSERT INTO t VALUES (1);"
    scans: list[int] = []
    original = read._STATEMENT_ESCAPED

    class Counting:
        def match(self, buf: bytes, pos: int = 0) -> object:
            scans.append(len(buf))
            return original.match(buf, pos)

    monkeypatch.setattr(read, "_STATEMENT_ESCAPED", Counting())
    texts = [sql for _, sql in split_statements(_pieces(long_statement, 100))]
    assert len(texts) == 2 and texts[0].endswith(b"');")
    assert len(scans) < 40, f"{len(scans)} scans for 1000 chunks"
    monkeypatch.setattr(read, "MAX_STATEMENT", 10_000)
    with pytest.raises(VerifyFailed, match="f: a statement or line longer than"):
        list(split_statements(_pieces(long_statement, 100), name="f"))


def test_load_flags_share_dumps_connection_and_s3_flags() -> None:
    from tibackup.cli.load_cmd import config_from_args

    config, _ = config_from_args(
        ["-d", "s3://b/p/", "-h", "db", "-P", "3306", "-u", "me", "--ca", "ca.pem", "--cert", "c.pem",
         "--key", "k.pem", "--s3.endpoint", "http://127.0.0.1:9", "--s3.provider", "ceph", "-t", "3",
         "-f", "a.*,!a.b", "--on-duplicate", "ignore"],
        {"MYSQL_PWD": "from-env"},
    )  # fmt: skip
    c = config.connection
    assert (c.host, c.port, c.user, c.password) == ("db", 3306, "me", "from-env")
    assert (c.tls.ca, c.tls.cert, c.tls.key) == ("ca.pem", "c.pem", "k.pem")
    assert config.s3 is not None and (config.s3.bucket, config.s3.prefix) == ("b", "p")
    assert config.s3.endpoint == "http://127.0.0.1:9" and config.s3.provider == "ceph"
    assert config.threads == 3 and config.on_duplicate is OnDuplicate.IGNORE
    assert config.table_filter is not None and config.table_filter.match_table("a", "x")
    assert not config.table_filter.match_table("a", "b")
    assert "from-env" not in repr(config)
    with pytest.raises(UsageError, match="no backup given"):
        config_from_args([], {})
    with pytest.raises(UsageError, match="--on-duplicate"):
        config_from_args(["-d", "x", "--on-duplicate", "merge"], {})


def test_plan_never_loads_system_schemas_or_the_checkpoint() -> None:
    from tibackup.load.plan import plan_load

    class Fake:
        url = "mem://"
        parallel = True

        def listing(self) -> list[object]:
            from tibackup.storage.base import ObjectInfo

            names = ["metadata", "mysql-schema-create.sql", "mysql.user-schema.sql", "mysql.user.000000000.sql",
                     "tibackup_load.checkpoints-schema.sql", "tibackup_load.checkpoints.000000000.sql",
                     "shop-schema-create.sql", "shop.t-schema.sql", "shop.t.000000000.sql"]  # fmt: skip
            return [ObjectInfo(n, 1) for n in names]

        def read(self, name: str) -> bytes:
            return b"Started dump at: x\n"

    plan = plan_load(Fake(), LoadConfig(Connection(), "mem://"))  # type: ignore[arg-type]
    assert plan.table_names == [("shop", "t")]
    assert [f.db for f in plan.databases] == ["shop"]


def test_a_deadlocked_transaction_runs_again() -> None:
    from tibackup.dump.progress import Progress
    from tibackup.errors import DatabaseError
    from tibackup.load.checkpoint import Checkpoint
    from tibackup.load.execute import DataLoader, _Work

    class FakeDB:
        def __init__(self, failures: int, code: int) -> None:
            self.failures, self.code, self.log = failures, code, []  # type: list[str]

        def execute(self, sql: str, doing: str = "") -> None:
            self.log.append(sql)

        def execute_bytes(self, sql: bytes, doing: str = "") -> int:
            self.log.append(sql.decode()[:15])
            if sql.startswith(b"INSERT INTO `t`") and self.failures:
                self.failures -= 1
                error = DatabaseError("Deadlock found when trying to get lock")
                error.code = self.code
                raise error
            return 2

    file = BackupFile("db.t.000000000.sql", 1, FileKind.DATA, "db", "t")
    work = _Work(file, [(0, b"INSERT INTO `u` VALUES (0);"), (30, b"INSERT INTO `t` VALUES (1),(2);")], ())
    db = FakeDB(failures=2, code=1213)
    loader = DataLoader([db], None, None, LoadConfig(Connection(), "x"), Checkpoint("0" * 32), {}, Progress())  # type: ignore[arg-type, list-item]
    assert loader._run(db, work) == 4  # type: ignore[arg-type]
    assert db.log.count("ROLLBACK") == 2 and db.log.count("COMMIT") == 1
    assert db.log.count("INSERT INTO `u`") == 3, "the whole group ran again, its first statement too"
    assert db.log[-4:] == ["INSERT INTO `u`", "INSERT INTO `t`", "INSERT INTO `ti", "COMMIT"]  # + checkpoint
    other = FakeDB(failures=1, code=1062)  # a duplicate key is no reason to retry
    with pytest.raises(DatabaseError):
        loader._run(other, work)  # type: ignore[arg-type]
    assert "ROLLBACK" not in other.log


def test_committed_ranges_cover_their_statements() -> None:
    from tibackup.load.checkpoint import CLAIMED, FILE_DONE, Committed

    done = Committed()
    assert not done and 0 not in done
    done.add(100, 900)
    done.add(0, 50)
    done.add(CLAIMED, CLAIMED)
    assert done and CLAIMED in done and FILE_DONE not in done
    assert all(o in done for o in (0, 50, 100, 500, 900))
    assert not any(o in done for o in (51, 99, 901))


def test_statements_are_grouped_per_file_by_count_and_bytes() -> None:
    import io

    from tibackup.dump.progress import Progress
    from tibackup.load.checkpoint import Committed
    from tibackup.load.execute import DataLoader, _FileState, group_bytes
    from tibackup.load.plan import LoadPlan

    assert group_bytes(2) == 4 << 20 and group_bytes(16) == 2 << 20 and group_bytes(1000) == 1 << 20
    body = b"SET NAMES binary;\n" + b"".join(b"INSERT INTO `t` VALUES (%d);\n" % i for i in range(25))
    file = BackupFile("db.t.000000000.sql", len(body), FileKind.DATA, "db", "t")
    plan = LoadPlan("0" * 32, [], [], [file], [])
    done = Committed()
    first = body.index(b";") + 1  # statements start after the ';' before them
    done.add(first, first)  # the first statement was committed by an earlier run
    loader = DataLoader(
        [None], None, plan, LoadConfig(Connection(), "x"), None, {file.name: done}, Progress()
    )  # type: ignore[list-item, arg-type]
    loader.group_statements, loader.group_bytes = 10, 1 << 20
    loader._states[file.name] = _FileState()
    sent: list[object] = []
    loader._put = lambda work, force=False: sent.append(work)  # type: ignore[method-assign]
    loader._read(file, io.BytesIO(body))
    groups = [w for w in sent if w is not None]
    assert [len(g.statements) for g in groups] == [10, 10, 4]  # 24 left
    assert groups[0].statements[0] == (first + 28, b"\nINSERT INTO `t` VALUES (1);")
    assert groups[0].session == (b"SET NAMES binary;",)
    loader.group_bytes = 60  # two statements of 28 bytes fit, a third does not
    sent.clear()
    loader._states[file.name] = _FileState()
    loader._read(file, io.BytesIO(body))
    assert [len(w.statements) for w in sent if w is not None][:3] == [2, 2, 2]


def test_grants_read_and_judged_only_where_certain() -> None:
    from tibackup.load.privileges import missing, parse_grants

    grants = parse_grants(
        [
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*ABC'",
            "GRANT SELECT, INSERT ON `shop`.* TO `u`@`%`",
            "GRANT ALL PRIVILEGES ON `stage\\_%`.* TO `u`@`%`",
            "GRANT INSERT (`a`) ON `cols`.`t` TO `u`@`%`",
            "GRANT PROXY ON ''@'%' TO 'u'@'%'",
        ]
    )
    want = {db: {"INSERT", "CREATE"} for db in ("shop", "stage_1", "stageX1", "cols", "other")}
    assert missing(grants, want) == {
        "shop": ["CREATE"],
        "stageX1": ["CREATE", "INSERT"],  # `\_` is a plain underscore, not a wildcard
        "other": ["CREATE", "INSERT"],
    }, "stage_1: ALL by pattern; cols: column grants, not judged"
    everything = parse_grants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"])
    assert missing(everything, want) == {}
    role = parse_grants(["GRANT USAGE ON *.* TO `u`@`%`", "GRANT `loader` TO `u`@`%`"])
    assert missing(role, want) == {}, "a role's privileges are not read here: nothing is judged"


def test_a_granted_role_keeps_the_listed_grants_as_what_is_surely_held() -> None:
    """MariaDB grants every role to the account that created it (root, WITH ADMIN OPTION): such a root
    still surely holds ALL on *.*, so its loads still defer their indexes (ALTER), while a privilege
    the listing lacks is not judged (the role may give it). Before, any role line made nothing sure:
    a root that had ever created a role loaded every table with its keys in place."""
    from tibackup.load.privileges import may, missing, parse_grants

    root = parse_grants([
        "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        "GRANT `gc_role` TO `root`@`localhost` WITH ADMIN OPTION",
    ])  # fmt: skip
    assert may(root, "ALTER", "shop")
    mysql_style = parse_grants(["GRANT SELECT, INSERT, ALTER ON `shop`.* TO `u`@`%`", "GRANT `r`@`%` TO `u`@`%`"])
    assert may(mysql_style, "ALTER", "shop") and not may(mysql_style, "ALTER", "other")
    assert missing(mysql_style, {"other": {"INSERT"}}) == {}, "the role may grant it: not judged"
    odd = parse_grants(["GRANT ALL PRIVILEGES ON *.* TO `u`@`%`", "SOMETHING ELSE ENTIRELY"])
    assert not may(odd, "ALTER", "shop"), "a line of an unknown shape still makes nothing sure"
