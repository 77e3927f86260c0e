"""Compliance reports: one ``Report`` read from the store (``model.build``), rendered as HTML,
PDF, CSV, JSON, SARIF 2.1.0 or JUnit XML."""

from __future__ import annotations

from policies.reports import exports, html, junit, pdf, sarif
from policies.reports.model import Report, build

FORMATS = ("html", "pdf", "csv", "json", "sarif", "junit")

__all__ = ["FORMATS", "Report", "build", "render"]


def render(report: Report, fmt: str) -> bytes:
    """``report`` in the format ``fmt`` (one of ``FORMATS``), as the bytes of its file."""
    data = report.as_dict()
    if fmt == "html":
        return html.render(data)
    if fmt == "pdf":
        return pdf.render(data)
    if fmt == "csv":
        return exports.to_csv(data)
    if fmt == "json":
        return exports.to_json(data)
    if fmt == "sarif":
        return exports.to_json(sarif.sarif(data["findings"], data["rules"]))
    if fmt == "junit":
        return junit.junit(data["findings"], data["rules"]).encode("utf-8")
    raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
