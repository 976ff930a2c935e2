"""One registry per kind of extension point: datasets, denoisers, criteria, detectors.

A registry maps a name to a record (a frozen dataclass describing one entry). The built-in
entries live in the package that implements them (``home``): `memnb.data` registers the
datasets, `memnb.models` the denoisers, `memnb.metric.criteria` the criteria, `memnb.metric.membership` the
generation-free membership detectors. The registry
imports its home the first time it is read, so that validating a config (in `memnb.core`, the
lowest layer) sees every built-in entry without `memnb.core` importing an upper layer.

Adding an entry is one module that calls ``REGISTRY.register(record)`` at import, placed in the
home package (which imports every module it holds) or imported by the user before use.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named records of one kind. `kind` names it in errors ("dataset 'x' is unknown; allowed: ...")."""

    def __init__(self, kind: str, home: str):
        self.kind, self.home = kind, home
        self._entries: dict[str, T] = {}
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before the import: the home registers into this very registry
            importlib.import_module(self.home)

    def register(self, record: T) -> T:
        """Add `record` (its ``name`` attribute is the key); a second record of one name is refused."""
        name = record.name
        if name in self._entries and self._entries[name] != record:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = record
        return record

    def unregister(self, name: str) -> None:
        """Remove entry `name` (KeyError if absent)."""
        del self._entries[name]

    @contextlib.contextmanager
    def added(self, record: T):
        """`record` registered for the duration of a with-block (tests, experiments with a temporary entry)."""
        self.register(record)
        try:
            yield record
        finally:
            self.unregister(record.name)

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The record of `name`; ValueError naming the allowed names otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"{self.kind} {name!r} is unknown; allowed: {' | '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        self._load()
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


# The four registries. Their records are defined beside the code they describe.
DATASETS: Registry = Registry("dataset", "memnb.data")
DENOISERS: Registry = Registry("denoiser", "memnb.models")
CRITERIA: Registry = Registry("criterion", "memnb.metric.criteria")
DETECTORS: Registry = Registry("detector", "memnb.metric.membership")  # generation-free membership scores
