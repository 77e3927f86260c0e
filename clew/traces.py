"""One trace as an on-call engineer reads it: the waterfall, the failing span and the critical path.

Pure functions of a trace's span rows (``Span`` column order), plus ``trace_view`` that reads them
through the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from clew.store import queries

# Positions in a span row.
SPAN, PARENT, SERVICE, NAME, KIND, START, DURATION = 1, 2, 3, 4, 5, 6, 7
STATUS, STATUS_MESSAGE, HTTP_STATUS = 8, 9, 12
_ERROR = 2  # StatusCode.ERROR


def _failed(row: Sequence) -> bool:
    return row[STATUS] == _ERROR or (row[HTTP_STATUS] or 0) >= 500


def _end(row: Sequence) -> int:
    return row[START] + row[DURATION]


def _children(rows: Sequence[Sequence]) -> tuple[list[Sequence], dict[str, list[Sequence]]]:
    """The top spans (no parent, or a parent not in the trace) and each span's children, both in
    start order. A parent chain that loops is broken where it closes."""
    ids = {row[SPAN] for row in rows}
    children: dict[str, list[Sequence]] = {}
    tops: list[Sequence] = []
    for row in sorted(rows, key=lambda r: (r[START], r[SPAN])):
        parent = row[PARENT]
        if parent is None or parent not in ids or parent == row[SPAN]:
            tops.append(row)
        else:
            children.setdefault(parent, []).append(row)
    return tops, children


def waterfall(rows: Sequence[Sequence]) -> list[tuple[Sequence, int]]:
    """Spans in waterfall order (each under its parent, siblings by start) with their depth.

    Spans on a parent loop, which no top span reaches, follow at depth 0 so none is lost.
    """
    tops, children = _children(rows)
    out: list[tuple[Sequence, int]] = []
    placed: set[str] = set()
    stack = [(row, 0) for row in reversed(tops)]
    while stack:
        row, depth = stack.pop()
        if row[SPAN] in placed:
            continue
        placed.add(row[SPAN])
        out.append((row, depth))
        for child in reversed(children.get(row[SPAN], ())):
            stack.append((child, depth + 1))
    for row in sorted(rows, key=lambda r: (r[START], r[SPAN])):
        if row[SPAN] not in placed:
            placed.add(row[SPAN])
            out.append((row, 0))
    return out


def failing_span(rows: Sequence[Sequence]) -> Sequence | None:
    """Where the trace's failure began: the earliest erroring span none of whose children erred."""
    _, children = _children(rows)
    erring = [row for row in rows if _failed(row)]
    sources = [
        row for row in erring if not any(_failed(kid) for kid in children.get(row[SPAN], ()))
    ]
    # Only a parent loop of erring spans leaves no source: then the earliest of them.
    return min(sources or erring, key=lambda r: (r[START], r[SPAN])) if erring else None


def critical_path(rows: Sequence[Sequence]) -> list[str]:
    """The span ids on the trace's critical path, in start order.

    From the end of the longest top span backwards: the child that finished last before the
    current point is on the path; the point then moves to that child's start, and so on, within
    each chosen child in turn. Time a span spends with no child running is its own.
    """
    if not rows:
        return []
    tops, children = _children(rows)
    # Every span on a parent loop leaves no top span: then the loop's longest span leads.
    root = max(tops or rows, key=lambda r: (r[DURATION], -r[START]))
    path: list[str] = []
    visited: set[str] = set()
    stack = [(root, _end(root))]
    while stack:
        span, until = stack.pop()
        if span[SPAN] in visited:
            continue
        visited.add(span[SPAN])
        path.append(span[SPAN])
        point = min(_end(span), until)
        kids = children.get(span[SPAN], ())
        chosen: list[tuple[Sequence, int]] = []
        while point > span[START]:
            best, best_end = None, None
            for kid in kids:
                if kid[START] >= point or kid[SPAN] in visited:
                    continue
                end = min(_end(kid), point)
                if best_end is None or end > best_end:
                    best, best_end = kid, end
            if best is None or best_end is None:
                break
            chosen.append((best, best_end))
            visited.add(best[SPAN])  # chosen once; walked below
            point = best[START]
        for kid, end in chosen:
            visited.discard(kid[SPAN])
            stack.append((kid, end))
    start_of = {row[SPAN]: row[START] for row in rows}
    return sorted(path, key=lambda span_id: (start_of[span_id], span_id))


def trace_document(rows: Sequence[Sequence]) -> dict | None:
    """The trace view of a trace's span rows; ``None`` when there are none."""
    if not rows:
        return None
    critical = set(critical_path(rows))
    failing = failing_span(rows)
    failing_id = failing[SPAN] if failing is not None else None
    start = min(row[START] for row in rows)
    end = max(_end(row) for row in rows)
    spans = [
        {
            "span_id": row[SPAN],
            "parent_span_id": row[PARENT],
            "service": row[SERVICE],
            "name": row[NAME],
            "kind": row[KIND],
            "start_ns": row[START],
            "duration_ns": row[DURATION],
            "status": row[STATUS],
            "status_message": row[STATUS_MESSAGE],
            "http_status": row[HTTP_STATUS],
            "depth": depth,
            "error": _failed(row),
            "critical": row[SPAN] in critical,
            "failing": row[SPAN] == failing_id,
        }
        for row, depth in waterfall(rows)
    ]
    return {
        "trace_id": rows[0][0],
        "start_ns": start,
        "duration_ns": end - start,
        "services": sorted({row[SERVICE] for row in rows}),
        "spans": spans,
        "critical_path": [s["span_id"] for s in spans if s["critical"]],
        "failing_span_id": failing_id,
    }


def trace_view(conn: Connection, trace_id: str) -> dict | None:
    """The waterfall, failing span and critical path of a stored trace; ``None`` if unknown."""
    return trace_document(queries.trace_spans(conn, trace_id.lower()))
