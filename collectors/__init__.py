"""Collectors turn a source into records. They know formats, not the database.

Built-in collectors are registered through the ``clew.collectors`` entry-point group, exactly as a
third-party package would register its own; tests hand an explicit ``Registry`` around instead.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from clew.records import Record

ENTRY_POINT_GROUP = "clew.collectors"
#: How much of a file's head format detection looks at.
HEAD_BYTES = 64 * 1024


def is_compressed(path: Path) -> bool:
    """Whether a file is gzip-compressed (a rotated log, ``access.log.2.gz``), by its name."""
    return path.suffix == ".gz"


def open_file(path: Path) -> BinaryIO:
    """A file opened for reading bytes; a gzip file's content (seeking in it reads up to the
    place, as gzip allows no more)."""
    if is_compressed(path):
        return gzip.open(path, "rb")
    return path.open("rb")


#: Seconds a file still being written must be left unchanged before it is taken as whole.
SETTLE_S = 2.0


@dataclass(frozen=True)
class Source:
    """One input to read: a file, where reading resumes, and whether it may still be written
    (``growing``: a last line without its newline is left for the next read, as it may be half
    written; a file read once, as ``clew ingest`` reads, is taken whole)."""

    path: Path
    offset: int = 0
    growing: bool = False

    @property
    def name(self) -> str:
        return str(self.path)

    def settling(self) -> bool:
        """Whether the file changed in the last ``SETTLE_S`` seconds (it may be mid-write)."""
        try:
            return time.time() - self.path.stat().st_mtime < SETTLE_S
        except OSError:
            return False

    def open(self) -> BinaryIO:
        """The file, opened for reading bytes (``open_file``)."""
        return open_file(self.path)


@runtime_checkable
class Collector(Protocol):
    """Turns one source into records. Knows formats, not the database.

    ``collect`` yields ``Span``/``Resource``/``SpanLink`` records, ``Quarantined`` for input it
    cannot parse (with its position and reason), and ``Checkpoint(offset)`` whenever everything
    before ``offset`` has been yielded. It raises only ``CollectorError``, for a source it cannot
    read at all.
    """

    name: str
    description: str

    def detect(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` is in this collector's format."""
        ...

    def collect(self, source: Source) -> Iterator[Record]:
        """The records of ``source`` from ``source.offset`` on."""
        ...


class CollectorError(Exception):
    """A source cannot be read at all; the message names the file, the position and the reason."""


class Registry(Mapping[str, Collector]):
    """Collectors by name; registering a name twice is refused."""

    def __init__(self, collectors: list[Collector] | None = None) -> None:
        self._by_name: dict[str, Collector] = {}
        for collector in collectors or []:
            self.register(collector)

    def register(self, collector: Collector) -> Collector:
        if collector.name in self._by_name:
            raise ValueError(f"a collector named {collector.name!r} is already registered")
        self._by_name[collector.name] = collector
        return collector

    def __getitem__(self, name: str) -> Collector:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def detect(self, path: Path) -> Collector | None:
        """The first collector (in name order) that recognises the file's head, if any."""
        try:
            with open_file(path) as handle:
                head = handle.read(HEAD_BYTES)
        except (OSError, EOFError):  # gzip.BadGzipFile is an OSError: not in any format
            return None
        for name in sorted(self._by_name):
            if self._by_name[name].detect(head):
                return self._by_name[name]
        # A format whose marks may lie past the head (a JSON contract with its keys sorted puts
        # "openapi" after megabytes of "components") looks at the whole file, last of all.
        for name in sorted(self._by_name):
            detect_file = getattr(self._by_name[name], "detect_file", None)
            if detect_file is not None and detect_file(path, head):
                return self._by_name[name]
        return None


def load_registry() -> Registry:
    """Every collector registered in the ``clew.collectors`` entry-point group."""
    registry = Registry()
    from importlib.metadata import entry_points  # slow to import; only registries need it

    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        factory = entry_point.load()
        registry.register(factory())
    return registry
