"""The Secrets a Backup names, resolved through the runtime: DB password, S3 keys, TLS client files.

Secret values live only in memory (TLS files too: anonymous memory files, see ``tls_files``). They never reach status, events, logs, messages or process arguments:
``Secrets.scrub`` masks any value that might still slip into a message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tibackup.dump.config import TLSFiles
from tibackup.errors import NotFoundError, TibackupError
from tibackup.manager.runtime import BackupRuntime, SecretSource
from tibackup.resources import Backup, BackupSpec, TiDBAccessConfig

PASSWORD_KEY = "password"
ACCESS_KEY, SECRET_KEY = "access_key", "secret_key"
TLS_KEYS = ("ca.crt", "tls.crt", "tls.key")
_MIN_SCRUB = 4  # shorter values would mask ordinary letters in every message


class SecretError(TibackupError):
    reason = "SecretNotFound"


@dataclass
class Secrets:
    """The resolved values of one Backup's Secrets."""

    password: str = field(default="", repr=False)
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    tls: dict[str, str] = field(default_factory=dict, repr=False)

    def values(self) -> list[str]:
        found = [self.password, self.access_key or "", self.secret_key or "", *self.tls.values()]
        return [v for v in found if len(v) >= _MIN_SCRUB]

    def scrub(self, text: str) -> str:
        for value in sorted(self.values(), key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def secret_names(spec: BackupSpec) -> list[str]:
    """The Secrets a Backup reads (database password, S3 keys, TLS client files), in that order."""
    source, s3 = spec.from_, spec.s3
    names = [
        source.secret_name if source else None,
        s3.secret_name if s3 else None,
        source.tls_client_secret_name if source else None,
    ]
    return [name for name in names if name]


def _fetch(runtime: SecretSource, namespace: str, name: str, field_name: str, hint: str) -> dict[str, str]:
    try:
        return runtime.get_secret(namespace, name)
    except NotFoundError:
        raise SecretError(
            f"Secret '{name}' ({field_name}) not found in namespace '{namespace}': create it, e.g. "
            f"'kubectl create secret generic {name} {hint} -n {namespace}' (or 'tibackup create secret …')",
            reason="SecretNotFound",
        ) from None


def _key(data: dict[str, str], key: str, name: str, field_name: str, empty_ok: bool = False) -> str:
    """The value under ``key``; a missing key and an empty value (where one cannot work) are told apart."""
    value = data.get(key)
    if value is None:
        keys = ", ".join(f"'{k}'" for k in sorted(data)) or "none"
        raise SecretError(
            f"Secret '{name}' ({field_name}) has no key '{key}' (its keys: {keys}): add it "
            f"(--from-literal={key}=…) or fix {field_name}",
            reason="SecretKeyMissing",
        )
    if not value and not empty_ok:
        raise SecretError(
            f"Secret '{name}' ({field_name}): the value of key '{key}' is empty; store the real value "
            f"(--from-literal={key}=…)",
            reason="SecretKeyMissing",
        )
    return value


def resolve_secrets(backup: Backup, runtime: BackupRuntime) -> Secrets:
    """Every value the run needs; a missing Secret or key fails naming both and the fix."""
    spec = backup.spec
    assert spec.from_ is not None and spec.from_.secret_name and spec.s3 is not None
    namespace = backup.metadata.namespace or "default"
    return resolve_access_secrets(runtime, namespace, spec.from_, spec.s3.secret_name, "spec.from")


def resolve_access_secrets(
    runtime: SecretSource, namespace: str, access: TiDBAccessConfig, s3_secret: str | None, field: str
) -> Secrets:
    """The Secrets of a database access block (``spec.from`` of a Backup, ``spec.to`` of a Restore, named
    by ``field`` in messages) and of ``spec.s3.secretName``."""
    assert access.secret_name
    secrets = Secrets()
    name = access.secret_name
    data = _fetch(runtime, namespace, name, f"{field}.secretName", "--from-literal=password=…")
    # An empty password is a password (TiDB's root account has none until one is set).
    secrets.password = _key(data, PASSWORD_KEY, name, f"{field}.secretName", empty_ok=True)
    if s3_secret:
        name = s3_secret
        data = _fetch(
            runtime,
            namespace,
            name,
            "spec.s3.secretName",
            "--from-literal=access_key=… --from-literal=secret_key=…",
        )
        secrets.access_key = _key(data, ACCESS_KEY, name, "spec.s3.secretName")
        secrets.secret_key = _key(data, SECRET_KEY, name, "spec.s3.secretName")
    if access.tls_client_secret_name:
        name = access.tls_client_secret_name
        field_name = f"{field}.tlsClientSecretName"
        data = _fetch(
            runtime, namespace, name, field_name, "--from-file=ca.crt --from-file=tls.crt --from-file=tls.key"
        )
        secrets.tls["ca.crt"] = _key(data, "ca.crt", name, field_name)
        # A client certificate is optional, but it comes as a pair.
        if data.get("tls.crt") or data.get("tls.key"):
            secrets.tls["tls.crt"] = _key(data, "tls.crt", name, field_name)
            secrets.tls["tls.key"] = _key(data, "tls.key", name, field_name)
    return secrets


@contextmanager
def tls_files(secrets: Secrets) -> Iterator[TLSFiles]:
    """The TLS Secret's values as files the database client library can open, gone on exit.

    On Linux each value lives in an anonymous memory file (``memfd_create``) that the client opens by
    the path ``/proc/self/fd/N``: the key never reaches a file system, so a process killed with SIGKILL
    leaves nothing behind (the kernel frees the memory with the process). MariaDB Connector/C reads the
    files when each session connects, in this process; the C row reader borrows those sessions. Where
    memory files are missing, a private temporary folder (0700, files 0600) removed on exit."""
    if not secrets.tls:
        yield TLSFiles()
        return
    if _memory_files_work():
        descriptors: list[int] = []
        try:
            paths: dict[str, str] = {}
            for key, value in secrets.tls.items():
                descriptor = os.memfd_create(f"tibackup-{key}", os.MFD_CLOEXEC)
                descriptors.append(descriptor)
                _write_all(descriptor, value.encode("utf-8"))
                paths[key] = f"/proc/self/fd/{descriptor}"
            yield _tls(paths)
        finally:
            for descriptor in descriptors:
                os.close(descriptor)
        return
    folder = Path(tempfile.mkdtemp(prefix="tibackup-tls-"))  # mkdtemp creates it 0700
    try:
        paths = {}
        for key, value in secrets.tls.items():
            path = folder / key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(value)
            paths[key] = str(path)
        yield _tls(paths)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tls(paths: dict[str, str]) -> TLSFiles:
    return TLSFiles(ca=paths.get("ca.crt"), cert=paths.get("tls.crt"), key=paths.get("tls.key"))


def _memory_files_work() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
