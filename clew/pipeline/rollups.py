"""Edge rollups: spans paired into edges, kept as per-minute cells of additive counts.

Pairing follows Tempo's and the OpenTelemetry Collector's service-graph processors, per trace:

* a CLIENT (or PRODUCER) span whose child is a SERVER (or CONSUMER) span of another service gives
  the edge client service → server service (``direct``, or ``messaging_system``), once per child;
* a CLIENT/PRODUCER span with no such child gives an edge to a virtual node named by
  ``service.peer.name``, then ``server.address`` (or the network peer address), then the database or
  messaging system; databases and brokers get their kind;
* a SERVER span whose parent is not stored gets the virtual caller ``client``.

What the kinds leave unpaired is paired in the relaxed mode, recorded on the edge with the source
``trace_relaxed`` (Jaeger's and Zipkin's dependency links are drawn this way, whatever the kinds):

* a parent and its child in another service that are not a caller and its callee (a kind is
  missing, as in much Zipkin and Jaeger data, or the kinds do not match: a SERVER span whose
  parent is a SERVER span of another service, a CLIENT span under a CLIENT span) give the edge
  parent service → child service, once per child. A consumer that names its topic is not paired
  with its parent: it is drawn from its topic;
* a span without a kind that names its peer service (Zipkin's ``remoteEndpoint.serviceName``,
  OpenTracing's ``peer.service``) and has no child in another service gives an edge to that
  virtual node, as Zipkin's dependency linker treats it as a client;
* a root span without a kind gets the virtual caller ``client``.

A relaxed pair whose parent is not the call itself (not a CLIENT or PRODUCER span) takes its
latency, errors and HTTP status from the child alone: the parent's cover more than this call.

An edge counts in the minute of its client-side span (the server span for a root). Requests
report the caller's latency, messaging the consumer's processing time.

The rollups of a trace are a function of the set of its spans, ``contributions``, and every field
of a cell (count, errors, 4xx, duration sum, histogram buckets) is additive. Ingest therefore keeps
the invariant *stored cells = Σ contributions(stored spans of each trace)* incrementally: a batch
adds the contributions of its new traces, and for a trace that already had spans stored it adds
``contributions(old ∪ new) − contributions(old) − contributions(new)``, which moves, for example,
a virtual edge onto the real server once the server's span arrives. Late spans and re-runs give
the same rollups as one clean pass; ``rebuild`` recomputes them from the spans in one pass.

The largest duration of a cell (and a failing path's first and last failure) cannot be
subtracted. A change carries the extremes of what it adds and of what it takes out, with how many
values are each (``clew.store.cells.settled``), which settles the new maximum unless the change
took out the maximum itself; only then is it read back from the stored traces of the cell's minute
(``ReadBack``: a few cells a batch, where a trace split across writes held the maximum). So the
maxima too are those of one clean pass, wherever traces were split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import Connection

from clew import routes
from clew.pipeline import paths as failing_paths
from clew.records import ROOT_CALLER, ConnectionType, NodeKind, Span, SpanKind, StatusCode
from clew.store import blocks, executemany, histogram, spans
from clew.store.cells import Cell, applied
from clew.store.histogram import bucket_of

# Positions in a span row (a Span, or the same columns as a list or tuple).
(
    TRACE,
    SPAN,
    PARENT,
    SERVICE,
    NAME,
    KIND,
    START,
    DURATION,
    STATUS,
    _STATUS_MESSAGE,
    METHOD,
    ROUTE,
    HTTP_STATUS,
    _URL_PATH,
    SERVER_ADDRESS,
    PEER_SERVICE,
    DB_SYSTEM,
    MESSAGING_SYSTEM,
    MESSAGING_DESTINATION,
    RPC_SERVICE,
    RPC_METHOD,
    _ATTRIBUTES,
) = range(len(Span._fields))
_NS_PER_MINUTE = 60_000_000_000

_SERVER, _CLIENT, _PRODUCER, _CONSUMER = (
    SpanKind.SERVER.value,
    SpanKind.CLIENT.value,
    SpanKind.PRODUCER.value,
    SpanKind.CONSUMER.value,
)
_UNSPECIFIED = SpanKind.UNSPECIFIED.value
_CALLERS = frozenset((_CLIENT, _PRODUCER))
_ROOT_KINDS = frozenset((_SERVER, _UNSPECIFIED))  # an unspecified root: relaxed
_CALLEES = frozenset((_SERVER, _CONSUMER))
_SERVES = _CALLEES  # the kinds whose spans serve endpoints
_ERROR = 2  # StatusCode.ERROR

#: Rollup sources of trace evidence: strict client/server pairing, and pairs made in the relaxed
#: mode because a span kind was missing.
TRACE_SOURCE = "trace"
RELAXED = "trace_relaxed"
TRACE_SOURCES = (TRACE_SOURCE, RELAXED)
#: The rollup source of gateway access logs.
GATEWAY_SOURCE = "gateway"

# Positions in a gateway request row (a GatewayRequest, or the same columns as a tuple).
G_START, G_GATEWAY, G_CONSUMER, G_METHOD, G_PATH, G_ROUTE, G_STATUS = 0, 1, 2, 4, 6, 7, 8
G_DURATION, G_UPSTREAM_DURATION, G_UPSTREAM = 9, 10, 11

#: A cell's key: (minute, client, server, connection type, endpoint, source).
CellKey = tuple[int, str, str, str, str, str]


def load_native() -> Any:
    """The compiled ``add_by_id`` (``_contributions.c``), configured; None when it is not built
    (Clew installed without a C compiler)."""
    try:
        from clew.pipeline import _contributions
    except ImportError:
        return None
    _contributions.configure(
        cell=Cell,
        span=Span,
        int_enums=(SpanKind, StatusCode),
        root_caller=ROOT_CALLER,
        node_kinds=NodeKind,
        connection_types=ConnectionType,
        sources=(TRACE_SOURCE, RELAXED, GATEWAY_SOURCE),
        ns_per_minute=_NS_PER_MINUTE,
        log_gamma=histogram._LOG_GAMMA,
        zero_bucket=histogram.ZERO_BUCKET,
    )
    return _contributions


#: The compiled add_by_id that ``Contributions`` uses; None when it is not built or when
#: ``CLEW_NO_NATIVE`` is set (to anything but empty or ``0``): the Python code then does every call.
_native = None if os.environ.get("CLEW_NO_NATIVE", "") not in ("", "0") else load_native()


def compiled() -> bool:
    """Whether ``Contributions.add_by_id`` runs compiled."""
    return _native is not None


class Contributions:
    """Rollup cells, the virtual nodes their edges lead to and the endpoints seen serving."""

    def __init__(self, root_callers: Mapping[tuple[str, str], tuple[str, str]] | None = None):
        #: who called a root span, where something else knows (a gateway's log of the same
        #: request): (trace id, span id) → (caller node, its kind); the rest get ``client``
        self.root_callers = root_callers if root_callers is not None else {}
        self.cells: dict[CellKey, Cell] = {}
        #: virtual node → (its kind, the node it belongs to: a topic's broker)
        self.nodes: dict[str, tuple[str, str | None]] = {}
        #: (service, protocol, method, route) → [first start, last start]
        self.endpoints: dict[tuple[str, str, str, str], list[int]] = {}
        #: failing integration paths, per minute
        self.paths = failing_paths.FailingPaths()

    def __bool__(self) -> bool:
        return bool(self.cells or self.nodes or self.endpoints or self.paths)

    def _add(
        self,
        key: CellKey,
        side: tuple,
        error: bool,
        client_error: bool,
        sign: int,
        lag: int | None = None,
    ) -> None:
        self._count(key, side[DURATION], error, client_error, sign, lag)

    def _count(
        self,
        key: CellKey,
        duration: int,
        error: bool,
        client_error: bool,
        sign: int,
        lag: int | None = None,
    ) -> None:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        cell.count += sign
        if error:
            cell.errors += sign
        elif client_error:
            cell.client_errors += sign
        cell.duration_sum += sign * duration
        bucket = bucket_of(duration)
        cell.buckets[bucket] = cell.buckets.get(bucket, 0) + sign
        cell.see(duration, sign)
        if lag is not None:
            lag = max(lag, 0)  # clock skew can put a consumer before its producer
            cell.lag_count += sign
            cell.lag_sum += sign * lag
            bucket = bucket_of(lag)
            cell.lag_buckets[bucket] = cell.lag_buckets.get(bucket, 0) + sign

    def _node(self, name: str, kind: str, parent: str | None, sign: int) -> None:
        if sign > 0:
            self.nodes[name] = (kind, parent)

    def add(self, rows: Iterable[tuple], sign: int = 1) -> None:
        """Add (or, with ``sign=-1``, take out) the contributions of a set of span rows.

        Pairing never crosses traces, so any union of whole traces' spans may be passed at once.
        Rows are unique on (trace id, span id); the first of a repeated pair is kept.
        """
        by_id: dict[tuple[str, str], tuple] = {}
        for row in rows:
            by_id.setdefault((row[TRACE], row[SPAN]), row)
        self.add_by_id(by_id, sign)

    def add_by_id(self, by_id: Mapping[tuple[str, str], tuple], sign: int = 1) -> None:
        """``add`` for rows already keyed by (trace id, span id), as ``batches`` gathers them.

        The compiled twin does it when it is built, unless it hands the call back (rows of a shape
        it does not read exactly).
        """
        if _native is not None and _native.add_by_id(
            by_id,
            sign,
            self.root_callers,
            self.cells,
            self.nodes,
            self.endpoints,
            self.paths.add_chains,
        ):
            return
        self._add_by_id_python(by_id, sign)

    def _add_by_id_python(self, by_id: Mapping[tuple[str, str], tuple], sign: int = 1) -> None:
        """``add_by_id`` in Python: the compiled twin's reference, and its fallback."""
        children: dict[tuple[str, str], list[tuple]] = {}
        for row in by_id.values():
            parent_id = row[PARENT]
            if parent_id is not None:
                key = (row[TRACE], parent_id)
                kids = children.get(key)
                if kids is None:
                    children[key] = [row]
                else:
                    kids.append(row)
        self.paths.add(by_id, children, sign, self.root_callers)
        no_kids = ()
        for key, row in by_id.items():
            kind = row[KIND]
            kids = children.get(key, no_kids)
            if kind in _CALLERS and not (kind == _PRODUCER and _is_messaging(row)):
                self._caller(row, kids, sign)  # its relaxed pairs too
            else:
                if kind == _PRODUCER:
                    self._publish(row, sign)
                elif kind == _CONSUMER:
                    parent_id = row[PARENT]
                    parent = by_id.get((row[TRACE], parent_id)) if parent_id is not None else None
                    self._consume(row, parent, sign)
                elif kind in _ROOT_KINDS and (
                    row[PARENT] is None or (row[TRACE], row[PARENT]) not in by_id
                ):
                    self._root(row, sign, relaxed=kind == _UNSPECIFIED)
                paired = False
                for child in kids:
                    if child[SERVICE] != row[SERVICE] and not _drawn_from_topic(row, child):
                        paired = True
                        self._pair(row, child, sign, relaxed=True)
                if kind == _UNSPECIFIED and not paired and row[PEER_SERVICE] is not None:
                    self._virtual(row, row[PEER_SERVICE], sign, relaxed=True)
            if sign > 0 and kind in _SERVES:
                self._endpoint(row)  # only these serve endpoints

    def _pair(self, c: tuple, s: tuple, sign: int, relaxed: bool = False) -> None:
        """The edge of a caller span ``c`` and its instrumented child ``s`` in another service.

        Strict pairs report the caller's latency. A relaxed pair (kinds missing or not matching)
        is recorded as such; unless its parent is the call itself (a CLIENT or PRODUCER span),
        latency, errors and HTTP status are the child's alone.
        """
        producer = c[KIND] == _PRODUCER
        call = c[KIND] in _CALLERS
        http = s[HTTP_STATUS]
        if http is None:
            http = (c[HTTP_STATUS] if call else None) or 0
        failed = s[STATUS] == _ERROR or (call and c[STATUS] == _ERROR)
        key = (
            c[START] // _NS_PER_MINUTE,
            c[SERVICE],
            s[SERVICE],
            ConnectionType.MESSAGING if producer else ConnectionType.DIRECT,
            _endpoint_name(s),
            RELAXED if relaxed else TRACE_SOURCE,
        )
        side = s if producer or not call else c
        self._add(key, side, failed or http >= 500, 400 <= http <= 499, sign)

    def _caller(self, c: tuple, children: Iterable[tuple], sign: int) -> None:
        """A CLIENT (or PRODUCER) span: paired with each child in another service, else an edge
        to the virtual node its attributes name."""
        paired = False
        for s in children:
            kind = s[KIND]
            if s[SERVICE] == c[SERVICE]:
                # another instance of its own service answered: no edge, and no made-up peer
                paired = paired or kind in _CALLEES
                continue
            paired = True
            if kind == _CONSUMER and _is_messaging(s):
                pass  # the consumer's side draws topic → consumer
            elif kind in _CALLEES:
                self._pair(c, s, sign)
            else:  # no kind, or one a callee does not have (a CLIENT under a CLIENT)
                self._pair(c, s, sign, relaxed=True)
        if paired:
            return
        peer = _first(c[PEER_SERVICE], c[SERVER_ADDRESS], c[DB_SYSTEM], c[MESSAGING_SYSTEM])
        if peer is not None:
            self._virtual(c, peer, sign)

    def _virtual(self, c: tuple, peer: str, sign: int, relaxed: bool = False) -> None:
        """The edge of span ``c`` to the uninstrumented peer ``peer``, of the kind its database
        or messaging system says."""
        if c[DB_SYSTEM] is not None:
            ctype, node = ConnectionType.DATABASE, NodeKind.DATABASE
        elif c[MESSAGING_SYSTEM] is not None:
            ctype, node = ConnectionType.MESSAGING, NodeKind.BROKER
        else:
            ctype, node = ConnectionType.VIRTUAL, NodeKind.EXTERNAL
        http = c[HTTP_STATUS] or 0
        failed = c[STATUS] == _ERROR
        endpoint = c[MESSAGING_DESTINATION]
        if endpoint is None:
            endpoint = _endpoint_name(c)
        source = RELAXED if relaxed else TRACE_SOURCE
        key = (c[START] // _NS_PER_MINUTE, c[SERVICE], peer, ctype, endpoint, source)
        self._add(key, c, failed or http >= 500, 400 <= http <= 499, sign)
        self._node(peer, node, None, sign)

    def _publish(self, p: tuple, sign: int) -> None:
        """A producer span with messaging attributes: producer → topic (or broker)."""
        topic, _ = self._topic(p, sign)
        key = (p[START] // _NS_PER_MINUTE, p[SERVICE], topic, ConnectionType.MESSAGING)
        destination = p[MESSAGING_DESTINATION]
        endpoint = destination if destination is not None else _endpoint_name(p)
        self._add((*key, endpoint, TRACE_SOURCE), p, p[STATUS] == _ERROR, False, sign)

    def _consume(self, s: tuple, parent: tuple | None, sign: int) -> None:
        """A consumer span: topic (or broker) → consumer, with the queue lag when its producer
        span is known. Messaging attributes come from the consumer, else from its producer."""
        producer = parent if parent is not None and parent[KIND] == _PRODUCER else None
        named = s if _is_messaging(s) else producer
        if named is None or not _is_messaging(named):
            return  # no broker to draw: a producer parent pairs with it directly
        if producer is not None and not _is_messaging(producer):
            self._publish(_with_messaging(producer, named), sign)
        topic, _ = self._topic(named, sign)
        destination = named[MESSAGING_DESTINATION]
        endpoint = destination if destination is not None else _endpoint_name(s)
        lag = None
        if producer is not None:
            lag = s[START] - (producer[START] + producer[DURATION])
        http = s[HTTP_STATUS] or 0
        key = (
            s[START] // _NS_PER_MINUTE,
            topic,
            s[SERVICE],
            ConnectionType.MESSAGING,
            endpoint,
            TRACE_SOURCE,
        )
        self._add(key, s, s[STATUS] == _ERROR or http >= 500, False, sign, lag)

    def _topic(self, attrs: tuple, sign: int) -> tuple[str, str]:
        """The topic node (or the broker itself, when no destination is named) and the broker."""
        named = _first(attrs[MESSAGING_SYSTEM], attrs[PEER_SERVICE], attrs[SERVER_ADDRESS])
        broker = named or "broker"
        self._node(broker, NodeKind.BROKER, None, sign)
        destination = attrs[MESSAGING_DESTINATION]
        if destination is None:
            return broker, broker
        topic = f"{broker}/{destination}"
        self._node(topic, NodeKind.TOPIC, broker, sign)
        return topic, broker

    def link_lag(self, c: tuple, p: tuple) -> None:
        """The queue lag of a consumer span ``c`` linked to a producer span ``p`` in another
        trace (batch consumers link every message they take), on c's topic → consumer cell.

        Counted only for consumers that name their own topic, so the cell is theirs whatever
        else arrives later.
        """
        if c[KIND] != _CONSUMER or p[KIND] != _PRODUCER or not _is_messaging(c):
            return
        topic, _ = self._topic(c, 1)
        destination = c[MESSAGING_DESTINATION]
        endpoint = destination if destination is not None else _endpoint_name(c)
        key = (c[START] // _NS_PER_MINUTE, topic, c[SERVICE], ConnectionType.MESSAGING, endpoint)
        cell = self.cells.get((*key, TRACE_SOURCE))
        if cell is None:
            cell = self.cells[(*key, TRACE_SOURCE)] = Cell()
        lag = max(c[START] - (p[START] + p[DURATION]), 0)
        cell.lag_count += 1
        cell.lag_sum += lag
        bucket = bucket_of(lag)
        cell.lag_buckets[bucket] = cell.lag_buckets.get(bucket, 0) + 1

    def _root(self, s: tuple, sign: int, relaxed: bool = False) -> None:
        http = s[HTTP_STATUS] or 0
        failed = s[STATUS] == _ERROR
        minute = s[START] // _NS_PER_MINUTE
        named = self.root_callers.get((s[TRACE], s[SPAN]))
        caller, kind = named if named is not None else (ROOT_CALLER, NodeKind.CLIENT)
        key = (
            minute,
            caller,
            s[SERVICE],
            ConnectionType.VIRTUAL if named is None else ConnectionType.DIRECT,
            _endpoint_name(s),
            RELAXED if relaxed else TRACE_SOURCE,
        )
        self._add(key, s, failed or http >= 500, 400 <= http <= 499, sign)
        self._node(caller, kind, None, sign)

    def add_gateway(self, requests: Iterable[Sequence], sign: int = 1) -> None:
        """Add the contributions of requests a gateway logged: the edge consumer → gateway (the
        request as the gateway timed it) and gateway → upstream (the upstream's time where the
        log gives it), per route, with the source ``gateway``; the upstream's endpoints. Where
        the log gives both times, the gateway's overhead (the whole request less the upstream's
        part) is kept on the gateway → upstream cell in the columns a topic's queue lag uses.

        A request's route is the template the gateway names, else its path's (``clew.routes``).
        A consumer the log does not name is the virtual caller ``client``.
        """
        if (
            _native is not None
            and type(requests) is list
            and _native.add_gateway(
                requests, sign, self.cells, self.nodes, self.endpoints, routes.template_of
            )
        ):
            return
        self._add_gateway_python(requests, sign)

    def _add_gateway_python(self, requests: Iterable[Sequence], sign: int = 1) -> None:
        """``add_gateway`` in Python: the reference the compiled twin is tested against."""
        for request in requests:
            method, status = request[G_METHOD], request[G_STATUS] or 0
            route = request[G_ROUTE] or routes.template_of(request[G_PATH] or "/")
            endpoint = f"{method} {route}" if method is not None else route
            minute = request[G_START] // _NS_PER_MINUTE
            gateway, upstream = request[G_GATEWAY], request[G_UPSTREAM]
            consumer = request[G_CONSUMER] or ROOT_CALLER
            error, client_error = status >= 500, 400 <= status <= 499
            duration = request[G_DURATION] or 0
            key = (minute, consumer, gateway, ConnectionType.VIRTUAL, endpoint, GATEWAY_SOURCE)
            self._count(key, duration, error, client_error, sign)
            self._node(consumer, NodeKind.CLIENT, None, sign)
            self._node(gateway, NodeKind.GATEWAY, None, sign)
            if upstream is None:
                continue
            upstream_duration = request[G_UPSTREAM_DURATION]
            overhead = None  # the gateway's own time, where the log gives both
            if upstream_duration is None:
                upstream_duration = duration
            elif request[G_DURATION] is not None:
                overhead = duration - upstream_duration
            key = (minute, gateway, upstream, ConnectionType.DIRECT, endpoint, GATEWAY_SOURCE)
            self._count(key, upstream_duration, error, client_error, sign, overhead)
            self._node(upstream, NodeKind.SERVICE, None, sign)
            if sign > 0:
                seen = self.endpoints.get((upstream, "http", method or "ANY", route))
                start = request[G_START]
                if seen is None:
                    self.endpoints[(upstream, "http", method or "ANY", route)] = [start, start]
                else:
                    seen[0], seen[1] = min(seen[0], start), max(seen[1], start)

    def collapse_gateway_routes(self, cardinality: routes.Cardinality) -> None:
        """Gateway cells and endpoints templated further by ``cardinality`` (which learns from
        them): a segment position under one gateway and method with too many distinct literal
        values becomes ``{param}``. Distinct values are all cardinality counts, so each cell's
        route is shown to it once, not each request's; cells that come to share a key merge.

        The position is the gateway's for both of a request's edges (it is the server of the
        consumer's and the client of the upstream's), so both are templated alike. A route is
        seen at the latest minute of its cells: what cardinality keeps of when each position was
        last seen does not depend on where batches end.
        """
        changed: dict[tuple[str, str], str] = {}  # (method, route) → template, for endpoints
        templated: dict[tuple[str, str], str] = {}
        latest: dict[tuple[str, str], int] = {}
        for key in self.cells:
            if key[5] == GATEWAY_SOURCE:
                gateway = key[2] if key[3] == ConnectionType.VIRTUAL else key[1]
                latest[(gateway, key[4])] = max(key[0], latest.get((gateway, key[4]), key[0]))
        cells: dict[CellKey, Cell] = {}
        for key, cell in self.cells.items():
            if key[5] != GATEWAY_SOURCE:
                cells[key] = cell
                continue
            gateway = key[2] if key[3] == ConnectionType.VIRTUAL else key[1]
            endpoint = templated.get((gateway, key[4]))
            if endpoint is None:
                method, _, route = key[4].partition(" ") if " " in key[4] else ("", "", key[4])
                seen = latest[(gateway, key[4])]
                collapsed = cardinality.template(gateway, method or None, route, seen)
                endpoint = key[4]
                if collapsed != route:
                    endpoint = key[4][: len(key[4]) - len(route)] + collapsed
                    changed[(method or "ANY", route)] = collapsed
                templated[(gateway, key[4])] = endpoint
            new_key = key if endpoint == key[4] else (*key[:4], endpoint, key[5])
            into = cells.get(new_key)
            if into is None:
                cells[new_key] = cell
            else:
                into.add(cell)
        self.cells = cells
        if changed:
            endpoints: dict[tuple[str, str, str, str], list[int]] = {}
            for (service, protocol, method, route), (first, last) in self.endpoints.items():
                route = changed.get((method, route), route) if protocol == "http" else route
                seen = endpoints.setdefault((service, protocol, method, route), [first, last])
                seen[0], seen[1] = min(seen[0], first), max(seen[1], last)
            self.endpoints = endpoints

    def _endpoint(self, row: tuple) -> None:
        """Endpoints seen serving: HTTP by route, RPC by service and method, messaging by topic."""
        kind = row[KIND]
        if kind == _SERVER:
            if row[ROUTE] is not None:
                key = (row[SERVICE], "http", row[METHOD] or "ANY", row[ROUTE])
            elif row[RPC_SERVICE] is not None:
                key = (row[SERVICE], "rpc", row[RPC_METHOD] or row[NAME], row[RPC_SERVICE])
            else:
                return
        elif kind == _CONSUMER and row[MESSAGING_DESTINATION] is not None:
            key = (row[SERVICE], "messaging", "process", row[MESSAGING_DESTINATION])
        else:
            return
        start = row[START]
        seen = self.endpoints.get(key)
        if seen is None:
            self.endpoints[key] = [start, start]
        elif start < seen[0]:
            seen[0] = start
        elif start > seen[1]:
            seen[1] = start

    def merge(self, other: Contributions) -> None:
        """Add another set of contributions to this one."""
        for key, theirs in other.cells.items():
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = Cell()
            cell.add(theirs)
        self.nodes.update(other.nodes)
        self.paths.merge(other.paths)
        for key, (first, last) in other.endpoints.items():
            seen = self.endpoints.setdefault(key, [first, last])
            seen[0], seen[1] = min(seen[0], first), max(seen[1], last)

    def correct(self, old: list[tuple], new: list[tuple]) -> None:
        """Account for ``new`` spans joining the stored spans ``old`` of the same traces, when
        ``new`` has already been added on its own: + c(old ∪ new) − c(old) − c(new)."""
        self.add([*old, *new])  # old first: a stored span wins over a re-sent copy
        self.add(old, -1)
        self.add(new, -1)


def _is_messaging(row: tuple) -> bool:
    return row[MESSAGING_SYSTEM] is not None or row[MESSAGING_DESTINATION] is not None


def _drawn_from_topic(parent: tuple, child: tuple) -> bool:
    """Whether ``child`` is a consumer drawn from its topic (named by it or by its producer
    parent), so that pairing it with its parent as well would count it twice."""
    return child[KIND] == _CONSUMER and (_is_messaging(child) or parent[KIND] == _PRODUCER)


def _with_messaging(row: tuple, source: tuple) -> tuple:
    """``row`` with the messaging system and destination of ``source``."""
    out = list(row)
    out[MESSAGING_SYSTEM], out[MESSAGING_DESTINATION] = (
        source[MESSAGING_SYSTEM],
        source[MESSAGING_DESTINATION],
    )
    return tuple(out)


def _first(*values: str | None) -> str | None:
    """The first value that is not None (SQL's COALESCE: an empty string counts as a value)."""
    for value in values:
        if value is not None:
            return value
    return None


def _endpoint_name(row: tuple) -> str:
    method, route = row[METHOD], row[ROUTE]
    if route is not None:
        return f"{method} {route}" if method is not None else route
    return row[NAME]


_LINKS_TO = text(
    "SELECT trace_id, span_id, linked_trace_id, linked_span_id FROM span_links"
    " WHERE linked_trace_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _spans_by_id(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    if not keys:
        return {}
    return {
        (row[TRACE], row[SPAN]): row
        for row in spans.of_traces(conn, (trace for trace, _ in keys))
        if (row[TRACE], row[SPAN]) in keys
    }


def lag_rows(rows: Iterable[tuple], links: Iterable[tuple]) -> list[tuple]:
    """The rows queue lags through span links are measured from: producers, and spans that
    ``links`` start from."""
    linking = {(link[0], link[1]) for link in links}
    return [
        row
        for row in rows
        if row[KIND] == _PRODUCER or (linking and (row[TRACE], row[SPAN]) in linking)
    ]


def add_link_lags(
    conn: Connection, contributions: Contributions, new_rows: list, links: list
) -> None:
    """Queue lags of span links that ``new_rows`` complete: links of new consumer spans to
    producers stored or new, and links of stored consumers to new producers. Each pair counts
    once, in the batch that brings its second span. Call before the batch's links are stored.
    Only the ``lag_rows`` of ``new_rows`` are read, so passing just those is the same.
    """
    # Only the new rows that links start from and the new producers are ever looked up: the
    # dict holds those, not the whole batch.
    new = {(row[TRACE], row[SPAN]): row for row in lag_rows(new_rows, links)}
    pairs = [
        ((link[0], link[1]), (link[2], link[3])) for link in links if (link[0], link[1]) in new
    ]
    found = _spans_by_id(conn, {p for _, p in pairs if p not in new})
    for c, p in pairs:
        producer = new.get(p) or found.get(p)
        if producer is not None:
            contributions.link_lag(new[c], producer)
    producers = sorted({trace for (trace, _), row in new.items() if row[KIND] == _PRODUCER})
    waiting: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for start in range(0, len(producers), 500):
        for row in conn.execute(_LINKS_TO, {"ids": producers[start : start + 500]}):
            c, p = (row[0], row[1]), (row[2], row[3])
            if p in new and c not in new:
                waiting.append((c, p))
    consumers = _spans_by_id(conn, {c for c, _ in waiting})
    for c, p in waiting:
        if c in consumers:
            contributions.link_lag(consumers[c], new[p])


_SELECT_CELLS = text(
    "SELECT id, minute, client, server, connection_type, endpoint, source, count, errors,"
    " client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count, lag_sum_ns,"
    " lag_histogram FROM edge_rollups WHERE source IN :sources AND minute IN :minutes"
).bindparams(bindparam("minutes", expanding=True), bindparam("sources", expanding=True))

# Cells are written through the DBAPI cursor with positional rows: SQLAlchemy's ``text`` builds
# and binds a parameter dict per row, which cost more than the statements themselves.
_INSERT_CELL = (
    "INSERT INTO edge_rollups (minute, client, server, connection_type, endpoint, source, count,"
    " errors, client_errors, duration_sum_ns, duration_max_ns, histogram, lag_count,"
    " lag_sum_ns, lag_histogram) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_CELL = (
    "UPDATE edge_rollups SET count = ?, errors = ?, client_errors = ?, duration_sum_ns = ?,"
    " duration_max_ns = ?, histogram = ?, lag_count = ?, lag_sum_ns = ?, lag_histogram = ?"
    " WHERE id = ?"
)
_DELETE_CELL = "DELETE FROM edge_rollups WHERE id = ?"


_UPSERT_NODE = text(
    "INSERT INTO services (name, kind, parent) VALUES (:name, :kind, :parent)"
    " ON CONFLICT (name) DO UPDATE SET parent = COALESCE(services.parent, excluded.parent)"
)
_UPSERT_ENDPOINT = text(
    "INSERT INTO endpoints (service, protocol, method, route, first_seen_ns, last_seen_ns)"
    " VALUES (:service, :protocol, :method, :route, :first, :last)"
    " ON CONFLICT (service, protocol, method, route) DO UPDATE SET"
    " first_seen_ns = CASE WHEN excluded.first_seen_ns < endpoints.first_seen_ns"
    " THEN excluded.first_seen_ns ELSE endpoints.first_seen_ns END,"
    " last_seen_ns = CASE WHEN excluded.last_seen_ns > endpoints.last_seen_ns"
    " THEN excluded.last_seen_ns ELSE endpoints.last_seen_ns END"
)


#: Names the callers of root spans (``clew.pipeline.RootCallers``): given span rows that may be
#: roots, (trace id, span id) → (caller node, its kind) for those it knows.
Namer = Callable[[Connection, list[tuple]], dict[tuple[str, str], tuple[str, str]]]


class ReadBack:
    """The contributions of the stored traces with a span that started in given minutes: the
    cells asked for as whole traces make them, maxima included, and the failing paths of those
    minutes with their first and last failure. Traces are read once per minute, however often
    it is asked for (extremes do not mind a trace counted twice; the counts read back are not
    used).

    Naming root callers (``root_callers``) is most of a read-back's cost, so only the root spans
    that could count in a cell asked for are named: a root counts in the cell of its minute,
    service and endpoint whoever its caller is, and a failing path's first and last failure do
    not depend on its caller."""

    def __init__(self, conn: Connection, root_callers: Namer | None) -> None:
        self.conn = conn
        self.root_callers = root_callers
        self.contributions = Contributions()
        self.minutes: set[int] = set()

    def __call__(self, minutes: Iterable[int], cells: Iterable[CellKey] = ()) -> Contributions:
        wanted = sorted(set(minutes) - self.minutes)
        if wanted:
            self.minutes.update(wanted)
            rows = spans.of_traces(self.conn, _traces_in(self.conn, wanted))
            served = {(key[0], key[2], key[4]) for key in cells}
            roots = [
                row
                for row in rows
                if row[KIND] in _ROOT_KINDS
                and (row[START] // _NS_PER_MINUTE, row[SERVICE], _endpoint_name(row)) in served
            ]
            if self.root_callers is not None and roots:
                self.contributions.root_callers = self.root_callers(self.conn, roots)
            self.contributions.add(rows)
        return self.contributions


def _traces_in(conn: Connection, minutes: list[int]) -> set[str]:
    """The traces with a span that started in one of ``minutes`` (sorted), read a run of
    consecutive minutes at a time."""
    found: set[str] = set()
    run_start = previous = minutes[0]
    for minute in [*minutes[1:], None]:
        if minute is not None and minute == previous + 1:
            previous = minute
            continue
        since, until = run_start * _NS_PER_MINUTE, (previous + 1) * _NS_PER_MINUTE
        found.update(spans.traces_started_between(conn, since, until))
        if minute is not None:
            run_start = previous = minute
    return found


def apply(conn: Connection, contributions: Contributions, root_callers: Namer | None = None) -> int:
    """Add contributions to the stored rollups, nodes and endpoints; returns cells written.
    ``root_callers`` names the callers of root spans as the contributions were named (None:
    ``client`` for every root).

    A cell whose maximum (or a failing path whose first or last failure) the change may have
    taken out (``clew.store.cells.settled``) has it read back from the stored traces of its
    minute (``ReadBack``). Call inside the transaction that stores the spans they come from,
    after they are stored.
    """
    written = 0
    cells = contributions.cells
    read_back = ReadBack(conn, root_callers)
    if cells:
        minutes = sorted({key[0] for key in cells})
        sources = sorted({key[5] for key in cells})
        stored: dict[CellKey, tuple] = {}
        for start in range(0, len(minutes), 500):
            params = {"sources": sources, "minutes": minutes[start : start + 500]}
            for row in conn.execute(_SELECT_CELLS, params):
                stored[tuple(row[1:7])] = row  # type: ignore[index]
        changed: dict[CellKey, tuple] = {}
        deletes = []
        for key in sorted(cells):
            old = stored.get(key)
            values = applied(old[7:16] if old is not None else None, cells[key])
            if values is not None:
                changed[key] = values
            elif old is not None:
                deletes.append((old[0],))
        unknown = [key for key, values in changed.items() if values[4] is None]
        if unknown:
            exact = read_back({key[0] for key in unknown}, unknown).cells
            for key in unknown:
                old, values = stored.get(key), changed[key]
                longest = _longest(exact.get(key), old[11] if old is not None else 0, cells[key])
                changed[key] = (*values[:4], longest, *values[5:])
        inserts, updates = [], []
        for key, values in changed.items():
            old = stored.get(key)
            if old is None:
                inserts.append((*key, *values))
            else:
                updates.append((*values, old[0]))
        for statement, rows in ((_DELETE_CELL, deletes), (_UPDATE_CELL, updates)):
            if rows:
                executemany(conn, statement, rows)
        if inserts:
            executemany(conn, _INSERT_CELL, inserts)
        written = len(inserts) + len(updates) + len(deletes)
        written += blocks.apply(conn, cells)  # the 10-minute, hourly and daily sums
    if contributions.nodes:
        nodes = [
            {"name": name, "kind": kind, "parent": parent}
            for name, (kind, parent) in sorted(contributions.nodes.items())
        ]
        conn.execute(_UPSERT_NODE, nodes)
    if contributions.endpoints:
        endpoints = [
            {"service": s, "protocol": p, "method": m, "route": r, "first": f, "last": la}
            for (s, p, m, r), (f, la) in sorted(contributions.endpoints.items())
        ]
        conn.execute(_UPSERT_ENDPOINT, endpoints)

    def paths_of(minutes: Iterable[int]) -> failing_paths.FailingPaths:
        return read_back(minutes).paths

    return written + failing_paths.apply(conn, contributions.paths, paths_of)


def _longest(exact: Cell | None, stored: int, delta: Cell) -> int:
    """The maximum of a cell whose change may have taken it out, as the cell's traces give it;
    should they not give the cell (its cells and its traces disagree), the largest known."""
    if exact is not None and exact.max_count:
        return exact.duration_max
    return max(stored, delta.duration_max)


def linked_pairs(conn: Connection) -> Iterator[tuple[tuple, tuple]]:
    """Every stored span link whose two spans are both stored: (linking span, linked span)."""
    links = conn.execute(
        text("SELECT trace_id, span_id, linked_trace_id, linked_span_id FROM span_links")
    ).all()
    for start in range(0, len(links), 1_000):
        group = links[start : start + 1_000]
        wanted = {(link[0], link[1]) for link in group} | {(link[2], link[3]) for link in group}
        found = _spans_by_id(conn, wanted)
        for link in group:
            c, p = found.get((link[0], link[1])), found.get((link[2], link[3]))
            if c is not None and p is not None:
                yield c, p


def rebuild(
    engine: Engine,
    progress: Callable[[int, int], None] | None = None,
    root_callers: Callable[[Connection, list[tuple]], dict] | None = None,
) -> int:
    """Recompute every trace rollup from the stored spans; returns the cells written.
    ``root_callers`` names the callers of root spans, as it does for ingest.

    Spans are read a group of whole traces at a time, so memory holds one group plus the cells.
    The old rollups are replaced in the same transaction.
    """
    names: dict[tuple[str, str], tuple[str, str]] = {}
    contributions = Contributions(names)

    def add(chunk: list[tuple]) -> None:
        if root_callers is not None:
            names.update(root_callers(conn, [r for r in chunk if r[KIND] in _ROOT_KINDS]))
        contributions.add(chunk)

    with engine.connect() as conn:
        total = spans.count(conn)
        done = 0
        for chunk in spans.by_trace(conn):
            add(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
        for consumer, producer in linked_pairs(conn):
            contributions.link_lag(consumer, producer)
        if progress:
            progress(total, total)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM edge_rollups WHERE source IN :sources").bindparams(
                bindparam("sources", expanding=True)
            ),
            {"sources": list(TRACE_SOURCES)},
        )
        blocks.clear(conn, TRACE_SOURCES)
        conn.execute(text("DELETE FROM failing_paths"))
        return apply(conn, contributions)
