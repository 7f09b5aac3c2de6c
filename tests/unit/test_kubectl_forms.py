"""kubectl's output forms and habits on the embedded ``get``/``describe``/``apply``/``delete``: the same
text kubectl prints for the same objects (its column rules: three spaces, tabwriter's minimum width of
6, ``<none>`` in empty custom columns and LABELS, ``backup.pingcap.com/NAME`` with several types), and
kubectl's exit code 1 for NotFound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_embedded_cli import Result, tib
from tibackup.embedded.store import KIND_BACKUP, Store
from tibackup.resources import Backup, Phase


def _doc(kind: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "from": {"host": "127.0.0.1", "port": 1, "secretName": "db"},
        "s3": {"provider": "aws", "bucket": "bkt", "region": "us-east-1", "prefix": "p"},
    }
    if kind == "BackupSchedule":
        spec = {"schedule": "0 2 * * *", "maxBackups": 3, "backupTemplate": spec}
    meta: dict[str, Any] = {"name": name, "namespace": "test1"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "pingcap.com/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


class State:
    def __init__(self, path: Path) -> None:
        self.path = path

    def tib(self, *args: str, stdin: str | None = None) -> Result:
        return tib(*args, "--state-dir", str(self.path), stdin=stdin)

    def finish(self, name: str, path: str, size: int) -> None:
        store = Store(self.path)
        backup = store.get(KIND_BACKUP, "test1", name)
        assert isinstance(backup, Backup)
        backup.status.phase = Phase.COMPLETE
        backup.status.backup_path = path
        backup.status.backup_size = size
        store.update_status(backup)
        store.close()


@pytest.fixture(name="state")
def state_fixture(tmp_path: Path) -> State:
    state = State(tmp_path / "state")
    docs = [
        _doc("Backup", "b-two", {"app": "shop", "tier": "db"}),
        _doc("Backup", "a-one"),
        _doc("BackupSchedule", "nightly"),
    ]
    assert state.tib("apply", "-f", "-", stdin=yaml.safe_dump_all(docs)).code == 0
    state.finish("a-one", "s3://bkt/p/backup-2026-01-01T00:00:00Z/", 20)
    state.finish("b-two", "s3://bkt/p/backup-2026-01-02T00:00:00Z/", 10)
    return state


def test_jsonpath(state: State) -> None:
    one = state.tib("get", "bk", "a-one", "-n", "test1", "-o", "jsonpath={.status.backupPath}")
    assert (one.code, one.out) == (0, "s3://bkt/p/backup-2026-01-01T00:00:00Z/")  # no newline, as kubectl
    names = state.tib("get", "bk", "-n", "test1", "-o", "jsonpath={.items[*].metadata.name}")
    assert names.out == "a-one b-two"
    ranged = state.tib(
        "get", "bk", "-n", "test1", "-o",
        'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.backupSize}{"\\n"}{end}',
    )  # fmt: skip
    assert ranged.out == "a-one\t20\nb-two\t10\n"
    filtered = state.tib(
        "get", "bk", "-n", "test1", "-o", 'jsonpath={.items[?(@.status.backupSize<15)].metadata.name}'
    )  # fmt: skip
    assert filtered.out == "b-two"
    labels = state.tib("get", "bk/b-two", "-n", "test1", "-o", "jsonpath={.metadata.labels}")
    assert labels.out == '{"app":"shop","tier":"db"}'
    missing = state.tib("get", "bk", "a-one", "-n", "test1", "-o", "jsonpath={.status.nothing}")
    assert (missing.code, missing.out) == (0, "")  # --allow-missing-template-keys=true, kubectl's default
    bad = state.tib("get", "bk", "-n", "test1", "-o", "jsonpath={.items[")
    assert bad.code == 2 and bad.err.startswith("error: error parsing jsonpath {.items[, unclosed action")


def test_custom_columns_and_none(state: State) -> None:
    result = state.tib(
        "get", "bk,bks", "-n", "test1", "-o", "custom-columns=NAME:.metadata.name,P:{.status.backupPath},L:.metadata.labels.app"
    )  # fmt: skip
    assert result.code == 0
    assert result.out.splitlines() == [
        "NAME      P                                         L",
        "a-one     s3://bkt/p/backup-2026-01-01T00:00:00Z/   <none>",
        "b-two     s3://bkt/p/backup-2026-01-02T00:00:00Z/   shop",
        "nightly   <none>                                    <none>",
    ]
    bad = state.tib("get", "bk", "-n", "test1", "-o", "custom-columns=NAME")
    assert bad.code == 2 and "expected <header>:<json-path-expr>" in bad.err
    unknown = state.tib("get", "bk", "-n", "test1", "-o", "go-template={{.x}}")
    assert (
        unknown.code == 2
        and 'unable to match a printer suitable for the output format "go-template' in unknown.err
    )


def test_show_labels_no_headers_sort_by(state: State) -> None:
    table = state.tib("get", "bk", "-n", "test1", "--show-labels", "--sort-by=.status.backupSize")
    lines = table.out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "STATUS", "BACKUPPATH", "BACKUPSIZE", "COMMITTS", "TIMETAKEN",
                                "AGE", "LABELS"]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["b-two", "a-one"]
    assert lines[1].endswith("   app=shop,tier=db") and lines[2].endswith("   <none>")
    bare = state.tib(
        "get",
        "bk",
        "-n",
        "test1",
        "--no-headers",
        "--sort-by={.metadata.name}",
        "-o",
        "custom-columns=N:.metadata.name",
    )
    assert bare.out == "a-one\nb-two\n"  # tabwriter: no header, so the rows alone set the widths
    by_name = state.tib("get", "bk", "-n", "test1", "--sort-by=.metadata.name", "-o", "name")
    assert by_name.out == "backup.pingcap.com/a-one\nbackup.pingcap.com/b-two\n"
    as_json = json.loads(
        state.tib("get", "bk", "-n", "test1", "--sort-by=.status.backupSize", "-o", "json").out
    )
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["b-two", "a-one"]


def test_several_types_and_type_slash_name(state: State) -> None:
    both = state.tib("get", "bk,bks", "-n", "test1")
    tables = both.out.split("\n\n")
    assert len(tables) == 2
    assert [line.split()[0] for line in tables[0].splitlines()] == [
        "NAME", "backup.pingcap.com/a-one", "backup.pingcap.com/b-two",
    ]  # fmt: skip
    assert tables[1].splitlines()[1].startswith("backupschedule.pingcap.com/nightly   0 2 * * *")
    slash = state.tib("get", "bk/a-one", "bks/nightly", "-n", "test1", "-o", "name")
    assert slash.out == "backup.pingcap.com/a-one\nbackupschedule.pingcap.com/nightly\n"
    single = state.tib("get", "bk/a-one", "-n", "test1")
    assert single.out.splitlines()[1].startswith("a-one   full   Complete")  # one type: plain names
    mixed = state.tib("get", "bk/a-one", "nightly", "-n", "test1")
    assert mixed.code == 2 and "resource/name form" in mixed.err


def test_not_found_exits_1_as_kubectl(state: State) -> None:
    for args in (
        ("get", "bk", "nope"),
        ("get", "bk/nope"),
        ("describe", "bk", "nope"),
        ("delete", "bk", "nope"),
    ):
        result = state.tib(*args, "-n", "test1")
        assert result.code == 1, (args, result)
        assert result.err == 'error: backups.pingcap.com "nope" not found in namespace "test1"\n'
    for args in (("get", "secret", "nope"), ("delete", "secret", "nope")):
        result = state.tib(*args, "-n", "test1")
        assert (result.code, result.err) == (1, 'error: secrets "nope" not found in namespace "test1"\n')
    unsupported = state.tib("get", "secret", "-n", "test1", "-o", "jsonpath={.items}")
    assert unsupported.code == 2 and "Secrets are listed with -o wide|json|yaml|name only" in unsupported.err


def test_describe_without_a_name_describes_all(state: State) -> None:
    result = state.tib("describe", "bk", "-n", "test1")
    assert result.code == 0
    blocks = result.out.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["Name:         a-one", "Name:         b-two"]
    by_label = state.tib("describe", "bk", "-n", "test1", "-l", "app=shop")
    assert by_label.out.startswith("Name:         b-two") and "a-one" not in by_label.out
    both = state.tib("describe", "bk/a-one", "bks/nightly", "-n", "test1")
    assert "Name:         a-one" in both.out and "Name:         nightly" in both.out
    empty = state.tib("describe", "bk", "-n", "elsewhere")
    assert (empty.code, empty.err) == (0, "No resources found in elsewhere namespace.\n")


def test_apply_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    (folder / "more").mkdir(parents=True)
    (folder / "b.yaml").write_text(yaml.safe_dump(_doc("Backup", "from-yaml")))
    (folder / "a.json").write_text(json.dumps(_doc("Backup", "from-json")))
    (folder / "notes.txt").write_text("not a manifest")
    (folder / "more" / "c.yml").write_text(yaml.safe_dump(_doc("BackupSchedule", "deeper")))
    state = State(tmp_path / "state")
    flat = state.tib("apply", "-f", str(folder))
    assert flat.code == 0 and flat.out.splitlines() == [
        "backup.pingcap.com/from-json created", "backup.pingcap.com/from-yaml created"
    ]  # fmt: skip
    deep = state.tib("apply", "-R", "-f", str(folder))
    assert "backupschedule.pingcap.com/deeper created" in deep.out
    empty = tmp_path / "empty"
    empty.mkdir()
    none = state.tib("apply", "-f", str(empty))
    assert none.code == 2 and "recognized file extensions are .json .yaml .yml" in none.err


def test_watch_prints_each_change_until_interrupted(state: State) -> None:
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading

    command = [sys.executable, "-m", "tibackup.cli.main", "get", "bk", "-n", "test1", "-w",
               "--state-dir", str(state.path)]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()

    def next_line() -> str:
        return lines.get(timeout=30).rstrip("\n")  # bounded: a hang fails the test instead of blocking it

    try:
        assert next_line().startswith("NAME   ")
        assert next_line().startswith("a-one   full   Complete")
        assert next_line().startswith("b-two   full   Complete")
        store = Store(state.path)
        backup = store.get(KIND_BACKUP, "test1", "a-one")
        assert isinstance(backup, Backup)
        backup.status.phase = Phase.FAILED
        store.update_status(backup)
        store.close()
        assert next_line().startswith("a-one   full   Failed")  # the changed row alone, no header
        assert state.tib("apply", "-f", "-", stdin=yaml.safe_dump(_doc("Backup", "c-new"))).code == 0
        assert next_line().startswith("c-new   full")
        assert state.tib("delete", "bk", "c-new", "-n", "test1").code == 0
        assert next_line().startswith("c-new   full")  # a deleted object is printed once more, as kubectl
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 130 and proc.stderr is not None and proc.stderr.read() == ""


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (10, "10 B"),
        (1_049, "1.0 kB"),
        (1_050, "1.1 kB"),  # floor(x*10 + 0.5) / 10, as go-humanize rounds
        (9_949, "9.9 kB"),
        (9_950, "10 kB"),  # from 10 on: no decimal ("%.0f")
        (10_450, "10 kB"),  # 10.5 printed by %.0f: half to even, as Go's fmt
        (11_500, "12 kB"),
        (999_950, "1000 kB"),  # the unit is chosen before rounding, as go-humanize does
        (3_100_000, "3.1 MB"),
        (2**64 - 1, "18 EB"),
    ],
)
def test_backup_size_readable_is_go_humanize_bytes(size: int, text: str) -> None:
    from tibackup.resources import human_size_si

    assert human_size_si(size) == text


_DATA = {"items": [{"metadata": {"name": "a", "labels": {"x": "1"}}, "status": {"size": 5, "ok": True}},
                   {"metadata": {"name": "b"}, "status": {"size": 7, "ok": False}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{.items[*].metadata.name}", "a b"),
        ("{.items[-1].metadata.name}", "b"),
        ("{.items[0:1].metadata.name}", "a"),
        ("{..name}", "a b"),
        ("{.items[*].status.ok}", "true false"),
        ("{.items[0].metadata.labels.*}", "1"),
        ("{.items[*]['metadata'].name}", "a b"),
        ("{.items[?(@.status.ok==true)].metadata.name}", "a"),
        ("{.items[?(@.metadata.labels)].metadata.name}", "a"),
        ("{.items[?(@.metadata.name!='a')].status.size}", "7"),
        ("size: {.items[0].status.size} of {.items[0].metadata.name}", "size: 5 of a"),
        ("{range .items[*]}[{.metadata.name}]{end}", "[a][b]"),
        ("{.items[5].metadata.name}{.nothing.here}", ""),
    ],
)
def test_jsonpath_subset(template: str, text: str) -> None:
    from tibackup.cli.jsonpath import Template

    assert Template(template).render(_DATA) == text


def _restore_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1", "kind": "Restore", "metadata": {"name": name, "namespace": "test1"},
        "spec": {"backupType": "full", "to": {"host": "127.0.0.1", "port": 1, "secretName": "db"},
                 "s3": {"provider": "aws", "region": "us-east-1", "path": "s3://bkt/p/backup-x/"}, **spec},
    }  # fmt: skip


def test_restores_through_kubectl_forms(state: State) -> None:
    """rt goes through the same get as bk/bks: TYPE,TYPE, TYPE/NAME, jsonpath, custom-columns, --sort-by,
    NotFound exit 1; apply warns about its accepted-but-unused upstream fields (IgnoredField)."""
    docs = [_restore_doc("rt-b", storageSize="1Gi", tikvGCLifeTime="72h"), _restore_doc("rt-a")]
    applied = state.tib("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert applied.code == 0, applied
    assert "spec.storageSize is ignored" in applied.err and "spec.tikvGCLifeTime is ignored" in applied.err
    described = state.tib("describe", "rt", "rt-b", "-n", "test1")
    assert "IgnoredField" in described.out
    table = state.tib("get", "rt", "-n", "test1", "-o", "wide")
    assert table.out.split("\n")[0].split() == ["NAME", "STATUS", "STARTED", "COMPLETED", "TIMETAKEN",
                                                "COMMITTS", "AGE"]  # fmt: skip
    both = state.tib("get", "bk,rt", "-n", "test1", "--sort-by", ".metadata.name", "--no-headers")
    assert [line.split()[0] for line in both.out.split("\n\n")[1].splitlines()] == [
        "restore.pingcap.com/rt-a", "restore.pingcap.com/rt-b",
    ]  # fmt: skip
    path = state.tib("get", "rt/rt-b", "-n", "test1", "-o", "jsonpath={.spec.s3.path}")
    assert path.out == "s3://bkt/p/backup-x/"
    columns = state.tib("get", "rt", "-n", "test1", "-o", "custom-columns=N:.metadata.name,S:.spec.storageSize")
    assert columns.out.splitlines() == ["N      S", "rt-a   <none>", "rt-b   1Gi"]
    missing = state.tib("get", "rt/nope", "-n", "test1")
    assert (missing.code, missing.err) == (1, 'error: restores.pingcap.com "nope" not found in namespace "test1"\n')


def test_objects_of_tibackups_own_group_are_printed_in_it(tmp_path: Path) -> None:
    """kubectl prints ``kind.group/name`` with the object's own group: a Backup applied as
    backup.tibackup.io/v1alpha1 is ``backup.backup.tibackup.io``, never ``backup.pingcap.com``."""
    state = State(tmp_path / "state")
    ours = {**_doc("Backup", "ours"), "apiVersion": "backup.tibackup.io/v1alpha1"}
    docs = [ours, _doc("Backup", "theirs"), {**_doc("BackupSchedule", "nightly"), "apiVersion": ours["apiVersion"]}]
    applied = state.tib("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert applied.code == 0, applied
    assert applied.out.splitlines() == [
        "backup.backup.tibackup.io/ours created",
        "backup.pingcap.com/theirs created",
        "backupschedule.backup.tibackup.io/nightly created",
    ]
    again = state.tib("apply", "-f", "-", stdin=yaml.safe_dump(ours))
    assert again.out == "backup.backup.tibackup.io/ours unchanged\n", again
    names = state.tib("get", "bk", "-n", "test1", "--sort-by=.metadata.name", "-o", "name")
    assert names.out == "backup.backup.tibackup.io/ours\nbackup.pingcap.com/theirs\n"
    both = state.tib("get", "bk,bks", "-n", "test1", "--sort-by=.metadata.name")
    firsts = [line.split()[0] for table in both.out.split("\n\n") for line in table.splitlines()[1:]]
    assert firsts == ["backup.backup.tibackup.io/ours", "backup.pingcap.com/theirs",
                      "backupschedule.backup.tibackup.io/nightly"]  # fmt: skip
    deleted = state.tib("delete", "bk", "ours", "-n", "test1")
    assert (deleted.code, deleted.out) == (0, 'backup.backup.tibackup.io "ours" deleted\n'), deleted
