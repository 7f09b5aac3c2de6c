"""Default values of the Backup spec, as TiDB Operator and the seed document give them."""

from __future__ import annotations

from typing import Final

from tibackup.dump.tablefilter import DEFAULT_RULES

DEFAULT_PORT: Final = 4000
DEFAULT_USER: Final = "root"
DEFAULT_TIKV_GC_LIFE_TIME: Final = "72h"
DEFAULT_SERVICE_ACCOUNT: Final = "tidb-backup-manager"
DEFAULT_CLEAN_POLICY: Final = "Retain"
DEFAULT_BACKUP_TYPE: Final = "full"

# Used only when `dumpling.options` is empty; user options replace them entirely.
DEFAULT_DUMPLING_OPTIONS: tuple[str, ...] = ("--threads=16", "--rows=10000")

# Everything except the system schemas; a user filter replaces this whole list. One definition, the
# dumper's: it treats exactly these rules as "no user filter".
DEFAULT_TABLE_FILTER: tuple[str, ...] = DEFAULT_RULES

# provider aws: what the reference fills in when the fields are empty.
AWS_DEFAULT_STORAGE_CLASS: Final = "STANDARD_IA"
AWS_DEFAULT_ACL: Final = "private"

# Providers with no well-known endpoint: the spec must name one.
PROVIDERS_NEEDING_ENDPOINT: frozenset[str] = frozenset({"ceph", "minio", "seaweedfs", "other"})

# Storage back ends TiDB Operator has and tibackup does not: named in the error instead of "unknown field".
UNSUPPORTED_STORAGE: frozenset[str] = frozenset({"gcs", "azblob", "local"})
UNSUPPORTED_TOOLS: frozenset[str] = frozenset({"br", "mydumper"})
