"""TIBACKUP_DUMP_TRACE: the timing trace that shows where a dump's wall time goes (bench/trace.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench.trace import phases, read, summary
from testenv.mariadb import MariaDBServer

from tests.integration.dumputil import dump
from tibackup.dump import trace

pytestmark = pytest.mark.integration


def _trace_to(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Trace the dumps of this test into ``path``, as TIBACKUP_DUMP_TRACE would."""
    monkeypatch.setattr(trace, "ENABLED", True)
    monkeypatch.setattr(trace, "_PATH", str(path))
    monkeypatch.setattr(trace, "_events", [])
    return path


def test_a_traced_dump_records_every_step_of_every_worker(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(
        f"INSERT INTO `{fresh_db}`.t SELECT seq, CONCAT('v', seq) FROM `{fresh_db}`.seq_1_to_1000"
    )
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    out = _trace_to(tmp_path / "trace.txt", monkeypatch)
    dump(mariadb, tmp_path / "dump", "-B", fresh_db, "-t", "2", "-r", "100")
    steps = read(str(out))
    names = {s.step for s in steps}
    assert {
        "connect",
        "catalog",
        "lock",
        "plan",
        "query",
        "close",
        "commit",
        "idle",
        "schema",
        "end",
    } <= names
    queries = [s for s in steps if s.step == "query"]
    chunks = len(list((tmp_path / "dump").glob(f"{fresh_db}.t.0*.sql")))
    assert {s.detail.split(".")[0] for s in queries} == {f"t#{i}" for i in range(chunks)} and chunks > 1
    assert {s.thread for s in queries} <= {"dump-0", "dump-1"}
    # A local folder's files are committed by the workers themselves (no hand-over to another thread).
    assert {s.thread for s in steps if s.step == "commit"} <= {"dump-0", "dump-1"}
    assert all(s.duration >= 0 and s.start > 0 for s in steps)
    text = summary(steps)
    assert "chunk order (worker:table#chunk):" in text and "t#0" in text
    # The whole command in phases; the end step (the trace written) comes after every file's commit.
    parts = phases(steps, wall_ms=max(s.end for s in steps) + 1)
    assert parts["data (first query to last file)"] > 0 and all(v >= 0 for v in parts.values())
    assert parts["exit (trace written to process gone)"] >= 1


def test_without_the_variable_nothing_is_recorded(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path
) -> None:
    assert not trace.ENABLED  # the test session runs without TIBACKUP_DUMP_TRACE
    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1), (2)")
    before = len(trace._events)
    dump(mariadb, tmp_path, "-B", fresh_db)
    assert len(trace._events) == before == 0


def test_a_planned_table_is_read_before_the_next_plan_and_schemas_come_last(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker takes a table's chunks as soon as the table is planned, and the schema files after
    all the data (they used to run first: every plan, then every schema, then the first row)."""
    for name in ("a", "b", "c"):
        mariadb.execute(f"CREATE TABLE `{fresh_db}`.{name} (id INT PRIMARY KEY, v VARCHAR(20))")
        mariadb.execute(f"INSERT INTO `{fresh_db}`.{name} SELECT seq, 'v' FROM `{fresh_db}`.seq_1_to_300")
        mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.{name}")
    out = _trace_to(tmp_path / "trace.txt", monkeypatch)
    dump(mariadb, tmp_path / "dump", "-B", fresh_db, "-t", "1", "-r", "100")
    worker = [s for s in read(str(out)) if s.thread == "dump-0" and s.step in ("plan", "query", "schema")]
    steps = [(s.step, s.detail.split("#")[0]) for s in worker]
    tables = [detail for step, detail in steps if step == "plan"]
    assert sorted(tables) == ["a", "b", "c"]
    chunks = {t: len(list((tmp_path / "dump").glob(f"{fresh_db}.{t}.0*.sql"))) for t in tables}
    assert all(n > 1 for n in chunks.values())
    expected = [x for table in tables for x in [("plan", table)] + [("query", table)] * chunks[table]]
    assert steps[: len(expected)] == expected  # each table's chunks right after its plan
    assert steps[len(expected) :] == [("schema", t) for t in ("a", "b", "c")]  # then the schema files


def test_no_schema_file_is_read_while_a_table_is_still_being_planned(
    mariadb: MariaDBServer, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one table and two workers, the idle worker used to take the schema file while the other one
    planned the table, and read its first chunk only after it; the schema files now wait for the plans."""
    from tibackup.dump import dumper

    mariadb.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY, v VARCHAR(20))")
    mariadb.execute(f"INSERT INTO `{fresh_db}`.t SELECT seq, 'v' FROM `{fresh_db}`.seq_1_to_1000")
    mariadb.execute(f"ANALYZE TABLE `{fresh_db}`.t")
    planned = dumper.plan_chunks

    def slow_plan(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)  # a wide window for the other worker to take a schema task (no time is asserted)
        return planned(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dumper, "plan_chunks", slow_plan)
    out = _trace_to(tmp_path / "trace.txt", monkeypatch)
    dump(mariadb, tmp_path / "dump", "-B", fresh_db, "-t", "2", "-r", "100")
    steps = read(str(out))
    plan = next(s for s in steps if s.step == "plan")
    schemas = [s for s in steps if s.step == "schema"]
    assert [s.detail for s in schemas] == ["t"]
    assert all(s.start >= plan.end for s in schemas)
    assert len({s.thread for s in steps if s.step == "query"}) == 2  # both workers read data
