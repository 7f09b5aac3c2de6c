"""Before anything changes: can we log in, does the account have the privileges, can we write to S3?"""

from __future__ import annotations

import logging

from tibackup.dump.conn import DB, ServerInfo
from tibackup.errors import DatabaseError, StorageError
from tibackup.manager.privileges import Grants, missing_privileges, parse_grants
from tibackup.storage.base import Storage

log = logging.getLogger("tibackup.manager")


class MissingPrivilege(DatabaseError):
    reason = "MissingPrivilege"


class StorageCheckFailed(StorageError):
    reason = "StorageCheckFailed"


def account_grants(db: DB) -> Grants:
    return parse_grants(row[0] or "" for row in db.query_text("SHOW GRANTS", "reading the account's grants"))


def check_privileges(db: DB, server: ServerInfo, *, gc_table: bool) -> None:
    """Fail naming every privilege of the seed's list that ``SHOW GRANTS`` does not show.

    Privileges that come through roles are not listed by a plain ``SHOW GRANTS``; with role grants
    present a gap is only logged, and the dump itself will fail by name if a privilege is really missing.
    """
    conn = db.conn_info
    grants = account_grants(db)
    missing = missing_privileges(grants, gc_table=gc_table)
    if not missing:
        return
    account = f"'{conn.user}' on {server.type.value} {conn.host}:{conn.port}"
    if grants.has_roles:
        log.warning(
            "SHOW GRANTS does not list %s for %s; assuming its roles grant them", ", ".join(missing), account
        )
        return
    names = ", ".join(missing)
    raise MissingPrivilege(
        f"the database account {account} lacks {names}: grant {names} to it "
        "(a backup needs SELECT, RELOAD, LOCK TABLES, REPLICATION CLIENT, and SELECT and UPDATE on "
        "mysql.tidb for TiDB's GC life time), then run the backup again"
    )


def check_storage(storage: Storage, secret_name: str | None = None) -> None:
    """The bucket exists, the credentials are accepted, and a probe object can be written there."""
    try:
        storage.check_writable()
    except StorageError as exc:
        message = exc.message
        if secret_name:
            message = message.replace("in the Secret", f"in Secret '{secret_name}'")
        raise StorageCheckFailed(message) from exc
