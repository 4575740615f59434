"""One registry type for everything the platform knows by name: SR architectures and
checkpoints, distortion families, metrics, learned-metric kinds, weight files (no Django here).

A registry is filled by one explicit function (its *loader*) that lists the declarations of
the modules it gathers, never by importing a module for its side effects. The apps call the
loaders at start (``AppConfig.ready()``); code used without Django (benchmarks, notebooks)
gets the same entries on first use, since a registry runs its loader once when first read.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name no entry of the registry has; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Entries of one kind by unique name, in registration order."""

    def __init__(self, kind: str, loader: Callable[[Registry[T]], None] | None = None):
        self.kind = kind  # what an entry is, for messages: "SR architecture", "metric", …
        self._loader = loader
        self._entries: dict[str, T] = {}
        self._loaded = loader is None
        self._lock = threading.RLock()

    def load(self) -> None:
        """Run the loader once (AppConfig.ready() calls this; reading does it too)."""
        with self._lock:
            if not self._loaded:
                self._loaded = True
                try:
                    self._loader(self)
                except BaseException:
                    self._loaded = False
                    self._entries.clear()
                    raise

    def add(self, name: str, entry: T) -> T:
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name {name!r} is empty or has surrounding spaces")
        with self._lock:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})") from None

    __getitem__ = get

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def values(self) -> list[T]:
        self.load()
        return list(self._entries.values())

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._entries)
