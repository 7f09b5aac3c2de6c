"""Privileges: before anything is written, the target account must hold what the load will need.

The account's grants are read with ``SHOW GRANTS`` (MySQL, MariaDB and TiDB print the same
``GRANT <privileges> ON <db>.<table> TO <account>`` lines) and compared with what this load needs:
INSERT on every target database, CREATE where a database or table is missing, DELETE with
``--on-duplicate replace`` (REPLACE deletes the old row), CREATE VIEW and DROP for views (a view
replaces Dumpling's stand-in table), and CREATE, INSERT, DELETE, SELECT on the checkpoint schema.
Where the grants cannot be read for certain (table- or column-level grants on that database, a line
of another shape), that database is not judged: the server itself refuses later, as before. A granted
role only adds privileges (MariaDB grants every role to the account that created it), so the listed
grants stay what the account surely holds: a missing one is not judged (the role may give it), a
listed one still counts (e.g. for the deferred index builds, which need ALTER).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tibackup.dump.conn import DB
from tibackup.errors import DatabaseError
from tibackup.load.checkpoint import SCHEMA as CHECKPOINT_SCHEMA

_GRANT = re.compile(
    r"^GRANT (?P<privs>.+?) ON (?P<db>\*|`(?:[^`]|``)*`|'[^']*'|\w+)\.(?P<table>\*|`(?:[^`]|``)*`|\w+) TO ",
    re.IGNORECASE,
)
# A role granted to the account: ``GRANT `r` TO …`` (MariaDB), ``GRANT `r`@`%` TO …`` (MySQL) — no ON.
_ROLE = re.compile(r"^GRANT (?:(?! ON ).)+ TO ", re.IGNORECASE)
ALL = "ALL PRIVILEGES"


class InsufficientPrivileges(DatabaseError):
    reason = "InsufficientPrivileges"


@dataclass
class Grants:
    """What ``SHOW GRANTS`` says: privileges on every database (``*.*``), per database pattern, and the
    databases (patterns) it cannot judge."""

    everywhere: set[str] = field(default_factory=set)
    per_db: list[tuple[str, set[str]]] = field(default_factory=list)
    unsure: list[str] = field(default_factory=list)  # db patterns; "*": nothing can be judged
    account: str = ""
    roles: bool = False  # a role is granted: more may be held than is listed

    def held(self, db: str) -> set[str] | None:
        """The privileges held on every table of ``db`` (None: cannot tell)."""
        if any(_matches(p, db) for p in self.unsure):
            return None
        out = set(self.everywhere)
        for pattern, privs in self.per_db:
            if _matches(pattern, db):
                out |= privs
        return out


def parse_grants(lines: list[str], account: str = "") -> Grants:
    grants = Grants(account=account)
    for line in lines:
        m = _GRANT.match(line.strip())
        if m is None:
            if line.strip().upper().startswith("GRANT PROXY"):
                continue
            if _ROLE.match(line.strip()):
                grants.roles = True
                continue
            grants.unsure.append("*")  # a role granted, or a shape not known here
            continue
        db, table, privs_text = _unquote(m["db"]), m["table"], m["privs"]
        if table != "*" or "(" in privs_text:
            grants.unsure.append(db)  # table- or column-level: what holds on each table is not read here
            continue
        privs = {p.strip().upper() for p in privs_text.split(",")}
        if ALL in privs or "ALL" in privs:
            privs = {ALL}
        if db == "*":
            grants.everywhere |= privs
        else:
            grants.per_db.append((db, privs))
    return grants


def needed(schemas: dict[str, set[str]], checkpoint: bool) -> dict[str, set[str]]:
    """Target database → privileges; ``schemas`` maps each to its extra needs (CREATE, DELETE, …)."""
    out = {db: {"INSERT", *extra} for db, extra in schemas.items()}
    if checkpoint:
        out[CHECKPOINT_SCHEMA] = {"CREATE", "INSERT", "DELETE", "SELECT"}
    return out


def missing(grants: Grants, want: dict[str, set[str]]) -> dict[str, list[str]]:
    """Database → the privileges it needs and the account does not hold (only where that is certain)."""
    out: dict[str, list[str]] = {}
    for db, privs in sorted(want.items()):
        held = grants.held(db)
        if held is None or ALL in held or grants.roles:  # a role may hold what is not listed
            continue
        lacking = sorted(privs - held)
        if lacking:
            out[db] = lacking
    return out


def check_privileges(db: DB, want: dict[str, set[str]]) -> Grants:
    """Raise InsufficientPrivileges naming every missing privilege and the GRANT that adds it; return
    the account's grants."""
    account = db.scalar_text("SELECT CURRENT_USER()", "reading the account") or ""
    lines = [row[0] or "" for row in db.query_text("SHOW GRANTS", "reading the account's privileges")]
    grants = parse_grants(lines, account)
    gaps = missing(grants, want)
    if not gaps:
        return grants
    user, _, host = account.rpartition("@")
    who = f"'{user}'@'{host}'"
    fixes = "; ".join(f"GRANT {', '.join(p)} ON `{d}`.* TO {who}" for d, p in gaps.items())
    names = ", ".join(f"{', '.join(p)} on `{d}`" for d, p in gaps.items())
    hint = " (or --checkpoint=false: no resume)" if CHECKPOINT_SCHEMA in gaps else ""
    raise InsufficientPrivileges(
        f"the account {who} lacks {names}, which this load needs; nothing was loaded. Grant them: "
        f"{fixes}{hint}"
    )


def may(grants: Grants, privilege: str, db: str) -> bool:
    """The account surely holds ``privilege`` on every table of ``db``."""
    held = grants.held(db)
    return held is not None and (ALL in held or privilege in held)


def _unquote(name: str) -> str:
    if name[:1] == "`":
        return name[1:-1].replace("``", "`")
    if name[:1] == "'":
        return name[1:-1]
    return name


def _matches(pattern: str, db: str) -> bool:
    """A database-level grant's name is a LIKE pattern (``%``, ``_``; ``\\_`` a plain underscore)."""
    if pattern == "*":
        return True
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.fullmatch(regex, db, re.IGNORECASE) is not None
