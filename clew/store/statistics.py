"""The planner's statistics of the tables the writers fill, kept fresh by the writers themselves
(PostgreSQL).

A batch looks up the stored spans of its traces by trace id (``clew.store.spans.of_traces``). On a
day partition PostgreSQL has not analyzed yet, the planner knows nothing of how many rows one id
matches, takes a few hundred ids for most of the table and reads all of it: measured on a store
of four million spans in one day, 91 ms a lookup against 1.8 ms once analyzed, and an ingest
slowing by a third with every million spans stored. Autovacuum analyzes a table once a tenth of
it has changed, but only if it runs, every minute at most, and never within a bulk load that
makes a day's partition in one go: what PostgreSQL's documentation says to follow with
``ANALYZE``.

So every ``CHECK_EVERY`` batches a writer asks which of those tables have changed by more than
``THRESHOLD`` rows and ``SHARE`` of their size since they were last analyzed (by anyone), and
analyzes them in its transaction: a table growing from nothing is analyzed some forty times on its
way to ten million rows, each a sample of 30,000 rows (tens of milliseconds: the span data itself
lies out of line). ``ANALYZE`` takes a lock that inserts do not wait for. SQLite needs none of it:
its planner uses the index whatever it knows.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from clew.store import partitions

#: Batches a writer stores between two looks at the tables' changes.
CHECK_EVERY = 16
#: A table is analyzed once more than THRESHOLD + SHARE × its rows have changed.
THRESHOLD = 1_000
SHARE = 0.2
#: The tables the writers fill and look rows up in: the raw tables' day partitions, the rollups.
_TABLES = ("edge_rollups", "edge_rollup_blocks", "failing_paths", "metric_series")
_PARTITIONS = "^(" + "|".join(partitions.RAW_TABLES) + ")_d[0-9]{8}$"

_STALE = text(
    "SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
    " WHERE c.relkind = 'r' AND (c.relname = ANY(CAST(:tables AS text[])) OR c.relname ~ :parts)"
    " AND s.n_mod_since_analyze > :threshold + :share * greatest(c.reltuples, 0)"
    " ORDER BY c.relname"
)


class Freshness:
    """One writer's count of batches since it last looked (a process may hold several)."""

    def __init__(self) -> None:
        self.batches = 0

    def after_batch(self, conn: Connection) -> list[str]:
        """Count a batch about to commit; every ``CHECK_EVERY``, analyze what has changed
        enough. Returns the tables analyzed."""
        if conn.dialect.name != "postgresql":
            return []
        self.batches += 1
        if self.batches % CHECK_EVERY != 1:
            return []
        return analyze_stale(conn)


def analyze_stale(conn: Connection) -> list[str]:
    """Analyze the writers' tables that have changed enough since they were last analyzed;
    returns their names."""
    params = {"tables": list(_TABLES), "parts": _PARTITIONS}
    stale = conn.execute(_STALE, params | {"threshold": THRESHOLD, "share": SHARE}).scalars().all()
    for name in stale:
        # The name comes from pg_class and matched the patterns above: DDL takes no binds.
        conn.execute(text(f'ANALYZE "{name}"'))
    return stale


#: The process's writers' count (the pipeline's and the metrics receiver's write in turn).
WRITERS = Freshness()
