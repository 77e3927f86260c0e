"""Trace files that hold one JSON document (Jaeger's and Zipkin's): read whole, then checkpointed.

A document is one unit: a grown file is read again from byte 0, whatever the source's offset says,
and the spans already stored are skipped by their unique key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from clew.records import Checkpoint, Quarantined, Record, excerpt
from collectors import CollectorError, Source

#: A UTF-8 byte order mark, which some tools write and JSON parsers refuse.
BOM = b"\xef\xbb\xbf"


def document_records(
    source: Source,
    records_of_document: Callable[[Any], Iterator[Record]],
    *,
    quote_head: bool = False,
) -> Iterator[Record]:
    """The records of the document in ``source``, then a checkpoint at its end.

    Invalid JSON is quarantined at its line and column, quoting the text around the error (or the
    file's head, with ``quote_head``); a file that cannot be read raises ``CollectorError``.
    """
    try:
        data = source.path.read_bytes()
    except OSError as error:
        raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
    try:
        document = orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}"
        quoted = data[:200] if quote_head else error.doc[max(error.pos - 100, 0) : error.pos + 100]
        yield Quarantined(position, f"invalid JSON: {error.msg}", excerpt(quoted))
    else:
        yield from records_of_document(document)
    yield Checkpoint(len(data))
