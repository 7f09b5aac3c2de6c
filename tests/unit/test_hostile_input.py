"""Hostile input through the real CLI verbs and store, without servers: path escapes in names and
namespaces, specs that can never run, YAML alias bombs and oversized documents, empty passwords."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_embedded_cli import Result, tib
from tibackup.embedded.paths import staging_dir
from tibackup.embedded.store import Store
from tibackup.errors import InvalidSpecError
from tibackup.manager.secrets import resolve_secrets
from tibackup.resources import Backup, parse_resource


def spec(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"host": "127.0.0.1", "port": 1, "secretName": "db-secret"},
        "s3": {"provider": "ceph", "endpoint": "http://127.0.0.1:1", "bucket": "bkt", "secretName": "s3"},
        "storageSize": "1Gi",
    }
    body.update(extra)
    return body


def backup_doc(name: str = "b1", namespace: str | None = "test1", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": meta, "spec": spec(**extra)}


def schedule_doc(name: str = "nightly", **template: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": name, "namespace": "test1"},
        "spec": {"schedule": "0 2 * * *", "backupTemplate": spec(**template)},
    }


class Cli:
    def __init__(self, state: Path) -> None:
        self.state = state

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return tib(*args, stdin=stdin)  # the state dir comes from $TIBACKUP_STATE_DIR (args may end in --)

    def stored(self) -> list[str]:
        if not (self.state / "state.db").exists():
            return []
        store = Store(self.state)
        try:
            rows = store.db.execute("SELECT kind, namespace, name FROM resources").fetchall()
            secrets = store.db.execute("SELECT namespace, name FROM secrets").fetchall()
        finally:
            store.close()
        return [f"{k}/{ns}/{n}" for k, ns, n in rows] + [f"Secret/{ns}/{n}" for ns, n in secrets]


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("TIBACKUP_STATE_DIR", str(tmp_path / "state"))
    return Cli(tmp_path / "state")


def _one_line_error(result: Result, code: int, *parts: str) -> None:
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for part in parts:
        assert part in lines[0], (part, result)


# ------------------------------------------------------------------ 8.2: names and namespaces (DNS-1123)
@pytest.fixture()
def victim(tmp_path: Path) -> Path:
    """Files where a staging folder would be for namespace ``../../victim`` or ``/abs`` and name ``x``."""
    folder = tmp_path / "victim" / "x"
    (folder / "dump").mkdir(parents=True)
    (folder / "dump" / "precious.sql").write_text("keep me")
    (folder / "tibackup-staging.json").write_text("{}")
    return folder


def _intact(victim: Path) -> None:
    assert (victim / "dump" / "precious.sql").read_text() == "keep me"
    assert (victim / "tibackup-staging.json").exists()


@pytest.mark.parametrize("where", ["flag", "metadata"])
@pytest.mark.parametrize("absolute", [False, True])
def test_path_escape_in_namespace_is_refused_and_nothing_touched(
    cli: Cli, victim: Path, where: str, absolute: bool
) -> None:
    namespace = str(victim.parent) if absolute else "../../victim"
    doc = backup_doc("x", namespace=None if where == "flag" else namespace, cleanPolicy="Delete")
    flags = ["-n", namespace] if where == "flag" else []
    applied = cli("apply", "-f", "-", *flags, stdin=yaml.safe_dump(doc))
    _one_line_error(applied, 2, "namespace", "not a valid namespace")
    deleted = cli("delete", "bk", "x", "-n", namespace)
    _one_line_error(deleted, 2, "not a valid namespace")
    _intact(victim)
    assert cli.stored() == []


@pytest.mark.parametrize(
    "name", ["../x", "/tmp/x", "a/b", "UPPER", "-dash", "dot.", "a" * 254, "a..b", "", "é"]
)
def test_bad_names_are_refused_at_every_verb(cli: Cli, name: str) -> None:
    _one_line_error(cli("apply", "-f", "-", stdin=yaml.safe_dump(backup_doc(name))), 2, "metadata.name")
    for verb in (("get", "bk"), ("describe", "bk"), ("delete", "bk"), ("delete", "secret")):
        if name:
            _one_line_error(cli(*verb, "-n", "test1", "--", name), 2, "not a valid name")
    if name:
        created = cli("create", "secret", "generic", "--from-literal=password=x", "-n", "test1", "--", name)
        _one_line_error(created, 2, "not a valid name")
    assert cli.stored() == []


@pytest.mark.parametrize("namespace", ["a.b", "a" * 64, "Test", "a_b", "..", "."])
def test_namespaces_are_dns_labels(cli: Cli, namespace: str) -> None:
    _one_line_error(cli("get", "bk", "-n", namespace), 2, "not a valid namespace")
    created = cli("create", "secret", "generic", "s", "--from-literal=password=x", "-n", namespace)
    _one_line_error(created, 2, "not a valid namespace")
    assert cli.stored() == []


def test_longest_valid_name_and_namespace_are_accepted(cli: Cli) -> None:
    name, namespace = ".".join(["a" * 63] * 4)[:253], "n" * 63
    assert len(name) == 253 and not name.endswith(".")
    applied = cli("apply", "-f", "-", "-n", namespace, stdin=yaml.safe_dump(backup_doc(name, None)))
    assert applied.code == 0, applied
    assert cli("get", "bk", name, "-n", namespace).code == 0


def test_store_and_staging_paths_refuse_unvalidated_strings(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    bad = parse_resource(backup_doc("x", namespace="../../victim"))
    with pytest.raises(InvalidSpecError, match=r"metadata\.namespace"):
        store.apply(bad)
    with pytest.raises(InvalidSpecError, match=r"metadata\.namespace"):
        store.create(bad)
    with pytest.raises(InvalidSpecError, match="not a valid name"):
        store.put_secret("test1", "../s", {"password": "x"})
    for namespace, name in (("../..", "x"), ("/abs", "x"), ("test1", "../x"), ("test1", "/x"), ("", "x")):
        with pytest.raises(InvalidSpecError):
            staging_dir(tmp_path / "state", namespace, name)
    assert staging_dir(tmp_path / "state", "test1", "b.1") == tmp_path / "state" / "staging" / "test1" / "b.1"
    assert store.db.execute("SELECT COUNT(*) FROM resources").fetchone() == (0,)


# ------------------------------------------------------------------ 8.3: apply ignores status
def test_apply_ignores_status_and_server_set_metadata(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=yaml.safe_dump(backup_doc("orig"))).code == 0
    original = yaml.safe_load(cli("get", "bk", "orig", "-n", "test1", "-o", "yaml").out)
    copy = json.loads(json.dumps(original))
    copy["metadata"]["name"] = "copy"
    copy["metadata"]["generation"] = 7
    copy["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    copy["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    copy["status"] = {
        "phase": "Complete",
        "backupPath": "s3://bkt/backup-2020-01-01T00:00:00Z/",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    applied = cli("apply", "-f", "-", stdin=yaml.safe_dump(copy))
    assert applied.code == 0 and applied.out == "backup.pingcap.com/copy created\n", applied
    stored = yaml.safe_load(cli("get", "bk", "copy", "-n", "test1", "-o", "yaml").out)
    assert "status" not in stored or not stored["status"], stored
    meta = stored["metadata"]
    assert meta["uid"] != original["metadata"]["uid"]
    assert meta["creationTimestamp"] != "2020-01-01T00:00:00Z" and "deletionTimestamp" not in meta
    assert meta["resourceVersion"] == "1" and meta.get("generation") == 1
    # Re-applying the original's own YAML (with its status) changes nothing either.
    original["status"] = copy["status"]
    again = cli("apply", "-f", "-", stdin=yaml.safe_dump(original))
    assert again.code == 0 and "unchanged" in again.out, again
    assert not yaml.safe_load(cli("get", "bk", "orig", "-n", "test1", "-o", "yaml").out).get("status")


# ------------------------------------------------------------------ 8.9: specs that can never run
@pytest.mark.parametrize(
    "doc,field,words",
    [
        (
            {
                **backup_doc(),
                "metadata": {"name": "b1", "annotations": {"tibackup.pingcap.com/mode": "fast"}},
            },
            "metadata.annotations[tibackup.pingcap.com/mode]",
            "not a mode",
        ),
        (backup_doc(tableFilter=["db.[z-a]"]), "spec.tableFilter", ""),
        (backup_doc(tableFilter=["/db(/.*"]), "spec.tableFilter", ""),
        (backup_doc(dumpling={"options": ["--no-such-flag"]}), "spec.dumpling.options", "no-such-flag"),
        (backup_doc(dumpling={"options": ["--threads=many"]}), "spec.dumpling.options", "threads"),
        (backup_doc(dumpling={"options": ["--filter=db.[z-a]"]}), "spec.dumpling.options", ""),
        (schedule_doc(tableFilter=["/db(/.*"]), "spec.backupTemplate.tableFilter", "BackupSchedule"),
        (
            schedule_doc(dumpling={"options": ["--no-such-flag"]}),
            "spec.backupTemplate.dumpling.options",
            "no-such-flag",
        ),
        (schedule_doc("s" * 240), "metadata.name", "63"),
        (schedule_doc("s" * 64), "metadata.name", "63"),
    ],
)
def test_specs_that_can_never_run_are_refused_at_apply(
    cli: Cli, doc: dict[str, Any], field: str, words: str
) -> None:
    result = cli("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    _one_line_error(result, 2, f"error: {field}: ", words)
    assert result.out == "" and cli.stored() == []


def test_longest_schedule_name_is_accepted(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=yaml.safe_dump(schedule_doc("s" * 63))).code == 0


# ------------------------------------------------------------------ 8.11: alias bombs, huge documents
def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    body = "\n".join("    " + line for line in lines)
    return (
        "apiVersion: pingcap.com/v1alpha1\nkind: Backup\nmetadata: {name: bomb, namespace: test1}\n"
        "spec:\n  from: {host: db, secretName: s}\n"
        "  s3: {provider: ceph, endpoint: 'http://127.0.0.1:1', bucket: bkt}\n"
        f"  resources:\n    limits:\n{body.replace('    ', '      ')}\n"
    )


@pytest.mark.parametrize("levels", [6, 8])
def test_alias_bombs_are_refused_before_anything_is_stored(cli: Cli, levels: int) -> None:
    text = _bomb(levels)
    assert len(text) < 1024
    started = time.monotonic()
    result = cli("apply", "-f", "-", stdin=text)
    elapsed = time.monotonic() - started
    _one_line_error(result, 2, "alias")
    assert cli.stored() == []
    assert elapsed < 30, elapsed  # a bound against a hang, not a timing claim: the old code took minutes


def test_a_document_above_the_size_limit_is_refused(cli: Cli) -> None:
    doc = backup_doc("big")
    doc["metadata"]["annotations"] = {"note": "x" * (3 * 1024 * 1024)}
    _one_line_error(cli("apply", "-f", "-", stdin=yaml.safe_dump(doc)), 2, "MiB")
    assert cli.stored() == []


def test_a_stored_document_above_the_object_limit_is_refused(cli: Cli) -> None:
    doc = backup_doc("wide")  # small as text, large once its aliases are expanded
    text = (
        yaml.safe_dump(doc)
        + "  env:\n"
        + "".join(f"  - {{name: E{i}, value: &v{i} '{'y' * 1000}'}}\n" for i in range(1))
    )
    text += "".join(f"  - {{name: F{i}, value: *v0}}\n" for i in range(2000))
    assert len(text) < 3 * 1024 * 1024
    _one_line_error(cli("apply", "-f", "-", stdin=text), 2, "MiB")
    assert cli.stored() == []


def test_ordinary_aliases_still_work(cli: Cli) -> None:
    text = (
        "apiVersion: pingcap.com/v1alpha1\nkind: Backup\nmetadata: {name: ok, namespace: test1}\n"
        "spec:\n  from: &src {host: db, secretName: s}\n"
        "  s3: {provider: ceph, endpoint: 'http://127.0.0.1:1', bucket: bkt}\n"
        "---\napiVersion: pingcap.com/v1alpha1\nkind: Backup\nmetadata: {name: ok2, namespace: test1}\n"
        "spec:\n  from: {host: db, secretName: s}\n"
        "  s3: {provider: ceph, endpoint: 'http://127.0.0.1:1', bucket: bkt}\n"
    )
    result = cli("apply", "-f", "-", stdin=text)
    assert result.code == 0, result


def test_secret_from_file_above_the_size_limit_is_refused(cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("x" * (1024 * 1024 + 1))
    result = cli("create", "secret", "generic", "s", f"--from-file=password={big}", "-n", "test1")
    _one_line_error(result, 2, "1 MiB")
    assert cli.stored() == []


# ------------------------------------------------------------------ 8.12: an empty password
class _Runtime:
    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets

    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        return self.secrets[name]


def _backup() -> Backup:
    backup = parse_resource(backup_doc())
    assert isinstance(backup, Backup)
    return backup


def test_empty_password_is_a_password_and_a_missing_key_is_named() -> None:
    s3 = {"access_key": "AKIAEXAMPLE", "secret_key": "very-secret"}
    secrets = resolve_secrets(_backup(), _Runtime({"db-secret": {"password": ""}, "s3": s3}))  # type: ignore[arg-type]
    assert secrets.password == ""
    with pytest.raises(Exception, match="has no key 'password'") as missing:
        resolve_secrets(_backup(), _Runtime({"db-secret": {"pasword": "x"}, "s3": s3}))  # type: ignore[arg-type]
    assert getattr(missing.value, "reason", "") == "SecretKeyMissing"
    with pytest.raises(Exception, match="'secret_key' is empty") as empty:
        resolve_secrets(_backup(), _Runtime({"db-secret": {"password": ""}, "s3": {**s3, "secret_key": ""}}))  # type: ignore[arg-type]
    assert "has no key" not in str(empty.value)


@pytest.mark.parametrize(
    "field,patch",
    [
        ("spec.from.secretName", {"from": {"host": "db", "secretName": "../../etc"}}),
        (
            "spec.from.tlsClientSecretName",
            {"from": {"host": "db", "secretName": "s", "tlsClientSecretName": "/etc"}},
        ),
        (
            "spec.s3.secretName",
            {"s3": {"provider": "ceph", "endpoint": "http://x:1", "bucket": "b", "secretName": "A/B"}},
        ),
    ],
)
def test_secret_names_in_a_spec_are_dns_names(cli: Cli, field: str, patch: dict[str, Any]) -> None:
    _one_line_error(
        cli("apply", "-f", "-", stdin=yaml.safe_dump(backup_doc(**patch))), 2, f"error: {field}: "
    )
    assert cli.stored() == []


def test_a_huge_row_stored_by_an_older_version_never_makes_the_state_unusable(cli: Cli) -> None:
    assert cli("apply", "-f", "-", stdin=yaml.safe_dump(backup_doc("small"))).code == 0
    store = Store(cli.state)
    try:  # what an older tibackup stored for an alias bomb: a row far above the object limit
        huge = backup_doc("huge")
        huge["spec"]["resources"] = {"limits": ["lol"] * 4_000_000}
        with store.tx() as db:
            db.execute(
                "INSERT INTO resources VALUES ('Backup', 'test1', 'huge', 'u', 1, '2020-01-01T00:00:00Z', '{}', ?)",
                (json.dumps(huge),),
            )
    finally:
        store.close()
    listed = cli("get", "bk", "-n", "test1", "-o", "name")
    assert listed.code == 0 and listed.out == "backup.pingcap.com/small\n", listed
    assert "huge" in listed.err and "too large to read" in listed.err
    _one_line_error(cli("get", "bk", "huge", "-n", "test1"), 1, "MiB", "tibackup delete bk huge")
    deleted = cli("delete", "bk", "huge", "-n", "test1")
    assert deleted.code == 0 and "deleted" in deleted.out, deleted
    assert cli.stored() == ["Backup/test1/small"]
