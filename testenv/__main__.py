"""`python -m testenv up|down|status [--dir .run]`: long-lived servers for the demo, benchmarks and fast
local test runs.

`up` starts MariaDB and the S3 server detached (they outlive the command), writes `<dir>/env.sh` with the
TIBACKUP_TEST_* exports and prints them; `source .run/env.sh` then makes pytest reuse them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from testenv._proc import ServerStartError
from testenv.mariadb import MariaDBServer
from testenv.s3 import S3Server, make_s3_server, provider_from_env

STATE = "state.json"


def _servers(run: Path, provider: str) -> tuple[MariaDBServer, S3Server]:
    return MariaDBServer(run / "mariadb"), make_s3_server(provider, run / "s3")


def env_exports(db: MariaDBServer, s3: S3Server) -> dict[str, str]:
    return {
        "TIBACKUP_TEST_MYSQL_HOST": db.host,
        "TIBACKUP_TEST_MYSQL_PORT": str(db.port),
        "TIBACKUP_TEST_MYSQL_USER": db.user,
        "TIBACKUP_TEST_MYSQL_PASSWORD": db.password,
        "TIBACKUP_TEST_S3_PROVIDER": s3.provider,
        "TIBACKUP_TEST_S3_ENDPOINT": s3.endpoint,
        "TIBACKUP_TEST_S3_ACCESS_KEY": s3.access_key,
        "TIBACKUP_TEST_S3_SECRET_KEY": s3.secret_key,
        "TIBACKUP_TEST_S3_REGION": s3.region,
        "TIBACKUP_TEST_REUSE": "1",
    }


def _read_state(run: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _running(run: Path) -> tuple[MariaDBServer, S3Server] | None:
    """The servers recorded in run/state.json, if both still answer."""
    state = _read_state(run)
    if state is None:
        return None
    db = MariaDBServer.attach("127.0.0.1", state["mysql_port"])
    s3 = S3Server.attach(
        f"http://127.0.0.1:{state['s3_port']}", state["s3_access_key"], state["s3_secret_key"]
    )
    s3.provider = state["s3_provider"]
    try:
        ok = db.running() and s3.ready()
    except Exception:
        ok = False
    return (db, s3) if ok else None


def up(run: Path, provider: str) -> int:
    run.mkdir(parents=True, exist_ok=True)
    found = _running(run)
    if found is not None:
        print(f"# already running (state in {run / STATE})", file=sys.stderr)
        db, s3 = found
    else:
        down(run, quiet=True)
        db, s3 = _servers(run, provider)
        try:
            db.start(detach=True)
            print(f"# MariaDB ready on port {db.port} in {db.start_seconds:.1f}s", file=sys.stderr)
            s3.start(detach=True)
            warm = s3.warm_up()
            print(
                f"# {s3.provider} S3 ready at {s3.endpoint} in {s3.start_seconds:.1f}s "
                f"(+{warm:.1f}s warm-up)",
                file=sys.stderr,
            )
        except ServerStartError as e:
            print(f"error: {e}", file=sys.stderr)
            db.stop(remove=False)
            s3.stop(remove=False)
            return 1
        state = {
            "mysql_port": db.port,
            "s3_provider": s3.provider,
            "s3_port": s3.port,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (run / STATE).write_text(json.dumps(state, indent=2))
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env_exports(db, s3).items()]
    (run / "env.sh").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def down(run: Path, quiet: bool = False) -> int:
    state = _read_state(run)
    provider = state["s3_provider"] if state else provider_from_env()
    db, s3 = _servers(run, provider)
    db.stop(remove=True)
    s3.stop(remove=True)
    for name in (STATE, "env.sh"):
        (run / name).unlink(missing_ok=True)
    if not quiet:
        print(f"stopped the servers of {run}")
    return 0


def status(run: Path) -> int:
    state = _read_state(run)
    if state is None:
        print(f"not running (no {run / STATE})")
        return 1
    db, s3 = _servers(run, state["s3_provider"])
    found = _running(run)
    print(f"mariadb  port {state['mysql_port']}  pid {db.pid}  rss {db.rss_bytes() / 1e6:.0f} MB")
    print(
        f"{state['s3_provider']:<8} port {state['s3_port']}  pid {s3.pid}  rss {s3.rss_bytes() / 1e6:.0f} MB"
    )
    print("answering" if found else "NOT answering")
    return 0 if found else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testenv", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".run", help="where data, logs, state.json and env.sh live")
    parser.add_argument(
        "--s3", default=None, help="seaweedfs or ceph (default: $TIBACKUP_TEST_S3 or seaweedfs)"
    )
    args = parser.parse_args(argv)
    run = Path(args.dir).resolve()
    if args.command == "up":
        return up(run, args.s3 or provider_from_env())
    if args.command == "down":
        return down(run)
    return status(run)


if __name__ == "__main__":
    sys.exit(main())
