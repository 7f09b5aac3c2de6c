"""The backup-folder claim (manager/claim.py) on a local folder: next free name, a folder with files is
never taken, a re-run recognises its own claim, and many claimants at once never share a folder, also
when the storage ignores the create-if-absent condition."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tibackup.errors import StorageError
from tibackup.manager import claim
from tibackup.manager.claim import FolderTaken, claim_folder, is_claim, reclaim
from tibackup.resources import Backup
from tibackup.storage import LocalStorage

BASE = "backup-2024-03-01T11:00:00Z"


def candidates() -> Iterator[str]:
    yield BASE
    for attempt in range(2, 1000):
        yield f"{BASE}-{attempt}"


def owner(name: str, uid: str | None = None) -> dict[str, object]:
    return {"namespace": "test1", "name": name, "uid": uid or f"uid-{name}"}


class IgnoresCondition(LocalStorage):
    """A server that accepts If-None-Match and overwrites anyway (the case the protocol must survive)."""

    def put_if_absent(self, name: str, data: bytes) -> str | None:
        self.put(name, data)
        return self.list(name).__next__().etag


def test_first_claim_takes_the_seed_name_then_a_suffix(tmp_path: Path) -> None:
    root = LocalStorage(tmp_path)
    assert claim_folder(root, candidates(), owner("a")) == BASE
    assert claim_folder(root, candidates(), owner("b")) == f"{BASE}-2"
    names = sorted(info.name for info in root.list())
    assert all(is_claim(n.split("/", 1)[1]) for n in names) and len(names) == 4  # a gate and an evidence each
    evidence = [n for n in names if n.startswith(f"{BASE}/tibackup-claim.")]
    assert json.loads(root.read(evidence[0]))["name"] == "a"


def test_a_folder_that_holds_files_is_never_claimed(tmp_path: Path) -> None:
    root = LocalStorage(tmp_path)
    root.put(f"{BASE}/db.t.000000000.sql", b"someone else's rows")
    assert claim_folder(root, candidates(), owner("a")) == f"{BASE}-2"
    assert [i.name for i in root.list(f"{BASE}/")] == [f"{BASE}/db.t.000000000.sql"]


def test_gives_up_clearly_after_the_last_candidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claim, "MAX_CANDIDATES", 3)
    root = LocalStorage(tmp_path)
    for folder in (BASE, f"{BASE}-2", f"{BASE}-3"):
        root.put(f"{folder}/metadata", b"x")
    with pytest.raises(FolderTaken, match=r"3 folder\(s\) from backup-2024-03-01T11:00:00Z on are taken"):
        claim_folder(root, candidates(), owner("a"))


class ReadsFail(LocalStorage):
    """Lists its objects but cannot read them yet (a SeaweedFS just restarted: filer up, volumes not)."""

    def read(self, name: str) -> bytes:
        raise StorageError(f"reading {name}: S3 answered 500 InternalError")


def test_reclaim_whose_evidence_cannot_be_read_is_a_storage_error_not_folder_taken(tmp_path: Path) -> None:
    folder = claim_folder(LocalStorage(tmp_path), candidates(), owner("a"))
    with pytest.raises(StorageError, match="InternalError") as raised:
        reclaim(ReadsFail(tmp_path), folder, owner("a"))
    assert not isinstance(raised.value, FolderTaken)  # never "held by another backup: delete this Backup"


def test_reclaim_accepts_its_own_folder_and_refuses_another(tmp_path: Path) -> None:
    root = LocalStorage(tmp_path)
    folder = claim_folder(root, candidates(), owner("a"))
    root.put(f"{folder}/db.t.000000000.sql", b"half an upload")
    reclaim(root, folder, owner("a"))  # the same Backup: its kept dump goes back there
    with pytest.raises(FolderTaken, match="held by another backup"):
        reclaim(root, folder, owner("b"))
    with pytest.raises(FolderTaken):
        reclaim(root, folder, owner("a", uid="a Backup of the same name, created again"))
    reclaim(root, "backup-empty", owner("c"))  # an empty folder is claimed afresh
    assert any(is_claim(i.name.split("/")[1]) for i in root.list("backup-empty/"))


@pytest.mark.parametrize("storage", [LocalStorage, IgnoresCondition])
def test_many_claimants_at_once_never_share_a_folder(tmp_path: Path, storage: type[LocalStorage]) -> None:
    root = storage(tmp_path)
    won: dict[str, str] = {}
    start = threading.Barrier(20)

    def run(i: int) -> None:
        start.wait()
        won[f"b{i}"] = claim_folder(root, candidates(), owner(f"b{i}"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 20 and len(set(won.values())) == 20, won
    for name, folder in won.items():  # each folder's only evidence is its winner's
        evidence = [i.name for i in root.list(f"{folder}/") if i.name.split("/")[1] != claim.GATE_NAME]
        assert len(evidence) == 1 and json.loads(root.read(evidence[0]))["name"] == name


def test_claim_document_names_the_backup() -> None:
    backup = Backup.model_validate(
        {"metadata": {"name": "b1", "namespace": "test1", "uid": "u-1"}, "spec": {}}
    )
    from datetime import UTC, datetime

    doc = claim.claim_document(backup, datetime(2024, 3, 1, 11, tzinfo=UTC))
    assert (doc["namespace"], doc["name"], doc["uid"], doc["started"]) == (
        "test1", "b1", "u-1", "2024-03-01T11:00:00Z"
    )  # fmt: skip
