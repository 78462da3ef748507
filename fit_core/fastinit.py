"""A faster ``__init__`` for the frozen, slotted dataclasses a sync builds once per record.

``@dataclass(frozen=True, slots=True)`` writes an ``__init__`` that sets every field with
``object.__setattr__(self, name, value)``: a named lookup and a call per field, about 3 µs for
an :class:`~fit_core.models.Administration` (17 fields). A sync builds several such objects for
every record it reads (the record, its administration, its score, the scored item, the outbox
item read back), so that alone was a tenth of a full sync.

:func:`fast_init` replaces that ``__init__`` with one of the same signature (the same defaults,
the same ``default_factory`` calls, in the same order) that stores the fields as plain slot
writes. It does so on a *twin*: a plain class with the same ``__slots__``, so the same memory
layout. The new object is switched to the twin, its fields are stored, and it is switched back
(CPython allows ``__class__`` assignment between classes of the same layout). Nothing else
changes: the object is an instance of the dataclass, frozen afterwards, with the dataclass's own
``__eq__``, ``__hash__``, ``__repr__``, pickling and :func:`dataclasses.replace`.
``tests/test_fastinit.py`` holds every decorated class to the dataclass's own ``__init__``.

Only classes that fit are accepted (frozen, slotted, no ``__post_init__``, no ``InitVar``, every
field in ``__init__``, a plain ``object`` base); anything else is a TypeError at import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ORIGINAL_INIT", "fast_init"]

T = TypeVar("T")

#: the dataclass's own ``__init__`` of each decorated class (the definition; for tests)
ORIGINAL_INIT: dict[type, Callable[..., None]] = {}

_FACTORY = object()  # the marker of "use the default factory" (as the dataclass's own)


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` a faster ``__init__`` (see the module)."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = tuple(f.name for f in params)
    kinds = {getattr(f, "_field_type", None) for f in params}
    params_ok = all(f.init for f in params) and kinds <= {getattr(dataclasses, "_FIELD", None)}
    if (
        not dataclasses.is_dataclass(cls)
        or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        or getattr(cls, "__slots__", None) != names
        or cls.__bases__ != (object,)
        or hasattr(cls, "__post_init__")
        or not params_ok
    ):
        raise TypeError(f"fast_init needs a plain frozen, slotted dataclass; not {cls.__name__}")
    twin = type(f"_{cls.__name__}Slots", (), {"__slots__": names})
    original = cls.__init__
    env: dict[str, Any] = {
        "_twin": twin,
        "_cls": cls,
        "_set": object.__setattr__,
        "_original": original,
    }
    args: list[str] = []
    factories: list[str] = []
    for i, f in enumerate(params):
        if f.default is not dataclasses.MISSING:
            env[f"_d{i}"] = f.default
            args.append(f"{f.name}=_d{i}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_f{i}"] = f.default_factory
            env["_FACTORY"] = _FACTORY
            args.append(f"{f.name}=_FACTORY")
            factories.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _f{i}()")
        else:
            args.append(f.name)
    # a subclass (its layout may differ from the twin's) takes the dataclass's own __init__
    body = [
        *factories,
        f"    if type(self) is not _cls:\n        return _original(self, {', '.join(names)})",
        "    _set(self, '__class__', _twin)",
    ]
    body.extend(f"    self.{n} = {n}" for n in names)
    body.append("    self.__class__ = _cls")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body) + "\n"
    exec(source, env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = original.__doc__
    ORIGINAL_INIT[cls] = original
    setattr(cls, "__init__", init)  # noqa: B010 - a method replaced on purpose
    return cls
