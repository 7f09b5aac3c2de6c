"""The API groups tibackup's resources are served under: TiDB Operator's, and tibackup's own.

- ``pingcap.com`` — TiDB Operator's group: the seed's YAML works verbatim. For clusters where tibackup is
  the only controller of Backups.
- ``backup.tibackup.io`` — the same kinds and schema under a group of tibackup's own, for clusters that
  run TiDB Operator (which owns ``backups.pingcap.com``): only the YAML's ``apiVersion`` changes.

One operator serves one group (``--api-group``); the embedded runtime accepts both.
"""

from __future__ import annotations

from typing import Final, Literal

PINGCAP_GROUP: Final = "pingcap.com"
TIBACKUP_GROUP: Final = "backup.tibackup.io"
GROUPS: Final = (PINGCAP_GROUP, TIBACKUP_GROUP)
VERSION: Final = "v1alpha1"
API_VERSIONS: Final = tuple(f"{group}/{VERSION}" for group in GROUPS)
ApiVersion = Literal["pingcap.com/v1alpha1", "backup.tibackup.io/v1alpha1"]


def api_version(group: str) -> str:
    return f"{group}/{VERSION}"
