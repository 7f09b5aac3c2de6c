"""``@record``: the dump path's immutable records, checked as frozen dataclasses, built cheaply.

A frozen dataclass compiles a ``__setattr__`` and a ``__delattr__`` through ``exec`` when its class is
created, and its ``__init__`` sets every field through ``object.__setattr__``; an ``eq`` one compiles
``__eq__`` and ``__hash__`` too. Every ``tibackup dump`` creates the dump path's ~15 record classes
before its first query, and sub-second dumps pay for it (~25 M instructions, docs/dump-performance.md).
So a record is frozen for the type checker (mypy reports an assignment to a field as an error, through
``dataclass_transform``) and a plain dataclass without ``eq`` at run time: compared by identity, as
nothing on the dump path compares records by value; changed only through ``dataclasses.replace``.
Their ``__repr__`` is one function shared by every record (the text a dataclass's own would give)
instead of one compiled through ``exec`` per class: ~1.5 ms of every dump's start-up for 12 classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, dataclass_transform, overload

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

    def make(cls: type[T]) -> type[T]:
        made = dataclass(eq=False, repr=False, slots=slots)(cls)
        if repr and "__repr__" not in made.__dict__:  # as a dataclass: a class's own one stays
            made.__repr__ = _record_repr  # type: ignore[method-assign]
        return made

    return make if cls is None else make(cls)


def _record_repr(self: Any) -> str:
    """``Name(field=value, …)`` over the fields with ``repr=True``, as a dataclass's generated one."""
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
    return f"{type(self).__qualname__}({shown})"
