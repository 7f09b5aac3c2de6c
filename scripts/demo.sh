#!/usr/bin/env bash
# The seed's ad-hoc backup to Ceph-style S3, on this machine, with `tibackup` in place of `kubectl`:
# installs what is missing, starts MariaDB (with sample data) and an S3 server, creates the two Secrets,
# applies examples/backup-s3-ceph.yaml, waits for the Backup and shows it and its files, then restores it
# into a second MariaDB (a Restore with spec.tibackup.fromBackup) and compares CHECKSUM TABLE on both.
# Safe to run again; the servers keep running afterwards (stop them with `python3 -m testenv down`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RUN=$PWD/.run
BUCKET=tibackup-demo
DATABASE=demo

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

bash scripts/setup.sh

# --- servers: MariaDB + S3 (SeaweedFS by default; TIBACKUP_TEST_S3=ceph for a real Ceph RGW) -------------
"$PY" -m testenv up --dir "$RUN" >/dev/null
# shellcheck disable=SC1091
source "$RUN/env.sh"
"$PY" - <<EOF
from testenv.mariadb import MariaDBServer
from testenv.s3 import make_client
from testenv.sampledata import load_sample

conn = MariaDBServer.attach("127.0.0.1", $TIBACKUP_TEST_MYSQL_PORT).connect()
tables = load_sample(conn, "$DATABASE", rows=5000)
conn.close()
print(f"# sample database $DATABASE: {sum(tables.values())} rows in {len(tables)} tables")
s3 = make_client("$TIBACKUP_TEST_S3_ENDPOINT", "$TIBACKUP_TEST_S3_ACCESS_KEY", "$TIBACKUP_TEST_S3_SECRET_KEY")
if "$BUCKET" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket="$BUCKET")
print("# bucket $BUCKET ready at $TIBACKUP_TEST_S3_ENDPOINT")
EOF

# --- tibackup, with a state directory of its own so the demo never touches your real state ----------------
export TIBACKUP_STATE_DIR=$RUN/demo-state
# This clone's tibackup, whatever `tibackup` is first on PATH (an older install, another checkout).
# demo-tibackup-begin
tibackup() { PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m tibackup.cli.main "$@"; }
# demo-tibackup-end

# A second run starts over: the previous demo Backup goes (cleanPolicy Retain: its files stay in S3).
tibackup delete bk demo1-backup-s3 -n test1 >/dev/null 2>&1 || true
tibackup delete secret s3-secret backup-demo1-tidb-secret -n test1 >/dev/null 2>&1 || true

say "tibackup create secret generic s3-secret --from-literal=access_key=… --from-literal=secret_key=… --namespace=test1"
tibackup create secret generic s3-secret --namespace=test1 \
    --from-literal=access_key="$TIBACKUP_TEST_S3_ACCESS_KEY" \
    --from-literal=secret_key="$TIBACKUP_TEST_S3_SECRET_KEY"
say 'tibackup create secret generic backup-demo1-tidb-secret --from-literal=password=${password} --namespace=test1'
tibackup create secret generic backup-demo1-tidb-secret --namespace=test1 \
    --from-literal=password="$TIBACKUP_TEST_MYSQL_PASSWORD"

# The seed's Ceph example with its placeholders filled in (the local MariaDB stands in for TiDB on 4000).
sed -e "s|\${TIDB_HOST}|$TIBACKUP_TEST_MYSQL_HOST|" -e "s|\${TIDB_PORT}|$TIBACKUP_TEST_MYSQL_PORT|" \
    -e "s|\${S3_ENDPOINT}|$TIBACKUP_TEST_S3_ENDPOINT|" -e "s|\${BUCKET}|$BUCKET|" \
    examples/backup-s3-ceph.yaml >"$RUN/backup-s3.yaml"
say "tibackup apply -f backup-s3.yaml --wait"
tibackup apply -f "$RUN/backup-s3.yaml" --wait

say "tibackup get bk -n test1 -o wide"
tibackup get bk -n test1 -o wide

BACKUP_PATH=$(tibackup get bk demo1-backup-s3 -n test1 -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"]["backupPath"])')
say "objects under $BACKUP_PATH"
"$PY" - "$BACKUP_PATH" <<EOF
import sys
from testenv.s3 import make_client

path = sys.argv[1].removeprefix("s3://$BUCKET/")
s3 = make_client("$TIBACKUP_TEST_S3_ENDPOINT", "$TIBACKUP_TEST_S3_ACCESS_KEY", "$TIBACKUP_TEST_S3_SECRET_KEY")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="$BUCKET", Prefix=path):
    for obj in page.get("Contents", []):
        print(f"{obj['Size']:>10}  s3://$BUCKET/{obj['Key']}")
EOF

# --- restore the Backup into a second database server, and compare (docs/restore.md) ---------------------
TARGET_PORT=$("$PY" - <<EOF
from pathlib import Path
from testenv.mariadb import MariaDBServer

base = Path("$RUN/target")
port_file = base / "port"
try:
    server = MariaDBServer.attach("127.0.0.1", int(port_file.read_text()))
    server.execute("SELECT 1")
except Exception:
    server = MariaDBServer(base).start(detach=True)
    port_file.write_text(str(server.port))
# A second run starts over: the previous demo's restored database goes.
server.execute("DROP DATABASE IF EXISTS $DATABASE")
server.execute("DROP DATABASE IF EXISTS tibackup_load")
print(server.port)
EOF
)
tibackup delete rt demo1-restore-s3 -n test1 >/dev/null 2>&1 || true
tibackup delete secret restore-target-secret -n test1 >/dev/null 2>&1 || true
tibackup create secret generic restore-target-secret --namespace=test1 \
    --from-literal=password="$TIBACKUP_TEST_MYSQL_PASSWORD" >/dev/null
cat >"$RUN/restore-s3.yaml" <<EOF
apiVersion: pingcap.com/v1alpha1
kind: Restore
metadata:
  name: demo1-restore-s3
  namespace: test1
spec:
  backupType: full
  to:
    host: 127.0.0.1
    port: $TARGET_PORT
    user: root
    secretName: restore-target-secret
  tibackup:
    fromBackup: demo1-backup-s3
    threads: 4
EOF
say "tibackup apply -f restore-s3.yaml --wait      # into a second MariaDB on port $TARGET_PORT"
tibackup apply -f "$RUN/restore-s3.yaml" --wait

say "CHECKSUM TABLE on both servers"
"$PY" - <<EOF
from testenv.mariadb import MariaDBServer

source = MariaDBServer.attach("127.0.0.1", $TIBACKUP_TEST_MYSQL_PORT)
target = MariaDBServer.attach("127.0.0.1", $TARGET_PORT)
tables = [r[0] for r in source.execute(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = '$DATABASE'"
    " AND table_type = 'BASE TABLE' ORDER BY 1")]
sql = "CHECKSUM TABLE " + ", ".join(f"$DATABASE.{t}" for t in tables) + " EXTENDED"
left, right = dict(source.execute(sql)), dict(target.execute(sql))
for name in left:
    same = "equal" if left[name] == right.get(name) else "DIFFERENT"
    print(f"{name:<30} {left[name]!s:>12} {right.get(name)!s:>12}  {same}")
if left != right:
    raise SystemExit("the restored tables differ from the source")
EOF

cat >&2 <<EOF

Done. Try next (same state directory):
  export TIBACKUP_STATE_DIR=$TIBACKUP_STATE_DIR
  tibackup describe bk demo1-backup-s3 -n test1
  tibackup controller            # runs schedules: see examples/backup-schedule-s3-ceph.yaml and docs/embedded.md
The servers keep running; stop them with:  $PY -m testenv down; kill \$(cat $RUN/target/mysqld.pid)
EOF
