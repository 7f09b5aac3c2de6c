"""A throwaway MariaDB 10.11 server for tests, the demo and the benchmarks.

Runs as root without systemd, on a free TCP port on 127.0.0.1, with its own datadir, socket and pid file.
The binlog is on (SHOW MASTER STATUS has a position) and the buffer pool is small so a benchmark table can
be many times larger than it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import MySQLdb

from testenv._proc import (
    ManagedServer,
    ServerStartError,
    die_with_parent,
    free_port,
    log_tail,
    retry_port_clash,
    stop_pid,
    wait_until,
)

ROOT_PASSWORD = "rootpw"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MariaDBServer(ManagedServer):
    """One mariadbd process. Use start()/stop() or `with MariaDBServer() as db:`.

    `MariaDBServer.attach(host, port, user, password)` wraps a server somebody else started (stop() is then
    a no-op), so fixtures can reuse the servers of `python -m testenv up`.
    """

    def __init__(
        self,
        basedir: str | Path | None = None,
        *,
        port: int | None = None,
        password: str = ROOT_PASSWORD,
        buffer_pool_size: str = "64M",
        extra_args: list[str] | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        self._owns_basedir = basedir is None
        self.basedir = (
            Path(basedir) if basedir is not None else Path(tempfile.mkdtemp(prefix="tibackup-mdb-"))
        )
        self.host = "127.0.0.1"
        self.port = port or 0
        self.user = "root"
        self.password = password
        self.buffer_pool_size = buffer_pool_size
        self.extra_args = list(extra_args or [])
        self.launcher = list(launcher or [])  # a command mariadbd runs under (bench/servergrind.py: valgrind)
        self.datadir = self.basedir / "data"
        self.socket = str(self.basedir / "mysqld.sock")
        self.pid_file = self.basedir / "mysqld.pid"
        self.log_file = self.basedir / "mariadbd.log"
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._managed = True

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def attach(cls, host: str, port: int, user: str = "root", password: str = ROOT_PASSWORD) -> MariaDBServer:
        """A handle on an already running server that this object will never stop."""
        self = cls.__new__(cls)
        self._owns_basedir = False
        self.basedir = Path("/nonexistent")
        self.host, self.port, self.user, self.password = host, int(port), user, password
        self.buffer_pool_size = ""
        self.extra_args = []
        self.launcher = []
        self.datadir = self.basedir
        self.socket = ""
        self.pid_file = self.basedir / "mysqld.pid"
        self.log_file = self.basedir / "mariadbd.log"
        self.start_seconds = None
        self._proc = None
        self._managed = False
        return self

    def start(self, timeout: float = 60.0, detach: bool = False) -> MariaDBServer:
        """Initialise the datadir (first time only), start mariadbd, wait until it answers.

        detach=True puts the server in its own session so it outlives this Python process.
        """
        if not self._managed:
            return self
        return retry_port_clash(
            lambda: self._start_once(timeout, detach), self.log_file, lambda: setattr(self, "port", 0)
        )

    def _start_once(self, timeout: float, detach: bool) -> MariaDBServer:
        t0 = time.monotonic()
        self.basedir.mkdir(parents=True, exist_ok=True)
        fresh = not (self.datadir / "mysql").is_dir()
        if fresh:
            self._install_db()
        if not self.port:
            self.port = free_port()
        (self.basedir / "binlog").mkdir(exist_ok=True)
        cmd = [
            *self.launcher,
            _binary("mariadbd"),
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--log-error={self.log_file}",
            f"--log-bin={self.basedir / 'binlog' / 'mariadb-bin'}",
            "--server-id=1",
            "--binlog-format=ROW",
            f"--innodb-buffer-pool-size={self.buffer_pool_size}",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
            "--max-connections=500",
            "--max-allowed-packet=256M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            *self.extra_args,
        ]
        with open(self.basedir / "mariadbd.out", "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
                preexec_fn=None if detach else die_with_parent,
            )
        if not wait_until(self._ping, timeout, 0.05):
            self._proc.kill()
            raise ServerStartError(
                f"MariaDB did not answer on port {self.port} within {timeout:.0f}s; "
                f"log: {self.log_file}\n{log_tail(self.log_file)}"
            )
        marker = self.basedir / "root-password-set"
        if not marker.exists():
            self._secure_root()
            marker.write_text("root has a password and anonymous accounts are gone\n")
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, remove: bool | None = None) -> None:
        """Stop the server (SIGTERM to the pid file's pid, wait for exit) and remove a temporary basedir."""
        if not self._managed:
            return
        pid = self.pid
        if pid is None and self._proc is not None:
            pid = self._proc.pid
        if pid is not None:
            stop_pid(pid, timeout=60)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        if remove if remove is not None else self._owns_basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)

    def running(self) -> bool:
        return self._ping()

    # ----------------------------------------------------------------- SQL helpers
    def connect(
        self, database: str | None = None, user: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        """A MySQLdb connection over TCP with autocommit on (root unless user is given)."""
        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user if user is not None else self.user,
            "password": password if password is not None else (self.password if user is None else ""),
            "charset": "utf8mb4",
            "connect_timeout": 10,
            "autocommit": True,
        }
        if database is not None:
            args["database"] = database
        args.update(kwargs)
        return MySQLdb.connect(**args)

    def execute(self, sql: str, args: Any = None, database: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on a fresh root connection; returns all rows (empty for non-queries)."""
        conn = self.connect(database=database)
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = list(cur.fetchall()) if cur.description else []
            cur.close()
            return rows
        finally:
            conn.close()

    def create_user(self, name: str, password: str, grants: list[str]) -> None:
        """(Re)create user name@'%' with password and the given privileges.

        Each grant is either a privilege list on everything (`"SELECT, RELOAD"` → ON *.*) or a full
        `"<privs> ON <object>"` clause.
        """
        account = f"{_quote(name)}@'%'"
        stmts = [f"DROP USER IF EXISTS {account}", f"CREATE USER {account} IDENTIFIED BY {_quote(password)}"]
        for grant in grants:
            clause = grant if " ON " in grant.upper() else f"{grant} ON *.*"
            stmts.append(f"GRANT {clause} TO {account}")
        conn = self.connect()
        try:
            cur = conn.cursor()
            for stmt in stmts:
                cur.execute(stmt)
            cur.close()
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        self.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")

    # ----------------------------------------------------------------- internals
    def _install_db(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        cmd = [
            _binary("mariadb-install-db"),
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            log = self.basedir / "install-db.log"
            log.write_text(res.stdout + res.stderr)
            raise ServerStartError(
                f"mariadb-install-db failed (exit {res.returncode}); log: {log}\n{res.stderr}"
            )

    def _ping(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerStartError(
                f"mariadbd exited with {self._proc.returncode}; log: {self.log_file}\n"
                f"{log_tail(self.log_file)}"
            )
        if self._managed and self.socket:
            cmd = [_binary("mariadb-admin"), "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"]
        else:
            cmd = [
                _binary("mariadb-admin"),
                "--no-defaults",
                "-h",
                self.host,
                "-P",
                str(self.port),
                "--protocol=TCP",
                "-u",
                self.user,
                "ping",
            ]
        # mariadb-admin ping exits 0 when the server answers, even if the login is refused.
        res = subprocess.run(cmd, capture_output=True, timeout=10, check=False)
        return res.returncode == 0

    def _secure_root(self) -> None:
        """Give every root account the password and drop anonymous accounts."""
        conn = MySQLdb.connect(unix_socket=self.socket, user="root", password="", autocommit=True)
        try:
            cur = conn.cursor()
            pw = _quote(self.password)
            cur.execute("SELECT User, Host FROM mysql.global_priv WHERE User = ''")
            for user, host in cur.fetchall():
                cur.execute(f"DROP USER {_quote(_s(user))}@{_quote(_s(host))}")
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'%'")
            cur.execute("SELECT User, Host FROM mysql.user WHERE User = 'root'")
            for user, host in cur.fetchall():
                account = f"{_quote(_s(user))}@{_quote(_s(host))}"
                if _s(host) not in ("localhost", "127.0.0.1", "::1", "%"):
                    # A host-name account is never matched under --skip-name-resolve.
                    cur.execute(
                        f"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host = {_quote(_s(host))}"
                    )
                    continue
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")
                cur.execute(f"ALTER USER {account} IDENTIFIED BY {pw}")
            cur.execute("FLUSH PRIVILEGES")
            cur.close()
        finally:
            conn.close()


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _binary(name: str) -> str:
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"{name} is not installed; run scripts/setup.sh")
    return found
