"""What the store holds, for tests: every stored span as a ``Span``, and how many there are."""

from __future__ import annotations

from sqlalchemy import Engine

from clew.records import Span
from clew.store import spans


def stored_spans(engine: Engine) -> list[Span]:
    """Every stored span, sorted by (trace id, span id)."""
    with engine.connect() as conn:
        return [Span(*row) for group in spans.by_trace(conn) for row in group]


def span_count(engine: Engine) -> int:
    """How many spans are stored."""
    with engine.connect() as conn:
        return spans.count(conn)
