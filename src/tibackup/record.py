"""``@record``: immutable records, checked as frozen dataclasses, built without ``dataclasses``.

It lives at the package's top, beside ``errors`` and ``units``, because records are used across the
code base (the dumper, storage, the loader, the manager): no room imports another room to get them.

Every ``tibackup dump`` creates the dump path's ~15 record classes before its first query, and
sub-second dumps pay for it: ``dataclasses`` itself (with inspect, ast and dis: ~23 M instructions to
import) and, per class, an ``__init__`` compiled through ``exec`` (docs/dump-performance.md, the sixth
pass). So ``@record`` reads the class's annotations and gives it functions shared by every record, built
once with this module: an ``__init__`` that binds the arguments to the field list the class keeps in
``__record_fields__`` (positional or by name, defaults and ``field(default_factory=…)`` as a dataclass
fills them; the instance's attributes in field order), and the ``__repr__`` a dataclass would generate
(fields with ``repr=False`` left out). ``eq=True`` adds a shared ``__eq__`` and ``__hash__`` over the
fields with ``compare=True``; otherwise records compare by identity.

For the type checker a record is a frozen dataclass (``dataclass_transform``: an assignment to a field is
an error, the constructor's signature is checked); at run time its attributes are plain ones. A record is
changed only through ``evolve`` (a copy with some fields changed, checked by mypy as ``dataclasses.replace``)
and read whole through ``as_dict``. Records do not inherit fields from one another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")

_NO_DEFAULT: Any = object()


class _Field:
    """What ``field(…)`` says of one field."""

    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool) -> None:
        self.default, self.default_factory, self.repr, self.compare = default, default_factory, repr, compare


def field(
    *, default: Any = _NO_DEFAULT, default_factory: Callable[[], Any] = _NO_DEFAULT, repr: bool = True,
    compare: bool = True,
) -> Any:  # fmt: skip
    """A field's default or default factory, whether ``repr`` shows it and ``eq`` compares it."""
    return _Field(default, default_factory, repr, compare)


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, repr: bool = True, eq: bool = False, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field,))
def record(
    cls: type[T] | None = None, /, *, repr: bool = True, eq: bool = False, slots: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """``@record``; ``repr=False`` for a class with its own ``__repr__`` (as a dataclass, a class's own
    ``__repr__`` stays anyway); ``eq=True`` to compare by value; ``slots=True`` for ``__slots__``."""

    def make(cls: type[T]) -> type[T]:
        names: list[str] = []
        defaults: dict[str, Any] = {}
        factories: dict[str, Callable[[], Any]] = {}
        shown: list[str] = []
        compared: list[str] = []
        annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect is what we avoid)
        for name, kind in annotations.items():
            if str(kind).startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = cls.__dict__.get(name, _NO_DEFAULT)
            spec = value if isinstance(value, _Field) else _Field(value, _NO_DEFAULT, True, True)
            if spec.default_factory is not _NO_DEFAULT:
                factories[name] = spec.default_factory
            elif spec.default is not _NO_DEFAULT:
                defaults[name] = spec.default
            elif defaults or factories:
                raise TypeError(
                    f"{cls.__qualname__}: field {name!r} without a default follows one with a default"
                )
            names.append(name)
            shown += [name] if spec.repr else []
            compared += [name] if spec.compare else []
        if any("__record_fields__" in vars(base) for base in cls.__mro__[1:]):
            raise TypeError(f"{cls.__qualname__}: a record does not inherit another record's fields")
        shared: dict[str, Any] = {
            "__record_fields__": tuple(names), "__record_defaults__": defaults,
            "__record_factories__": factories, "__record_repr__": tuple(shown),
            "__record_compare__": tuple(compared), "__match_args__": tuple(names),
            "__init__": _init_slots if slots else _init,
        }  # fmt: skip
        if repr and "__repr__" not in cls.__dict__:  # as a dataclass: a class's own one stays
            shared["__repr__"] = _record_repr
        if eq:
            shared.update(__eq__=_record_eq, __hash__=_record_hash)
        if slots:  # a class of its own, whose slots are the fields (the defaults stay in __record_defaults__)
            skip = {*names, "__dict__", "__weakref__"}
            namespace = {k: v for k, v in cls.__dict__.items() if k not in skip}
            metaclass: Any = type(cls)
            slotted = {**namespace, **shared, "__slots__": tuple(names), "__qualname__": cls.__qualname__}
            return metaclass(cls.__name__, cls.__bases__, slotted)
        for name in names:  # as a dataclass: a default is also the class's attribute, a factory is not
            if name in defaults:
                setattr(cls, name, defaults[name])
            elif name in cls.__dict__:
                delattr(cls, name)
        for key, value in shared.items():
            setattr(cls, key, value)
        return cls

    return make if cls is None else make(cls)


def _bind(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Every field's value, in field order, from a call's arguments and the class's defaults."""
    names: tuple[str, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    if len(args) > len(names):
        raise TypeError(
            f"{cls.__qualname__}() takes {len(names)} positional arguments but {len(args)} were given"
        )
    defaults: dict[str, Any] = cls.__record_defaults__  # type: ignore[attr-defined]
    factories: dict[str, Callable[[], Any]] = cls.__record_factories__  # type: ignore[attr-defined]
    values = list(args)
    for name in names[len(args) :]:
        if name in kwargs:
            values.append(kwargs.pop(name))
        elif name in defaults:
            values.append(defaults[name])
        elif name in factories:
            values.append(factories[name]())
        else:
            raise TypeError(f"{cls.__qualname__}() missing required argument: {name!r}")
    for name in kwargs:
        problem = (
            "got multiple values for argument" if name in names else "got an unexpected keyword argument"
        )
        raise TypeError(f"{cls.__qualname__}() {problem} {name!r}")
    return values


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    names = self.__record_fields__  # every field given in order is the common, fast case
    values = args if not kwargs and len(args) == len(names) else _bind(type(self), args, kwargs)
    self.__dict__.update(zip(names, values))  # noqa: B905 (as long, by construction)


def _init_slots(self: Any, *args: Any, **kwargs: Any) -> None:
    names = self.__record_fields__
    values = args if not kwargs and len(args) == len(names) else _bind(type(self), args, kwargs)
    for name, value in zip(names, values):  # noqa: B905 (as long, by construction)
        setattr(self, name, value)


def _record_repr(self: Any) -> str:
    """``Name(field=value, …)`` over the fields with ``repr=True``, as a dataclass's generated one."""
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record_repr__)
    return f"{type(self).__qualname__}({shown})"


def _record_eq(self: Any, other: object) -> bool:
    names: tuple[str, ...] = self.__record_compare__
    if other.__class__ is not self.__class__:
        return NotImplemented
    return tuple(getattr(self, name) for name in names) == tuple(getattr(other, name) for name in names)


def _record_hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in type(self).__record_compare__))


def as_dict(obj: Any) -> dict[str, Any]:
    """A record's fields and values, in field order (a shallow copy, unlike ``dataclasses.asdict``)."""
    return {name: getattr(obj, name) for name in type(obj).__record_fields__}


def is_record(obj: object) -> bool:
    """Whether ``obj`` is a record class or one's instance."""
    return hasattr(obj if isinstance(obj, type) else type(obj), "__record_fields__")


if TYPE_CHECKING:  # mypy checks the changed fields' names and types as it does for dataclasses.replace
    from dataclasses import replace as evolve
else:

    def evolve(obj, /, **changes):
        """A copy of a record with ``changes`` made (``dataclasses.replace`` for records)."""
        return type(obj)(**{**as_dict(obj), **changes})
