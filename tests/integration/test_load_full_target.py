"""A target database that runs out of space mid-load: one line naming the cause and the fix, exit 3,
the checkpoint matching the committed rows, and the same command, once there is room, ends with exactly
the source's rows. The space limit is InnoDB's own (a system tablespace with a maximum size, every table
in it): a datadir on a full tmpfs makes MariaDB 10.11 abort itself ("Out of disk space in rollback"),
which is the lost-connection case that test_load_resume.py covers."""

from __future__ import annotations

from pathlib import Path

import pytest
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import checksums, dump
from tests.integration.loadutil import db_flags, load_cli

pytestmark = pytest.mark.integration


def _tablespace(max_size: str) -> list[str]:
    return ["--innodb-file-per-table=0", f"--innodb-data-file-path=ibdata1:12M:autoextend:max:{max_size}"]


def test_full_target_is_one_line_and_the_same_command_resumes_once_there_is_room(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, b VARCHAR(200))")
    mariadb.execute("INSERT INTO t SELECT seq, REPEAT('x', 150) FROM seq_1_to_60000", database=fresh_db)
    dump(mariadb, tmp_path / "backup", "-B", fresh_db, "-r", "5000")
    before = checksums(mariadb, fresh_db, ["t"])
    target = MariaDBServer(tmp_path / "mdb", extra_args=_tablespace("24M")).start()
    try:
        command = ["-d", str(tmp_path / "backup"), *db_flags(target)]
        env = {"TIBACKUP_DB_PASSWORD": target.password}
        failed = load_cli(*command, env=env)
        assert failed.returncode == 3, failed.stderr
        assert "Traceback" not in failed.stderr
        errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, failed.stderr
        assert "(1114)" in errors[0] and "out of space" in errors[0], errors[0]
        assert "free space on the database server" in errors[0] and "resumes" in errors[0], errors[0]
        (committed,) = target.execute(f"SELECT COUNT(*) FROM `{fresh_db}`.t")[0]
        (checkpointed,) = target.execute("SELECT SUM(`rows`) FROM tibackup_load.checkpoints")[0]
        assert 0 < committed < 60000 and committed == checkpointed
        target.stop(remove=False)
        target.extra_args = _tablespace("200M")
        target.start()
        resumed = load_cli(*command, env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming an earlier run of this load" in resumed.stderr
        assert checksums(target, fresh_db, ["t"]) == before
    finally:
        target.stop()
