"""Failing integration paths: for each failing trace, the way from its entry operation to the span
where the failure began, kept as per-minute counts with an exemplar.

The failure begins at an erroring span none of whose children erred (callers that fail because
their callee failed are the echo, not the source). The path is the chain of nodes from the trace's
root span down to that span, one entry per change of service, ending at the uninstrumented peer when
the failing span is a client call that nothing answered. Its last hop is the failing edge; a failure
that begins in the entry service itself has the edge ``client → entry``.

Like edge cells, path cells are a function of a trace's set of spans and their counts are additive,
so ``Contributions.correct`` keeps them right when a trace arrives in pieces. A trace counts once
per distinct path it fails along. A cell's first and last failure cannot be subtracted: a change
carries the earliest and latest failure it adds and takes out (``clew.store.cells.settled``), and
where what it takes out may have been the cell's first or last, those are read back from the
cell's traces (``apply``). Failures at the same nanosecond are ordered by trace and span id, so
the exemplar does not depend on the order traces arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clew.records import ROOT_CALLER, SpanKind
from clew.store.cells import larger, settled, smaller

# Positions in a span row, as in ``clew.pipeline.rollups``.
TRACE, SPAN, PARENT, SERVICE, NAME, KIND, START = 0, 1, 2, 3, 4, 5, 6
STATUS, STATUS_MESSAGE, METHOD, ROUTE, HTTP_STATUS = 8, 9, 10, 11, 12
SERVER_ADDRESS, PEER_SERVICE, DB_SYSTEM, MESSAGING_SYSTEM = 14, 15, 16, 17

_NS_PER_MINUTE = 60_000_000_000
_ERROR = 2  # StatusCode.ERROR
_CALLERS = frozenset((SpanKind.CLIENT.value, SpanKind.PRODUCER.value))

#: A path cell's key: (minute, path id).
PathKey = tuple[int, str]


def failed(row: tuple) -> bool:
    """Whether a span erred: status ERROR, or an HTTP status of 500 or more."""
    return row[STATUS] == _ERROR or (row[HTTP_STATUS] or 0) >= 500


def error_text(row: tuple) -> str:
    """What a failing span says of its failure: its status message, else its HTTP status."""
    if row[STATUS_MESSAGE]:
        return row[STATUS_MESSAGE]
    if row[HTTP_STATUS]:
        return f"HTTP {row[HTTP_STATUS]}"
    return "status ERROR"


def endpoint_name(row: tuple) -> str:
    """A span's operation as the rollups name it: method and route, else the span name."""
    method, route = row[METHOD], row[ROUTE]
    if route is not None:
        return f"{method} {route}" if method is not None else route
    return row[NAME]


def path_id(entry_service: str, entry_endpoint: str, path: tuple[str, ...]) -> str:
    """The stable identity of a path: 16 hex digits of a digest of its entry and nodes."""
    digest = hashlib.blake2b(orjson.dumps([entry_service, entry_endpoint, *path]), digest_size=8)
    return digest.hexdigest()


#: A failure as path cells order it: (start, trace id, span id) of the span where it began.
Failure = tuple[int, str, str]
_NO_FAILURE: Failure = (0, "", "")


class PathCell:
    """Additive count of one path in one minute, and the extremes of the failures a change adds
    and takes out: the earliest start (``first_ns``, ``taken_first_ns``) and the latest failure
    (``latest``, ``taken_latest``: the exemplar, with its ``error``), each with how many failures
    are it (0: none)."""

    __slots__ = (
        "count",
        "entry_endpoint",
        "entry_service",
        "error",
        "failing_client",
        "failing_server",
        "first_count",
        "first_ns",
        "latest",
        "latest_count",
        "path",
        "taken_first_count",
        "taken_first_ns",
        "taken_latest",
        "taken_latest_count",
    )

    def __init__(self, entry: tuple[str, str], path: tuple[str, ...], edge: tuple[str, str]):
        self.entry_service, self.entry_endpoint = entry
        self.path = path
        self.failing_client, self.failing_server = edge
        self.count = 0
        self.first_ns = self.first_count = self.taken_first_ns = self.taken_first_count = 0
        self.latest = self.taken_latest = _NO_FAILURE
        self.latest_count = self.taken_latest_count = 0
        self.error: str | None = None

    def see(self, failure: Failure, error: str | None, sign: int) -> None:
        """A failure added (``sign`` > 0) or taken out; the latest one added is the exemplar."""
        if sign > 0:
            self.first_ns, self.first_count = smaller(
                self.first_ns, self.first_count, failure[0], sign
            )
            if not self.latest_count or failure > self.latest:
                self.error = error
            self.latest, self.latest_count = larger(self.latest, self.latest_count, failure, sign)
        else:
            self.taken_first_ns, self.taken_first_count = smaller(
                self.taken_first_ns, self.taken_first_count, failure[0], -sign
            )
            self.taken_latest, self.taken_latest_count = larger(
                self.taken_latest, self.taken_latest_count, failure, -sign
            )

    def absorb(self, other: PathCell) -> None:
        """Add another cell of the same key to this one."""
        self.count += other.count
        self.first_ns, self.first_count = smaller(
            self.first_ns, self.first_count, other.first_ns, other.first_count
        )
        if other.latest_count and (not self.latest_count or other.latest > self.latest):
            self.error = other.error
        self.latest, self.latest_count = larger(
            self.latest, self.latest_count, other.latest, other.latest_count
        )
        self.taken_first_ns, self.taken_first_count = smaller(
            self.taken_first_ns,
            self.taken_first_count,
            other.taken_first_ns,
            other.taken_first_count,
        )
        self.taken_latest, self.taken_latest_count = larger(
            self.taken_latest,
            self.taken_latest_count,
            other.taken_latest,
            other.taken_latest_count,
        )


def _peer(row: tuple) -> str | None:
    """The uninstrumented node a client span called, by the rollups' precedence."""
    for value in (row[PEER_SERVICE], row[SERVER_ADDRESS], row[DB_SYSTEM], row[MESSAGING_SYSTEM]):
        if value is not None:
            return value
    return None


def failure_chains(
    by_id: Mapping[tuple[str, str], tuple], children: Mapping[tuple[str, str], list[tuple]]
) -> Iterator[tuple[list[tuple], Sequence[tuple]]]:
    """Where failures begin, in ``by_id`` order: each erroring span none of whose children erred,
    with its chain of spans up to the top one present (itself first) and its children."""
    for row in by_id.values():
        if not failed(row):
            continue
        kids = children.get((row[TRACE], row[SPAN]), ())
        if any(failed(kid) for kid in kids):
            continue  # the failure began further down
        chain = [row]
        seen = {row[SPAN]}
        parent_id = row[PARENT]
        while parent_id is not None and parent_id not in seen:
            parent = by_id.get((row[TRACE], parent_id))
            if parent is None:
                break  # the rest of the trace is not here (yet): its top span stands as entry
            chain.append(parent)
            seen.add(parent_id)
            parent_id = parent[PARENT]
        yield chain, kids


def trace_paths(
    by_id: Mapping[tuple[str, str], tuple],
    children: Mapping[tuple[str, str], list[tuple]],
    root_callers: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> dict[tuple, tuple[tuple, tuple[str, str], str]]:
    """The failing paths of a set of whole traces' spans; ``root_callers`` names the callers of
    root spans that are known (see ``Contributions``), the rest are ``client``.

    Returns, per (trace id, entry, path, failing edge), the failing span that began it (the
    earliest, when several do) and the error it reports.
    """
    return chain_paths(failure_chains(by_id, children), root_callers)


def chain_paths(
    chains: Iterable[tuple[list[tuple], Sequence[tuple]]],
    root_callers: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> dict[tuple, tuple[tuple, tuple[str, str], str]]:
    """``trace_paths`` of the chains ``failure_chains`` gives (or the compiled rollups find)."""
    found: dict[tuple, tuple[tuple, tuple[str, str], str]] = {}
    for chain, kids in chains:
        row, root = chain[0], chain[-1]
        nodes: list[str] = []
        for span in reversed(chain):
            if not nodes or nodes[-1] != span[SERVICE]:
                nodes.append(span[SERVICE])
        if row[KIND] in _CALLERS and not any(k[SERVICE] != row[SERVICE] for k in kids):
            peer = _peer(row)
            if peer is not None and peer != nodes[-1]:
                nodes.append(peer)
        if len(nodes) > 1:
            edge = (nodes[-2], nodes[-1])
        else:
            named = root_callers.get((root[TRACE], root[SPAN])) if root_callers else None
            edge = (named[0] if named else ROOT_CALLER, nodes[0])
        entry = (root[SERVICE], endpoint_name(root))
        key = (row[TRACE], entry, tuple(nodes), edge)
        earlier = found.get(key)
        if earlier is None or row[START] < earlier[0][START]:
            found[key] = (row, edge, error_text(row))
    return found


class FailingPaths:
    """Path cells gathered from span rows, to be applied to the ``failing_paths`` table."""

    def __init__(self) -> None:
        self.cells: dict[PathKey, PathCell] = {}

    def __bool__(self) -> bool:
        return bool(self.cells)

    def add(
        self,
        by_id: Mapping[tuple[str, str], tuple],
        children: Mapping[tuple[str, str], list[tuple]],
        sign: int,
        root_callers: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    ) -> None:
        """Add (or with ``sign=-1`` take out) the failing paths of whole traces' spans."""
        self.add_chains(failure_chains(by_id, children), sign, root_callers)

    def add_chains(
        self,
        chains: Iterable[tuple[list[tuple], Sequence[tuple]]],
        sign: int,
        root_callers: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    ) -> None:
        """``add`` of the chains ``failure_chains`` gives (or the compiled rollups find)."""
        found = chain_paths(chains, root_callers)
        for (_, entry, nodes, edge), (row, _, error) in found.items():
            pid = path_id(entry[0], entry[1], nodes)
            key = (row[START] // _NS_PER_MINUTE, pid)
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = PathCell(entry, nodes, edge)
            cell.count += sign
            cell.see((row[START], row[TRACE], row[SPAN]), error, sign)

    def merge(self, other: FailingPaths) -> None:
        """Add another set of path cells to this one."""
        for key, theirs in other.cells.items():
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = PathCell(
                    (theirs.entry_service, theirs.entry_endpoint),
                    theirs.path,
                    (theirs.failing_client, theirs.failing_server),
                )
            cell.absorb(theirs)


_SELECT = text(
    "SELECT id, minute, path_id, count, first_seen_ns, last_seen_ns, exemplar_trace_id,"
    " exemplar_span_id, error FROM failing_paths WHERE minute IN :minutes"
).bindparams(bindparam("minutes", expanding=True))
_INSERT = text(
    "INSERT INTO failing_paths (minute, path_id, entry_service, entry_endpoint, path,"
    " failing_client, failing_server, count, first_seen_ns, last_seen_ns, exemplar_trace_id,"
    " exemplar_span_id, error) VALUES (:minute, :path_id, :entry_service, :entry_endpoint,"
    " :path, :failing_client, :failing_server, :count, :first_seen_ns, :last_seen_ns,"
    " :exemplar_trace_id, :exemplar_span_id, :error)"
)
_UPDATE = text(
    "UPDATE failing_paths SET count = :count, first_seen_ns = :first_seen_ns,"
    " last_seen_ns = :last_seen_ns, exemplar_trace_id = :exemplar_trace_id,"
    " exemplar_span_id = :exemplar_span_id, error = :error WHERE id = :id"
)
_DELETE = text("DELETE FROM failing_paths WHERE id = :id")


def apply(
    conn: Connection,
    paths: FailingPaths,
    read_back: Callable[[Iterable[int]], FailingPaths] | None = None,
) -> int:
    """Add path cells to the stored ones; returns rows written. Call inside the transaction that
    stores the spans they come from.

    ``read_back(minutes)`` gives the path cells of every stored trace with a span in those
    minutes (``clew.pipeline.rollups.read_back``): the first and last failure of a cell that a
    change may have taken them out of are taken from there. Without it (or should the cell not be
    there), they stay the earliest and latest known, as before the change.
    """
    if not paths.cells:
        return 0
    minutes = sorted({minute for minute, _ in paths.cells})
    stored: dict[PathKey, tuple] = {}
    for start in range(0, len(minutes), 500):
        for row in conn.execute(_SELECT, {"minutes": minutes[start : start + 500]}):
            stored[(row[1], row[2])] = tuple(row)
    inserts, updates, deletes = [], [], []
    merged: dict[PathKey, tuple[int, int | None, Failure | None, str | None]] = {}
    for key in sorted(paths.cells):
        delta = paths.cells[key]
        old = stored.get(key)
        count = delta.count + (old[3] if old is not None else 0)
        if count <= 0:
            if old is not None:
                deletes.append({"id": old[0]})
            continue
        old_latest = (old[5], old[6], old[7]) if old is not None else None
        first = settled(
            old[4] if old is not None else None,
            delta.first_ns,
            delta.first_count,
            delta.taken_first_ns,
            delta.taken_first_count,
            lowest=True,
        )
        latest = settled(
            old_latest,
            delta.latest,
            delta.latest_count,
            delta.taken_latest,
            delta.taken_latest_count,
        )
        error = old[8] if old is not None and latest == old_latest else delta.error
        merged[key] = (count, first, latest, error)
    unknown = [key for key, (_, first, latest, _) in merged.items() if None in (first, latest)]
    exact = read_back({minute for minute, _ in unknown}).cells if unknown and read_back else {}
    for key, (count, first, latest, error) in merged.items():
        if first is None or latest is None:
            first, latest, error = _known(key, stored.get(key), paths.cells[key], exact.get(key))
        values = {
            "count": count,
            "first_seen_ns": first,
            "last_seen_ns": latest[0],
            "exemplar_trace_id": latest[1],
            "exemplar_span_id": latest[2],
            "error": error,
        }
        old = stored.get(key)
        if old is None:
            delta = paths.cells[key]
            inserts.append(
                values
                | {
                    "minute": key[0],
                    "path_id": key[1],
                    "entry_service": delta.entry_service,
                    "entry_endpoint": delta.entry_endpoint,
                    "path": orjson.dumps(list(delta.path)).decode(),
                    "failing_client": delta.failing_client,
                    "failing_server": delta.failing_server,
                }
            )
        else:
            updates.append(values | {"id": old[0]})
    for statement, rows in ((_DELETE, deletes), (_UPDATE, updates), (_INSERT, inserts)):
        if rows:
            conn.execute(statement, rows)
    return len(inserts) + len(updates) + len(deletes)


def _known(
    key: PathKey, old: tuple | None, delta: PathCell, exact: PathCell | None
) -> tuple[int, Failure, str | None]:
    """A cell's first failure, latest failure and its error, from the cell as its traces give
    it (``exact``); failing that, the earliest and latest of the stored and added ones."""
    if exact is not None and exact.latest_count:
        return exact.first_ns, exact.latest, exact.error
    edge = (delta.failing_client, delta.failing_server)
    known = PathCell((delta.entry_service, delta.entry_endpoint), delta.path, edge)
    if old is not None:
        known.see((old[4], old[6], old[7]), old[8], 1)
        known.see((old[5], old[6], old[7]), old[8], 1)
    known.absorb(delta)
    return known.first_ns, known.latest, known.error
