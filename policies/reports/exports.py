"""The report as data: CSV (one row per finding, stable columns) and JSON (the whole report)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import orjson

#: The CSV's columns, in order; a new column goes at the end.
CSV_COLUMNS = (
    "fingerprint",
    "rule",
    "pack",
    "severity",
    "state",
    "subject_kind",
    "subject",
    "team",
    "system",
    "message",
    "source",
    "line",
    "column",
    "path",
    "first_seen_at",
    "last_seen_at",
    "waiver_id",
    "waiver_reason",
    "waiver_approver",
    "waiver_expires_at",
)


def to_csv(report: Mapping[str, Any]) -> bytes:
    """One row per current finding of ``report`` (its ``as_dict()``), with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in report["findings"]:
        waiver = f.get("waiver") or {}
        row = {
            **f,
            "path": "/".join(map(str, f.get("path") or ())),
            "waiver_reason": waiver.get("reason"),
            "waiver_approver": waiver.get("approver"),
            "waiver_expires_at": waiver.get("expires_at"),
        }
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    # With a byte-order mark, spreadsheet programs read it as UTF-8.
    return out.getvalue().encode("utf-8-sig")


def to_json(report: Mapping[str, Any]) -> bytes:
    """The report (its ``as_dict()``) as indented JSON."""
    return orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
