"""The pure join/leave decision over tibackup's rows of ``mysql.tidb`` (manager/gcshare.py)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tibackup.dump import tidb
from tibackup.errors import DatabaseError, TibackupError
from tibackup.manager import gc, gcnotes, gcshare
from tibackup.manager.gcshare import Holder, Shared
from tibackup.resources import Backup

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _holder(target: str, since: datetime = NOW, backup: str = "ns/b") -> Holder:
    return Holder(target, since.strftime("%Y-%m-%dT%H:%M:%SZ"), backup, "host-1")


def test_first_join_records_the_current_value_as_the_original_and_raises() -> None:
    change = gcshare.join(Shared(), "10m0s", "a", _holder("72h"), NOW)
    assert change.value == "72h"
    assert change.after == Shared("10m0s", {"a": _holder("72h")})


def test_a_longer_current_value_is_kept_and_still_recorded_as_the_original() -> None:
    change = gcshare.join(Shared(), "100h", "a", _holder("72h"), NOW)
    assert change.value == "100h" and change.after.original == "100h" and "a" in change.after.holders


def test_shorter_target_joining_then_the_first_leaving_keeps_the_second_target() -> None:
    """Interleaving 1: A raises 10m0s → 72h; B (48h) joins; A ends first: B's 48h stays."""
    a = gcshare.join(Shared(), "10m0s", "a", _holder("72h"), NOW)
    b = gcshare.join(a.after, a.value, "b", _holder("48h"), NOW)
    assert b.value == "72h" and b.after.original == "10m0s"
    a_left = gcshare.leave(b.after, b.value, "a", NOW)
    assert a_left.value == "48h" and set(a_left.after.holders) == {"b"}
    b_left = gcshare.leave(a_left.after, a_left.value, "b", NOW)
    assert b_left.value == "10m0s" and b_left.after == Shared()


def test_longer_target_joining_then_both_leaving_restores_the_true_original() -> None:
    """Interleaving 2: A raises to 72h; B (100h) raises 72h → 100h; both end: back to 10m0s, not 72h."""
    a = gcshare.join(Shared(), "10m0s", "a", _holder("72h"), NOW)
    b = gcshare.join(a.after, a.value, "b", _holder("100h"), NOW)
    assert b.value == "100h" and b.after.original == "10m0s"
    a_left = gcshare.leave(b.after, b.value, "a", NOW)
    assert a_left.value == "100h"
    assert gcshare.leave(a_left.after, a_left.value, "b", NOW).value == "10m0s"


def test_the_second_of_two_simultaneous_joins_sees_the_first_holder() -> None:
    """Interleaving 3: serialized by the row lock, the second join reads the first one's rows."""
    a = gcshare.join(Shared(), "10m0s", "a", _holder("72h"), NOW)
    b = gcshare.join(a.after, "72h", "b", _holder("72h"), NOW)
    assert b.after.original == "10m0s"
    assert gcshare.leave(b.after, b.value, "b", NOW).value == "72h"  # a still holds


def test_leaving_twice_or_without_joining_lowers_nothing_others_hold() -> None:
    shared = Shared("10m0s", {"a": _holder("72h")})
    assert gcshare.leave(shared, "72h", "ghost", NOW).value == "72h"
    assert gcshare.leave(shared, "72h", "ghost", NOW).after == shared
    assert gcshare.leave(Shared(), "10m0s", "a", NOW).value == "10m0s"


def test_value_changed_by_hand_while_held_is_set_back_to_what_the_holders_need() -> None:
    shared = Shared("10m0s", {"a": _holder("72h"), "b": _holder("48h")})
    assert gcshare.leave(shared, "1h", "b", NOW).value == "72h"


def test_stale_holder_is_dropped_only_once_its_target_and_the_margin_have_passed() -> None:
    old = NOW - timedelta(hours=72) - gcshare.STALE_MARGIN - timedelta(seconds=1)
    recent = NOW - timedelta(hours=72) - gcshare.STALE_MARGIN + timedelta(minutes=5)
    shared = Shared("10m0s", {"dead": _holder("72h", old), "alive": _holder("72h", recent)})
    change = gcshare.join(shared, "72h", "c", _holder("1h"), NOW)
    assert set(change.expired) == {"dead"} and set(change.after.holders) == {"alive", "c"}
    assert change.value == "72h"
    # Alone, a stale holder goes at the next leave of anyone: the original comes back.
    alone = gcshare.leave(Shared("10m0s", {"dead": _holder("72h", old)}), "72h", "c", NOW)
    assert alone.value == "10m0s" and set(alone.expired) == {"dead"}


def test_own_entry_is_never_expired_and_an_unreadable_row_holds_the_current_value() -> None:
    old = NOW - timedelta(days=30)
    rejoin = gcshare.join(Shared("10m0s", {"a": _holder("72h", old)}), "72h", "a", _holder("72h"), NOW)
    assert not rejoin.expired and rejoin.after.holders["a"].since.startswith("2026-12-01")
    shared = gcshare.read_rows({
        tidb.GC_ORIGINAL: ("10m0s", ""),
        tidb.GC_HOLDER_PREFIX + "x": ("not json", ""),
        tidb.GC_HOLDER_PREFIX + "a": (_holder("24h").text(), ""),
    })  # fmt: skip
    assert shared.holders["x"] == Holder("") and not gcshare.stale(shared.holders["x"], NOW)
    assert gcshare.leave(shared, "100h", "a", NOW).value == "100h"  # x's need is unknown: not lowered


def test_legacy_record_original_wins_over_a_value_it_had_raised() -> None:
    """A record of the old format (raised alone, never restored) holds the true original."""
    assert gcshare.join(Shared(), "72h", "a", _holder("72h"), NOW, legacy="10m0s").after.original == "10m0s"
    assert gcshare.leave(Shared(), "72h", "a", NOW, legacy="10m0s").value == "10m0s"


def test_row_changes_insert_update_and_delete_exactly_what_changed() -> None:
    before = Shared("10m0s", {"a": _holder("72h"), "b": _holder("48h")})
    after = Shared("10m0s", {"a": _holder("72h"), "c": _holder("1h")})
    upserts, deletes = gcshare.row_changes(before, after)
    assert set(upserts) == {tidb.GC_HOLDER_PREFIX + "c"} and deletes == [tidb.GC_HOLDER_PREFIX + "b"]
    text, comment = upserts[tidb.GC_HOLDER_PREFIX + "c"]
    assert Holder.parse(text) == _holder("1h")
    assert f"DELETE FROM mysql.tidb WHERE VARIABLE_NAME = '{tidb.GC_HOLDER_PREFIX}c'" in comment
    assert len(comment) <= 1024 and len(tidb.GC_HOLDER_PREFIX + "0" * 45) <= 64
    upserts, deletes = gcshare.row_changes(after, Shared())
    assert not upserts and set(deletes) == {
        tidb.GC_ORIGINAL,
        tidb.GC_HOLDER_PREFIX + "a",
        tidb.GC_HOLDER_PREFIX + "c",
    }
    upserts, _ = gcshare.row_changes(Shared(), Shared("10m0s", {}))
    assert upserts[tidb.GC_ORIGINAL][0] == "10m0s"


class _Session:
    """A database session for ``gc._change``: the GC rows in a dict; the first COMMITs can fail."""

    def __init__(self, fail_commits: list[int]) -> None:
        self.fail_commits = fail_commits  # error codes for the next COMMITs
        self.statements: list[str] = []
        self.gc = "10m0s"

    def execute(self, sql: str, doing: str = "") -> None:
        self.statements.append(sql.split(" ", 1)[0])
        if sql == "COMMIT" and self.fail_commits:
            error = DatabaseError("write conflict (simulated)")
            error.code = self.fail_commits.pop(0)
            raise error
        if sql.startswith("UPDATE mysql.tidb"):
            self.gc = sql.split("VARIABLE_VALUE = '", 1)[1].split("'", 1)[0]

    def query_text(self, sql: str, doing: str = "") -> list[tuple[str | None, ...]]:
        if "VARIABLE_NAME = 'tikv_gc_life_time'" in sql:
            return [(self.gc,)]
        if sql == "SELECT UTC_TIMESTAMP()":
            return [("2026-12-01 12:00:00",)]
        return []


def _join(session: _Session) -> gcnotes.Outcome:
    def decide(shared: Shared, current: str, clock: datetime) -> gcshare.Change:
        return gcshare.join(shared, current, "a", _holder("72h"), clock)

    return gc._change(session, "a", True, decide)  # type: ignore[arg-type]


def test_a_write_conflict_or_deadlock_runs_the_whole_change_again() -> None:
    session = _Session([9007, 1213])  # TiDB's optimistic write conflict, then a deadlock
    outcome = _join(session)
    assert outcome.after == "72h" and session.statements.count("ROLLBACK") == 2
    assert session.statements.count("BEGIN") == 3 and session.statements[-1] == "COMMIT"


def test_any_other_failure_is_rolled_back_and_raised() -> None:
    session = _Session([1142])  # a missing privilege
    with pytest.raises(DatabaseError):
        _join(session)
    assert session.statements.count("BEGIN") == 1 and session.statements[-1] == "ROLLBACK"


def test_events_name_the_other_holders_and_never_fail_on_an_unreadable_value() -> None:
    b = {"b": _holder("48h", backup="test1/b")}
    joined = gcnotes.notes(gcnotes.Outcome(True, "10m0s", "72h", "10m0s", b, {}))
    assert [reason for _, reason, _ in joined] == ["GCLifeTimeRaised", "GCLifeTimeShared"]
    assert "test1/b (uid b, target 48h" in joined[1][2]
    (kept,) = gcnotes.notes(gcnotes.Outcome(False, "72h", "48h", "10m0s", b, {}))
    assert kept[1] == "GCLifeTimeKept" and "set to 48h (from 72h)" in kept[2]
    (restored,) = gcnotes.notes(gcnotes.Outcome(False, "ten minutes", "10m0s", None, {}, {}))
    assert restored[1] == "GCLifeTimeRestored"
    expired = gcnotes.notes(gcnotes.Outcome(False, "72h", "72h", None, {}, {"x": _holder("72h")}))
    assert [(warn, reason) for warn, reason, _ in expired] == [(True, "GCLifeTimeHolderExpired")]


# A backup whose account has only SELECT and UPDATE on mysql.tidb raises the value on its own.


def test_a_lone_backup_with_nobody_sharing_raises_and_sets_back_as_before() -> None:
    joined = gcshare.alone_join(Shared(), "10m0s", "72h", NOW)
    assert (joined.value, joined.original, joined.restore_to) == ("72h", None, "10m0s")
    left = gcshare.alone_leave(Shared(), "72h", "10m0s", "72h", NOW)
    assert (left.value, left.original) == ("10m0s", None)
    not_raised = gcshare.alone_join(Shared(), "100h", "72h", NOW)
    assert not_raised.restore_to is None  # nothing to set back


def test_a_lone_backup_joining_sharers_becomes_their_original_so_their_end_keeps_its_target() -> None:
    """A shares (48h); L alone (72h) raises 48h → 72h and makes 72h their original; A ends first: the
    value stays 72h under L; L ends: the true original comes back."""
    a = gcshare.join(Shared(), "10m0s", "a", _holder("48h"), NOW)
    lone = gcshare.alone_join(a.after, a.value, "72h", NOW)
    assert (lone.value, lone.original, lone.restore_to) == ("72h", "72h", "10m0s")
    a_left = gcshare.leave(Shared("72h", a.after.holders), lone.value, "a", NOW)
    assert a_left.value == "72h", "lowered under the lone backup"
    assert gcshare.alone_leave(a_left.after, a_left.value, "10m0s", "72h", NOW).value == "10m0s"


def test_a_lone_backup_ending_first_never_lowers_the_value_under_the_sharers() -> None:
    """A shares (100h); L alone (72h) leaves the value at 100h but makes 72h their original (A might
    end first); L ends first: their original is set back, A's 100h kept."""
    a = gcshare.join(Shared(), "10m0s", "a", _holder("100h"), NOW)
    lone = gcshare.alone_join(a.after, a.value, "72h", NOW)
    assert (lone.value, lone.original, lone.restore_to) == ("100h", "72h", "10m0s")
    left = gcshare.alone_leave(Shared("72h", a.after.holders), "100h", "10m0s", "72h", NOW)
    assert (left.value, left.original) == ("100h", "10m0s")
    shorter = gcshare.alone_join(Shared("100h", a.after.holders), "100h", "72h", NOW)
    assert (shorter.value, shorter.original, shorter.restore_to) == ("100h", None, None)  # nothing to do


def test_a_lone_raise_taken_as_the_original_by_a_later_sharer_is_set_back_at_its_end() -> None:
    """L alone raises 10m0s → 72h; A (48h) joins and records 72h as the original; L ends: the original
    becomes 10m0s again and the value A's 48h; A ends: 10m0s, not left raised at 72h."""
    lone = gcshare.alone_join(Shared(), "10m0s", "72h", NOW)
    a = gcshare.join(Shared(), lone.value, "a", _holder("48h"), NOW)
    assert a.after.original == "72h"
    left = gcshare.alone_leave(a.after, a.value, "10m0s", "72h", NOW)
    assert (left.value, left.original) == ("48h", "10m0s")
    a_left = gcshare.leave(Shared(left.original, a.after.holders), left.value, "a", NOW)
    assert a_left.value == "10m0s", "left raised"


def test_a_lone_backup_ignores_stale_holders_and_keeps_an_original_it_did_not_write() -> None:
    stale = {"x": _holder("72h", since=NOW - timedelta(days=30))}
    assert gcshare.alone_join(Shared("10m0s", stale), "72h", "48h", NOW).restore_to is None
    left = gcshare.alone_leave(Shared("30m", {"a": _holder("48h")}), "72h", "10m0s", "72h", NOW)
    assert (left.value, left.original) == ("48h", None)  # 30m was set by someone else: theirs


def test_the_lone_backup_says_once_why_it_does_not_share_and_what_to_grant() -> None:
    why = (
        "… GRANT INSERT, DELETE ON mysql.tidb TO 'bk'@'%' so that concurrent Backups of the cluster share it"
    )
    joined = gcnotes.notes(gcnotes.Outcome(True, "10m0s", "72h", None, {}, {}, why))
    assert [(warn, reason) for warn, reason, _ in joined] == [
        (True, "GCLifeTimeNotShared"),
        (False, "GCLifeTimeRaised"),
    ]
    assert joined[0][2] == why


class _RoleSession(_Session):
    """An account whose privileges come through a role (SHOW GRANTS does not list them) and that may
    not INSERT into mysql.tidb: the join is refused with 1142."""

    conn_info = SimpleNamespace(host="127.0.0.1", port=4000, user="bk")
    denied = "INSERT"  # the statement on mysql.tidb its role does not grant

    def execute(self, sql: str, doing: str = "") -> None:
        if sql.startswith(self.denied) and "mysql.tidb" in sql:
            self.statements.append(self.denied)
            error = DatabaseError(f"{self.denied} command denied to user 'bk'@'%' for table 'tidb'")
            error.code = 1142
            raise error
        super().execute(sql, doing)

    def query_text(self, sql: str, doing: str = "") -> list[tuple[str | None, ...]]:
        if sql == "SHOW GRANTS":
            return [("GRANT USAGE ON *.* TO `bk`@`%`",), ("GRANT `backup_role` TO `bk`@`%`",)]
        if sql == "SELECT CURRENT_USER()":
            return [("bk@%",)]
        return super().query_text(sql, doing)


class _Records:
    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None

    def load_gc_record(self, backup: Backup) -> dict[str, Any] | None:
        return self.record

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        self.record = record


def test_a_join_refused_for_a_missing_privilege_falls_back_to_raising_it_alone() -> None:
    session, records = _RoleSession([]), _Records()
    backup = Backup.model_validate(
        {"metadata": {"name": "b1", "namespace": "test1", "uid": "u-1"}, "spec": {}}
    )
    outcome = gc.raise_gc_life_time(session, backup, records, "72h", NOW)  # type: ignore[arg-type]
    assert session.gc == "72h" and "ROLLBACK" in session.statements and session.statements[-1] == "COMMIT"
    assert "GRANT INSERT, DELETE ON mysql.tidb TO 'bk'@'%'" in outcome.not_shared
    assert records.record is not None and records.record["alone"] and records.record["value"] == "10m0s"
    left = gc.restore_gc_life_time(lambda: contextlib.nullcontext(session), backup, records)  # type: ignore[arg-type, return-value]
    assert left is not None and session.gc == "10m0s" and records.record is None


class _FullStateRecords(_Records):
    """The state's disk fills after the join: the record cannot be dropped."""

    def save_gc_record(self, backup: Backup, record: dict[str, Any] | None) -> None:
        if record is None:
            raise TibackupError("the disk of the state directory /s is full (0 bytes free)")
        super().save_gc_record(backup, record)


def test_a_restored_value_whose_record_cannot_be_dropped_is_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The value is set back; the full state disk only keeps the record (a later leave is harmless), so
    the run must not report a GC life time "not restored" (the shared case, on a real mysql.tidb table:
    test_embedded_full_state.py)."""
    session, records = _RoleSession([]), _FullStateRecords()
    backup = Backup.model_validate(
        {"metadata": {"name": "b1", "namespace": "test1", "uid": "u-1"}, "spec": {}}
    )
    gc.raise_gc_life_time(session, backup, records, "72h", NOW)  # type: ignore[arg-type]
    assert session.gc == "72h" and records.record is not None and records.record["alone"]
    left = gc.restore_gc_life_time(lambda: contextlib.nullcontext(session), backup, records)  # type: ignore[arg-type, return-value]
    assert left is not None and session.gc == "10m0s" and records.record is not None
    assert "its record stays until a recovery (the disk of the state directory /s is full" in caplog.text


class _NoDeleteRoleSession(_RoleSession):
    """A role that may INSERT into mysql.tidb but not DELETE: the join must be refused before it
    adds a row it could never remove."""

    denied = "DELETE"


def test_a_join_proves_it_can_remove_its_row_before_it_adds_it() -> None:
    session, records = _NoDeleteRoleSession([]), _Records()
    backup = Backup.model_validate(
        {"metadata": {"name": "b1", "namespace": "test1", "uid": "u-1"}, "spec": {}}
    )
    outcome = gc.raise_gc_life_time(session, backup, records, "72h", NOW)  # type: ignore[arg-type]
    first = session.statements[: session.statements.index("ROLLBACK")]
    assert "DELETE" in first and "INSERT" not in first, session.statements
    assert "INSERT" not in session.statements  # nothing was added that it could not remove
    assert "lacks DELETE ON mysql.tidb" in outcome.not_shared
    assert "GRANT INSERT, DELETE ON mysql.tidb TO 'bk'@'%'" in outcome.not_shared
    assert session.gc == "72h" and records.record is not None and records.record["alone"]


def test_a_join_that_may_remove_its_row_rewrites_it_after_the_check() -> None:
    """Joining again (its row already there): the check removes it, the join writes it anew."""
    session = _Session([])
    rows = {tidb.GC_HOLDER_PREFIX + "a": (_holder("72h").text(), "")}
    original = tidb.lock_gc_share

    def locked(db: Any) -> tuple[str, dict[str, tuple[str, str]], str]:
        current, _, clock = original(db)
        return current, {**rows, tidb.GC_ORIGINAL: ("10m0s", "")}, clock

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tidb, "lock_gc_share", locked)
        _join(session)
    assert session.statements[1:].count("DELETE") == 1
    assert session.statements.index("DELETE") < session.statements.index("INSERT")


def test_a_lone_backup_that_sees_sharers_says_it_raised_alone_and_holds_no_row() -> None:
    """It shares nothing: its event must not claim the value is 'also held' by it."""
    b = {"b": _holder("48h", backup="test1/b")}
    notes = gcnotes.notes(gcnotes.Outcome(True, "48h", "72h", "72h", b, {}, "… on its own …"))
    assert [(warn, reason) for warn, reason, _ in notes] == [
        (True, "GCLifeTimeNotShared"),
        (False, "GCLifeTimeRaised"),
        (False, "GCLifeTimeSharedByOthers"),
    ]
    message = notes[2][2]
    assert "holds no row" in message and "on its own" in message and "1 other backup(s)" in message
    assert "test1/b (uid b, target 48h" in message
    assert "72h is now their tikv_gc_life_time original" in message
    (unchanged,) = [
        m for _, r, m in gcnotes.notes(gcnotes.Outcome(True, "100h", "100h", None, b, {}, "…")) if r.endswith("Others")
    ]
    assert "original" not in unchanged and "not raised by it" in unchanged
