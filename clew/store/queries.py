"""Read queries over the rollups and the node table: what the graph, metrics and console stand on.

Every query here reads indexed rollups, never raw spans, so their cost follows the number of
edges and minutes in the window, not the number of spans.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import orjson
from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.engine import Connection

from clew.records import SERVICEGRAPH_SOURCE, SPANMETRICS_SOURCE
from clew.store import blocks, histogram, route_aliases, spans


@dataclass(frozen=True)
class Window:
    """A half-open range of epoch minutes; ``None`` leaves that side open."""

    since_minute: int | None = None
    until_minute: int | None = None

    def clause(self, column: str = "minute") -> tuple[str, dict[str, int]]:
        """A SQL condition on ``column`` and its bound parameters."""
        parts, params = ["1 = 1"], {}
        if self.since_minute is not None:
            parts.append(f"{column} >= :since_minute")
            params["since_minute"] = self.since_minute
        if self.until_minute is not None:
            parts.append(f"{column} < :until_minute")
            params["until_minute"] = self.until_minute
        return " AND ".join(parts), params


@dataclass
class EdgeTotals:
    """One edge over a window: counts, latency and its merged histogram."""

    client: str
    server: str
    connection_type: str
    sources: set[str] = field(default_factory=set)
    count: int = 0
    errors: int = 0
    client_errors: int = 0
    duration_sum_ns: int = 0
    duration_max_ns: int = 0
    histogram: dict[int, int] = field(default_factory=dict)
    #: Queue lag on topic → consumer edges: measured consumers, sum and histogram (ns).
    lag_count: int = 0
    lag_sum_ns: int = 0
    lag_histogram: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    namespace: str | None
    environment: str | None
    version: str | None
    parent: str | None = None  # the node this one belongs to: a topic's broker


_TOTALS_COLUMNS = (
    "client, server, connection_type, source, count, errors, client_errors, duration_sum_ns,"
    " duration_max_ns, histogram, lag_count, lag_sum_ns, lag_histogram"
)


def _add_stored(into: dict[str, int], text: str | bytes | None) -> None:
    """Add a stored histogram to one kept by the bucket's text: the keys are converted once per
    result, not once per row (the conversion cost more than the parse)."""
    if text:
        get = into.get
        for key, n in orjson.loads(text).items():
            into[key] = get(key, 0) + n


def _by_index(buckets: dict[str, int]) -> dict[int, int]:
    return {int(key): n for key, n in buckets.items()}


#: The rollup source of gateway access logs.
GATEWAY_SOURCE = "gateway"
#: The rollup sources of trace evidence: strict client/server pairs, and relaxed ones.
TRACE_SOURCES = ("trace", "trace_relaxed")
#: The rollup sources of a Collector's connector metrics (``clew.pipeline.metric_points``):
#: servicegraph's edges, and spanmetrics' endpoints served (their callers not named).
METRICS_SOURCES = (SERVICEGRAPH_SOURCE, SPANMETRICS_SOURCE)
#: The client of spanmetrics' cells, and of the share of an endpoint's calls that only they
#: saw: no evidence names who called.
UNATTRIBUTED = ""
#: The evidence families, in the order a tie between two is settled.
FAMILIES = ("gateway", "trace", "metrics")


def family(source: str) -> str:
    """The evidence family of a rollup source: ``gateway`` (access logs), ``metrics`` (connector
    metrics) or ``trace`` (strict and relaxed pairs of spans). Families may see the same
    requests, so they are never summed."""
    if source == GATEWAY_SOURCE:
        return "gateway"
    return "metrics" if source in METRICS_SOURCES else "trace"


def one_family(by_family: dict[str, EdgeTotals]) -> EdgeTotals:
    """One edge (or endpoint) seen by several families, counted once: by the family that saw
    more of its requests; on a tie the gateway's, then the traces'. A sampled trace stream sees
    fewer of the requests a gateway logs or a Collector's connectors count; a gateway whose log
    is missing for part of the window sees fewer than the traces. The edge keeps every source it
    was seen by, and the time a node in between adds where only another family measured it (a
    gateway's overhead, a topic's queue lag)."""
    if len(by_family) == 1:
        return next(iter(by_family.values()))
    ranked = sorted(by_family, key=lambda name: (-by_family[name].count, FAMILIES.index(name)))
    sources = set().union(*(totals.sources for totals in by_family.values()))
    chosen = replace(by_family[ranked[0]], sources=sources)
    for name in ("gateway", "trace"):  # a gateway's overhead first, then a topic's queue lag
        if name == ranked[0]:
            break
        measured = by_family.get(name)
        if measured is not None and measured.lag_count:
            chosen.lag_count = measured.lag_count
            chosen.lag_sum_ns = measured.lag_sum_ns
            chosen.lag_histogram = measured.lag_histogram
            break
    return chosen


def _through_topics(hops: Iterable[tuple[str, str, str, str]]) -> set[tuple[str, str]]:
    """(producer, consumer) of the messaging hops other families draw through a topic or broker
    node (producer → topic → consumer), from (client, server, connection type, family) keys.
    servicegraph draws the same messages as one edge producer → consumer; where a topic is
    known, its hops are drawn and that edge is not."""
    into: dict[str, set[str]] = {}
    out_of: dict[str, set[str]] = {}
    for client, server, ctype, kin in hops:
        if ctype == "messaging_system" and kin != "metrics":
            out_of.setdefault(server, set()).add(client)
            into.setdefault(client, set()).add(server)
    return {
        (producer, consumer)
        for topic in out_of.keys() & into.keys()
        for producer in out_of[topic]
        for consumer in into[topic]
    }


def edge_totals(conn: Connection, window: Window) -> list[EdgeTotals]:
    """Every edge with traffic in ``window``, histograms merged across minutes and endpoints.

    The window is read as whole rollup blocks where they fit and minute cells at its ragged ends
    (``clew.store.blocks.plan``), so its cost follows the number of edges, not of minutes. An edge
    that several families saw is counted once (``one_family``). spanmetrics' cells are no
    edges (their callers are not named): they are left to ``endpoint_totals``.
    """
    edges: dict[tuple[str, str, str, str], EdgeTotals] = {}
    merged: dict[tuple[str, str, str, str], tuple[dict[str, int], dict[str, int]]] = {}
    for length, start, end in blocks.plan(window.since_minute, window.until_minute):
        where, params = Window(start, end).clause()
        if length == 1:
            sql = f"SELECT {_TOTALS_COLUMNS} FROM edge_rollups WHERE {where}"
        else:
            sql = (
                f"SELECT {_TOTALS_COLUMNS} FROM edge_rollup_blocks"
                f" WHERE block_minutes = :block_minutes AND {where}"
            )
            params["block_minutes"] = length
        for (
            client,
            server,
            ctype,
            source,
            n,
            err,
            cerr,
            dsum,
            dmax,
            hist,
            lag_count,
            lag_sum,
            lag_hist,
        ) in conn.execute(text(sql), params):
            if source == SPANMETRICS_SOURCE:
                continue
            key = (client, server, ctype, family(source))
            edge = edges.get(key)
            if edge is None:
                edge = edges[key] = EdgeTotals(client, server, ctype)
                merged[key] = ({}, {})
            edge.sources.add(source)
            edge.count += n
            edge.errors += err
            edge.client_errors += cerr
            edge.duration_sum_ns += dsum
            if dmax > edge.duration_max_ns:
                edge.duration_max_ns = dmax
            buckets, lag_buckets = merged[key]
            _add_stored(buckets, hist)
            if lag_count:
                edge.lag_count += lag_count
                edge.lag_sum_ns += lag_sum
                _add_stored(lag_buckets, lag_hist)
    by_edge: dict[tuple[str, str, str], dict[str, EdgeTotals]] = {}
    drawn = _through_topics(edges)
    for key, (buckets, lag_buckets) in merged.items():
        if key[3] == "metrics" and key[2] == "messaging_system" and key[:2] in drawn:
            continue
        edge = edges[key]
        edge.histogram = _by_index(buckets)
        edge.lag_histogram = _by_index(lag_buckets)
        by_edge.setdefault(key[:3], {})[key[3]] = edge
    return [one_family(by_edge[key]) for key in sorted(by_edge)]


def nodes(conn: Connection) -> dict[str, Node]:
    """Every known node (instrumented services and virtual peers) by name."""
    rows = conn.execute(
        text(
            "SELECT name, kind, namespace, environment, version, parent FROM services ORDER BY name"
        )
    )
    return {row[0]: Node(*row) for row in rows}


def data_range(conn: Connection) -> tuple[int | None, int | None]:
    """The first and last minute that have rollups. Where retention has removed the minute tier
    of older days (``clew.store.retention``) and their hour blocks remain, the first is the
    first of those hours."""
    first, last = conn.execute(text("SELECT min(minute), max(minute) FROM edge_rollups")).one()
    hours = conn.execute(
        text("SELECT min(minute), max(minute) FROM edge_rollup_blocks WHERE block_minutes = 60")
    ).one()
    if hours[0] is not None and (first is None or hours[0] < first // 60 * 60):
        first = hours[0]
    if last is None and hours[1] is not None:
        last = hours[1] + 59
    return first, last


def _edge_clause(
    window: Window, client: str | None, server: str | None
) -> tuple[str, dict[str, int | str]]:
    """The SQL condition for cells of ``window``, from ``client`` and to ``server`` when given."""
    where, params = window.clause()
    conditions: dict[str, int | str] = dict(params)
    if client is not None:
        where += " AND client = :client"
        conditions["client"] = client
    if server is not None:
        where += " AND server = :server"
        conditions["server"] = server
    return where, conditions


@dataclass
class MinuteTotals:
    minute: int
    count: int
    errors: int
    histogram: dict[int, int]


def minute_series(
    conn: Connection, window: Window, client: str | None = None, server: str | None = None
) -> list[MinuteTotals]:
    """Per-minute totals over all edges, or over one edge when ``client``/``server`` are given;
    in each minute, an edge that several families saw is counted by one (``one_family``)."""
    where, params = _edge_clause(window, client, server)
    rows = conn.execute(
        text(
            "SELECT minute, client, server, connection_type, source, count, errors, histogram"
            f" FROM edge_rollups WHERE {where}"
        ),
        params,
    )
    # Per minute, edge and family first (histograms keyed by the buckets' text until merged);
    # the families are chosen between once all are read.
    cells: dict[tuple, EdgeTotals] = {}
    for minute, c, s, ctype, source, n, err, hist in rows:
        if source == SPANMETRICS_SOURCE:
            continue  # no edge: its callers are not named
        key = (minute, c, s, ctype, family(source))
        totals = cells.get(key)
        if totals is None:
            totals = cells[key] = EdgeTotals(c, s, ctype, {source})
        totals.count += n
        totals.errors += err
        _add_stored(totals.histogram, hist)  # type: ignore[arg-type]
    by_edge: dict[tuple, dict[str, EdgeTotals]] = {}
    drawn = _through_topics(key[1:] for key in cells)
    for key, totals in cells.items():
        if key[4] == "metrics" and key[3] == "messaging_system" and key[1:3] in drawn:
            continue
        by_edge.setdefault(key[:4], {})[key[4]] = totals
    series: dict[int, MinuteTotals] = {}
    buckets: dict[int, dict[str, int]] = {}
    for key, families in by_edge.items():
        chosen = one_family(families)
        minute = key[0]
        totals_of_minute = series.get(minute)
        if totals_of_minute is None:
            totals_of_minute = series[minute] = MinuteTotals(minute, 0, 0, {})
            buckets[minute] = {}
        totals_of_minute.count += chosen.count
        totals_of_minute.errors += chosen.errors
        into = buckets[minute]
        for bucket, n in chosen.histogram.items():
            into[bucket] = into.get(bucket, 0) + n  # type: ignore[index]
    for minute, into in buckets.items():
        series[minute].histogram = _by_index(into)
    return [series[m] for m in sorted(series)]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, now_ns: int) -> int:
    """Epoch ns from ``now``, ``3h``/``90m``/``2d`` (before now), ISO 8601 or epoch seconds.

    Raises ``ValueError`` naming the value when it is none of those.
    """
    from datetime import UTC, datetime

    value = value.strip()
    if value == "now":
        return now_ns
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now_ns - int(value[:-1]) * _UNITS[value[-1]] * 1_000_000_000
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use now, a duration before now (15m, 3h, 2d),"
            " ISO 8601 or epoch seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000_000)


def window_between(since: str | None, until: str | None, now_ns: int) -> Window:
    """The window from ``since`` to ``until`` (each optional), in whole minutes."""
    ns_per_minute = 60_000_000_000
    since_minute = parse_time(since, now_ns) // ns_per_minute if since else None
    until_minute = -(-parse_time(until, now_ns) // ns_per_minute) if until else None
    return Window(since_minute, until_minute)


def endpoint_totals(
    conn: Connection,
    window: Window,
    *,
    client: str | None = None,
    server: str | None = None,
    clients: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> list[tuple[str, EdgeTotals]]:
    """Per endpoint of the edges into ``server`` (from ``client``, or any of ``clients``, when
    given; of ``sources`` only, when given), in ``window``: (endpoint, its totals on one edge and
    connection type), sorted. A gateway's endpoint is named by its upstream's ``http.route``
    where a joined span taught it (``route_aliases``), and an endpoint several families saw on
    one edge is counted once (``one_family``).

    servicegraph's cells name no endpoint and are left out. spanmetrics' name no caller: where
    they saw more calls of a server's endpoint than the other families' callers did together,
    the difference is one more row whose client is ``UNATTRIBUTED`` (its errors and latency
    sum what spanmetrics counted beyond theirs, its histogram spanmetrics' own scaled to that
    many calls), so the callers the others name are kept and the endpoint's figures are
    spanmetrics'; else spanmetrics' cells are left out."""
    where, params = _edge_clause(window, client, server)
    if clients is not None:
        where += " AND client IN :clients"
        params["clients"] = list(clients)  # type: ignore[assignment]
    if sources is not None:
        where += " AND source IN :sources"
        params["sources"] = list(sources)  # type: ignore[assignment]
    statement = text(
        "SELECT client, server, connection_type, endpoint, source, count, errors,"
        " client_errors, duration_sum_ns, duration_max_ns, histogram"
        f" FROM edge_rollups WHERE {where}"
    )
    if clients is not None:
        statement = statement.bindparams(bindparam("clients", expanding=True))
    if sources is not None:
        statement = statement.bindparams(bindparam("sources", expanding=True))
    found: dict[tuple[str, str, str, str, str], EdgeTotals] = {}
    served: dict[tuple[str, str, str], EdgeTotals] = {}
    aliases: dict[tuple[str, str, str], str] | None = None
    for c, s, ctype, endpoint, source, n, err, cerr, dsum, dmax, hist in conn.execute(
        statement, params
    ):
        if source == SERVICEGRAPH_SOURCE:
            continue
        if source == SPANMETRICS_SOURCE:
            totals = served.get((s, endpoint, ctype))
            if totals is None:
                totals = served[(s, endpoint, ctype)] = EdgeTotals(UNATTRIBUTED, s, ctype)
            _add_row(totals, source, n, err, cerr, dsum, dmax, hist)
            continue
        if source == GATEWAY_SOURCE:
            if aliases is None:
                aliases = route_aliases.load(conn)
            endpoint = _aliased(aliases, s if ctype == "virtual_node" else c, endpoint)
        key = (c, s, ctype, endpoint, family(source))
        totals = found.get(key)
        if totals is None:
            totals = found[key] = EdgeTotals(c, s, ctype)
        _add_row(totals, source, n, err, cerr, dsum, dmax, hist)
    by_endpoint: dict[tuple[str, str, str, str], dict[str, EdgeTotals]] = {}
    for key, totals in found.items():
        by_endpoint.setdefault(key[:4], {})[key[4]] = totals
    chosen = {key: one_family(families) for key, families in by_endpoint.items()}
    if served:
        named: dict[tuple[str, str, bool], list[EdgeTotals]] = {}
        for (_, s, ctype, endpoint), totals in chosen.items():
            named.setdefault((s, endpoint, ctype == "messaging_system"), []).append(totals)
        for (s, endpoint, ctype), seen in served.items():
            rest = _unattributed(seen, named.get((s, endpoint, ctype == "messaging_system"), []))
            if rest is not None:
                chosen[(UNATTRIBUTED, s, ctype, endpoint)] = rest
    return [(key[3], chosen[key]) for key in sorted(chosen)]


def _add_row(
    totals: EdgeTotals,
    source: str,
    count: int,
    errors: int,
    client_errors: int,
    duration_sum: int,
    duration_max: int,
    stored_histogram: str | None,
) -> None:
    totals.sources.add(source)
    totals.count += count
    totals.errors += errors
    totals.client_errors += client_errors
    totals.duration_sum_ns += duration_sum
    totals.duration_max_ns = max(totals.duration_max_ns, duration_max)
    for index, n in histogram.loads(stored_histogram).items():
        totals.histogram[index] = totals.histogram.get(index, 0) + n


def _unattributed(seen: EdgeTotals, named: list[EdgeTotals]) -> EdgeTotals | None:
    """What spanmetrics saw of an endpoint (``seen``) beyond what the callers other families
    name saw (``named``), as a row of its own; None when it saw no more."""
    count = seen.count - sum(t.count for t in named)
    if count <= 0:
        return None
    rest = EdgeTotals(UNATTRIBUTED, seen.server, seen.connection_type, set(seen.sources))
    rest.count = count
    rest.errors = min(count, max(0, seen.errors - sum(t.errors for t in named)))
    rest.client_errors = min(
        count - rest.errors, max(0, seen.client_errors - sum(t.client_errors for t in named))
    )
    rest.duration_sum_ns = max(0, seen.duration_sum_ns - sum(t.duration_sum_ns for t in named))
    rest.duration_max_ns = seen.duration_max_ns
    rest.histogram = _scaled(seen.histogram, count)
    return rest


def _scaled(buckets: dict[int, int], count: int) -> dict[int, int]:
    """A histogram of the same shape holding ``count`` values (whole counts, largest remainders
    first; one that holds no more is kept as it is)."""
    total = sum(buckets.values())
    if total <= count:
        return dict(buckets)
    shares = {index: n * count / total for index, n in buckets.items()}
    out = {index: math.floor(share) for index, share in shares.items()}
    left = count - sum(out.values())
    for index in sorted(shares, key=lambda i: (out[i] - shares[i], i))[:left]:
        out[index] += 1
    return {index: n for index, n in out.items() if n}


def _aliased(aliases: dict[tuple[str, str, str], str], gateway: str, endpoint: str) -> str:
    """A gateway cell's endpoint named by the upstream's own route, where a joined span taught it
    (``route_aliases``); the gateway is the server of a consumer's cell, the client of an
    upstream's."""
    if not aliases or " " not in endpoint:
        return endpoint
    method, route = endpoint.split(" ", 1)
    known = aliases.get((gateway, method, route))
    return endpoint if known is None else f"{method} {known}"


@dataclass
class FailingPathTotals:
    """One failing path over a window: its traces, first and last failure and latest exemplar."""

    path_id: str
    entry_service: str
    entry_endpoint: str
    path: list[str]
    failing_client: str
    failing_server: str
    count: int
    first_seen_ns: int
    last_seen_ns: int
    exemplar_trace_id: str
    exemplar_span_id: str
    error: str | None


def failing_paths(conn: Connection, window: Window) -> list[FailingPathTotals]:
    """Every failing path with failures in ``window``, most failures first."""
    where, params = window.clause()
    rows = conn.execute(
        text(
            "SELECT path_id, entry_service, entry_endpoint, path, failing_client, failing_server,"
            " count, first_seen_ns, last_seen_ns, exemplar_trace_id, exemplar_span_id, error"
            f" FROM failing_paths WHERE {where}"
        ),
        params,
    )
    found: dict[str, FailingPathTotals] = {}
    for row in rows:
        totals = found.get(row[0])
        if totals is None:
            found[row[0]] = FailingPathTotals(
                row[0], row[1], row[2], orjson.loads(row[3]), *row[4:]
            )
            continue
        totals.count += row[6]
        totals.first_seen_ns = min(totals.first_seen_ns, row[7])
        if row[8] > totals.last_seen_ns:
            totals.last_seen_ns = row[8]
            totals.exemplar_trace_id, totals.exemplar_span_id, totals.error = row[9:12]
    return sorted(found.values(), key=lambda p: (-p.count, -p.last_seen_ns, p.path_id))


def trace_spans(conn: Connection, trace_id: str) -> list[tuple]:
    """Every stored span of one trace, in ``Span`` column order."""
    return spans.of_trace(conn, trace_id)


#: Times as the store keeps them (SQLite keeps them as text: typed, they come back as datetimes).
_WHEN = DateTime(timezone=True)


def sources(conn: Connection) -> list[dict]:
    """Every source read: its collector, how far it was read and when, what its latest run read
    and how fast, and how much of it is in quarantine; most recently read first."""
    quarantined = dict(
        conn.execute(text("SELECT source, count(*) FROM quarantine GROUP BY source")).all()
    )
    rows = conn.execute(
        text(
            'SELECT source, collector, "offset", size, updated_at, records, run_started_at,'
            " run_records FROM ingest_checkpoints ORDER BY updated_at DESC, source"
        ).columns(updated_at=_WHEN, run_started_at=_WHEN)
    ).all()
    found = []
    for source, collector, offset, size, updated_at, records, started_at, run_records in rows:
        seconds = (updated_at - started_at).total_seconds() if started_at else 0.0
        found.append(
            {
                "source": source,
                "collector": None if collector == "-" else collector,
                "offset": offset,
                "size": size,
                "last_read": updated_at,
                "records": records,
                "run_records": run_records,
                "rate": run_records / seconds if seconds > 0 else None,
                "quarantined": quarantined.get(source, 0),
            }
        )
    return found


def quarantine(conn: Connection, limit: int = 500) -> list[dict]:
    """The newest quarantined input: source, position, reason, excerpt and when."""
    rows = conn.execute(
        text(
            "SELECT source, position, reason, excerpt, created_at FROM quarantine"
            " ORDER BY created_at DESC, id DESC LIMIT :limit"
        ).columns(created_at=_WHEN),
        {"limit": limit},
    )
    return [
        {"source": s, "position": p, "reason": r, "excerpt": e, "created_at": c}
        for s, p, r, e, c in rows
    ]
