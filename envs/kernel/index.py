"""Derived lookups over a base DB (users by email, flights by origin, ...): each one a typed key object
that builds its value from a base on first use and keeps it for as long as that base lives.

A base DB never changes, so anything computed from it alone can be reused by every state and call
on it. The values live here, not on the base: ``BaseDB`` stays data, and a lookup's type is checked
where it is declared instead of behind a string key.

    BY_EMAIL = Index("shop.users_by_email", _users_by_email)   # module level, once
    BY_EMAIL.of(state.base).get(email, ())                     # built on the first call per base
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from envs.kernel.state import BaseDB

__all__ = ["Index"]

T = TypeVar("T")


class Index(Generic[T]):
    """A value derived from a base DB by ``build(base)``, built once per base and shared.

    ``build`` must read only the base (never a state): the value is reused for every state on it.
    A mutable value (a dict filled lazily, for instance) is fine as long as what it caches depends
    on the base alone.
    """

    __slots__ = ("_last", "_values", "build", "name")

    def __init__(self, name: str, build: Callable[[BaseDB], T]) -> None:
        self.name = name
        self.build = build
        self._values: weakref.WeakKeyDictionary[BaseDB, T] = weakref.WeakKeyDictionary()
        self._last: tuple[weakref.ref[BaseDB], T] | None = None

    def of(self, base: BaseDB) -> T:
        """The value for ``base``, built on the first call."""
        last = self._last
        if last is not None and last[0]() is base:
            return last[1]
        try:
            value = self._values[base]
        except KeyError:
            value = self._values[base] = self.build(base)
        self._last = (weakref.ref(base), value)
        return value

    def __repr__(self) -> str:
        return f"Index({self.name!r})"
