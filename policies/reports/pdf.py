"""The report as a PDF: the HTML page laid out by WeasyPrint on A4, with page numbers (its
``@page`` rules)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from policies.reports import html


def render(report: Mapping[str, Any]) -> bytes:
    """The PDF of ``report`` (its ``as_dict()``)."""
    # Imported here: WeasyPrint takes a second to load Pango, which no other format needs.
    try:
        import weasyprint
    except OSError as error:  # Pango or its fonts are missing from the system
        raise RuntimeError(
            "a PDF needs Pango (on Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0"
            f" libharfbuzz-subset0 fonts-dejavu-core): {error}"
        ) from error

    # WeasyPrint logs every CSS property it does not support at WARNING; the page is ours.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html.render(report).decode("utf-8")).write_pdf()
