"""The embedded controller: the long-running process that makes the stored resources happen.

Every ``interval`` seconds, in this order:
1. recover Backups whose process died (``Prepare``/``Running`` with a dead pid → ``Failed``, reason
   Interrupted, GC life time restored by the manager's ``recover_interrupted``);
2. retry the GC life time restores still pending on finished Backups (condition
   ``GCLifeTimeRestorePending``: the database was down or frozen when the backup ended), at once on the
   first pass and then every ``GC_RETRY_SECONDS``, until the value is back;
3. act on re-run requests (a new ``tibackup.pingcap.com/rerun`` annotation on a Failed Backup);
4. finish deletions asked with ``delete --no-wait`` (and retry failed cleanups now and then);
5. evaluate every BackupSchedule with ``control.schedule.decide`` (create, skip or wait), record its
   status, and apply retention with ``control.retention.expired_backups``;
6. start pending Backups, each in a child process (``tibackup run-backup``) so a crash of one backup
   cannot take the controller down, up to ``max_concurrent`` at once.

Children outlive a controller that is killed with SIGKILL; a restarted controller finds them alive by
their recorded pid and leaves them alone. SIGTERM or Ctrl-C stop the controller cleanly: its running
backups are interrupted (they end ``Failed`` with the GC life time restored) before it exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from tibackup.embedded import lifecycle, restores
from tibackup.embedded.metrics import SkipCounter
from tibackup.embedded.paths import CONTROLLER_LOCK
from tibackup.embedded.procs import process_alive, start_ticks
from tibackup.embedded.runtime import EmbeddedRuntime, redact
from tibackup.embedded.schedules import reconcile_schedule
from tibackup.embedded.store import KIND_BACKUP, KIND_SCHEDULE, Store
from tibackup.embedded.uploads import LeftoverUploads
from tibackup.errors import TibackupError
from tibackup.resources import Backup, BackupSchedule, Phase, Restore, set_condition

log = logging.getLogger("tibackup.controller")
CLEAN_RETRY_SECONDS = 60.0
GC_RETRY_SECONDS = 30.0


class ControllerRunning(TibackupError):
    exit_code = 1
    reason = "ControllerRunning"


@dataclass
class Child:
    namespace: str
    name: str
    process: subprocess.Popen[bytes]


def acquire_lock(state_dir: Path) -> IO[str]:
    """Hold the controller lock of the state directory; one controller per state directory."""
    handle = open(state_dir / CONTROLLER_LOCK, "a+")  # noqa: SIM115 - held for the process' life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ControllerRunning(
            f"another controller (pid {holder}) is running on {state_dir}; stop it first or use another "
            "--state-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def controller_running(state_dir: Path) -> bool:
    """Whether some controller holds the lock of ``state_dir`` now."""
    path = state_dir / CONTROLLER_LOCK
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


class Controller:
    def __init__(
        self,
        state_dir: Path,
        interval: float = 1.0,
        max_concurrent: int = 2,
        grace: float = lifecycle.STOP_GRACE_SECONDS,
        skipped: SkipCounter | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.store = Store(state_dir)
        self.interval = interval
        self.max_concurrent = max(1, max_concurrent)
        self.grace = grace
        self.skipped = skipped or SkipCounter()
        self.leftover_uploads = LeftoverUploads(self.store)
        self.children: dict[tuple[str, str], Child] = {}
        self._clean_attempts: dict[tuple[str, str], float] = {}
        self._gc_attempts: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------------------------- loop
    def run(self, stop: threading.Event) -> None:
        log.info(
            "controller started (state %s, every %gs, at most %d backups at once)",
            self.state_dir,
            self.interval,
            self.max_concurrent,
        )
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except TibackupError as exc:
                    log.error("%s", exc.message)
                stop.wait(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            self.shutdown()

    def tick(self, now: datetime | None = None) -> None:
        now = now or lifecycle.now()
        self.reap_children()
        self.recover_dead()
        self.retry_gc_restores()
        for backup in self.store.list_resources(KIND_BACKUP):
            if (lifecycle.namespace_of(backup), backup.metadata.name) not in self.children:
                lifecycle.accept_rerun(self.store, backup)
        self.finish_deletions()
        self.reconcile_restores()
        self.leftover_uploads.tick()  # what S3 was not there to abort when a run ended
        schedules: list[BackupSchedule] = self.store.list_resources(KIND_SCHEDULE)
        for schedule in schedules:
            if schedule.metadata.deletion_timestamp is None:
                reconcile_schedule(self.store, schedule, now, self.skipped)
        self.start_pending()

    def shutdown(self) -> None:
        """Interrupt the running backups and wait (up to the grace period) for them to record their end."""
        if self.children:
            log.info("stopping: interrupting %d running backup(s)", len(self.children))
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in self.children.values():
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("backup %s/%s: did not stop in time; killing it", child.namespace, child.name)
                child.process.kill()
                child.process.wait()
        self.reap_children()
        self.recover_dead()
        self.store.close()
        log.info("controller stopped")

    # ------------------------------------------------------------------------------------- steps
    def reap_children(self) -> None:
        for key, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[key]
            if child.name.startswith(restores.RUN_PREFIX):
                log.info(
                    "restore %s/%s: process %d ended (exit %d)",
                    child.namespace,
                    child.name,
                    child.process.pid,
                    code,
                )
                continue
            backup = self.store.get(KIND_BACKUP, child.namespace, child.name)
            phase = backup.status.phase if isinstance(backup, Backup) else "deleted"
            log.info("backup %s/%s: process %d ended (exit %d, %s)", *key, child.process.pid, code, phase)

    def recover_dead(self) -> None:
        """Backups whose recorded process is gone, or that are in progress with no process at all."""
        recorded = set()
        for record in self.store.runs():
            recorded.add((record.namespace, record.name))
            if process_alive(record.pid, record.pid_started) or restores.is_restore_run(record):
                continue
            backup = self.store.get(KIND_BACKUP, record.namespace, record.name)
            if isinstance(backup, Backup):
                lifecycle.recover(self.store, backup)
            else:
                self.store.clear_run(record.namespace, record.name)
        for backup in self.store.list_resources(KIND_BACKUP):
            key = (lifecycle.namespace_of(backup), backup.metadata.name)
            in_progress = backup.status.phase in (Phase.SCHEDULED, Phase.PREPARE, Phase.RUNNING)
            if in_progress and key not in recorded and key not in self.children:
                lifecycle.recover(self.store, backup)

    def retry_gc_restores(self) -> None:
        """Finished Backups whose GC life time is still raised: try to restore it again."""
        from tibackup.manager.recover import pending_gc_restore, retry_gc_restore

        runtime = EmbeddedRuntime(self.store)
        for backup in self.store.list_resources(KIND_BACKUP):
            key = (lifecycle.namespace_of(backup), backup.metadata.name)
            if backup.metadata.deletion_timestamp is not None or not pending_gc_restore(backup, runtime):
                continue
            last = self._gc_attempts.get(key)
            if last is not None and time.monotonic() - last < GC_RETRY_SECONDS:
                continue
            self._gc_attempts[key] = time.monotonic()
            result = retry_gc_restore(backup, runtime)
            if not pending_gc_restore(result, runtime):
                self._gc_attempts.pop(key, None)
                log.info("backup %s/%s: tikv_gc_life_time restored", *key)

    def finish_deletions(self) -> None:
        for schedule in self.store.list_resources(KIND_SCHEDULE):
            if schedule.metadata.deletion_timestamp is not None:
                result = lifecycle.delete_schedule(self.store, schedule)
                for backup in result.failed:
                    log.warning(
                        "backup %s/%s: could not be cleaned", backup.metadata.namespace, backup.metadata.name
                    )
        for backup in self.store.list_resources(KIND_BACKUP):
            if backup.metadata.deletion_timestamp is None:
                continue
            key = (lifecycle.namespace_of(backup), backup.metadata.name)
            if key in self.children:
                continue  # stop_run inside delete_backup interrupts it; wait for its exit first
            last = self._clean_attempts.get(key)
            if (
                backup.status.phase == Phase.CLEAN_FAILED
                and last
                and time.monotonic() - last < CLEAN_RETRY_SECONDS
            ):
                continue
            self._clean_attempts[key] = time.monotonic()
            if lifecycle.delete_backup(self.store, backup) is None:
                self._clean_attempts.pop(key, None)

    def start_pending(self) -> None:
        pending = [
            b
            for b in self.store.list_resources(KIND_BACKUP)
            if not b.status.phase and b.metadata.deletion_timestamp is None
        ]
        pending.sort(key=lambda b: (b.metadata.creation_timestamp or lifecycle.now(), b.metadata.name))
        for backup in pending:
            if len(self.children) >= self.max_concurrent:
                return
            self.start_child(backup)

    def reconcile_restores(self) -> None:
        """Restores: recover dead runs, act on re-run requests and --no-wait deletions, start pending ones."""
        running = {(r.namespace, r.name): r for r in self.store.runs() if restores.is_restore_run(r)}
        for restore in self.store.list_resources(restores.KIND_RESTORE):
            key = restores.run_key(restore)
            if key in self.children:
                continue
            if restore.metadata.deletion_timestamp is not None:
                restores.delete_restore(self.store, restore)
                continue
            record = running.get(key)
            alive = record is not None and process_alive(record.pid, record.pid_started)
            if restore.status.phase in restores.IN_PROGRESS and not alive:
                restores.recover(self.store, restore)
                continue
            accepted = restores.accept_rerun(self.store, restore) or restore
            if not accepted.status.phase and not alive and len(self.children) < self.max_concurrent:
                self.start_restore(accepted)

    def start_restore(self, restore: Restore) -> None:
        ns, key = restores.run_key(restore)
        if restores.claim(self.store, restore, os.getpid()) is not None:
            return  # someone else (``apply --wait``) runs it
        command = [
            sys.executable, "-m", "tibackup.cli.main", "run-restore", "--adopt",
            "--state-dir", str(self.state_dir), "-n", ns, restore.metadata.name,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.store.set_run_pid(ns, key, process.pid, start_ticks(process.pid))
        restore.status = set_condition(
            restore.status, Phase.SCHEDULED, "Scheduled", f"run by process {process.pid}", lifecycle.now()
        )
        self.store.update_status(restore)
        self.children[(ns, key)] = Child(ns, key, process)
        log.info("restore %s/%s: started (process %d)", ns, restore.metadata.name, process.pid)
        threading.Thread(target=self._relay, args=(ns, key, process), daemon=True).start()

    def start_child(self, backup: Backup) -> None:
        ns, name = lifecycle.namespace_of(backup), backup.metadata.name
        me = os.getpid()
        if self.store.claim_run(ns, name, backup.metadata.uid or "", me, start_ticks(me)) is not None:
            return  # someone else (``apply --wait``) runs it
        command = [
            sys.executable, "-m", "tibackup.cli.main", "run-backup", "--adopt",
            "--state-dir", str(self.state_dir), "-n", ns, name,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.store.set_run_pid(ns, name, process.pid, start_ticks(process.pid))
        status = set_condition(
            backup.status, Phase.SCHEDULED, "Scheduled", f"run by process {process.pid}", lifecycle.now()
        )
        current = self.store.get(KIND_BACKUP, ns, name)
        if isinstance(current, Backup) and not current.status.phase:
            self.store.update_status(current.model_copy(update={"status": status}))
        self.children[(ns, name)] = Child(ns, name, process)
        log.info("backup %s/%s: started (process %d)", ns, name, process.pid)
        threading.Thread(target=self._relay, args=(ns, name, process), daemon=True).start()

    def _relay(self, namespace: str, name: str, process: subprocess.Popen[bytes]) -> None:
        """Copy a child's log into the controller's, prefixed with the backup, secret values masked."""
        assert process.stdout is not None
        store = Store(self.state_dir)
        try:
            secrets = store.backup_secret_values(namespace, name)  # only what this Backup can leak
        finally:
            store.close()
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                sys.stderr.write(f"[{namespace}/{name}] {redact(line, secrets)}\n")
                sys.stderr.flush()
