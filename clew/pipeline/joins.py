"""Root spans joined with the gateway requests that carried them (DESIGN, "Building the graph").

A trace that begins in a service behind an API gateway has a root SERVER span with no parent: on
its own, its caller is the generic ``client``. When the gateway's access log holds the same
request, the caller is the gateway, and the consumer the log names reaches the service through it
(consumer → gateway from the log, gateway → service from the trace).

A request and a root span are the same request when

1. the request carried the span's trace id (a captured ``traceparent``, ``x-b3-traceid``, a
   propagated request id): every SERVER span of that trace may be its root; or else
2. the request carried no trace id, and it has the span's method and path, and the span began
   while the gateway was handling it, give or take ``SKEW_NS`` of clock difference between the
   two hosts. Only spans with no parent at all are joined so: a span whose parent is some other
   process's (a traced browser) came with a trace id the gateway could have logged. Each request
   names one span and each span one request, nearest starts first.

The join holds whichever arrives first. Spans written after their requests look the requests up
(``callers``, the ``RootCallers`` hook of ``clew.pipeline``); requests written after their spans
look the spans up and move the traces' cells from ``client`` to the gateway (``rename``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew import routes
from clew.pipeline import rollups
from clew.records import NodeKind
from clew.store import gateway_requests, route_aliases
from clew.store import spans as stored_spans

#: How far apart a gateway's clock and a service's may be for a time match.
SKEW_NS = 1_000_000_000
#: The longest a request is looked back for: a span began at most this long after its request.
LOOKBACK_NS = 60_000_000_000

# Positions in a span row (``Span`` column order).
_TRACE, _SPAN, _PARENT, _KIND, _START = 0, 1, 2, 5, 6
_METHOD, _ROUTE, _URL_PATH = 10, 11, 13
_MAY_BE_ROOTS = frozenset((0, 2))  # SpanKind UNSPECIFIED, SERVER

# Positions in a request row (``GatewayRequest`` column order).
_R_START, _R_GATEWAY, _R_METHOD, _R_PATH, _R_DURATION, _R_TRACE = 0, 1, 4, 6, 9, 14

_ANY_REQUEST = text("SELECT 1 FROM gateway_request_chunks LIMIT 1")
_ANY_SPAN = text("SELECT 1 FROM span_chunks LIMIT 1")

Names = dict[tuple[str, str], tuple[str, str]]


def any_spans(conn: Connection) -> bool:
    """Whether any span is stored (else no request has a root span to be joined to)."""
    return conn.execute(_ANY_SPAN).first() is not None


def any_requests(conn: Connection) -> bool:
    """Whether any gateway request is stored (else no span has a gateway to be joined to)."""
    return conn.execute(_ANY_REQUEST).first() is not None


def callers(conn: Connection, candidates: Sequence[tuple], extra: Sequence = ()) -> Names:
    """The gateway that logged the request of each candidate root span it knows:
    (trace id, span id) → (gateway, ``gateway``). ``candidates`` are span rows that may be roots
    (SERVER or kind-less); ``extra`` are requests not stored yet, taken as if they were.

    The pairs teach what the gateway's route templates are in the upstream's words: a span's
    ``http.route`` for the template of its request's path, kept in ``route_aliases``.

    Costs one query when no request is stored and ``extra`` is empty.
    """
    if not candidates or (not extra and not any_requests(conn)):
        return {}
    names: Names = {}
    aliases: set[route_aliases.Alias] = set()
    by_trace = _requests_by_trace(conn, {row[_TRACE] for row in candidates}, extra)
    untraced: list[tuple] = []
    for row in candidates:
        requests = by_trace.get(row[_TRACE])
        if requests:
            gateway, method, path = _nearest(row, requests)[1:]
            names[(row[_TRACE], row[_SPAN])] = (gateway, NodeKind.GATEWAY)
            _learn(aliases, row, gateway, method, path)
        elif row[_PARENT] is None and row[_METHOD] is not None and row[_URL_PATH] is not None:
            untraced.append(row)
    if untraced:
        timed = _timed(conn, untraced, extra)
        for row in untraced:
            request = timed.get((row[_TRACE], row[_SPAN]))
            if request is not None:
                names[(row[_TRACE], row[_SPAN])] = (request[_R_GATEWAY], NodeKind.GATEWAY)
                _learn(aliases, row, request[_R_GATEWAY], request[_R_METHOD], request[_R_PATH])
    if aliases:
        route_aliases.save(conn, aliases)
    return names


def _learn(
    aliases: set[route_aliases.Alias],
    span: tuple,
    gateway: str,
    method: str | None,
    path: str | None,
) -> None:
    """The alias a request and the span that served it teach, if the span knows its route and
    the gateway's template of the path differs from it. Only a span of the request itself (its
    method and path) teaches one: a trace's other server spans serve other requests."""
    route = span[_ROUTE]
    if not route or not method or path is None:
        return
    if span[_METHOD] != method or span[_URL_PATH] != path:
        return
    template = routes.template_of(path or "/")
    if template != route:
        aliases.add((gateway, method, template, route))


def _requests_by_trace(
    conn: Connection, trace_ids: set[str], extra: Sequence
) -> dict[str, list[tuple]]:
    """(start, gateway, method, path) of the requests that carried each trace id."""
    found: dict[str, list[tuple]] = {}
    for trace_id, rows in gateway_requests.by_trace_ids(conn, trace_ids).items():
        found[trace_id] = [(r[1], r[2], r[4], r[5]) for r in rows]
    for r in extra:
        if r[_R_TRACE] is not None and r[_R_TRACE] in trace_ids:
            found.setdefault(r[_R_TRACE], []).append(
                (r[_R_START], r[_R_GATEWAY], r[_R_METHOD], r[_R_PATH])
            )
    return found


def _nearest(span: tuple, requests: list[tuple]) -> tuple:
    """The request of a trace that is this span's, (start, gateway, method, path): the same
    method and path first, then the nearest start."""

    def distance(request: tuple) -> tuple[bool, int, str]:
        same = request[2] == span[_METHOD] and request[3] == span[_URL_PATH]
        return not same, abs(span[_START] - request[0]), request[1]

    return min(requests, key=distance)


def _timed(conn: Connection, spans: list[tuple], extra: Sequence) -> dict[tuple[str, str], tuple]:
    """Parentless spans joined by method, path and time to requests that carried no trace id:
    (trace id, span id) → the request."""
    since = min(row[_START] for row in spans) - LOOKBACK_NS
    until = max(row[_START] for row in spans) + SKEW_NS + 1
    wanted = {(row[_METHOD], row[_URL_PATH]) for row in spans}
    by_key: dict[tuple[str, str], list[tuple]] = {}
    stored = gateway_requests.in_window(conn, since, until)
    for r in (*stored, *extra):
        if r[_R_TRACE] is None and since <= r[_R_START] < until:
            key = (r[_R_METHOD], r[_R_PATH])
            if key in wanted:
                by_key.setdefault(key, []).append(r)
    return _pair_by_time(spans, by_key)


def _pair_by_time(
    spans: Iterable[tuple], by_key: dict[tuple[str, str], list]
) -> dict[tuple[str, str], tuple]:
    """One request per span and one span per request, nearest starts first, each span within its
    request's time (its start to its end, ``SKEW_NS`` either side): (trace id, span id) → the
    request."""
    pairs: list[tuple[int, tuple[str, str], int, tuple]] = []
    for row in spans:
        requests = by_key.get((row[_METHOD], row[_URL_PATH]))
        if not requests:
            continue
        start = row[_START]
        for r in requests:
            begun = r[_R_START]
            if begun - SKEW_NS <= start <= begun + (r[_R_DURATION] or 0) + SKEW_NS:
                pairs.append((abs(start - begun), (row[_TRACE], row[_SPAN]), id(r), r))
    pairs.sort(key=lambda pair: pair[:3])
    found: dict[tuple[str, str], tuple] = {}
    taken: set[int] = set()
    for _, key, request, row in pairs:
        if key not in found and request not in taken:
            found[key] = row
            taken.add(request)
    return found


def rename(
    conn: Connection, contributions: rollups.Contributions, requests: Sequence[Sequence]
) -> None:
    """Before ``requests`` are stored: the stored traces whose root spans they name move their
    cells (and failing paths) from the callers the store knew to the gateways, in
    ``contributions``. Spans stored later are joined as they are written (``callers``)."""
    if not any_spans(conn):
        return  # a store of access logs alone: nothing to join
    traced = {r[_R_TRACE] for r in requests if r[_R_TRACE] is not None}
    untraced = [r for r in requests if r[_R_TRACE] is None and r[_R_METHOD] and r[_R_PATH]]
    affected = set(traced)
    if untraced:
        keys = {(r[_R_METHOD], r[_R_PATH]) for r in untraced}
        since = min(r[_R_START] for r in untraced) - SKEW_NS
        until = max(r[_R_START] + (r[_R_DURATION] or 0) for r in untraced) + SKEW_NS + 1
        # A root span starts its trace's first chunk: look a little before for clock skew.
        for row in stored_spans.started_between(conn, since - SKEW_NS, until):
            if (
                row[_KIND] in _MAY_BE_ROOTS
                and row[_PARENT] is None
                and (row[_METHOD], row[_URL_PATH]) in keys
            ):
                affected.add(row[_TRACE])
    if not affected:
        return
    rows = stored_spans.of_traces(conn, affected)
    if not rows:
        return
    candidates = [row for row in rows if row[_KIND] in _MAY_BE_ROOTS]
    before = callers(conn, candidates)
    after = callers(conn, candidates, requests)
    moved = {key[0] for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    if not moved:
        return
    rows = [row for row in rows if row[_TRACE] in moved]
    change = rollups.Contributions(before)
    change.add(rows, -1)
    change.root_callers = after
    change.add(rows)
    contributions.merge(change)
