"""LocalStorage: atomic writes, listing, deletion and disk failures as one-line StorageErrors."""

from __future__ import annotations

import builtins
import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tibackup.errors import StorageError
from tibackup.storage import LocalStorage, ObjectInfo, ObjectNotFound, open_storage


@pytest.fixture()
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "out")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_create_is_atomic_and_makes_subdirectories(storage: LocalStorage) -> None:
    writer = storage.create("db/sub/t.000000001.sql")
    writer.write(b"INSERT ")
    writer.write(memoryview(b"INTO t VALUES (1);\n"))
    # Nothing under the final name until close; the temp file is not an object.
    assert not storage.exists("db/sub/t.000000001.sql")
    assert list(storage.list()) == []
    writer.close()
    assert storage.read("db/sub/t.000000001.sql") == b"INSERT INTO t VALUES (1);\n"
    assert files_under(storage.root) == ["db/sub/t.000000001.sql"]


def test_abort_leaves_nothing_and_is_idempotent(storage: LocalStorage) -> None:
    storage.put("keep", b"old")
    writer = storage.create("keep")
    writer.write(b"new half-written data")
    writer.abort()
    writer.abort()
    assert storage.read("keep") == b"old"  # the previous object is untouched
    assert files_under(storage.root) == ["keep"]
    with pytest.raises(StorageError, match="after it was closed or aborted"):
        writer.write(b"x")


def test_with_block_closes_on_success_and_aborts_on_error(storage: LocalStorage) -> None:
    with storage.create("ok") as writer:
        writer.write(b"done")
    with pytest.raises(RuntimeError), storage.create("failed") as writer:
        writer.write(b"partial")
        raise RuntimeError("the data source broke")
    assert files_under(storage.root) == ["ok"]


def test_list_is_sorted_prefix_filtered_and_sized(storage: LocalStorage) -> None:
    for name, data in [("b/2", b"22"), ("a/1", b"1"), ("a/10", b"1010"), ("ab", b""), ("metadata", b"m")]:
        storage.put(name, data)
    assert list(storage.list()) == [
        ObjectInfo("a/1", 1),
        ObjectInfo("a/10", 4),
        ObjectInfo("ab", 0),
        ObjectInfo("b/2", 2),
        ObjectInfo("metadata", 1),
    ]
    assert [i.name for i in storage.list("a")] == ["a/1", "a/10", "ab"]
    assert [i.name for i in storage.list("a/1")] == ["a/1", "a/10"]
    assert list(storage.list("missing/")) == []


def test_delete_and_delete_prefix(storage: LocalStorage) -> None:
    for name in ["x/1", "x/2", "x/y/3", "z"]:
        storage.put(name, b"data")
    storage.delete(["x/1", "never-existed"])
    assert [i.name for i in storage.list()] == ["x/2", "x/y/3", "z"]
    assert storage.delete_prefix("x/") == 2
    assert files_under(storage.root) == ["z"]
    assert not (storage.root / "x").exists()  # emptied folders go too, as in S3
    assert storage.delete_prefix() == 1
    assert storage.root.is_dir()


def test_read_missing_object(storage: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound, match="does not exist"):
        storage.read("nope")
    assert not storage.exists("nope")


def test_names_cannot_escape_the_root(storage: LocalStorage) -> None:
    for bad in ["../evil", "/etc/passwd", "a//b", "a/./b", ""]:
        with pytest.raises(StorageError, match="invalid object name"):
            storage.create(bad)


def test_check_writable_creates_the_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "new" / "folder")
    storage.check_writable()
    assert storage.root.is_dir()
    assert files_under(storage.root) == []


def test_check_writable_blocked_by_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="a file is in the way") as info:
        LocalStorage(tmp_path / "file" / "sub").check_writable()
    assert "\n" not in str(info.value)


def test_open_storage_local(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "dump"))
    assert isinstance(storage, LocalStorage)
    assert storage.url == f"{tmp_path}/dump/"


@pytest.fixture()
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (needs root and mount permission; skipped elsewhere)."""
    mountpoint = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_filesystem_is_a_storage_error(tiny_tmpfs: Path) -> None:
    storage = LocalStorage(tiny_tmpfs / "backup")
    writer = storage.create("big.sql")
    with pytest.raises(StorageError) as info:
        for _ in range(64):
            writer.write(b"x" * 65536)  # 4 MiB into 1 MiB
        writer.close()
    message = str(info.value)
    assert message.startswith("no space left on device writing ")
    assert str(tiny_tmpfs / "backup" / "big.sql") in message
    assert "free space or use direct S3 output" in message
    assert files_under(tiny_tmpfs) == []  # the partial temp file was removed


def test_enospc_without_mount_permission(storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path where no tmpfs can be mounted: the file's write raises ENOSPC."""
    real_open = builtins.open

    class FullFile:
        def __init__(self, path: str) -> None:
            self.file = real_open(path, "xb")

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.file.close()

    monkeypatch.setattr(builtins, "open", lambda path, mode="r", *a, **k: FullFile(str(path)))
    writer = storage.create("t.sql")
    with pytest.raises(StorageError, match=r"^no space left on device writing .*t\.sql: free space"):
        writer.write(b"data")
    monkeypatch.undo()
    assert files_under(storage.root) == []


def test_permission_denied_is_a_storage_error(storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(StorageError, match=r"^permission denied writing .*t\.sql: fix the folder"):
        storage.create("t.sql")
