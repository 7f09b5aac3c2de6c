"""The message of a Backup or Restore found stopped before it recorded its end (control/interrupted.py):
it names the state directory when that is (almost) full, and is the usual one otherwise."""

from __future__ import annotations

from tibackup.control.interrupted import (
    NEARLY_FULL_BYTES,
    StateSpace,
    full_state_dir,
    interrupted_message,
    restore_interrupted_message,
)

USUAL = "the backup process stopped before the backup finished (restart or killed Job); run the backup again"


def test_a_full_state_directory_is_named_with_the_fix() -> None:
    message = interrupted_message(StateSpace("/var/lib/tibackup", 4096), name="nightly", namespace="prod")
    assert message == (
        "the backup process stopped before the backup finished, and the state directory /var/lib/tibackup "
        "is full (4096 bytes free): a run stops when it cannot save its status there; free space in "
        "/var/lib/tibackup, then run the Backup again (tibackup rerun bk nightly -n prod)"
    )


def test_room_on_the_disk_or_no_state_directory_gives_the_usual_message() -> None:
    assert interrupted_message(None) == USUAL  # Kubernetes: no state directory
    assert interrupted_message(StateSpace("/state", NEARLY_FULL_BYTES)) == USUAL
    assert interrupted_message(StateSpace("/state", 50 << 30)) == USUAL
    assert full_state_dir(StateSpace("/state", NEARLY_FULL_BYTES - 1)) == ("/state", NEARLY_FULL_BYTES - 1)
    assert full_state_dir(StateSpace("/state", 0)) is not None


def test_what_the_recovery_could_not_undo_is_appended() -> None:
    problems = ["tikv_gc_life_time was not restored to 10m0s: connection refused", "secret missing"]
    assert interrupted_message(None, problems) == USUAL + "; also: " + "; ".join(problems)
    full = interrupted_message(StateSpace("/state", 0), problems, "bk1", "default")
    assert full.endswith("(tibackup rerun bk bk1); also: " + "; ".join(problems)) and "/state is full" in full


def test_a_restore_names_a_full_state_directory_and_still_says_a_rerun_resumes() -> None:
    usual = restore_interrupted_message(StateSpace("/state", 50 << 30))
    assert usual == restore_interrupted_message(None) == (
        "the restore's process ended before it finished; what it loaded is checkpointed in the target: run it "
        "again (tibackup rerun rt NAME, or annotation tibackup.pingcap.com/rerun) to resume"
    )
    assert restore_interrupted_message(StateSpace("/state", 0), "rt1", "test1") == (
        "the restore's process ended before it finished, and the state directory /state is full (0 bytes free): "
        "a run stops when it cannot save its status there; what it loaded is checkpointed in the target: free "
        "space in /state, then run it again (tibackup rerun rt rt1 -n test1, or annotation tibackup.pingcap.com/rerun) "
        "to resume"
    )
