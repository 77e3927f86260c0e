"""The OTLP/HTTP receiver under more load than it can take: several processes, each with the
OpenTelemetry SDK's own ``BatchSpanProcessor`` and OTLP/HTTP exporter (protobuf, as SDKs send
by default), make spans as fast as they can for a fixed time and export them to ``clew serve``
(a fresh SQLite database, the receiver's queue as configured). The receiver answers 503 with
``Retry-After`` when its queue is full; the exporters retry, as the OTLP specification says.

    .venv/bin/python bench/otlp_load.py [--seconds 30] [--processes 4] [--queue 8]

What must hold: every span an exporter reports as exported (its batch's export returned
SUCCESS) is in the store — checked span id by span id —, and the server's memory stays bounded
(its peak RSS, ``VmHWM``, is printed). Printed too: spans made, exported, dropped by the SDK
(its queue full: what a real service would lose when the backend pushes back), stored, the
503s and 429s the exporters met, and the spans per second the receiver held (stored over the
run's wall time, the drain after the producers stop included).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def produce(url: str, seconds: float, number: int, out: str) -> None:
    """One producer process: spans for ``seconds``, exported by the SDK; the ids of the spans
    in batches exported with SUCCESS are written to ``out``, with the counts."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
    from opentelemetry.trace import SpanKind

    statuses: dict[int, int] = {}
    session = requests.Session()
    session.hooks["response"].append(
        lambda response, *a, **k: statuses.__setitem__(
            response.status_code, statuses.get(response.status_code, 0) + 1
        )
    )
    exported: list[str] = []

    class Counting(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            if result is SpanExportResult.SUCCESS:
                exported.extend(f"{s.context.trace_id:032x}{s.context.span_id:016x}" for s in spans)
            return result

    provider = TracerProvider(resource=Resource({"service.name": f"load-{number}"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            Counting(endpoint=url, session=session, timeout=30),
            max_queue_size=8192,
            max_export_batch_size=512,
            schedule_delay_millis=200,
        )
    )
    tracer = provider.get_tracer("clew-bench")
    made = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER) as parent:
            parent.set_attribute("http.request.method", "GET")
            parent.set_attribute("http.route", "/orders/{id}")
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
                child.set_attribute("db.system.name", "postgresql")
        made += 2
    provider.force_flush(timeout_millis=120_000)
    provider.shutdown()
    with open(out, "w") as handle:
        handle.write(f"{made} {statuses.get(503, 0)} {statuses.get(429, 0)}\n")
        handle.write("\n".join(exported))


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--queue", type=int, default=8, help="the receiver's OTLP_QUEUE_SIZE")
    args = parser.parse_args()

    from clew import store
    from clew.store import spans

    folder = Path(tempfile.mkdtemp(prefix="clew-load-"))
    db = folder / "clew.db"
    port = _free_port()
    env = os.environ | {
        "CLEW_OTLP_QUEUE_SIZE": str(args.queue),
        "CLEW_AUTH": "false",  # the receiver open, as an ingest token would leave it
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "clew"), "serve", "--port", str(port), "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in server.stdout:  # type: ignore[union-attr]
            if "Clew console on" in line:
                break
        url = f"http://127.0.0.1:{port}/v1/traces"
        started = time.monotonic()
        outs = [str(folder / f"producer-{n}.txt") for n in range(args.processes)]
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=produce, args=(url, args.seconds, n, out))
            for n, out in enumerate(outs)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
        made = rejected = limited = 0
        exported: set[str] = set()
        for out in outs:
            head, *ids = Path(out).read_text().split("\n")
            m, r, lim = map(int, head.split())
            made, rejected, limited = made + m, rejected + r, limited + lim
            exported.update(i for i in ids if i)
        peak = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    engine = store.open_engine(str(db))
    with engine.connect() as conn:
        stored_count = spans.count(conn)
        stored_ids = {f"{row[0]}{row[1]}" for group in spans.by_trace(conn) for row in group}
    engine.dispose()
    missing = exported - stored_ids
    print(
        f"{args.processes} producer processes for {args.seconds:g} s, receiver queue"
        f" {args.queue}, a fresh SQLite database"
    )
    print("| measure | value |")
    print("|---|---:|")
    print(f"| spans made | {made:,} |")
    print(f"| spans exported (SUCCESS) | {len(exported):,} |")
    print(f"| spans dropped by the SDK (its queue full) | {made - len(exported):,} |")
    print(f"| spans stored | {stored_count:,} |")
    print(f"| exported spans missing from the store | {len(missing):,} |")
    print(f"| 503 answers met (retried) | {rejected:,} |")
    print(f"| 429 answers met (retried) | {limited:,} |")
    print(f"| spans/s held (stored over {elapsed:.1f} s) | {stored_count / elapsed:,.0f} |")
    print(f"| server peak RSS (MB) | {peak:.0f} |")
    ok = bool(exported) and not missing
    print(f"every exported span stored: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
