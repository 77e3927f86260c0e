"""Access logs in a format the operator describes in a mapping file, for a gateway whose
``log_format`` or JSON keys no built-in collector knows. ``clew ingest --log-format FILE``
reads its paths with it; it is never chosen by detection, as it needs its file.

The mapping file is TOML (read by ``tomllib``: no tags, no aliases, no code; at most
``MAX_MAPPING_BYTES``). Its keys:

``format``
    ``"nginx"``: a text line as an NGINX ``log_format`` writes it; ``"json"``: one JSON object
    a line, its keys mapped to Clew's fields.
``gateway``
    The gateway node's name: ``--gateway`` overrides it; by default ``nginx`` for an NGINX
    format, else the mapping file's name without its suffix (``caddy.toml``: ``caddy``).
``log_format`` (``nginx``)
    The format string, as the ``log_format`` directive's quoted strings hold it (a list of
    strings is joined, as NGINX joins them; ``\\"``, ``\\'``, ``\\\\``, ``\\t``, ``\\n`` and
    ``\\r`` are read as NGINX reads them). Lines are taken as NGINX writes them with its default
    escaping: ``"``, ``\\`` and bytes outside printable ASCII as ``\\xHH``.
``fields`` and ``units`` (``json``)
    ``fields`` names the key of each Clew field (``JSON_FIELDS``); a key with dots reaches into
    nested objects (``request.method``) where no key has the dotted name itself, and a list
    (Caddy's header values) gives its first item. ``start`` (when the request began) or ``end``
    (when the log was written: the start is then ``end`` − ``duration``) is required. ``units``
    says how times and durations are written (``TIME_UNITS``, ``DURATION_UNITS``): by default
    times as ISO 8601, Common Log Format or epoch seconds, durations in seconds.

An NGINX ``log_format`` is compiled to one regular expression: literal text as it is, and each
``$variable`` (or ``${variable}``) running up to the first character of the literal text after
it (to the line's end for the last one). Variables whose values hold spaces, commas or colons
in their own right are read by their shape where the text after them starts with such a
character: ``$time_local``, ``$time_iso8601``, ``$msec``, an unquoted ``$request``, and the
lists NGINX writes once per upstream tried or proxy passed (``$upstream_addr``,
``$upstream_response_time``, …, ``$http_x_forwarded_for``). Any other value (a header, say) ends
at the next such character: log such values in quotes, as ``combined`` does. Two variables with
nothing between them cannot be told apart: such a format is refused.

What the variables become is what the built-in NGINX collector makes of the same fields (its
``_request``, so that a ``log_format`` equal to ``combined`` gives exactly its records): the
time is the log write's (``$msec``, else ``$time_iso8601``, else ``$time_local``), so the start
is that time − ``$request_time``; ``$remote_addr`` is the client, else the last address of
``$proxy_add_x_forwarded_for`` or ``$http_x_forwarded_for``; ``$remote_user`` the identity
behind ``--consumer auto``; ``$request`` the method, path and protocol, else
``$request_method``, ``$request_uri`` (or ``$uri``, ``$document_uri``) and
``$server_protocol``; ``$body_bytes_sent`` (else ``$bytes_sent``) the bytes sent,
``$request_length`` those received; ``$upstream_addr``'s last address the upstream, unless
``$proxy_upstream_name`` or ``$proxy_host`` names it; ``$upstream_response_time`` the upstream
duration, summed over the upstreams tried (the time the request waited on upstreams in all: the
last alone would leave out the tries that failed); ``$http_traceparent`` (else ``$http_b3``,
``$http_x_b3_traceid``, or a trace-shaped ``$request_id``/``$http_x_request_id``) the trace id.
``$http_NAME`` variables serve ``--consumer header:NAME``. Every other variable is kept in the
attributes by its name, except those that carry credentials or query strings (``SECRET``): they
are not kept.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from clew.records import GatewayRequest
from collectors.access_logs import (
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    clf_time_ns,
    iso_time_ns,
    nginx,
    path_of,
    seconds_ns,
    trace_id_of,
    without_port,
)
from collectors.access_logs.nginx import (
    _check_method,
    _json_object,
    _json_time_ns,
    _request,
    _unescaped,
)

#: The largest mapping file read: a format's description takes a few hundred bytes.
MAX_MAPPING_BYTES = 64 * 1024
FORMATS = ("nginx", "json")
_KEYS = {
    "nginx": {"format", "gateway", "log_format"},
    "json": {"format", "gateway", "fields", "units"},
}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the problem."""


def collector(path: Path) -> AccessLogCollector:
    """The collector of the access logs that the mapping file at ``path`` describes; raises
    ``MappingError``."""
    document = read_mapping(path)
    kind = document.get("format")
    if kind is None:
        raise MappingError(f'{path}: no format: give format = "nginx" or "json"')
    if kind not in FORMATS:
        raise MappingError(f"{path}: format {kind!r} is none of {', '.join(FORMATS)}")
    unknown = sorted(document.keys() - _KEYS[kind])
    if unknown:
        known = ", ".join(sorted(_KEYS[kind]))
        raise MappingError(f"{path}: {', '.join(unknown)}: not a key of a {kind} mapping ({known})")
    gateway = document.get("gateway", "nginx" if kind == "nginx" else path.stem)
    if not isinstance(gateway, str) or not gateway:
        raise MappingError(f"{path}: gateway must be a name, not {gateway!r}")
    try:
        if kind == "nginx":
            parse: Callable[[str, Settings], GatewayRequest] = NginxFormat(
                _log_format_text(document.get("log_format")), gateway
            )
        else:
            parse = JsonFormat(document.get("fields"), document.get("units", {}), gateway)
    except ValueError as error:
        raise MappingError(f"{path}: {error}") from None
    return AccessLogCollector(
        "custom",
        f"access logs as {path} describes them",
        [LineFormat(path.name, parse)],
        rejects=nginx.rejects if kind == "nginx" else None,
    )


def read_mapping(path: Path) -> dict[str, Any]:
    """The TOML document of a mapping file; raises ``MappingError``."""
    if path.suffix.lower() in (".yaml", ".yml"):
        raise MappingError(f"{path}: mapping files are TOML, not YAML (see the README)")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MAPPING_BYTES + 1)
    except OSError as error:
        raise MappingError(f"{path}: cannot read: {error.strerror}") from None
    if len(data) > MAX_MAPPING_BYTES:
        raise MappingError(f"{path}: larger than {MAX_MAPPING_BYTES} bytes: no mapping file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise MappingError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:
        raise MappingError(f"{path}: not valid TOML: nested too deeply") from None


def _log_format_text(value: object) -> str:
    if isinstance(value, list) and value and all(isinstance(part, str) for part in value):
        value = "".join(value)
    if not isinstance(value, str) or not value:
        raise ValueError("log_format must be the format string (or a list of strings)")
    return value


# --- NGINX log_format -------------------------------------------------------------------------

# nginx.conf's escapes in a quoted string (ngx_conf_read_token).
_CONF_ESCAPE = re.compile(r"\\([\"'\\tnr])")
_CONF_ESCAPED = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
# A variable as ngx_http_log_compile reads one: $name or ${name}; names are case-insensitive.
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")

_TIME_LOCAL = r"[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"
_TIME_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})"
# One value per upstream tried ("0.010, 0.020", "0.010 : 0.020") or per proxy passed ("A, B").
_LIST = r"[^\s,]+(?:(?:, ?| : )[^\s,]+)*"
_LIST_SHAPE = (_LIST, ", :", "a list like 0.010, 0.020 : 0.030")
# Variables read by their shape where the text after them starts with one of their own
# characters: (shape, those characters, what the shape is, for a line that lacks it).
_SHAPES: dict[str, tuple[str, str, str]] = {
    "time_local": (_TIME_LOCAL, " /:+-", "a time like 10/Oct/2000:13:55:36 +0000"),
    "time_iso8601": (_TIME_ISO, "-:+TZ", "a time like 2000-10-10T13:55:36+00:00"),
    "msec": (r"[0-9]+\.[0-9]+", ".", "seconds since 1970, like 1700000000.123"),
    "request": (
        r"[A-Z_-]+ [^ ]+(?: HTTP/[0-9.]+)?",
        " ",
        "a request line like GET /path HTTP/1.1",
    ),
    **dict.fromkeys(
        (
            "upstream_addr",
            "upstream_status",
            "upstream_response_time",
            "upstream_connect_time",
            "upstream_header_time",
            "upstream_response_length",
            "upstream_bytes_received",
            "upstream_bytes_sent",
            "http_x_forwarded_for",
            "proxy_add_x_forwarded_for",
        ),
        _LIST_SHAPE,
    ),
}

#: The fields of the built-in NGINX collector's ``_request`` and the variables each is read
#: from, the first that the format has first.
VARIABLES: dict[str, tuple[str, ...]] = {
    "client": ("remote_addr", "proxy_add_x_forwarded_for", "http_x_forwarded_for"),
    "x_forwarded_for": ("http_x_forwarded_for", "proxy_add_x_forwarded_for"),
    "user": ("remote_user",),
    "request": ("request",),
    "method": ("request_method",),
    "path": ("request_uri", "uri", "document_uri"),
    "protocol": ("server_protocol",),
    "scheme": ("scheme",),
    "host": ("host", "http_host"),
    "server_name": ("server_name",),
    "status": ("status",),
    "bytes_sent": ("body_bytes_sent", "bytes_sent"),
    "bytes_received": ("request_length",),
    "duration": ("request_time",),
    "upstream_duration": ("upstream_response_time",),
    "upstream_connect": ("upstream_connect_time",),
    "upstream_header": ("upstream_header_time",),
    "upstream": ("upstream_addr",),
    "upstream_name": ("proxy_upstream_name", "proxy_host"),
    "upstream_status": ("upstream_status",),
    "cache_status": ("upstream_cache_status",),
    "user_agent": ("http_user_agent",),
    "referer": ("http_referer",),
    "request_id": ("request_id", "http_x_request_id"),
}
#: The log write's time, the most precise first.
TIMES = ("msec", "time_iso8601", "time_local")
#: Propagation headers, the trace id read from the first that carries one.
TRACE_HEADERS = ("http_traceparent", "http_b3", "http_x_b3_traceid")
#: Variables that carry credentials or query strings: never kept.
SECRET = re.compile(
    r"(?:^|_)(?:arg|args|query_string|request_body|cookie|authorization|token|secret|password"
    r"|passwd|session|api_key|apikey|credentials?)(?:_|$)"
)
# Fields kept even when "-" or empty: what NGINX received as a request line (an empty one is an
# unreadable request), and the status (a line without one is broken, and said so).
_KEPT_EMPTY = frozenset({"request", "status"})
# Fields whose text NGINX escaped and that are kept as text (_request unescapes the path).
_UNESCAPED = frozenset({"user", "user_agent", "referer"})

_clf_time_ns = functools.lru_cache(maxsize=4096)(clf_time_ns)
_iso_time_ns = functools.lru_cache(maxsize=4096)(iso_time_ns)


def _tokens(log_format: str) -> list[tuple[str, str]]:
    """The literal texts and variables of a format string, as ``("text", …)`` and
    ``("variable", name)``; raises ``ValueError``."""
    log_format = _CONF_ESCAPE.sub(lambda m: _CONF_ESCAPED[m.group(1)], log_format)
    tokens: list[tuple[str, str]] = []
    position = 0
    while (dollar := log_format.find("$", position)) >= 0:
        if dollar > position:
            tokens.append(("text", log_format[position:dollar]))
        match = _VARIABLE.match(log_format, dollar)
        if match is None:
            raise ValueError(
                f"log_format: the $ at character {dollar + 1} is followed by no variable name"
            )
        name = (match.group(1) or match.group(2)).lower()
        if tokens and tokens[-1][0] == "variable":
            raise ValueError(
                f"log_format: ${tokens[-1][1]} and ${name} have nothing between them: where one"
                " ends and the other begins cannot be told"
            )
        tokens.append(("variable", name))
        position = match.end()
    if position < len(log_format):
        tokens.append(("text", log_format[position:]))
    return tokens


def _pieces(tokens: list[tuple[str, str]]) -> list[str]:
    """The regular expression of each token (see the module's docstring)."""
    pieces = []
    for index, (kind, value) in enumerate(tokens):
        if kind == "text":
            pieces.append(re.escape(value))
            continue
        if index + 1 == len(tokens):
            pieces.append("(.*+)")
            continue
        stop = tokens[index + 1][1][0]
        shape = _SHAPES.get(value)
        if shape is not None and stop in shape[1]:
            pieces.append(f"({shape[0]})")
        else:
            pieces.append(f"([^{re.escape(stop)}]*+)")
    return pieces


class NginxFormat:
    """The parser of lines in one NGINX ``log_format``: ``parse(line, settings)``."""

    def __init__(self, log_format: str, gateway: str = "nginx") -> None:
        self.log_format = log_format
        self.gateway = gateway
        self._tokens = _tokens(log_format)
        variables = [value for kind, value in self._tokens if kind == "variable"]
        if not variables:
            raise ValueError("log_format names no variable")
        if not any(name in variables for name in TIMES):
            raise ValueError("log_format has no time: $time_local, $time_iso8601 or $msec")
        if "status" not in variables:
            raise ValueError("log_format has no $status")
        self._pieces = _pieces(self._tokens)
        self._pattern = re.compile("".join(self._pieces))
        self._prefixes: list[re.Pattern[str]] | None = None  # compiled for a line that fails
        group_of: dict[str, int] = {}
        for group, name in enumerate(variables, 1):
            group_of.setdefault(name, group)  # a variable logged twice: its first value
        claimed = set()
        reads = []
        for field, names in VARIABLES.items():
            for name in names:
                if name in group_of and name not in claimed:
                    claimed.add(name)
                    reads.append((group_of[name], field))
                    break
        self._time = next((group_of[n], n) for n in TIMES if n in group_of)
        claimed.update(TIMES)
        self._traces = tuple(group_of[n] for n in TRACE_HEADERS if n in group_of)
        claimed.update(TRACE_HEADERS)
        self._reads = tuple(reads)
        self._extras = tuple(
            (group, name)
            for name, group in group_of.items()
            if name not in claimed and SECRET.search(name) is None
        )
        self._headers = tuple(
            (group, name[5:].replace("_", "-"))
            for name, group in group_of.items()
            if name.startswith("http_")
        )

    def __reduce__(self) -> tuple:
        # Compiled again where it is unpickled (the parse worker).
        return NginxFormat, (self.log_format, self.gateway)

    def __call__(self, line: str, settings: Settings) -> GatewayRequest:
        match = self._pattern.fullmatch(line)
        if match is None:
            raise BadLine(self._mismatch(line))
        value = match.group
        fields: dict[str, Any] = {}
        for group, field in self._reads:
            text = value(group)
            if (text and text != "-") or field in _KEPT_EMPTY:
                fields[field] = _unescaped(text) if field in _UNESCAPED else text
        for group in self._traces:
            if trace_id_of(value(group)) is not None:
                fields["traceparent"] = value(group)
                break
        _check_method(fields)
        headers = None
        if settings.consumer.startswith("header:"):
            headers = {
                name: _unescaped(value(group))
                for group, name in self._headers
                if value(group) not in ("", "-")
            }
        group, name = self._time
        text = value(group)
        if name == "time_local":
            end_ns = _clf_time_ns(text, settings.timezone)
        elif name == "time_iso8601":
            end_ns = _iso_time_ns(text, settings.timezone)
        else:
            end_ns = _epoch_ns(text, 1_000_000_000, "$msec")
        request = _request(end_ns, fields, settings, headers)
        changes: dict[str, Any] = {}
        if request.gateway != self.gateway:
            changes["gateway"] = self.gateway
        if "upstream_name" in fields and "upstream" not in fields:
            changes["upstream"] = fields["upstream_name"]
        if self._extras:
            extras = {name: value(group) for group, name in self._extras}
            if any(text not in ("", "-") for text in extras.values()):
                attributes = {n: _unescaped(t) for n, t in extras.items()}
                if request.attributes is not None:
                    attributes.update(orjson.loads(request.attributes))
                changes["attributes"] = attributes_json(attributes)
        return request._replace(**changes) if changes else request

    def _mismatch(self, line: str) -> str:
        """Where a line that does not match the format leaves it, and what it has there."""
        if self._prefixes is None:  # the pattern of the first 0, 1, 2, ... tokens
            self._prefixes = [
                re.compile("".join(self._pieces[:count])) for count in range(len(self._pieces) + 1)
            ]
        count = len(self._prefixes) - 1
        while (matched := self._prefixes[count].match(line)) is None:
            count -= 1
        end = matched.end()
        found = f"found {line[end : end + 24]!r}" if end < len(line) else "the line ends there"
        if count == len(self._tokens):
            return f"not in the log_format: more text after its end at column {end + 1}, {found}"
        kind, value = self._tokens[count]
        if kind == "variable":
            what = _SHAPES[value][2] if value in _SHAPES else "readable"
            return f"not in the log_format: ${value} at column {end + 1} is not {what}, {found}"
        after = ""
        if count and self._tokens[count - 1][0] == "variable":
            after = f" after ${self._tokens[count - 1][1]}"
        return f"not in the log_format: expected {value!r}{after} at column {end + 1}, {found}"


def _epoch_ns(value: object, factor: int, what: str) -> int:
    """Unix nanoseconds of a time given as a number of ``1e9 / factor`` seconds since 1970."""
    number = _decimal(value, what)
    nanoseconds = int(number * factor) if number is not None else -1
    if not 0 <= nanoseconds < 2**63:
        raise BadLine(f"{what} {value!r} is not a time between 1970 and 2262")
    return nanoseconds


def _decimal(value: object, what: str) -> Decimal | None:
    """A number as logged, exactly (a JSON number or its text); None for ``-``, empty or null."""
    if value is None or value == "-" or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadLine(f"{what} {value!r} is not a number")
    try:
        number = Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise BadLine(f"{what} {value!r} is not a number") from None
    if not number.is_finite():
        raise BadLine(f"{what} {value!r} is not a number")
    return number


# --- JSON lines -------------------------------------------------------------------------------

#: Clew's fields of a JSON mapping, by what their values are.
JSON_FIELDS: dict[str, str] = {
    "start": "time",
    "end": "time",
    "client": "text",
    "consumer": "text",
    "method": "text",
    "host": "text",
    "path": "text",
    "request": "text",
    "route": "text",
    "status": "status",
    "duration": "duration",
    "upstream_duration": "duration",
    "upstream": "text",
    "bytes_sent": "count",
    "bytes_received": "count",
    "trace_id": "text",
    "request_id": "text",
    "protocol": "text",
    "scheme": "text",
    "user_agent": "text",
    "referer": "text",
    "x_forwarded_for": "text",
    "upstream_status": "text",
}
#: Fields kept in the attributes.
JSON_ATTRIBUTES = (
    "protocol",
    "scheme",
    "user_agent",
    "referer",
    "x_forwarded_for",
    "request_id",
    "upstream_status",
)
#: How times may be written: ``auto`` is ISO 8601, Common Log Format or epoch seconds.
TIME_UNITS = ("auto", "iso8601", "clf", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns")
#: How durations may be written, and nanoseconds per unit.
DURATION_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_EPOCH_FACTORS = {"epoch_s": 1_000_000_000, "epoch_ms": 1_000_000, "epoch_us": 1_000, "epoch_ns": 1}
_LONGEST_NS = 10**7 * 1_000_000_000  # 115 days: anything longer is no request's duration
_LARGEST_COUNT = 10**18
_MISSING = object()


class JsonFormat:
    """The parser of JSON lines whose keys a mapping names: ``parse(line, settings)``."""

    def __init__(self, fields: object, units: object, gateway: str) -> None:
        if not isinstance(fields, dict) or not fields:
            raise ValueError("fields must be a table of Clew field = JSON key")
        unknown = sorted(fields.keys() - JSON_FIELDS.keys())
        if unknown:
            raise ValueError(
                f"fields: {', '.join(unknown)}: not Clew fields ({', '.join(JSON_FIELDS)})"
            )
        for name, key in fields.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"fields: {name} must name a JSON key, not {key!r}")
        times = [name for name in ("start", "end") if name in fields]
        if len(times) != 1:
            raise ValueError("fields must name exactly one of start and end (the request's time)")
        if not isinstance(units, dict):
            raise ValueError("units must be a table of field = unit")
        for name, unit in units.items():
            if name in ("start", "end"):
                allowed: tuple[str, ...] | dict[str, int] = TIME_UNITS
            elif name in ("duration", "upstream_duration"):
                allowed = DURATION_UNITS
            else:
                raise ValueError(
                    f"units: {name}: only start, end, duration and upstream_duration have units"
                )
            if name not in fields:
                raise ValueError(f"units: {name} is not one of the fields")
            if unit not in allowed:
                raise ValueError(f"units: {name} = {unit!r} is none of {', '.join(allowed)}")
        self.fields = dict(fields)
        self.units = dict(units)
        self.gateway = gateway
        self._time = times[0]

    def __reduce__(self) -> tuple:
        return JsonFormat, (self.fields, self.units, self.gateway)

    def __call__(self, line: str, settings: Settings) -> GatewayRequest:
        if not line.startswith("{"):
            raise BadLine("not a JSON object")
        try:
            record = _json_object(line)
        except NotThisFormat:
            raise BadLine("not a JSON object") from None
        found: dict[str, Any] = {}
        for name, key in self.fields.items():
            value = _lookup(record, key)
            if isinstance(value, list):
                value = value[0] if value else None
            if value is _MISSING or value is None or value == "" or value == "-":
                continue  # the line does not say
            found[name] = value
        text = {n: _text(found[n], n, self.fields[n]) for n in found if JSON_FIELDS[n] == "text"}
        if self._time not in found:
            raise BadLine(f"no {self._time} time (key {self.fields[self._time]!r})")
        time_ns = self._time_ns(found[self._time], settings)
        duration = self._duration(found, "duration")
        start_ns = time_ns - duration if self._time == "end" and duration else time_ns
        method, path = text.get("method"), text.get("path")
        if "request" in text and method is None and path is None:
            method, _, rest = text["request"].partition(" ")
            path, _, protocol = rest.partition(" ")
            if protocol:
                text.setdefault("protocol", protocol)
        client = without_port(text["client"]) if "client" in text else None
        attributes = {name: text[name] for name in JSON_ATTRIBUTES if name in text}
        if "referer" in attributes:
            attributes["referer"] = attributes["referer"].split("?", 1)[0]
        trace_id = trace_id_of(text.get("trace_id")) or trace_id_of(text.get("request_id"))
        return GatewayRequest(
            start_ns,
            self.gateway,
            settings.consumer_of(client, text.get("consumer")),
            settings.client(client),
            method or None,
            text.get("host"),
            path_of(path),
            text.get("route"),
            self._status(found.get("status")),
            duration,
            self._duration(found, "upstream_duration"),
            text.get("upstream"),
            self._count(found, "bytes_sent"),
            self._count(found, "bytes_received"),
            trace_id,
            attributes_json(attributes),
        )

    def _time_ns(self, value: object, settings: Settings) -> int:
        unit = self.units.get(self._time, "auto")
        what = f"{self._time} (key {self.fields[self._time]!r})"
        if unit in _EPOCH_FACTORS:
            return _epoch_ns(value, _EPOCH_FACTORS[unit], what)
        if unit == "auto":
            return _json_time_ns(value, settings)
        if not isinstance(value, str):
            raise BadLine(f"{what} {value!r} is not a time")
        if unit == "iso8601":
            return _iso_time_ns(value, settings.timezone)
        return _clf_time_ns(value, settings.timezone)

    def _duration(self, found: Mapping[str, Any], name: str) -> int | None:
        if name not in found:
            return None
        value = found[name]
        unit = self.units.get(name, "s")
        what = f"{name} (key {self.fields[name]!r})"
        if unit == "s" and isinstance(value, str) and ("," in value or ":" in value):
            nanoseconds: int | None = seconds_ns(value)  # one per upstream tried: summed
        else:
            number = _decimal(value, what)
            nanoseconds = round(number * DURATION_UNITS[unit]) if number is not None else None
        if nanoseconds is not None and not 0 <= nanoseconds < _LONGEST_NS:
            raise BadLine(f"{what} {value!r} is not a duration in {unit}")
        return nanoseconds

    def _status(self, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999:
            return value
        raise BadLine(f"status (key {self.fields['status']!r}) {value!r} is not a status")

    def _count(self, found: Mapping[str, Any], name: str) -> int | None:
        value = found.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LARGEST_COUNT:
            return value
        raise BadLine(f"{name} (key {self.fields[name]!r}) {value!r} is not a count")


def _lookup(record: Mapping[str, Any], key: str) -> Any:
    """The value at ``key``: the key itself, else a dotted path into nested objects."""
    if key in record:
        return record[key]
    dot = key.find(".")
    while dot > 0:
        inner = record.get(key[:dot])
        if isinstance(inner, dict):
            value = _lookup(inner, key[dot + 1 :])
            if value is not _MISSING:
                return value
        dot = key.find(".", dot + 1)
    return _MISSING


def _text(value: object, name: str, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadLine(f"{name} (key {key!r}) {value!r} is not text")
