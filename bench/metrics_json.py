"""Reading OTLP/JSON connector metrics: ``collectors.metrics_json.request_of`` beside protobuf's
own JSON reader (``json_format.ParseDict``), on the same documents in the same run.

The documents are the exports of a servicegraph and two spanmetrics connectors that the file
tests build with the OpenTelemetry SDK (``tests/clew/test_metrics_files.connector_exports``), as
OTLP/JSON. Each reader is timed over all of them, best of ``--repeat`` rounds of ``--number``
passes; then the whole read into points (``otlp_metrics.read_message``) through each. The peer is
``ParseDict`` (protobuf is installed with Clew: nothing to fetch). No target: the figures say
what the faster path is worth, and each run checks both readers give the same messages.

    .venv/bin/python bench/metrics_json.py [--number 50] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests/

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from collectors import metrics_json, otlp_metrics
from tests.clew.test_metrics_files import connector_exports


def _parse_dict(document: dict) -> ExportMetricsServiceRequest:
    message = ExportMetricsServiceRequest()
    json_format.ParseDict(document, message, ignore_unknown_fields=True)
    return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    documents = [json_format.MessageToDict(m) for m in connector_exports()]
    fast = [metrics_json.request_of(d) for d in documents]
    if any(m is None for m in fast) or fast != [_parse_dict(d) for d in documents]:
        print("request_of and ParseDict disagree on these documents", file=sys.stderr)
        return 2

    def best_ms(work) -> float:
        runs = timeit.repeat(work, number=args.number, repeat=args.repeat)
        return min(runs) / args.number * 1e3

    figures = {
        "documents": len(documents),
        "parse_dict_ms": best_ms(lambda: [_parse_dict(d) for d in documents]),
        "request_of_ms": best_ms(lambda: [metrics_json.request_of(d) for d in documents]),
        "points_via_parse_dict_ms": best_ms(
            lambda: [otlp_metrics.read_message(_parse_dict(d)) for d in documents]
        ),
        "points_via_request_of_ms": best_ms(
            lambda: [otlp_metrics.read_message(metrics_json.request_of(d)) for d in documents]
        ),
    }
    figures["ratio_parse_dict_to_request_of"] = figures["parse_dict_ms"] / figures["request_of_ms"]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{figures['documents']} exports, best of {args.repeat} x {args.number} passes")
        for key in ("parse_dict_ms", "request_of_ms"):
            print(f"  {key:26} {figures[key]:7.2f} ms")
        print(f"  ParseDict / request_of     {figures['ratio_parse_dict_to_request_of']:7.2f}x")
        for key in ("points_via_parse_dict_ms", "points_via_request_of_ms"):
            print(f"  {key:26} {figures[key]:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
