"""The compiled readers (``collectors/_otlp_native.c`` and ``_otlp_json.c`` for OTLP,
``_access_nginx.c`` for NGINX ``combined`` access logs), configured.

``reader`` is the one place that decides whether the collectors use them: None when the module
is not built (Clew installed without a C compiler) or when ``CLEW_NO_NATIVE`` is set (to anything
but empty or ``0``); the collectors then read everything in Python. The compiled readers give the
same records as the Python paths and hand back whatever they do not read exactly.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from clew.records import GatewayRequest, Span, SpanKind, SpanLink
from collectors import semconv


def load() -> Any:
    """The compiled module, configured with Clew's records and semantic conventions; None when
    it is not built."""
    try:
        from collectors import _otlp_native
    except ImportError:  # installed without a C compiler: the Python paths read everything
        return None
    _otlp_native.configure(
        span=Span,
        link=SpanLink,
        resource_from=semconv.resource_from,
        dumps=orjson.dumps,
        json_text=semconv.json_text,
        lifted=semconv.LIFTED_ATTRIBUTES,
        # build_span's own tables, so that the readers cannot disagree on a rename.
        legacy_keys=semconv._LEGACY_KEYS,
        renames=(semconv._RENAMES_CLIENT_SIDE, semconv._RENAMES_SERVER_SIDE),
        server_kind=SpanKind.SERVER,
        caller_kinds=semconv._CALLER_KINDS,
    )
    _otlp_native.nginx_configure(GatewayRequest)
    return _otlp_native


reader = None if os.environ.get("CLEW_NO_NATIVE", "") not in ("", "0") else load()
