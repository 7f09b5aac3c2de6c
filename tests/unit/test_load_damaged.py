"""A backup file cut short or a load that would load nothing: refused, naming the cause, never
"complete" with rows missing (the pure parts: the statement splitter, gzip, the plan)."""

from __future__ import annotations

import gzip
import io
import re

import pytest

from tibackup.dump.config import Compression, Connection
from tibackup.dump.tablefilter import TableFilter
from tibackup.errors import StorageError, UsageError
from tibackup.load.config import RESTORE_NAMES, LoadConfig
from tibackup.load.plan import plan_load
from tibackup.load.read import CheckedReader, VerifyFailed, decompressed, split_statements
from tibackup.storage.base import ObjectInfo

# As Dumpling writes a data file: every statement ends with ';' and a newline.
DATA = (
    b"/*!40101 SET NAMES binary*/;\n"
    b"INSERT INTO `t` VALUES\n(1,'a;b'),\n(2,'c'),\n(3,'d');\n"
    b"INSERT INTO `t` VALUES\n(4,'e'),\n(5,'f');\n"
)
ENDS = {i + 2 for i in range(len(DATA) - 1) if DATA[i : i + 2] == b";\n"}  # just after each ";\n"


def _statements(data: bytes, name: str = "db.t.000000000.sql") -> list[bytes]:
    return [sql for _, sql in split_statements([data], name=name)]


def test_a_data_file_cut_anywhere_inside_a_statement_fails_naming_the_file() -> None:
    assert len(_statements(DATA)) == 3
    for cut in range(1, len(DATA)):
        piece = DATA[:cut]
        if cut in ENDS or cut + 1 in ENDS:  # cut after the ';' (the newline is only a blank)
            assert _statements(piece)[-1].endswith(b";")
            continue
        # Cut after a row's ')' the text is a valid INSERT of fewer rows: it used to load them, and
        # lose the rest of the file without a word.
        with pytest.raises(VerifyFailed, match=r"db\.t\.000000000\.sql ends in the middle of its statement"):
            _statements(piece)


def test_comments_after_the_last_statement_are_not_a_cut() -> None:
    trailer = b"-- Dump completed\n--\n/* done */\n# end\n"
    assert _statements(DATA + trailer)[:3] == _statements(DATA)


def _gz_reader(data: bytes, name: str = "db.t.000000000.sql.gz") -> list[bytes]:
    return list(decompressed(CheckedReader(io.BytesIO(data), name), Compression.GZIP))


def test_a_gzip_file_cut_short_fails_naming_the_file() -> None:
    whole = gzip.compress(DATA * 50)
    assert b"".join(_gz_reader(whole)) == DATA * 50
    assert b"".join(_gz_reader(whole + gzip.compress(DATA))) == DATA * 51  # members, as gzip reads them
    for cut in (10, len(whole) // 2, len(whole) - 4, len(whole) - 1):
        with pytest.raises(VerifyFailed, match=r"db\.t\.000000000\.sql\.gz ends inside its gzip stream"):
            _gz_reader(whole[:cut])
    with pytest.raises(VerifyFailed, match="ends inside its gzip stream"):  # a second member cut short
        _gz_reader(whole + gzip.compress(DATA)[:20])


class _Folder:
    url = "mem://backup/"
    parallel = True

    def __init__(self, *names: str) -> None:
        self.names = names

    def listing(self) -> list[ObjectInfo]:
        return [ObjectInfo(n, 1) for n in self.names]

    def read(self, name: str) -> bytes:
        return b"Started dump at: x\n"


BACKUP = ("metadata", "shop-schema-create.sql", "shop.t-schema.sql", "shop.t.000000000.sql")


def _plan(source: _Folder, rules: list[str] | None = None, **options: object) -> object:
    table_filter = TableFilter.parse(rules) if rules else None
    config = LoadConfig(Connection(), source.url, table_filter=table_filter, **options)  # type: ignore[arg-type]
    return plan_load(source, config)  # type: ignore[arg-type]


@pytest.mark.parametrize("rules", [["shp.*"], ["shop.nosuch"], ["!shop.*"]])
def test_a_filter_that_matches_nothing_is_refused_naming_the_backups_tables(rules: list[str]) -> None:
    with pytest.raises(UsageError, match=r"table filter \(-f/--filter .*\) matches nothing .* holds shop\.t") as info:
        _plan(_Folder(*BACKUP), rules)
    assert info.value.reason == "FilterMatchesNothing"
    with pytest.raises(UsageError, match=r"\(spec\.tableFilter shp\.\*\)"):  # a Restore names its field
        _plan(_Folder(*BACKUP), ["shp.*"], names=RESTORE_NAMES)
    _plan(_Folder(*BACKUP), ["shop.*"])  # a filter that matches loads


def test_a_folder_without_any_dumpling_file_is_not_a_backup() -> None:
    with pytest.raises(StorageError, match=r"no backup at mem://backup/: it holds no file of Dumpling's layout") as info:
        _plan(_Folder("readme.txt", "notes.md"), allow_incomplete=True)
    assert info.value.reason == "NoBackupFiles"
    # A finished dump of nothing (its filter matched no table: `metadata` alone) is what it is.
    plan = _plan(_Folder("metadata"))
    assert plan.table_names == [] and plan.databases == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD, Compression.SNAPPY])
def test_a_damaged_compressed_file_is_verify_failed_naming_it_not_an_internal_error(
    compression: Compression,
) -> None:
    from tibackup.dump.compress import make_compressor

    content = b"".join(b"INSERT INTO `t` VALUES (%d,'%s');\n" % (i, b"x" * (i % 50)) for i in range(3000))
    packer = make_compressor(compression)
    packed = bytearray(packer.compress(content) + packer.finish())
    whole = list(decompressed(CheckedReader(io.BytesIO(bytes(packed)), "x"), compression))
    assert b"".join(whole) == content
    name = f"db.t.000000000.sql{compression.suffix}"
    for at in range(len(packed) // 3, len(packed) // 3 + 40):  # several damaged bytes in the middle
        packed[at] ^= 0x5A
    with pytest.raises(VerifyFailed, match=rf"{re.escape(name)} cannot be decompressed \({compression.value}: "):
        list(decompressed(CheckedReader(io.BytesIO(bytes(packed)), name), compression))


def test_a_csv_file_cut_inside_a_line_fails_naming_the_file() -> None:
    from tibackup.dump.config import CSVOptions
    from tibackup.load.csvdata import csv_statements
    from tibackup.load.source import BackupFile, FileKind

    data = b'"id","s"\r\n1,"a"\r\n2,"bcd"\r\n3,"e"\r\n'
    file = BackupFile("db.t.000000000.csv", len(data), FileKind.DATA, "db", "t", csv=True)
    config = LoadConfig(Connection(), "x", csv=CSVOptions())

    def rows(piece: bytes) -> bytes:
        return b"".join(sql for _, sql in csv_statements([piece], file, config))

    assert rows(data).endswith(b"(3,'e');\n")
    for cut in range(len(b'"id","s"\r\n') + 1, len(data)):
        piece = data[:cut]
        if piece.endswith(b"\r\n"):
            continue
        # The old reader ended the cut line itself and loaded what was left: (3,'') from `3,`, and a
        # number cut short as a smaller number.
        with pytest.raises(VerifyFailed, match=r"db\.t\.000000000\.csv ends in the middle of its line at byte"):
            rows(piece)
