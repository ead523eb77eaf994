"""One registry type for every named thing of mimbench: model families, zoo entries, recipes, suites, attacks.

Modelled on timm's: register with a decorator (or a call), list with an optional shell-style filter, and one
error wording for an unknown name, which lists the known ones.

    FAMILIES = Registry("model family")

    @FAMILIES.register("mae")
    def build_mae(**arch): ...

    FAMILIES.get("mae"); FAMILIES.list("s*")
"""
from __future__ import annotations

import fnmatch
from typing import Callable, Generic, Iterator, Optional, TypeVar, overload

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(KeyError):
    """A name no registry entry has; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


class Registry(Generic[T]):
    """Named objects of one kind, kept in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, replace: bool = False) -> T: ...

    def register(self, name: str, obj: Optional[T] = None, *, replace: bool = False):
        """`REG.register(name, obj)`, or `@REG.register(name)` as a decorator; a taken name is an error unless
        `replace` (a user's own entry overriding a shipped one must say so)."""
        if obj is None:
            return lambda o: self.register(name, o, replace=replace)
        if not replace and name in self._items:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        """The entry of `name`, or UnknownNameError naming the known entries."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} '{name}'; known: {', '.join(self.list())}") from None

    def list(self, filter: Optional[str] = None, *, sort: bool = False) -> list[str]:
        """Registered names (in registration order, or sorted), optionally matching a shell-style `filter`."""
        names = sorted(self._items) if sort else list(self._items)
        return [n for n in names if filter is None or fnmatch.fnmatchcase(n, filter)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())
