"""The message of a run found stopped before it recorded its end (``Failed``/``Interrupted``).

A run whose process is gone (a restart, a killed Job, a kill) is ended by whoever finds it: the
embedded controller, the next ``apply --wait`` of it, the operator's recover Job. On one machine the
commonest cause is the state directory's disk: a run stops as soon as it cannot save its status there,
and nothing can record why. So when the state directory has almost no space left as the run is found
(less than ``NEARLY_FULL_BYTES``, the same bound under which the state database takes an I/O error for
a full disk), the message names the directory, says it is full and gives the fix: free space there,
then run it again. Without a state directory (Kubernetes) or with room on it, the message is as before.

The same holds for a Restore (``restore_interrupted_message``). Pure: the free space is an input
(``StateSpace``), read by the runtime that found the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

NEARLY_FULL_BYTES = 1024 * 1024  # with less than this free, the state directory's disk counts as full


class StateSpace(NamedTuple):
    """The state directory and the bytes free on its disk (for an unprivileged user)."""

    directory: str
    free: int


def full_state_dir(space: StateSpace | None) -> StateSpace | None:
    """``space`` when its disk is (almost) full; None when it has room or there is no state directory."""
    return space if space is not None and space.free < NEARLY_FULL_BYTES else None


def rerun_command(kind: str, name: str, namespace: str) -> str:
    """The command that runs resource ``kind`` (bk, rt) ``name`` of ``namespace`` again."""
    return f"tibackup rerun {kind} {name}" + (f" -n {namespace}" if namespace and namespace != "default" else "")


def interrupted_message(
    space: StateSpace | None, problems: Sequence[str] = (), name: str = "NAME", namespace: str = ""
) -> str:
    """Why an orphaned Backup is Failed (Interrupted) and what to do; ``problems``: what its recovery
    could not undo (the GC life time, a Secret), appended; ``name``/``namespace``: the Backup's, for the
    command that runs it again."""
    full = full_state_dir(space)
    if full is None:
        message = (
            "the backup process stopped before the backup finished (restart or killed Job); run the backup again"
        )
    else:
        message = (
            f"the backup process stopped before the backup finished, and {_full(full)}; free space in "
            f"{full.directory}, then run the Backup again ({rerun_command('bk', name, namespace)})"
        )
    if problems:
        message += "; also: " + "; ".join(problems)
    return message


def restore_interrupted_message(space: StateSpace | None, name: str = "NAME", namespace: str = "") -> str:
    """Why an orphaned Restore is Failed (Interrupted) and what to do (a re-run resumes it)."""
    rerun = f"run it again ({rerun_command('rt', name, namespace)}, or annotation tibackup.pingcap.com/rerun) to resume"
    full = full_state_dir(space)
    if full is None:
        return f"the restore's process ended before it finished; what it loaded is checkpointed in the target: {rerun}"
    return (
        f"the restore's process ended before it finished, and {_full(full)}; what it loaded is checkpointed "
        f"in the target: free space in {full.directory}, then {rerun}"
    )


def _full(full: StateSpace) -> str:
    return (
        f"the state directory {full.directory} is full ({full.free} bytes free): a run stops when it cannot "
        "save its status there"
    )
