"""``@record``: the dump path's immutable records, checked as frozen dataclasses, built cheaply.

A frozen dataclass compiles a ``__setattr__`` and a ``__delattr__`` through ``exec`` when its class is
created, and its ``__init__`` sets every field through ``object.__setattr__``; an ``eq`` one compiles
``__eq__`` and ``__hash__`` too. Every ``tibackup dump`` creates the dump path's ~15 record classes
before its first query, and sub-second dumps pay for it (~25 M instructions, docs/dump-performance.md).
So a record is frozen for the type checker (mypy reports an assignment to a field as an error, through
``dataclass_transform``) and a plain dataclass without ``eq`` at run time: compared by identity, as
nothing on the dump path compares records by value; changed only through ``dataclasses.replace``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform, overload

T = TypeVar("T")


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, repr: bool = True, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field,))
def record(
    cls: type[T] | None = None, /, *, repr: bool = True, slots: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """``@record`` or ``@record(repr=False)`` (a class with its own ``__repr__``), ``slots=True``."""
    make = dataclass(eq=False, repr=repr, slots=slots)
    return make if cls is None else make(cls)
