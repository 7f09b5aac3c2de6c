"""Which of the privileges a backup needs does the account lack? Read from ``SHOW GRANTS``.

The seed lists ``SELECT``, ``RELOAD``, ``LOCK TABLES``, ``REPLICATION CLIENT``, and ``SELECT`` and
``UPDATE`` on ``mysql.tidb`` (to adjust the GC life time on TiDB). ``RELOAD`` and ``REPLICATION
CLIENT`` only exist globally (``ON *.*``); ``SELECT`` and ``LOCK TABLES`` may be granted per database, so
a grant on any database counts (a table the account cannot read still fails the dump, by name).

Parsing is pure and tolerant: MySQL, MariaDB and TiDB spell grants slightly differently (backticks or
quotes, MariaDB's ``BINLOG MONITOR`` for ``REPLICATION CLIENT``, column lists, role grants).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

REQUIRED_GLOBAL = ("RELOAD", "REPLICATION CLIENT")
REQUIRED_ANYWHERE = ("SELECT", "LOCK TABLES")
# INSERT and DELETE as well let the backups running at once share it (manager/gc.py: unshared_account).
REQUIRED_GC_TABLE = ("SELECT", "UPDATE")
GC_TABLE = "mysql.tidb"

# MariaDB 10.5+ renamed REPLICATION CLIENT; SHOW GRANTS prints the new name.
_ALIASES = {"BINLOG MONITOR": "REPLICATION CLIENT"}
_GRANT = re.compile(r"^\s*GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<object>.+?)\s+TO\s+", re.IGNORECASE | re.DOTALL)
_ROLE_GRANT = re.compile(r"^\s*GRANT\s+(?!.*\sON\s).+\sTO\s", re.IGNORECASE | re.DOTALL)
_OBJECT_KIND = re.compile(r"^(TABLE|FUNCTION|PROCEDURE|PACKAGE(\s+BODY)?)\s+", re.IGNORECASE)


@dataclass
class Grants:
    """Privileges by object: ``*.*``, ``db.*`` or ``db.table`` (lower-case, unquoted)."""

    by_object: dict[str, set[str]] = field(default_factory=dict)
    has_roles: bool = False  # granted roles: their privileges are not listed by plain SHOW GRANTS

    def on(self, obj: str) -> set[str]:
        return self.by_object.get(obj, set())

    def has(self, privilege: str, obj: str) -> bool:
        """Granted on ``obj`` itself or on an object that contains it (``*.*`` ⊃ ``db.*`` ⊃ ``db.t``)."""
        schema = obj.split(".", 1)[0]
        return any(
            privilege in self.on(o) or "ALL PRIVILEGES" in self.on(o) for o in ("*.*", f"{schema}.*", obj)
        )

    def has_anywhere(self, privilege: str) -> bool:
        return any(privilege in privs or "ALL PRIVILEGES" in privs for privs in self.by_object.values())


def parse_grants(lines: Iterable[str]) -> Grants:
    grants = Grants()
    for line in lines:
        match = _GRANT.match(line)
        if match is None:
            if _ROLE_GRANT.match(line):
                grants.has_roles = True
            continue
        obj = _normalize_object(match.group("object"))
        privileges = grants.by_object.setdefault(obj, set())
        privileges.update(_split_privileges(match.group("privs")))
    return grants


def missing_privileges(grants: Grants, *, gc_table: bool) -> list[str]:
    """What the account lacks, each named as a user would GRANT it; empty when it has everything."""
    missing = [p for p in REQUIRED_ANYWHERE if not grants.has_anywhere(p)]
    missing += [p for p in REQUIRED_GLOBAL if not grants.has(p, "*.*")]
    if gc_table:
        missing += [f"{p} ON {GC_TABLE}" for p in REQUIRED_GC_TABLE if not grants.has(p, GC_TABLE)]
    return missing


def _split_privileges(text: str) -> set[str]:
    # Drop column lists: "SELECT (a, b), INSERT" → "SELECT , INSERT".
    text = re.sub(r"\([^)]*\)", " ", text)
    privileges: set[str] = set()
    for item in text.split(","):
        name = " ".join(item.split()).upper()
        if not name:
            continue
        if name == "ALL":
            name = "ALL PRIVILEGES"
        privileges.add(_ALIASES.get(name, name))
    return privileges


def _normalize_object(text: str) -> str:
    text = _OBJECT_KIND.sub("", text.strip())
    parts = [_unquote(part) for part in _split_dotted(text)]
    return ".".join(parts).lower()


def _split_dotted(text: str) -> list[str]:
    """``\\`my.db\\`.\\`t\\``` → ['`my.db`', '`t`']: split at dots outside quotes."""
    parts: list[str] = []
    current = ""
    quote = ""
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "`'\"":
            quote = char
            current += char
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unquote(part: str) -> str:
    part = part.strip()
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "`'\"":
        quote = part[0]
        return part[1:-1].replace(quote * 2, quote)
    return part
