"""What the collector tests read in the records a collector yields: spans and their attributes."""

from __future__ import annotations

import json

from clew.records import Span


def spans_of(recs: list) -> list[Span]:
    """The ``Span`` records among ``recs``, in order."""
    return [r for r in recs if type(r) is Span]


def attributes(span: Span) -> dict:
    """A span's attributes decoded (``{}`` when it has none)."""
    # The standard library's decoder: orjson reads integers beyond 64 bits as floats.
    return json.loads(span.attributes) if span.attributes else {}
