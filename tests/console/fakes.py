"""View models in the kernel's shapes, for the console's pure-helper tests (no database)."""

from __future__ import annotations

MS = 1_000_000
T0 = 1_794_999_000_000_000_000


def endpoint(name: str, count: int = 100, errors: int = 0, **extra) -> dict:
    """One row of ``metrics.service_endpoints`` / ``metrics.edge_endpoints``."""
    return {
        "endpoint": name,
        "connection_type": "direct",
        "count": count,
        "errors": errors,
        "client_errors": 0,
        "error_ratio": errors / count if count else 0.0,
        "rps": count / 60,
        "p50_ms": 12.0,
        "p95_ms": 40.0,
        "p99_ms": 88.0,
        "max_ms": 120.0,
        **extra,
    }


def failing_path(
    path_id: str,
    path: list[str],
    count: int,
    *,
    first_s: int = 0,
    last_s: int = 600,
    error: str = "503 Service Unavailable",
    entry: str = "GET /products/{sku}",
    trace_id: str = "t1",
) -> dict:
    """One row of ``metrics.failing_paths``."""
    return {
        "id": path_id,
        "entry": {"service": path[0], "endpoint": entry},
        "path": path,
        # a failure in the entry service itself has the edge caller → entry
        "failing_edge": {"client": path[-2] if len(path) > 1 else "client", "server": path[-1]},
        "count": count,
        "first_seen_ns": T0 + first_s * 1_000_000_000,
        "last_seen_ns": T0 + last_s * 1_000_000_000,
        "exemplar": {"trace_id": trace_id, "span_id": "s3"},
        "error": error,
    }


PATHS = [
    failing_path("p-small", ["web", "hub", "wms"], 2, last_s=900, trace_id="t2"),
    failing_path("p-big", ["web", "orders", "hub", "wms"], 9, entry="POST /checkout"),
]


def span(
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    start_ms: float,
    duration_ms: float,
    depth: int,
    *,
    kind: int = 2,
    critical: bool = False,
    failing: bool = False,
    status: int = 0,
    http_status: int | None = 200,
    message: str | None = None,
) -> dict:
    """One span of ``metrics.trace_view``."""
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "service": service,
        "name": name,
        "kind": kind,
        "start_ns": T0 + int(start_ms * MS),
        "duration_ns": int(duration_ms * MS),
        "status": status,
        "status_message": message,
        "http_status": http_status,
        "depth": depth,
        "error": status == 2,
        "critical": critical,
        "failing": failing,
    }


TRACE = {
    "trace_id": "t1",
    "start_ns": T0,
    "duration_ns": 100 * MS,
    "spans": [
        span("s1", None, "web", "POST /checkout", 0, 100, 0, critical=True, status=2),
        span("s2", "s1", "web", "POST", 5, 80, 1, kind=3, critical=True, status=2),
        span(
            "s3",
            "s2",
            "wms",
            "GET /stock/{sku}",
            10,
            60,
            2,
            critical=True,
            failing=True,
            status=2,
            http_status=503,
            message="503 Service Unavailable: WMS connection pool exhausted",
        ),
        span("s4", "s1", "pricing", "GET /prices", 2, 0, 1),
    ],
    "critical_path": ["s1", "s2", "s3"],
    "failing_span_id": "s3",
}
