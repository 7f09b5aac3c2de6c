"""A one-node Ceph cluster (mon + memstore OSD + radosgw) as a throwaway S3 server.

Recipe and traps from TESTING.md: auth off, `ms_*_mode = crc` (otherwise radosgw hangs for 300 s), pool
size 1 with few PGs and no autoscaling, memstore so nothing touches a disk, and a warm-up because the
first bucket and the first multipart upload create pools (~6 s).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from testenv._proc import (
    ServerStartError,
    die_with_parent,
    free_ports,
    pid_alive,
    stop_pid,
    wait_for_server,
)
from testenv.s3 import S3Server

DAEMONS = ("mon", "osd", "rgw")


class CephRGWServer(S3Server):
    provider = "ceph"

    def __init__(self, basedir: str | Path | None = None, memstore_bytes: int = 4 << 30) -> None:
        super().__init__(basedir)
        self.conf = self.basedir / "ceph.conf"
        self.log_file = self.basedir / "log" / "ceph-client.rgw.tibackup.log"
        self.memstore_bytes = memstore_bytes
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # ----------------------------------------------------------------- lifecycle
    def _pid_file(self, daemon: str) -> Path:
        return self.basedir / "run" / f"{daemon}.pid"

    @property
    def pids(self) -> list[int]:
        out = []
        for d in DAEMONS:
            with contextlib.suppress(OSError, ValueError):
                pid = int(self._pid_file(d).read_text().strip())
                if pid_alive(pid):
                    out.append(pid)
        return out

    @property
    def pid(self) -> int | None:
        pids = self.pids
        return pids[0] if pids else None

    def rss_bytes(self) -> int:
        from testenv._proc import rss_bytes

        return sum(rss_bytes(p) for p in self.pids)

    def start(self, timeout: float = 120.0, detach: bool = False) -> CephRGWServer:
        if not self._managed:
            return self
        for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph"):
            if shutil.which(tool) is None:
                raise ServerStartError(f"{tool} is missing: TIBACKUP_TEST_S3=ceph bash scripts/setup.sh")
        t0 = time.monotonic()
        for d in ("run", "log", "mon", "osd", "rgw"):
            (self.basedir / d).mkdir(parents=True, exist_ok=True)
        mon_port, rgw_port = free_ports(2)
        self.port = rgw_port
        fsid = str(uuid.uuid4())
        self._write_conf(fsid, mon_port, rgw_port)
        monmap = self.basedir / "monmap"
        self._run(
            [
                "monmaptool",
                "--create",
                "--clobber",
                "--fsid",
                fsid,
                "--add",
                "a",
                f"v2:127.0.0.1:{mon_port}",
                str(monmap),
            ]
        )
        self._run(["ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(monmap)])
        self._spawn("mon", ["ceph-mon", "-c", str(self.conf), "-f", "-i", "a"], detach)
        osd_uuid = str(uuid.uuid4())
        osd_id = self._run(
            ["ceph", "-c", str(self.conf), "--connect-timeout", "30", "osd", "new", osd_uuid], timeout=60
        ).strip()
        (self.basedir / "osd" / f"ceph-{osd_id}").mkdir(parents=True, exist_ok=True)
        self._run(["ceph-osd", "-c", str(self.conf), "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid])
        self._spawn("osd", ["ceph-osd", "-c", str(self.conf), "-f", "-i", osd_id], detach)
        self._spawn("rgw", ["radosgw", "-c", str(self.conf), "-f", "-n", "client.rgw.tibackup"], detach)
        self._create_user("tibackup", "tibackup tests", self.access_key, self.secret_key, timeout=120)
        self._create_user(
            "readonly",
            "no write access to tibackup's buckets",
            self.readonly_access_key,
            self.readonly_secret_key,
        )

        wait_for_server(
            self.ready, timeout, f"radosgw on {self.endpoint}", self.log_file, lambda: self.stop(remove=False),
            procs={f"ceph {name}": proc for name, proc in self._procs.items()},
        )  # fmt: skip
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, remove: bool | None = None) -> None:
        if not self._managed:
            return
        for d in reversed(DAEMONS):
            with contextlib.suppress(OSError, ValueError):
                stop_pid(int(self._pid_file(d).read_text().strip()), signal.SIGKILL, timeout=10)
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        if remove if remove is not None else self._owns_basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)

    # ----------------------------------------------------------------- internals
    def _spawn(self, name: str, cmd: list[str], detach: bool) -> None:
        with open(self.basedir / "log" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.basedir,
                start_new_session=detach,
                preexec_fn=None if detach else die_with_parent,
            )
        self._procs[name] = proc
        self._pid_file(name).write_text(str(proc.pid))

    def _create_user(
        self, uid: str, name: str, access_key: str, secret_key: str, timeout: float = 60
    ) -> None:
        self._run(
            ["radosgw-admin", "-c", str(self.conf), "-n", "client.rgw.tibackup", "user", "create", f"--uid={uid}",
             f"--display-name={name}", f"--access-key={access_key}", f"--secret-key={secret_key}"],
            timeout=timeout,
        )  # fmt: skip

    def _run(self, cmd: list[str], timeout: float = 60) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            self.stop(remove=False)
            raise ServerStartError(f"{' '.join(cmd[:4])} timed out; logs in {self.basedir / 'log'}") from e
        if res.returncode != 0:
            self.stop(remove=False)
            raise ServerStartError(
                f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-2000:]}; "
                f"logs in {self.basedir / 'log'}"
            )
        return res.stdout

    def _write_conf(self, fsid: str, mon_port: int, rgw_port: int) -> None:
        b = self.basedir
        self.conf.write_text(f"""[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
mon_initial_members = a
public_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_allow_insecure_global_id_reclaim = true
ms_mon_client_mode = crc
ms_client_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = {self.memstore_bytes}
run_dir = {b}/run
admin_socket = {b}/run/$cluster-$name.asok
log_file = {b}/log/$cluster-$name.log
mon_data = {b}/mon/$cluster-$id
osd_data = {b}/osd/$cluster-$id
keyring = /dev/null
mon_max_pg_per_osd = 1000
osd_max_object_name_len = 256
osd_max_object_namespace_len = 64
mgr_initial_modules =

[client.rgw.tibackup]
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw_data = {b}/rgw
rgw_enable_usage_log = false
rgw_dns_name = 127.0.0.1
""")
