"""From a Backup to the engine's settings: data path, dump config, S3 options; pure."""

from __future__ import annotations

from typing import Any

import pytest

from tibackup.dump.config import TLSFiles
from tibackup.errors import InvalidSpecError
from tibackup.manager import run as run_module
from tibackup.manager.secrets import Secrets
from tibackup.manager.settings import DataPath, at_path, choose_mode, dump_config, path_for, s3_options
from tibackup.manager.verify import commit_ts
from tibackup.resources import Backup


def backup(annotations: dict[str, str] | None = None, **spec: Any) -> Backup:
    doc: dict[str, Any] = {
        "metadata": {"name": "b", "namespace": "ns", "annotations": annotations},
        "spec": {
            "from": {"host": "db", "port": 3306, "user": "u", "secretName": "pw"},
            "s3": {"provider": "ceph", "endpoint": "rgw:7480", "bucket": "bkt", "prefix": "/p/q/"},
            **spec,
        },
    }
    return Backup.model_validate(doc)


def test_mode_annotation_wins_else_storage_size_decides() -> None:
    assert choose_mode(backup()) is DataPath.DIRECT
    assert choose_mode(backup(storageSize="10Gi")) is DataPath.STAGED
    assert choose_mode(backup({"tibackup.pingcap.com/mode": "direct"}, storageSize="10Gi")) is DataPath.DIRECT
    assert choose_mode(backup({"tibackup.pingcap.com/mode": "Staged"})) is DataPath.STAGED
    with pytest.raises(InvalidSpecError, match=r"tibackup\.pingcap\.com/mode"):
        choose_mode(backup({"tibackup.pingcap.com/mode": "fast"}))


def test_dump_config_defaults_connection_and_password_as_value() -> None:
    config = dump_config(backup().spec, "/stage", "s3cr3t-pw", TLSFiles(ca="/tmp/ca"))
    assert config.threads == 16 and config.rows == 10000  # the seed's defaults
    assert (config.connection.host, config.connection.port, config.connection.user) == ("db", 3306, "u")
    assert config.connection.password == "s3cr3t-pw" and "s3cr3t" not in repr(config)
    assert config.connection.tls.ca == "/tmp/ca"
    assert config.table_filter is None  # the default filter: the dumper's own
    assert config.check_storage, "the dump probes its output unless told --s3-no-check-bucket"


def test_no_check_bucket_turns_the_dumps_probe_off_too() -> None:
    spec = backup(s3={"provider": "ceph", "bucket": "bkt", "options": ["--s3-no-check-bucket"]}).spec
    assert not dump_config(spec, "/s", "").check_storage


def test_table_filter_from_spec_and_bad_rules() -> None:
    config = dump_config(backup(tableFilter=["shop.*", "!shop.audit_*"]).spec, "/s", "")
    assert config.table_filter is not None and config.table_filter.match_table("shop", "orders")
    assert not config.table_filter.match_table("shop", "audit_1")
    with pytest.raises(InvalidSpecError, match=r"spec\.tableFilter"):
        dump_config(backup(tableFilter=["/[/.*"]).spec, "/s", "")


def test_unknown_or_bad_dumpling_option_is_invalid_naming_the_field() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.dumpling\.options.*--bogus"):
        dump_config(backup(dumpling={"options": ["--bogus"]}).spec, "/s", "")
    with pytest.raises(InvalidSpecError, match=r"spec\.dumpling\.options"):
        dump_config(backup(dumpling={"options": ["--threads=0"]}).spec, "/s", "")


def test_validate_rejects_bad_s3_options_and_owned_flags() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.s3\.options"):
        run_module.validate(backup(s3={"provider": "aws", "bucket": "bkt", "options": ["--nope"]}))
    with pytest.raises(InvalidSpecError, match=r"spec\.dumpling\.options\[0\]"):
        run_module.validate(backup(dumpling={"options": ["--password=x"]}))


def test_s3_options_from_spec_and_rclone_flags() -> None:
    spec = backup(
        s3={"provider": "ceph", "endpoint": "rgw:7480", "bucket": "bkt", "options": ["--s3-chunk-size=16M"]}
    ).spec
    options = s3_options(spec, "AK", "SK")
    assert options.endpoint == "http://rgw:7480" and options.part_size == 16 * 1024 * 1024
    assert (options.access_key, options.secret_key) == ("AK", "SK")
    assert "SK" not in repr(options)
    moved = at_path(options, "s3://bkt/p/q/backup-2024-01-02T03:04:05Z/")
    assert (moved.bucket, moved.prefix) == ("bkt", "p/q/backup-2024-01-02T03:04:05Z")


def test_backup_path() -> None:
    from datetime import UTC, datetime

    spec = backup().spec
    assert (
        path_for(spec, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
        == "s3://bkt/p/q/backup-2024-01-02T03:04:05Z/"
    )


def test_commit_ts_from_metadata() -> None:
    text = b"Started dump at: 2024-01-01 00:00:00\nSHOW MASTER STATUS:\n\tLog: bin.000001\n\tPos: 4242\n\tGTID:0-1-2\n\nFinished dump at: x\n"
    assert commit_ts(text) == "4242"
    assert commit_ts(b"Started dump at: x\n\nFinished dump at: y\n") == ""


def test_secrets_scrub_masks_every_value() -> None:
    secrets = Secrets(
        password="hunter22", access_key="AKIAXYZ", secret_key="abc/def+ghi", tls={"tls.key": "KEYDATA"}
    )
    text = secrets.scrub("pw hunter22, key abc/def+ghi, id AKIAXYZ, tls KEYDATA")
    assert text == "pw ***, key ***, id ***, tls ***"
