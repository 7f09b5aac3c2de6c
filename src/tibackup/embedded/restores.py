"""What happens to one Restore in the embedded runtime: run it here, recover it when its process died,
act on a re-run request, delete it. The controller and the CLI verbs share these, as ``lifecycle`` for
Backups.

Run records share the store's ``runs`` table with Backups under the key ``restore/<name>`` (a name
cannot hold '/', so the two never collide).
"""

from __future__ import annotations

import logging
import os

from tibackup.control.interrupted import restore_interrupted_message
from tibackup.embedded.lifecycle import STOP_GRACE_SECONDS, now, state_space, terminate
from tibackup.embedded.procs import process_alive, start_ticks
from tibackup.embedded.runtime import EmbeddedRuntime
from tibackup.embedded.store import ConflictError, RunRecord, Store
from tibackup.resources import FINISHED_PHASES, Phase, Restore, set_condition

log = logging.getLogger("tibackup.embedded")
KIND_RESTORE = "Restore"
RUN_PREFIX = "restore/"
IN_PROGRESS = (Phase.SCHEDULED, Phase.RUNNING)


def run_key(restore: Restore) -> tuple[str, str]:
    return restore.metadata.namespace or "default", RUN_PREFIX + restore.metadata.name


def is_restore_run(record: RunRecord) -> bool:
    return record.name.startswith(RUN_PREFIX)


def live_run(store: Store, restore: Restore) -> RunRecord | None:
    ns, key = run_key(restore)
    for record in store.runs():
        if record.namespace == ns and record.name == key:
            return record if process_alive(record.pid, record.pid_started) else None
    return None


def current(store: Store, namespace: str, name: str) -> Restore | None:
    found = store.get(KIND_RESTORE, namespace, name)
    return found if isinstance(found, Restore) else None


def claim(store: Store, restore: Restore, pid: int) -> RunRecord | None:
    ns, key = run_key(restore)
    return store.claim_run(ns, key, restore.metadata.uid or "", pid, start_ticks(pid))


def run_in_process(store: Store, restore: Restore, adopt: bool = False) -> Restore:
    """Run the Restore to its end here and now; its pid is recorded so a crash can be recovered later."""
    from tibackup.manager.restore_run import run_restore

    ns, key = run_key(restore)
    pid = os.getpid()
    if adopt:
        store.set_run_pid(ns, key, pid, start_ticks(pid))
    else:
        existing = claim(store, restore, pid)
        if existing is not None and existing.pid != pid:
            if process_alive(existing.pid, existing.pid_started):
                raise ConflictError(
                    f"restore {ns}/{restore.metadata.name} is already being run by process {existing.pid}"
                )
            recovered = recover(store, restore)
            if recovered is not None:
                return recovered
            claim(store, restore, pid)
    try:
        if restore.status.phase in FINISHED_PHASES:
            return restore
        return run_restore(restore, EmbeddedRuntime(store))
    finally:
        store.clear_run(ns, key, pid)


def recover(store: Store, restore: Restore) -> Restore | None:
    """A Restore whose process died: ``Failed``/``Interrupted``. None when there is nothing to do."""
    ns, key = run_key(restore)
    store.clear_run(ns, key)
    found = current(store, ns, restore.metadata.name)
    if found is None or found.status.phase not in IN_PROGRESS:
        return None
    log.warning(
        "restore %s/%s: its process is gone (phase %s); recovering",
        ns,
        found.metadata.name,
        found.status.phase,
    )
    message = restore_interrupted_message(state_space(store), found.metadata.name, ns)
    found.status = set_condition(found.status, Phase.FAILED, "Interrupted", message, now())
    runtime = EmbeddedRuntime(store)
    runtime.save_status(found)
    runtime.event(found, "Warning", "Interrupted", message)
    return found


def accept_rerun(store: Store, restore: Restore) -> Restore | None:
    """A new ``tibackup.pingcap.com/rerun`` annotation on a Failed/Invalid Restore: reset it to run again."""
    from tibackup.control.rerun import RerunAction, decide_rerun, refused_status, rerun_status

    found = current(store, *(restore.metadata.namespace or "default", restore.metadata.name))
    if found is None:
        return None
    running = live_run(store, found)
    if running is not None and running.pid != os.getpid():
        return None
    decision = decide_rerun(found)
    if decision is None:
        return None
    if decision.action is RerunAction.RUN:
        found.status = rerun_status(found.status, decision.token)
        store.add_event(found, "Normal", "RerunRequested", decision.message)
    else:
        found.status = refused_status(found.status, decision.token)
        store.add_event(found, "Warning", "RerunRefused", decision.message)
    updated = store.update_status(found)
    return updated if isinstance(updated, Restore) else None


def stop_run(store: Store, restore: Restore, grace: float = STOP_GRACE_SECONDS) -> None:
    """Interrupt the process running the Restore (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    record = live_run(store, restore)
    if record is None or record.pid == os.getpid():
        return
    log.info("restore %s/%s: stopping process %d", record.namespace, restore.metadata.name, record.pid)
    terminate(record, grace)
    recover(store, restore)


def delete_restore(store: Store, restore: Restore) -> None:
    """Delete a Restore: stop its run, forget it. The rows it loaded stay in the target database."""
    marked = store.mark_deleted(restore)
    if marked is None:
        return
    assert isinstance(marked, Restore)
    stop_run(store, marked)
    ns, key = run_key(marked)
    store.clear_run(ns, key)
    store.remove(marked)
    log.info("restore %s/%s: deleted", ns, marked.metadata.name)
