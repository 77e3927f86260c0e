"""Ingest of generated OTLP/protobuf spans: ``clew ingest`` against the floor of decoding them.

The data is the landscape of ``otlp_landscape.py`` (the same files ``ingest_otlp_json.py``
reads) written as the OpenTelemetry Collector file exporter's ``format: proto``: every
``ExportTraceServiceRequest`` preceded by its length as a 4-byte big-endian integer, one message
per JSON line. The conversion runs once and is kept in ``bench/out/``.

The floor, measured in the same run over the same files, is
``ExportTraceServiceRequest.FromString`` of every message plus a minimal extraction of what Clew
stores per span (ids as hex, parent, service, name, kind, start, duration, status and the
attributes as a dict), with no database, in one process.

An informative measure without a target is Clew's collector alone in one process
(``OtlpProtoCollector().collect`` over the files, records dropped): the parse side of the ingest.

Clew is the real CLI in a subprocess on a fresh SQLite database, rollups included, run twice:
as it runs by default (more than 32 MiB of input is parsed in a worker process while the first
writes, so it uses two cores), and on one core with no worker (``taskset -c 0``, the pipeline's
``WORKER_BYTES`` raised so that everything is parsed in the writing process). Each reports
spans per wall-clock second and spans per CPU-second of its whole process tree, and its peak
memory, the summed RSS of the tree sampled every 50 ms.

    .venv/bin/python bench/ingest_otlp_proto.py [--spans 1000000] [--repeat 1] [--json]

Targets: at least 100,000 spans/s on one core (the one-core run's wall-clock rate), and a peak
RSS of at most 300 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import platform
import shutil
import sqlite3
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import google.protobuf
import orjson
from ingest_otlp_json import OUT, clew_ingest, corpus, finish
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from clew.records import Span
from collectors import Source
from collectors.otlp_proto import OtlpProtoCollector

TARGET_SPANS_PER_S = 100_000
TARGET_RSS_MB = 300.0
#: Runs ``clew`` with the parse worker disabled: the rest of argv is the command line.
NO_WORKER = (
    "import sys, clew.pipeline as p; p.WORKER_BYTES = 1 << 62;"
    " from clew.cli import main; sys.argv[0] = 'clew'; main()"
)


def _attributes(target, items: list[dict]) -> None:
    for kv in items:
        entry = target.add()
        entry.key = kv["key"]
        ((kind, value),) = kv["value"].items()
        if kind == "stringValue":
            entry.value.string_value = value
        elif kind == "intValue":
            entry.value.int_value = int(value)
        elif kind == "boolValue":
            entry.value.bool_value = value
        elif kind == "doubleValue":
            entry.value.double_value = value
        else:
            raise ValueError(f"the landscape has no {kind} values")


def _message(doc: dict) -> bytes:
    """One OTLP/JSON request of the landscape as the protobuf message it stands for."""
    request = ExportTraceServiceRequest()
    for resource_spans in doc["resourceSpans"]:
        out = request.resource_spans.add()
        _attributes(out.resource.attributes, resource_spans["resource"]["attributes"])
        out.schema_url = resource_spans.get("schemaUrl", "")
        for scope_spans in resource_spans["scopeSpans"]:
            scope_out = out.scope_spans.add()
            scope_out.scope.name = scope_spans["scope"]["name"]
            scope_out.scope.version = scope_spans["scope"].get("version", "")
            for span in scope_spans["spans"]:
                s = scope_out.spans.add()
                s.trace_id = bytes.fromhex(span["traceId"])
                s.span_id = bytes.fromhex(span["spanId"])
                if "parentSpanId" in span:
                    s.parent_span_id = bytes.fromhex(span["parentSpanId"])
                s.flags = span.get("flags", 0)
                s.name = span["name"]
                s.kind = span["kind"]
                s.start_time_unix_nano = int(span["startTimeUnixNano"])
                s.end_time_unix_nano = int(span["endTimeUnixNano"])
                _attributes(s.attributes, span.get("attributes", ()))
                for event in span.get("events", ()):
                    e = s.events.add()
                    e.time_unix_nano = int(event["timeUnixNano"])
                    e.name = event["name"]
                    _attributes(e.attributes, event.get("attributes", ()))
                for link in span.get("links", ()):
                    k = s.links.add()
                    k.trace_id = bytes.fromhex(link["traceId"])
                    k.span_id = bytes.fromhex(link["spanId"])
                status = span.get("status", {})
                if status:
                    s.status.code = status.get("code", 0)
                    s.status.message = status.get("message", "")
    return request.SerializeToString()


def _convert(source: Path, target: Path) -> int:
    """Write ``source``'s requests to ``target`` as length-prefixed messages; returns the spans."""
    spans = 0
    partial = target.with_suffix(".partial")
    with source.open("rb") as lines, partial.open("wb") as out:
        for line in lines:
            doc = orjson.loads(line)
            spans += sum(len(s["spans"]) for rs in doc["resourceSpans"] for s in rs["scopeSpans"])
            message = _message(doc)
            out.write(len(message).to_bytes(4, "big"))
            out.write(message)
    partial.rename(target)
    return spans


def proto_corpus(spans: int, files: int, seed: int) -> list[Path]:
    """The landscape's files as OTLP/protobuf, converted from the OTLP/JSON ones unless a
    complete set is there."""
    sources = corpus(spans, files, seed)
    converter = "".join(inspect.getsource(f) for f in (_attributes, _message, _convert))
    digest = hashlib.sha256(converter.encode()).hexdigest()[:8]
    folder = OUT / f"otlp_proto-{sources[0].parent.name.removeprefix('otlp_json-')}-{digest}"
    manifest = folder.with_name(folder.name + ".json")
    paths = [folder / p.name.replace(".otlp.jsonl", ".otlp.binpb") for p in sources]
    if manifest.exists():
        listed = orjson.loads(manifest.read_bytes())["files"]
        if all(p.exists() and p.stat().st_size == listed.get(p.name) for p in paths):
            return paths
    if folder.exists():  # an interrupted conversion: start again
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(_convert, sources, paths))
    if sum(counts) != spans:
        sys.exit(f"converted {sum(counts)} spans, expected {spans}")
    manifest.write_bytes(
        orjson.dumps({"spans": spans, "files": {p.name: p.stat().st_size for p in paths}})
    )
    print(
        f"converted {spans:,} spans to OTLP/protobuf in {time.perf_counter() - started:.1f} s:"
        f" {folder}",
        file=sys.stderr,
    )
    return paths


def floor(paths: list[Path]) -> int:
    """Decode every message and extract each span's fields into a tuple; returns the spans."""
    parse = ExportTraceServiceRequest.FromString
    count = 0
    for path in paths:
        data = path.read_bytes()
        position, size = 0, len(data)
        while position < size:
            length = int.from_bytes(data[position : position + 4], "big")
            message = parse(data[position + 4 : position + 4 + length])
            position += 4 + length
            rows = []
            for resource_spans in message.resource_spans:
                service = None
                for kv in resource_spans.resource.attributes:
                    if kv.key == "service.name":
                        service = kv.value.string_value
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        start = span.start_time_unix_nano
                        attributes = {}
                        for kv in span.attributes:
                            value = kv.value
                            attributes[kv.key] = getattr(value, value.WhichOneof("value"))
                        parent = span.parent_span_id
                        rows.append(
                            (
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                parent.hex() if parent else None,
                                service,
                                span.name,
                                span.kind,
                                start,
                                span.end_time_unix_nano - start,
                                span.status.code,
                                attributes,
                            )
                        )
            count += len(rows)
    return count


def collector_only(paths: list[Path]) -> int:
    """Clew's own collector over the files, its records counted and dropped: the parse side of
    ``clew ingest`` without batching, rollups or the database. Returns the spans."""
    collector = OtlpProtoCollector()
    return sum(
        1 for path in paths for record in collector.collect(Source(path)) if type(record) is Span
    )


def run(spans: int, files: int, seed: int, repeat: int = 1) -> dict:
    """Convert (or reuse) the files, then measure the floor, Clew as it runs by default and Clew
    on one core without the worker, in turn; each keeps its fastest of ``repeat`` runs (and its
    largest RSS)."""
    OUT.mkdir(exist_ok=True)
    paths = proto_corpus(spans, files, seed)
    folder = paths[0].parent
    data_bytes = sum(p.stat().st_size for p in paths)
    for path in paths:  # every side reads from the page cache
        path.read_bytes()
    one_core = ["taskset", "-c", "0", sys.executable, "-c", NO_WORKER]
    load = os.getloadavg()[0]
    floor_wall = collector_wall = float("inf")
    runs: dict[str, dict] = {}
    memory_keys = ("peak_rss_mb", "peak_pss_mb", "largest_process_rss_mb")
    for _ in range(repeat):
        started = time.perf_counter()
        seen = floor(paths)
        floor_wall = min(floor_wall, time.perf_counter() - started)
        if seen != spans:
            sys.exit(f"floor saw {seen} spans, expected {spans}")
        started = time.perf_counter()
        collected = collector_only(paths)
        collector_wall = min(collector_wall, time.perf_counter() - started)
        if collected != spans:
            sys.exit(f"the collector read {collected} spans, expected {spans}")
        for name, prefix in (("default", None), ("one_core", one_core)):
            attempt = clew_ingest(folder, prefix)
            best = runs.get(name)
            if best is None or attempt["wall_s"] < best["wall_s"]:
                if best is not None:
                    attempt |= {k: max(best[k], attempt[k]) for k in memory_keys}
                runs[name] = attempt
            else:
                best |= {k: max(best[k], attempt[k]) for k in memory_keys}

    floor_rate = seen / floor_wall
    sides = {}
    correct = True
    for name, clew in runs.items():
        result = clew["result"]
        correct &= (
            result["inserted"] == spans and not result["quarantined"] and not result["problems"]
        )
        rate = result["inserted"] / clew["wall_s"]
        sides[name] = {
            "spans_per_s": rate,
            "spans_per_cpu_s": result["inserted"] / clew["cpu_s"],
            "ratio_to_floor": rate / floor_rate,
            "wall_s": clew["wall_s"],
            "cpu_s": clew["cpu_s"],
            "worker": name == "default" and data_bytes > (32 << 20),
            "peak_rss_mb": clew["peak_rss_mb"],
            "peak_pss_mb": clew["peak_pss_mb"],
            "largest_process_rss_mb": clew["largest_process_rss_mb"],
            "db_mb": clew["db_mb"],
            "command": clew["command"],
            "ingest": {k: result[k] for k in ("records", "inserted", "duplicates", "quarantined")},
        }
    one = sides["one_core"]
    rss = max(s["peak_rss_mb"] for s in sides.values())
    return {
        "benchmark": "ingest_otlp_proto",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "protobuf": google.protobuf.__version__,
            "load_1m_before": load,
            "load_1m_after": os.getloadavg()[0],
        },
        "spans": spans,
        "repeat": repeat,
        "files": len(paths),
        "data_mb": data_bytes / 2**20,
        "floor": {"spans_per_s": floor_rate, "wall_s": floor_wall},
        # Informative, no target: the parse side of the ingest on its own, in one process.
        "collector": {"spans_per_s": spans / collector_wall, "wall_s": collector_wall},
        "clew": sides,
        "correct": correct,
        "targets": {
            "one_core_spans_per_s": {
                "target": f">= {TARGET_SPANS_PER_S:,}",
                "pass": one["spans_per_s"] >= TARGET_SPANS_PER_S,
            },
            "peak_rss_mb": {"target": f"<= {TARGET_RSS_MB:.0f}", "pass": rss <= TARGET_RSS_MB},
        },
    }


def table(report: dict) -> str:
    """The report as a small Markdown table, as it goes into RESULTS.md."""
    floor_, targets = report["floor"], report["targets"]
    default, one = report["clew"]["default"], report["clew"]["one_core"]

    def verdict(name: str) -> str:
        return "PASS" if targets[name]["pass"] else "FAIL"

    def line(label: str, side: dict) -> str:
        return (
            f"| {label} spans/s | {side['spans_per_s']:,.0f} ({side['wall_s']:.1f} s wall,"
            f" {side['cpu_s']:.1f} s CPU: {side['spans_per_cpu_s']:,.0f} spans per CPU-second;"
            f" ratio to the floor {side['ratio_to_floor']:.3f})"
        )

    inserted = {s["ingest"]["inserted"] for s in report["clew"].values()}
    quarantined = sum(s["ingest"]["quarantined"] for s in report["clew"].values())
    lines = [
        f"{report['spans']:,} spans in {report['files']} files ({report['data_mb']:.0f} MB),"
        f" {report['machine']['cpus']} cores, best of {report['repeat']},"
        f" load {report['machine']['load_1m_before']:.2f} before and"
        f" {report['machine']['load_1m_after']:.2f} after",
        "",
        "| measure | value | target | |",
        "|---|---:|---|---|",
        f"| floor (FromString + extraction, one process) spans/s | {floor_['spans_per_s']:,.0f}"
        f" ({floor_['wall_s']:.1f} s) | | |",
        f"| informative: Clew's collector alone (records, no batches or database) spans/s"
        f" | {report['collector']['spans_per_s']:,.0f} ({report['collector']['wall_s']:.1f} s)"
        " | none | |",
        line(
            f"Clew `clew ingest`, default (parse worker: {'yes' if default['worker'] else 'no'})",
            default,
        )
        + " | | |",
        line("Clew `clew ingest`, one core (`taskset -c 0`, no worker)", one)
        + f" | {targets['one_core_spans_per_s']['target']} | {verdict('one_core_spans_per_s')} |",
        f"| Clew peak RSS, process tree summed (default; one core) | {default['peak_rss_mb']:.0f}"
        f" MB; {one['peak_rss_mb']:.0f} MB | {targets['peak_rss_mb']['target']} MB"
        f" | {verdict('peak_rss_mb')} |",
        f"| (tree PSS; largest single process RSS, default) | {default['peak_pss_mb']:.0f} MB;"
        f" {default['largest_process_rss_mb']:.0f} MB | | |",
        f"| inserted / quarantined (each run) | {', '.join(f'{n:,}' for n in sorted(inserted))}"
        f" / {quarantined:,} | {report['spans']:,} / 0"
        f" | {'PASS' if report['correct'] else 'FAIL'} |",
        f"| SQLite file (with WAL) | {default['db_mb']:.0f} MB | | |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans to generate and ingest")
    parser.add_argument("--files", type=int, default=10, help="files to split them into")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate floor and Clew N times, keep the best"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    report = run(args.spans, args.files, args.seed, args.repeat)
    return finish(report, table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
