"""Connector metrics into the rollups: the OpenTelemetry Collector's servicegraph and spanmetrics
points (``collectors.otlp_metrics``) as minute cells of ``edge_rollups`` (and their blocks),
with the sources ``servicegraph`` and ``spanmetrics``, so that Clew can run on pre-aggregated
data where raw spans are too many.

**Deltas.** A delta point is counted as it is. A cumulative point is counted as its difference
from the last point of its series, which is kept in ``metric_series`` (receivers keep nothing in
memory: any number may run behind a load balancer, and every batch write takes the writers'
lock, so two never read the same last point). The series' start time is part of its key:

* a point no later than the last one counted (an export sent again, or overtaken) adds nothing;
* a counter, count or bucket that went down (the connector forgot an idle series and made it
  again) is a reset: the point counts whole, from zero;
* a point whose start time is new counts whole when the series was known under another start (the
  sender restarted), when its start is at most ``FRESH_NS`` before it (a new series), or when its
  sender (resource and scope) with the same start time was seen in an earlier export (servicegraph
  starts every series at the connector's start: a new edge appears under a known start).
  Otherwise it is a baseline and adds nothing, as Prometheus's ``rate()`` takes a first sample:
  a sender running for days when Clew first hears of it would put all those days in one minute;
* a delta point sent again (the same start and time as one of the last ``DELTA_MEMORY`` counted
  for its series) adds nothing.

A difference is counted in the minute of its point's time (the end of the interval it covers):
with the connectors' flush interval (15 to 60 s) a call lands at most a minute after the minute
its span started in. After an outage the whole gap counts in the minute of the first point
after it.

**What feeds what.** servicegraph gives edges: requests are the cell's count and failed requests
its errors, on the edge client → server of its connection type, with no endpoint (``""``). The
latency is the caller's (the client histogram), as traces report it, except where traces report
the callee's: a messaging edge (the consumer's processing) and a root edge whose client is the
virtual ``client`` (the server histogram: the connector has no client span there). spanmetrics
gives what its SERVER and CONSUMER spans served: per service and endpoint, with the caller not
named (``""``, ``clew.store.queries.UNATTRIBUTED``): its cells feed endpoint figures and the
inventory, never the map's edges (they say nothing of who called), and servicegraph's feed the
edges, never endpoints. Calls whose status is ERROR (or HTTP 5xx, where that is a dimension) are
errors, 4xx client errors. The two never meet, so the metric family never counts a call twice.
Against the trace and gateway families it is chosen, never summed (``clew.store.queries``).

**Histograms.** Explicit-bucket and exponential histograms become Clew's log buckets
(``clew.store.histogram.from_explicit``, ``from_exponential``): each bucket's count is spread
over the range it covers as ``histogram_quantile`` interpolates, counts whole and their total
exact. A percentile is then as precise as the sender's buckets allow (within the bucket that
holds it; servicegraph's default bounds are 2, 4, 6, 8, 10, 50, 100, 200, 400, 800 ms, 1, 1.4,
2, 5, 10, 15 s) plus Clew's 2 %; the sum is the sender's, exact; the maximum is the best bound
known: the largest value where the point gives it (a delta, or a cumulative maximum that grew),
else the upper bound of the highest bucket holding values (for the unbounded bucket, what the sum
leaves for it). Exemplars are not read: nothing in the store holds an exemplar per edge or
endpoint (failing paths hold a trace's path, which a metric does not know).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.pipeline import rollups
from clew.records import (
    HTTP_ENDPOINT,
    ROOT_CALLER,
    SERVICEGRAPH_SOURCE,
    ConnectionType,
    ExplicitBuckets,
    ExponentialBuckets,
    Measure,
    MetricPoint,
    NodeKind,
    Quarantined,
    Resource,
)
from clew.store import (
    executemany,
    histogram,
    insert_ignoring_duplicates,
    partitions,
    statistics,
    utcnow,
)
from clew.store.cells import Cell

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_SECOND = 1_000_000_000
#: A series first seen at most this long after its start is new: its whole value counts.
FRESH_NS = 10 * 60 * _NS_PER_SECOND
#: A sender counts as known for a point when it was first seen at least this long before it
#: (the points of one export carry times some microseconds apart).
_SAME_EXPORT_NS = _NS_PER_SECOND
#: How long the last point of a series is kept once its points stop (counted back from the
#: latest point written, or from now if that is earlier); then it is forgotten, and its next
#: point is a first one again.
KEEP_NS = 2 * 86_400 * _NS_PER_SECOND
#: How many counted points of a delta series are remembered, to count one sent again once.
DELTA_MEMORY = 32
#: The start time a delta series' row is kept under.
_DELTA_START = -1

Histogram = ExplicitBuckets | ExponentialBuckets


@dataclass
class MetricBatch:
    """The metric points of one request, the services their resources name, and the points
    quarantined, written in one transaction."""

    points: list[MetricPoint] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def span_count(self) -> int:
        """The points held: what the receiver's group commit weighs a batch by."""
        return len(self.points)

    def write(self, conn: Connection, source: str) -> tuple[int, int]:
        """Write the batch under the writers' lock; returns (points not counted before, rollup
        rows written). ``source`` names it in the quarantine."""
        partitions.take_writer_lock(conn)
        statistics.WRITERS.after_batch(conn)
        if self.resources:
            conn.execute(_UPSERT_SERVICE, [r._asdict() for r in self.resources.values()])
        counted = written = 0
        if self.points:
            counted, written = write_points(conn, self.points)
        if self.quarantined:
            now = utcnow()
            rows = [(source, q.position, q.reason, q.excerpt, now) for q in self.quarantined]
            columns = ("source", "position", "reason", "excerpt", "created_at")
            insert_ignoring_duplicates(conn, "quarantine", columns, rows)
        return counted, written


def write_points(conn: Connection, points: list[MetricPoint]) -> tuple[int, int]:
    """Count points into the rollups, each cumulative one as its difference from its series'
    last point, and keep the series' last points; returns (points not counted before, rollup
    rows written): a point sent again, or overtaken by a later one of its series, is a
    duplicate. The caller holds the writers' lock, in the transaction that writes them:
    the receiver's batch (``MetricBatch.write``), or a file's (``clew.pipeline.Batch.write``)."""
    contributions = rollups.Contributions()
    counted = _count(conn, points, contributions)
    return counted, rollups.apply(conn, contributions)


def gather(records: Iterable[MetricPoint | Resource | Quarantined]) -> MetricBatch:
    """Records of one request (``collectors.otlp_metrics``) as a batch."""
    batch = MetricBatch()
    for record in records:
        if type(record) is MetricPoint:
            batch.points.append(record)
        elif type(record) is Resource:
            batch.resources[record.service] = record
        elif type(record) is Quarantined:
            batch.quarantined.append(record)
    return batch


_UPSERT_SERVICE = text(
    "INSERT INTO services (name, kind, namespace, environment, version)"
    " VALUES (:service, 'service', :namespace, :environment, :version)"
    " ON CONFLICT (name) DO UPDATE SET kind = 'service',"
    " namespace = COALESCE(excluded.namespace, services.namespace),"
    " environment = COALESCE(excluded.environment, services.environment),"
    " version = COALESCE(excluded.version, services.version)"
)


# --- Deltas ----------------------------------------------------------------------------------


@dataclass
class _Series:
    """One row of ``metric_series``, as read and as the batch leaves it."""

    id: int | None
    sender: str
    first_ns: int
    time_ns: int
    state: dict[str, Any]
    changed: bool = False


_SELECT_SERIES = text(
    "SELECT id, series, start_ns, sender, first_ns, time_ns, state FROM metric_series"
    " WHERE series IN :series"
).bindparams(bindparam("series", expanding=True))
#: A row the sender made with that start before a time: one is enough (the index finds the
#: sender's rows, and the first one read is almost always old).
_SENDER_SEEN = text(
    "SELECT first_ns FROM metric_series WHERE sender = :sender AND start_ns = :start"
    " AND first_ns <= :before LIMIT 1"
)
_INSERT_SERIES = (
    "INSERT INTO metric_series (series, start_ns, sender, first_ns, time_ns, state)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_UPDATE_SERIES = "UPDATE metric_series SET time_ns = ?, state = ? WHERE id = ?"
_PRUNE = text("DELETE FROM metric_series WHERE time_ns < :before")


def _count(
    conn: Connection, points: list[MetricPoint], contributions: rollups.Contributions
) -> int:
    """Add what each point adds to ``contributions`` and keep the series' last points; returns
    how many points were not counted before (sent again, or overtaken)."""
    names = sorted({p.series for p in points})
    known: dict[tuple[str, int], _Series] = {}
    starts: dict[str, set[int]] = {}
    for at in range(0, len(names), 500):
        for row in conn.execute(_SELECT_SERIES, {"series": names[at : at + 500]}):
            known[(row[1], row[2])] = _Series(row[0], row[3], row[4], row[5], orjson.loads(row[6]))
            starts.setdefault(row[1], set()).add(row[2])
    # Whether the sender of a series not seen yet was seen with the same start in an earlier
    # export: asked once per sender and start, only for such series (a new edge, a restart).
    earliest: dict[tuple[str, int], int] = {}
    for p in points:
        if p.cumulative and (p.series, p.start_ns) not in known:
            key = (p.sender, p.start_ns)
            earliest[key] = min(p.time_ns, earliest.get(key, p.time_ns))
    senders: dict[tuple[str, int], int] = {}
    for (sender, start), time_ns in sorted(earliest.items()):
        params = {"sender": sender, "start": start, "before": time_ns - _SAME_EXPORT_NS}
        first_ns = conn.execute(_SENDER_SEEN, params).scalar()
        if first_ns is not None:
            senders[(sender, start)] = first_ns
    taken = 0
    # In time order: a request (a file's batch) may carry several exports of one series.
    for point in sorted(points, key=lambda p: (p.time_ns, p.series)):
        if point.cumulative:
            again, added = _cumulative(point, known, starts, senders)
        else:
            again, added = _delta(point, known)
        taken += not again
        if added is not None:
            _contribute(contributions, point, *added)
    inserts, updates = [], []
    for (name, start), series in known.items():
        if not series.changed:
            continue
        state = orjson.dumps(series.state).decode()
        if series.id is None:
            inserts.append((name, start, series.sender, series.first_ns, series.time_ns, state))
        else:
            updates.append((series.time_ns, state, series.id))
    if updates:
        executemany(conn, _UPDATE_SERIES, updates)
    if inserts:
        executemany(conn, _INSERT_SERIES, inserts)
    # Series idle for KEEP_NS are forgotten: counted back from the latest point, or from now
    # should a sender's clock run ahead (it would take every other sender's series with it).
    latest = min(max(p.time_ns for p in points), time.time_ns())
    conn.execute(_PRUNE, {"before": latest - KEEP_NS})
    return taken


#: What a point adds: its value and histogram, or None (a baseline, a zero); and before it,
#: whether the point was counted before (sent again, or overtaken by a later one).
Added = tuple[bool, tuple[int, Histogram | None] | None]


def _cumulative(
    point: MetricPoint,
    known: dict[tuple[str, int], _Series],
    starts: dict[str, set[int]],
    senders: dict[tuple[str, int], int],
) -> Added:
    """What a cumulative point adds (its value, its histogram); its series' row kept."""
    key = (point.series, point.start_ns)
    series = known.get(key)
    if series is None:
        first_seen = senders.get((point.sender, point.start_ns))
        whole = (
            bool(starts.get(point.series, set()) - {_DELTA_START})  # restarted
            or 0 < point.start_ns <= point.time_ns <= point.start_ns + FRESH_NS  # new
            or (first_seen is not None and first_seen <= point.time_ns - _SAME_EXPORT_NS)
        )
        known[key] = _Series(None, point.sender, point.time_ns, point.time_ns, _state_of(point))
        known[key].changed = True
        starts.setdefault(point.series, set()).add(point.start_ns)
        senders.setdefault((point.sender, point.start_ns), point.time_ns)
        return False, (point.value, point.histogram) if whole else None
    if point.time_ns <= series.time_ns:
        return True, None  # sent again, or overtaken by a later point already counted
    added = _difference(point, series.state)
    series.time_ns, series.state, series.changed = point.time_ns, _state_of(point), True
    return False, added if added is not None else (point.value, point.histogram)  # else a reset


def _delta(point: MetricPoint, known: dict[tuple[str, int], _Series]) -> Added:
    """What a delta point adds: all of it, unless it was counted before."""
    key = (point.series, _DELTA_START)
    series = known.get(key)
    if series is None:
        series = known[key] = _Series(
            None, point.sender, point.time_ns, point.time_ns, {"seen": []}
        )
    seen: list[list[int]] = series.state["seen"]
    interval = [point.start_ns, point.time_ns]
    if interval in seen:
        return True, None
    seen.append(interval)
    seen.sort(key=lambda pair: pair[1])
    del seen[:-DELTA_MEMORY]
    series.time_ns = max(series.time_ns, point.time_ns)
    series.changed = True
    return False, (point.value, point.histogram)


def _state_of(point: MetricPoint) -> dict[str, Any]:
    """What is kept of a cumulative point to count the next one from."""
    h = point.histogram
    if h is None:
        return {"value": point.value}
    state = {"count": h.count, "sum": h.sum_ns, "min": h.min_ns, "max": h.max_ns}
    if isinstance(h, ExplicitBuckets):
        return state | {"bounds": list(h.bounds_ns), "counts": list(h.counts)}
    return state | {
        "scale": h.scale,
        "unit": h.unit_ns,
        "zero": h.zero_count,
        "threshold": h.zero_threshold_ns,
        "offset": h.offset,
        "counts": list(h.counts),
    }


def _difference(point: MetricPoint, old: dict[str, Any]) -> tuple[int, Histogram | None] | None:
    """A cumulative point less the one before it; None when the series was reset in between
    (anything went down, or the buckets changed shape)."""
    h = point.histogram
    if h is None:
        if "value" not in old or point.value < old["value"]:
            return None
        return point.value - old["value"], None
    if "count" not in old or h.count < old["count"]:
        return None
    if isinstance(h, ExplicitBuckets):
        difference = _explicit_difference(h, old)
    else:
        difference = _exponential_difference(h, old)
    return None if difference is None else (difference.count, difference)


def _extremes(h: Histogram, old: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """The sum, smallest and largest value of what was added since ``old``, where known: a
    cumulative minimum (maximum) that moved is a value added since."""
    total = None
    if h.sum_ns is not None and old.get("sum") is not None and h.sum_ns >= old["sum"]:
        total = h.sum_ns - old["sum"]
    before_min, before_max = old.get("min"), old.get("max")
    lowest = highest = None
    if h.min_ns is not None and (before_min is None or h.min_ns < before_min):
        lowest = h.min_ns
    if h.max_ns is not None and (before_max is None or h.max_ns > before_max):
        highest = h.max_ns
    return total, lowest, highest


def _explicit_difference(h: ExplicitBuckets, old: dict[str, Any]) -> ExplicitBuckets | None:
    if "bounds" not in old or list(h.bounds_ns) != old["bounds"]:
        return None
    if len(h.counts) != len(old["counts"]):
        return None
    counts = tuple(new - before for new, before in zip(h.counts, old["counts"], strict=True))
    if any(n < 0 for n in counts):
        return None
    return ExplicitBuckets(h.count - old["count"], *_extremes(h, old), h.bounds_ns, counts)


def _exponential_difference(
    h: ExponentialBuckets, old: dict[str, Any]
) -> ExponentialBuckets | None:
    # A cumulative exponential histogram only ever coarsens: its earlier buckets are merged to
    # its scale now (index >> the difference) and taken off.
    if "scale" not in old or h.scale > old["scale"] or h.zero_threshold_ns != old["threshold"]:
        return None
    shift = old["scale"] - h.scale
    before: dict[int, int] = {}
    for i, n in enumerate(old["counts"]):
        index = (old["offset"] + i) >> shift
        before[index] = before.get(index, 0) + n
    counts = [n - before.pop(h.offset + i, 0) for i, n in enumerate(h.counts)]
    zero = h.zero_count - old["zero"]
    if any(before.values()) or zero < 0 or any(n < 0 for n in counts):
        return None
    return ExponentialBuckets(
        h.count - old["count"],
        *_extremes(h, old),
        h.scale,
        h.unit_ns,
        zero,
        h.zero_threshold_ns,
        h.offset,
        tuple(counts),
    )


# --- Cells -----------------------------------------------------------------------------------


def _contribute(
    contributions: rollups.Contributions,
    point: MetricPoint,
    value: int,
    added: Histogram | None,
) -> None:
    """Add what a point added to its cell, and its nodes or endpoint, unless it added nothing
    the cell reports (a zero, or the latency of the edge's other side)."""
    measure = point.measure
    if measure in (Measure.REQUESTS, Measure.FAILED):
        if not value:
            return
    elif added is None or not added.count or not _latency_of_cell(point):
        return
    minute = point.time_ns // _NS_PER_MINUTE
    key = (minute, point.client, point.server, point.connection_type, point.endpoint, point.source)
    cell = contributions.cells.get(key)
    if cell is None:
        cell = contributions.cells[key] = Cell()
    if measure == Measure.REQUESTS:
        cell.count += value
        if point.failed:
            cell.errors += value
        elif point.client_error:
            cell.client_errors += value
    elif measure == Measure.FAILED:
        cell.errors += value
    elif added is not None:
        _add_histogram(cell, added)
    if point.source == SERVICEGRAPH_SOURCE:
        client_kind = NodeKind.CLIENT if point.virtual == "client" else NodeKind.SERVICE
        if point.connection_type == ConnectionType.DATABASE:
            server_kind = NodeKind.DATABASE
        elif point.virtual == "server":
            server_kind = NodeKind.EXTERNAL
        else:
            server_kind = NodeKind.SERVICE
        contributions.nodes.setdefault(point.client, (client_kind, None))
        contributions.nodes.setdefault(point.server, (server_kind, None))
    else:
        contributions.nodes.setdefault(point.server, (NodeKind.SERVICE, None))
        if measure == Measure.REQUESTS:
            _served(contributions, point)


def _latency_of_cell(point: MetricPoint) -> bool:
    """Whether the point's histogram is the latency its cell reports: servicegraph measures both
    sides of an edge, and Clew reports the caller's (the callee's on messaging edges and edges
    from the virtual ``client``, as traces do)."""
    if point.measure == Measure.LATENCY:
        return True
    callee = point.connection_type == ConnectionType.MESSAGING or point.client == ROOT_CALLER
    wanted = Measure.SERVER_LATENCY if callee else Measure.CLIENT_LATENCY
    return point.measure == wanted


def _add_histogram(cell: Cell, h: Histogram) -> None:
    if isinstance(h, ExplicitBuckets):
        buckets = histogram.from_explicit(h.bounds_ns, h.counts, h.min_ns, h.max_ns)
    else:
        buckets = histogram.from_exponential(
            h.scale,
            h.offset,
            h.counts,
            h.unit_ns,
            h.zero_count,
            h.zero_threshold_ns,
            h.min_ns,
            h.max_ns,
        )
    for index, n in buckets.items():
        cell.buckets[index] = cell.buckets.get(index, 0) + n
    if h.sum_ns is not None:
        cell.duration_sum += round(h.sum_ns)
    else:  # the sender left the sum out: the buckets' estimate of it
        cell.duration_sum += round(sum(histogram.bucket_value(i) * n for i, n in buckets.items()))
    longest = _longest(h)
    if longest is not None:
        cell.see(math.ceil(longest), 1)


def _longest(h: Histogram) -> float | None:
    """The best bound known on the largest value a histogram holds: the value itself where it is
    given, else the upper bound of its highest bucket that holds values; for the unbounded
    bucket, the sum less the least the other values can be."""
    if h.max_ns is not None:
        return h.max_ns
    if isinstance(h, ExponentialBuckets):
        top = max((i for i, n in enumerate(h.counts) if n), default=None)
        if top is None:
            return h.zero_threshold_ns if h.zero_count else None
        return math.exp((h.offset + top + 1) * math.ldexp(math.log(2.0), -h.scale)) * h.unit_ns
    top = max((i for i, n in enumerate(h.counts) if n), default=None)
    if top is None:
        return None
    if top < len(h.bounds_ns):
        return h.bounds_ns[top]
    floor = h.bounds_ns[-1] if h.bounds_ns else 0.0
    if h.sum_ns is None:
        return floor
    least_of_others = (
        sum(n * (h.bounds_ns[i - 1] if i > 0 else 0.0) for i, n in enumerate(h.counts)) - floor
    )
    return max(floor, h.sum_ns - least_of_others)


def _served(contributions: rollups.Contributions, point: MetricPoint) -> None:
    """The endpoint a spanmetrics point's spans served, seen at its time."""
    if point.connection_type == ConnectionType.MESSAGING:
        key = (point.server, "messaging", "process", point.endpoint)
    elif match := HTTP_ENDPOINT.match(point.endpoint):
        key = (point.server, "http", match.group(1), match.group(2))
    else:
        return  # an RPC method or a span name: no route to list
    seen = contributions.endpoints.get(key)
    if seen is None:
        contributions.endpoints[key] = [point.time_ns, point.time_ns]
    else:
        seen[0], seen[1] = min(seen[0], point.time_ns), max(seen[1], point.time_ns)
