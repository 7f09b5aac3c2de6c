"""The backup manager: runs one Backup (``run_backup``), recovers one left behind by a dead process
(``recover_interrupted``), and deletes one's data per its clean policy (``clean_backup``).

It is written once against ``BackupRuntime``; the embedded runtime and the Kubernetes Job supply it.
"""

from tibackup.manager.clean import clean_backup
from tibackup.manager.recover import recover_interrupted
from tibackup.manager.run import run_backup, utc_now
from tibackup.manager.runtime import BackupRuntime
from tibackup.manager.settings import MODE_ANNOTATION, DataPath, choose_mode

__all__ = [
    "MODE_ANNOTATION",
    "BackupRuntime",
    "DataPath",
    "choose_mode",
    "clean_backup",
    "recover_interrupted",
    "run_backup",
    "utc_now",
]
