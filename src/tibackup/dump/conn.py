"""Connections to the database: raw bytes in, one-line errors out.

We use mysqlclient's low-level ``_mysql`` API with no converters: every value arrives as the server's
own text (or raw bytes), which is exactly what Dumpling writes, and nothing is decoded twice.
Every session runs ``SET NAMES binary`` so strings reach us in the charset they are stored in.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import MySQLdb
from MySQLdb import _mysql

from tibackup.dump.config import Connection
from tibackup.errors import DatabaseError
from tibackup.record import record

try:  # the optional C row reader (setup.py): fetches and encodes rows with the GIL released
    from tibackup.dump import _rowcodec

    # It borrows mysqlclient's MYSQL handle, so both must link one client library.
    if _rowcodec.client_version() != _mysql.get_client_info():  # pragma: no cover - a mixed install
        _rowcodec = None  # type: ignore[assignment]
except ImportError:  # pragma: no cover - a build without a compiler or the client headers
    _rowcodec = None  # type: ignore[assignment]

HAVE_ROW_READER = _rowcodec is not None

log = logging.getLogger("tibackup.dump")

Row = tuple[bytes | None, ...]

# Error codes that the user can fix, and how.
_ACCESS_DENIED = {1044, 1045, 1698}
_NO_PRIVILEGE = {1142, 1143, 1227, 1370, 8121}
_CANNOT_CONNECT = {2002, 2003, 2005, 2026}
_LOST_CONNECTION = {2006, 2013}  # server gone away, lost during a query
_OUT_OF_SPACE = {1021, 1114}  # ER_DISK_FULL, ER_RECORD_FILE_FULL ("The table 't' is full")
# ER_ERROR_ON_WRITE, ER_GET_ERRNO, ER_TEMP_FILE_WRITE_FAILURE carry the OS error: 28 is ENOSPC.
# (a pattern, compiled only when such an error comes: not at every dump's start-up)
_OUT_OF_SPACE_ERRNO = r"\b(?:errcode|errno|error):? 28\b|no space left"


class ServerType(StrEnum):
    MYSQL = "MySQL"
    MARIADB = "MariaDB"
    TIDB = "TiDB"


@record
class ServerInfo:
    """The server kind and version, parsed from its version string."""

    type: ServerType
    version: str

    @classmethod
    def parse(cls, version: str) -> ServerInfo:
        if "tidb" in version.lower():
            m = re.search(r"TiDB-v?([\d.]+)", version, re.IGNORECASE)
            return cls(ServerType.TIDB, m.group(1) if m else version)
        if "mariadb" in version.lower():
            return cls(ServerType.MARIADB, version.split("-")[0])
        return cls(ServerType.MYSQL, version.split("-")[0])


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def describe_error(
    exc: BaseException, conn: Connection, doing: str = "", started: float | None = None
) -> DatabaseError:
    """Turn a driver error into a DatabaseError that names the cause and the fix, never the password.

    ``started``: when (``time.monotonic()``) the failed call began, to tell the read timeout firing from
    a connection the server dropped (the client library reports both as error 2013)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    waited = None if started is None else time.monotonic() - started
    error = _describe(code, exc, conn, doing, waited)
    error.code = code
    return error


def _describe(
    code: int | None, exc: BaseException, conn: Connection, doing: str, waited: float | None = None
) -> DatabaseError:
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if conn.password:
        text = text.replace(conn.password, "***")
    where = f"{conn.host}:{conn.port}"
    timeout = conn.read_timeout
    if code in _LOST_CONNECTION and doing and timeout and waited is not None and waited >= timeout * 0.9:
        return DatabaseError(
            f"the database at {where} sent nothing for {format_seconds(timeout)} (the read timeout) while "
            f"{doing}: it is frozen, overloaded or blocked; check the server, then run again (a slower "
            f"query needs a longer --read-timeout, in a Backup '--read-timeout=…' in spec.dumpling.options)",
            reason="ReadTimeout",
        )
    if code in _ACCESS_DENIED:
        return DatabaseError(
            f"access denied for user '{conn.user}' at {where}: check the user and password "
            f"(the password Secret's key 'password', or -p/TIBACKUP_DB_PASSWORD)",
            reason="AccessDenied",
        )
    if code in _NO_PRIVILEGE:
        return DatabaseError(
            f"user '{conn.user}' lacks a privilege{' for ' + doing if doing else ''}: {text}; "
            f"grant it (dumps need SELECT, RELOAD, LOCK TABLES, REPLICATION CLIENT, SHOW VIEW)",
            reason="MissingPrivilege",
        )
    if code in _CANNOT_CONNECT or (code in _LOST_CONNECTION and not doing):  # not doing: connecting
        return DatabaseError(
            f"cannot connect to the database at {where}: {text}; check the host and port and that the "
            f"server is running and reachable",
            reason="ConnectionFailed",
        )
    if code in _LOST_CONNECTION:
        return DatabaseError(
            f"lost the connection to the database at {where} while {doing}: {text}; "
            f"check that the server is still up and did not kill the session, and the network, then run "
            f"again",
            reason="ConnectionFailed",
        )
    if code in _OUT_OF_SPACE or (code in {3, 1030, 1878} and re.search(_OUT_OF_SPACE_ERRNO, text, re.IGNORECASE)):
        return DatabaseError(
            f"the database at {where} is out of space{' while ' + doing if doing else ''}: ({code}) {text}; "
            f"free space on the database server (its disk, or the size limit of its data files), then run "
            f"the same command again (a load resumes where it stopped)",
            reason="DatabaseError",
        )
    prefix = f"{doing} failed" if doing else "database error"
    return DatabaseError(f"{prefix} at {where}: ({code}) {text}", reason="DatabaseError")


def format_seconds(seconds: float) -> str:
    """``900`` → ``15m``, ``90`` → ``1m30s``, ``2.5`` → ``2.5s``: Go's duration words, as the flag takes."""
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


class DB:
    """One database session. Not thread-safe: each worker owns one.

    ``conn.read_timeout`` bounds every wait for the server (Dumpling's ``--read-timeout``, 15m by
    default): a frozen server fails the call with reason ``ReadTimeout`` instead of hanging forever."""

    def __init__(self, conn: Connection, params: tuple[tuple[str, str], ...] = ()) -> None:
        self.conn_info = conn
        kwargs: dict[str, Any] = {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            "conv": {},
            "connect_timeout": 10,
            "client_flag": 0,
        }
        if conn.read_timeout:
            kwargs["read_timeout"] = int(conn.read_timeout)
        if conn.tls.any():
            ssl = {
                k: v for k, v in {"ca": conn.tls.ca, "cert": conn.tls.cert, "key": conn.tls.key}.items() if v
            }
            kwargs["ssl"] = ssl
        try:
            self._c = _mysql.connect(**kwargs)
        except MySQLdb.Error as exc:
            raise describe_error(exc, conn) from None
        self.execute("SET NAMES binary")
        for name, value in params:
            self.execute(f"SET SESSION {name} = {quote_string(value)}")

    # -- queries -----------------------------------------------------------------------------------
    def execute(self, sql: str, doing: str = "") -> None:
        started = time.monotonic()
        try:
            self._c.query(sql.encode("utf-8"))
            result = self._c.store_result()
            if result is not None:
                result.fetch_row(maxrows=0)
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or _first_words(sql), started) from None

    def execute_bytes(self, sql: bytes, doing: str = "") -> int:
        """Run one statement as the bytes of a dump file hold it; return the rows it affected."""
        try:
            self._c.query(sql)
            result = self._c.store_result()
            if result is not None:
                result.fetch_row(maxrows=0)
            affected: int = self._c.affected_rows()
            return affected
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or "running a statement") from None

    def query(self, sql: str, doing: str = "") -> list[Row]:
        started = time.monotonic()
        try:
            self._c.query(sql.encode("utf-8"))
            result = self._c.store_result()
            if result is None:
                return []
            rows: tuple[Row, ...] = result.fetch_row(maxrows=0)
            return list(rows)
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or _first_words(sql), started) from None

    def query_with_names(self, sql: str, doing: str = "") -> tuple[list[str], list[Row]]:
        started = time.monotonic()
        try:
            self._c.query(sql.encode("utf-8"))
            result = self._c.store_result()
            if result is None:
                return [], []
            names = [str(d[0]) for d in result.describe()]
            return names, list(result.fetch_row(maxrows=0))
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or _first_words(sql), started) from None

    def result_columns(self, sql: str, doing: str = "") -> list[tuple[str, int]]:
        """Names and MySQL type codes of a query's result columns. Where the server allows, without reading
        its rows (``LIMIT 0`` over it as a derived table); otherwise (a non-SELECT, duplicate names) it
        runs the query and discards the rows. Names are read in utf8mb4, then the session is binary again."""
        self.execute("SET NAMES utf8mb4")
        try:
            try:
                self._c.query(f"SELECT * FROM ({sql}) AS tibackup_sql LIMIT 0".encode())
                result = self._c.store_result()
                described = result.describe() if result is not None else ()
            except MySQLdb.Error:
                self._c.query(sql.encode("utf-8"))
                result = self._c.use_result()
                described = result.describe() if result is not None else ()
                if result is not None:
                    result.discard()
            return [(str(d[0]), int(d[1])) for d in described]
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or _first_words(sql)) from None
        finally:
            self.execute("SET NAMES binary")

    def query_text(self, sql: str, doing: str = "") -> list[tuple[str | None, ...]]:
        return [
            tuple(None if v is None else v.decode("utf-8", "replace") for v in row)
            for row in self.query(sql, doing)
        ]

    def scalar(self, sql: str, doing: str = "") -> bytes | None:
        rows = self.query(sql, doing)
        return rows[0][0] if rows and rows[0] else None

    def scalar_text(self, sql: str, doing: str = "") -> str | None:
        value = self.scalar(sql, doing)
        return None if value is None else value.decode("utf-8", "replace")

    def blob(self, sql: str, doing: str = "") -> tuple[bytes | None, int]:
        """One value of one row (the bulk path), and the statement's warning count."""
        started = time.monotonic()
        try:
            self._c.query(sql.encode("utf-8"))
            result = self._c.store_result()
            row = result.fetch_row(maxrows=1)
            warnings = self._c.warning_count()
            return (row[0][0] if row else None), warnings
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or "reading rows", started) from None

    def stream(self, sql: str, batch_rows: int = 2000, doing: str = "") -> Iterator[tuple[Row, ...]]:
        """Rows of a large result, a batch at a time, never all in memory (use_result)."""
        started = time.monotonic()
        try:
            self._c.query(sql.encode("utf-8"))
            result = self._c.use_result()
            while True:
                started = time.monotonic()
                rows = result.fetch_row(maxrows=batch_rows)
                if not rows:
                    return
                yield rows
        except MySQLdb.Error as exc:
            raise describe_error(exc, self.conn_info, doing or "reading rows", started) from None

    def encoded_rows(
        self, sql: str, kinds: bytes, doing: str = "", csv: tuple[bytes, bytes, bytes, bytes] | None = None
    ) -> EncodedRows:
        """A large result read and encoded in C, as SQL values or (``csv``: separator, delimiter, null
        value, line terminator) CSV lines; use it as a context manager (see EncodedRows)."""
        return EncodedRows(self, sql, kinds, doing or "reading rows", csv)

    def server_info(self) -> ServerInfo:
        return ServerInfo.parse(self.scalar_text("SELECT VERSION()") or "")

    def error_code(self, exc: BaseException) -> int | None:
        return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None

    def close(self) -> None:
        with contextlib.suppress(MySQLdb.Error):
            self._c.close()

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EncodedRows:
    """The rows of one SELECT, fetched and encoded in C (``_rowcodec.Reader``) as Dumpling's SQL values
    or CSV lines.

    ``read(max_bytes)`` gives the next rows, joined by the row separator, and their count. Leaving the
    ``with`` block before the end (an error, a stop) drops the rest unread by shutting the session
    down: it is unusable after that, which is fine for a dump that is failing anyway."""

    def __init__(
        self, db: DB, sql: str, kinds: bytes, doing: str, csv: tuple[bytes, bytes, bytes, bytes] | None = None
    ) -> None:
        if _rowcodec is None:
            raise RuntimeError("the C row reader is not built")
        self._info, self._doing = db.conn_info, doing
        self._finished = False
        started = time.monotonic()
        try:
            self._reader = _rowcodec.Reader(db._c, sql.encode("utf-8"), kinds, csv)
        except _rowcodec.Error as exc:
            raise describe_error(exc, self._info, doing, started) from None

    def read(self, max_bytes: int) -> tuple[bytes, int] | None:
        started = time.monotonic()
        try:
            batch = self._reader.read(max_bytes)
        except _rowcodec.Error as exc:
            raise describe_error(exc, self._info, self._doing, started) from None
        self._finished = batch is None
        return batch

    def __enter__(self) -> EncodedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._finished:
            self._reader.close()
        else:
            self._reader.abort()


def _first_words(sql: str) -> str:
    words = sql.split()
    return " ".join(words[:3]) if words else "query"
