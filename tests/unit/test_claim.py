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


# --- a claim left unfinished by a run stopped between its gate and Running (claim.release) -------------


def claim_objects(root: LocalStorage, folder: str) -> list[str]:
    return sorted(info.name.split("/", 1)[1] for info in root.list(folder + "/"))


def test_each_candidate_is_reported_before_anything_is_written_into_it(tmp_path: Path) -> None:
    root = LocalStorage(tmp_path)
    root.put(f"{BASE}/metadata", b"taken")
    seen: list[tuple[str, list[str]]] = []
    folder = claim_folder(
        root, candidates(), owner("a"), before_gate=lambda f: seen.append((f, claim_objects(root, f)))
    )
    # The taken folder was never a candidate to record (its listing showed a file); the won one was
    # recorded while it was still empty.
    assert folder == f"{BASE}-2" and seen == [(f"{BASE}-2", [])]


def test_release_takes_back_a_won_claim_of_a_stopped_run(tmp_path: Path) -> None:
    root = LocalStorage(tmp_path)
    folder = claim_folder(root, candidates(), owner("a"))
    assert claim.release(root, folder, owner("a")) == 2
    assert list(root.list()) == []


def test_release_takes_back_a_gate_written_without_its_evidence(tmp_path: Path) -> None:
    """Stopped right after the gate PUT (the evidence never written): the gate names this Backup."""
    root = LocalStorage(tmp_path)
    document = {**owner("a"), "token": "0123456789abcdef"}
    assert root.put_if_absent(f"{BASE}/{claim.GATE_NAME}", json.dumps(document).encode()) is not None
    assert claim.release(root, BASE, owner("a")) == 1
    assert list(root.list()) == []


def test_release_never_touches_a_folder_another_backup_owns(tmp_path: Path) -> None:
    """claimPath names a folder this Backup lost (or released, and another Backup then claimed): every
    object there stays, whatever is in it."""
    root = LocalStorage(tmp_path)
    folder = claim_folder(root, candidates(), owner("b"))
    root.put(f"{folder}/db.t.000000000.sql", b"b's rows")
    before = claim_objects(root, folder)
    assert claim.release(root, folder, owner("a")) == 0
    assert claim.release(root, folder, owner("b", uid="uid-of-a-recreated-b")) == 0  # same name, new uid
    assert claim_objects(root, folder) == before


def test_release_keeps_the_gate_while_another_claimant_is_in_the_folder(tmp_path: Path) -> None:
    """On a server that ignores the condition, A's gate may stand over B's evidence: A takes back only
    its own evidence; the gate stays with B (who may own the folder)."""
    root = IgnoresCondition(tmp_path)
    body = {**owner("a"), "token": "aaaaaaaaaaaaaaaa"}
    root.put(f"{BASE}/{claim.GATE_NAME}", json.dumps(body).encode())
    root.put(f"{BASE}/tibackup-claim.aaaaaaaaaaaaaaaa.json", json.dumps(body).encode())
    theirs = {**owner("b"), "token": "bbbbbbbbbbbbbbbb"}
    root.put(f"{BASE}/tibackup-claim.bbbbbbbbbbbbbbbb.json", json.dumps(theirs).encode())
    assert claim.release(root, BASE, owner("a")) == 1
    assert claim_objects(root, BASE) == sorted([claim.GATE_NAME, "tibackup-claim.bbbbbbbbbbbbbbbb.json"])


def test_discard_empties_only_a_folder_this_backup_won(tmp_path: Path) -> None:
    """A re-run empties its failed run's folder, claim last; a folder whose evidence names another
    Backup (or a re-created one with a new uid), or that holds no evidence at all, keeps everything."""
    root = LocalStorage(tmp_path)
    mine = claim_folder(root, candidates(), owner("a"))
    root.put(f"{mine}/db.t.000000000.sql", b"partial rows")
    theirs = claim_folder(root, candidates(), owner("b"))
    root.put(f"{theirs}/metadata", b"b's backup")
    root.put("backup-unclaimed/db.t.000000000.sql", b"written by another tool")
    kept = sorted(info.name for info in root.list() if not info.name.startswith(mine + "/"))
    assert claim.discard(root, theirs, owner("a")) == 0
    assert claim.discard(root, mine, owner("a", uid="uid-of-a-recreated-a")) == 0
    assert claim.discard(root, "backup-unclaimed", owner("a")) == 0
    assert claim.discard(root, mine, owner("a")) == 3
    assert sorted(info.name for info in root.list()) == kept
