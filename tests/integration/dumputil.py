"""Dump with tibackup, load back with the plain mariadb client, compare CHECKSUM TABLE."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

import cramjam
import zstandard
from testenv.mariadb import MariaDBServer

from tibackup.dump.dumper import DumpResult, run_dump
from tibackup.dump.options import parse_dumpling_args
from tibackup.manager.claim import is_claim


def dump(
    server: MariaDBServer, output: str | Path, *flags: str, env: dict[str, str] | None = None
) -> DumpResult:
    args = ["-h", server.host, "-P", str(server.port), "-u", server.user, "-o", str(output), *flags]
    environment = {"TIBACKUP_DB_PASSWORD": server.password, **(env or {})}
    return run_dump(parse_dumpling_args(args, environment))


def checksums(server: MariaDBServer, database: str, tables: list[str]) -> dict[str, int | None]:
    rows = server.execute("CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in tables) + " EXTENDED")
    return {str(name).split(".", 1)[1]: value for name, value in rows}


def read_file(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if path.suffix == ".snappy":
        return bytes(cramjam.snappy.decompress(data))
    return data


def _mariadb(server: MariaDBServer, database: str | None, sql: bytes, *extra: str) -> None:
    cmd = ["mariadb", "-h", server.host, "-P", str(server.port), "-u", server.user, "--binary-mode", *extra]
    if database:
        cmd.append(database)
    env = {**os.environ, "MYSQL_PWD": server.password}
    proc = subprocess.run(cmd, input=sql, capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def _order(name: str) -> tuple[int, str]:
    if "-schema-create.sql" in name:
        return (0, name)
    if "-schema-view.sql" in name:
        return (2, name)
    if "-schema.sql" in name:
        return (1, name)
    return (3, name)


def restore(server: MariaDBServer, folder: Path, csv_options: str = "") -> list[str]:
    """Load a dump folder the way a user would: schemas, then every data file, with the mariadb client."""
    loaded = []
    names = sorted(
        (
            p.name
            for p in folder.iterdir()
            if p.name not in ("metadata", "tibackup-manifest.json") and not is_claim(p.name)
        ),
        key=_order,
    )
    for name in names:
        path = folder / name
        db, _, rest = name.partition(".")
        if "-schema-create.sql" in name:
            _mariadb(server, None, read_file(path))
        elif re.search(r"\.csv(\.\w+)?$", name):
            table = rest.split(".")[0]
            data = read_file(path)
            tmp = folder / (name + ".load")
            tmp.write_bytes(data)
            header = data.split(b"\r\n", 1)[0].decode()
            columns = "(" + ",".join("`" + c.strip('"') + "`" for c in header.split(",")) + ")"
            sql = (
                f"LOAD DATA LOCAL INFILE '{tmp}' INTO TABLE `{table}` CHARACTER SET binary "
                f"FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\r\\n' "
                f"IGNORE 1 LINES {columns}"
            )
            _mariadb(server, db, sql.encode(), "--local-infile=1")
            tmp.unlink()
        else:
            _mariadb(server, db, read_file(path))
        loaded.append(name)
    return loaded


def roundtrip(server: MariaDBServer, database: str, tables: list[str], folder: Path) -> None:
    """Drop the database the dump came from, restore it from ``folder``, compare checksums."""
    before = checksums(server, database, tables)
    server.drop_database(database)
    restore(server, folder)
    after = checksums(server, database, tables)
    assert after == before
