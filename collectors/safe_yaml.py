"""YAML read safely: every YAML document Clew reads (contracts, catalogs, rule packs) goes through
here, never through a loader of its own.

- ruamel.yaml's safe loader, pure Python: plain data only (no tag builds an object), and YAML 1.2,
  so ``on``, ``off``, ``yes`` and ``no`` stay strings (a Backstage ``lifecycle: on`` is not true)
  and ``017`` is seventeen;
- at most ``MAX_BYTES`` of text;
- an alias budget: aliases may not make the document more than ``MAX_NODES`` nodes once every
  alias is expanded (a "billion laughs" document of a kilobyte stands for 10⁹ strings), nor
  number more than ``MAX_ALIASES``; and at most ``MAX_DEPTH`` levels of nesting;
- a key twice in one mapping is an error, as YAML 1.2 says.

Every error is a ``YamlError`` naming the source, the line and column where the reader stopped,
and the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

#: Text larger than this is refused before it is parsed (the largest real contracts, Stripe's
#: and GitHub's, are 4 to 12 MB).
MAX_BYTES = 32 * 2**20
#: Nodes a document may stand for with every alias expanded.
MAX_NODES = 2_000_000
#: Aliases in one stream.
MAX_ALIASES = 10_000
#: Levels of nesting.
MAX_DEPTH = 256


class YamlError(ValueError):
    """A YAML source that cannot be read, or may not be: where and why."""

    def __init__(
        self, source: str, reason: str, line: int | None = None, column: int | None = None
    ):
        self.source, self.reason, self.line, self.column = source, reason, line, column
        where = f"line {line} column {column}: " if line is not None else ""
        super().__init__(f"{source}: {where}{reason}")


def _reader() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def load_all(data: str | bytes, source: str) -> list[Any]:
    """Every document of a YAML stream, as plain data (dicts, lists, str, int, float, bool,
    None, dates as ``datetime.date``)."""
    text = _text(data, source)
    _check_budget(text, source)
    try:
        return list(_reader().load_all(text))
    except MarkedYAMLError as error:
        raise _located(error, source) from None
    except YAMLError as error:
        raise YamlError(source, str(error).strip()) from None
    except RecursionError:
        raise YamlError(source, f"nested more than {MAX_DEPTH} levels deep") from None


def load(data: str | bytes, source: str) -> Any:
    """The one document of a YAML stream (None for an empty stream); more than one is an
    error."""
    documents = load_all(data, source)
    if len(documents) > 1:
        raise YamlError(source, f"{len(documents)} YAML documents where one was expected")
    return documents[0] if documents else None


def compose(data: str | bytes, source: str) -> Any:
    """The one document of a YAML stream as ruamel.yaml's composed nodes (each with its start
    mark; aliases left as shared nodes, no tag constructed), under the same budget as ``load``;
    None for an empty stream."""
    text = _text(data, source)
    _check_budget(text, source)
    try:
        return _reader().compose(text)
    except MarkedYAMLError as error:
        raise _located(error, source) from None
    except YAMLError as error:
        raise YamlError(source, str(error).strip()) from None
    except RecursionError:
        raise YamlError(source, f"nested more than {MAX_DEPTH} levels deep") from None


def _text(data: str | bytes, source: str) -> str:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise YamlError(source, f"{size:,} bytes: YAML larger than {MAX_BYTES:,} bytes is refused")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise YamlError(source, f"not UTF-8 at byte {error.start}") from None


def _events(text: str, source: str) -> Iterator[Any]:
    try:
        yield from _reader().parse(text)
    except MarkedYAMLError as error:
        raise _located(error, source) from None
    except YAMLError as error:
        raise YamlError(source, str(error).strip()) from None


def _check_budget(text: str, source: str) -> None:
    """Walk the stream's events, weighing each anchored node (its nodes, its own aliases
    expanded) so that an alias costs what it stands for; refuse a stream over budget."""
    weights: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, weight so far] of each open collection
    nodes = aliases = 0  # the stream's nodes so far, aliases expanded
    for event in _events(text, source):
        if isinstance(event, CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH:
                raise _at(event, source, f"nested more than {MAX_DEPTH} levels deep")
            nodes += 1
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, weight = stack.pop()
            if anchor is not None:
                weights[anchor] = weight
            if stack:
                stack[-1][1] += weight
            continue
        if isinstance(event, ScalarEvent):
            weight = 1
            if event.anchor is not None:
                weights[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _at(event, source, f"more than {MAX_ALIASES:,} aliases")
            weight = weights.get(event.anchor, 1)  # undefined: the loader says so
        else:
            continue
        nodes += weight
        if stack:
            stack[-1][1] += weight
        if nodes > MAX_NODES:
            raise _at(
                event,
                source,
                f"aliases expand the document beyond {MAX_NODES:,} nodes (an alias bomb?)",
            )


def _at(event: Any, source: str, reason: str) -> YamlError:
    mark = event.start_mark
    return YamlError(source, reason, mark.line + 1, mark.column + 1)


def _located(error: MarkedYAMLError, source: str) -> YamlError:
    mark = error.problem_mark or error.context_mark
    reason = " ".join(part for part in (error.context, error.problem) if part) or str(error)
    if mark is None:
        return YamlError(source, reason)
    return YamlError(source, reason, mark.line + 1, mark.column + 1)
