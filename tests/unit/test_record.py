"""``@record`` (tibackup/record.py): the dump path's records, built without ``dataclasses``, behave as
the frozen dataclasses the type checker sees: the same constructor, defaults, repr and copies."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import subprocess
import sys

import pytest

from tibackup.dump.catalog import Column
from tibackup.dump.chunks import Chunk
from tibackup.dump.config import Connection, CSVOptions, DumpConfig, TLSFiles
from tibackup.record import as_dict, evolve, field, is_record, record
from tibackup.storage.base import ObjectInfo


@record
class Sample:
    """name, then fields with defaults"""

    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)


@dataclasses.dataclass(frozen=True)
class SampleDataclass:
    """the same as a dataclass, to compare with"""

    name: str
    size: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    secret: str = dataclasses.field(default="", repr=False)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("a",), {}), (("a", 2), {}), (("a", 2, ["x"], "pw"), {}), (("a",), {"secret": "pw", "size": 3}),
     ((), {"tags": ["y"], "name": "b"})],
)  # fmt: skip
def test_a_record_is_built_from_the_same_arguments_as_its_dataclass(args: tuple, kwargs: dict) -> None:
    made, expected = Sample(*args, **kwargs), SampleDataclass(*args, **kwargs)
    assert as_dict(made) == dataclasses.asdict(expected)
    assert list(vars(made)) == ["name", "size", "tags", "secret"]  # field order, whatever the call's
    assert repr(made) == repr(expected).replace("SampleDataclass", "Sample")


def test_a_default_factory_runs_per_record_and_a_default_is_the_class_attribute() -> None:
    first, second = Sample("a"), Sample("b")
    first.tags.append("x")
    assert second.tags == [] and first.tags is not second.tags
    assert Sample.size == 0 and Sample.secret == "" and "tags" not in vars(Sample)
    assert Connection().tls is not Connection().tls and Connection().tls.any() is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Sample(), "Sample() missing required argument: 'name'"),
        (lambda: Sample("a", 1, [], "", 5), "Sample() takes 4 positional arguments but 5 were given"),
        (lambda: Sample("a", name="b"), "Sample() got multiple values for argument 'name'"),
        (lambda: Sample("a", colour="red"), "Sample() got an unexpected keyword argument 'colour'"),
    ],
)
def test_wrong_arguments_are_refused_as_a_dataclass_refuses_them(call: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        call()  # type: ignore[operator]


def test_evolve_copies_a_record_with_some_fields_changed() -> None:
    config = DumpConfig(Connection(host="db", password="pw"), "/tmp/out", threads=2)
    changed = evolve(config, threads=8, output="/tmp/other")
    assert (changed.threads, changed.output, changed.connection) == (8, "/tmp/other", config.connection)
    assert (config.threads, config.output) == (2, "/tmp/out")  # the original stays
    assert as_dict(evolve(changed, threads=2, output="/tmp/out")) == as_dict(config)
    with pytest.raises(TypeError, match="unexpected keyword argument 'thread'"):
        evolve(config, thread=8)  # type: ignore[call-arg]


def test_records_compare_by_identity_unless_asked_to_compare_by_value() -> None:
    column = Column("id", "int", "int", False)
    assert column != Column("id", "int", "int", False) and column == column
    assert CSVOptions() == CSVOptions() and CSVOptions() != CSVOptions(separator=b";")
    assert hash(CSVOptions()) == hash(CSVOptions())
    # compare=False: an object listed again with another etag is the same object
    assert ObjectInfo("a", 1, "x") == ObjectInfo("a", 1, "y") and ObjectInfo("a", 1) != ObjectInfo("a", 2)
    assert {ObjectInfo("a", 1, "x"), ObjectInfo("a", 1, "y")} == {ObjectInfo("a", 1)}
    assert ObjectInfo("a", 1).__eq__("a") is NotImplemented


def test_a_slots_record_has_no_instance_dict_and_keeps_its_defaults() -> None:
    @record(slots=True)
    class Slotted:
        """slots"""

        name: str
        size: int = 4

        def double(self) -> int:
            return self.size * 2

    made = Slotted("a")
    assert not hasattr(made, "__dict__") and Slotted.__slots__ == ("name", "size")
    assert (made.name, made.size, made.double()) == ("a", 4, 8)
    assert repr(made) == f"{Slotted.__qualname__}(name='a', size=4)" and Slotted.__qualname__.endswith("<locals>.Slotted")
    assert as_dict(evolve(made, size=5)) == {"name": "a", "size": 5}


def test_records_copy_and_pickle_as_plain_objects() -> None:
    chunk = Chunk(None, 3, "`id` < 10", ())  # type: ignore[arg-type]
    for made in (copy.copy(chunk), copy.deepcopy(chunk), pickle.loads(pickle.dumps(chunk))):
        assert as_dict(made) == as_dict(chunk) and made is not chunk
    tls = TLSFiles(ca="ca.pem")
    assert as_dict(pickle.loads(pickle.dumps(tls))) == {"ca": "ca.pem", "cert": None, "key": None}
    assert is_record(chunk) and is_record(Chunk) and not is_record(SampleDataclass)


def test_a_record_class_that_cannot_be_built_as_a_dataclass_is_refused() -> None:
    with pytest.raises(TypeError, match="field 'size' without a default follows one with a default"):

        @record
        class Unordered:
            """a required field after a default"""

            name: str = ""
            size: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="does not inherit another record's fields"):

        @record
        class Derived(Sample):
            """fields of its base"""

            extra: int = 0


def test_storage_and_the_record_module_load_nothing_of_the_dumper() -> None:
    """Records live beside ``errors`` (tibackup/record.py), so storage, which every room uses, does not
    depend on the dumper's package: importing it loads no ``tibackup.dump`` module."""
    code = (
        "import sys\n"
        "import tibackup.record, tibackup.storage.base, tibackup.storage.local\n"
        "print(sorted(m for m in sys.modules if m == 'tibackup.dump' or m.startswith('tibackup.dump.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
