"""The one family of errors a user can cause or fix.

Every message says what went wrong and what to do about it, in one line. The CLI prints
``error: <message>`` and exits with ``exit_code``; the backup manager records ``reason`` and the
message in the Backup's status. Anything that is not a ``TibackupError`` is a bug in tibackup.
"""

from __future__ import annotations


class TibackupError(Exception):
    """A failure with a cause the user can act on."""

    exit_code = 1
    reason = "Failed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(TibackupError):
    """Bad command-line flags or arguments."""

    exit_code = 2
    reason = "InvalidArgument"


class InvalidSpecError(TibackupError):
    """A resource spec that can never work (the Backup becomes ``Invalid``)."""

    exit_code = 2
    reason = "InvalidSpec"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class DatabaseError(TibackupError):
    """The database refused or failed: connection, authentication, privileges, a query."""

    exit_code = 3
    reason = "DatabaseError"
    code: int | None = None  # the server's error number, when there is one


class StorageError(TibackupError):
    """The output storage refused or failed: bucket, credentials, disk, network."""

    exit_code = 4
    reason = "StorageError"


class NotFoundError(TibackupError):
    """A named object (resource, Secret, file) does not exist."""

    exit_code = 5
    reason = "NotFound"


class Interrupted(TibackupError):
    """The run was stopped by a signal before it finished."""

    exit_code = 130
    reason = "Interrupted"
