"""API gateway and reverse-proxy access logs: a line per request, read as a file grows.

Each product's collector (``nginx``, ``kong``, ``envoy``, ``aws_apigateway``, ``traefik``,
``haproxy``) knows one or more *line formats*. A line format is a function from one line (its
container-runtime or syslog prefix already removed, see ``strip_prefix``) and the ``Settings`` to a
``GatewayRequest``. It raises ``NotThisFormat`` when the line is plainly in another format, so that
the collector's other formats are tried, and ``BadLine`` with a reason when the line is in its
format but broken: that line is quarantined with the reason, and reading goes on.

Formats are tried per line, the last one that matched first, so one file may mix them (Envoy
writes text and JSON lines to one stream). A file's collector is chosen by its head: the
collector whose formats read most of its first lines.

Lines are read in blocks (``collectors.lines``); a ``Checkpoint`` follows every
``CHECKPOINT_LINES`` lines and the last one. A file still being written (``Source.growing``) keeps
a last line that has no newline yet for the next read: it may be half written.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from clew.records import Checkpoint, GatewayRequest, Quarantined, Record, excerpt
from collectors import CollectorError, Source, lines

#: Lines between two checkpoints: a batch can end at any of them.
CHECKPOINT_LINES = 1_000
#: Non-blank lines of a file's head that detection reads.
DETECT_LINES = 20


class NotThisFormat(Exception):
    """The line is not in this format (another may read it)."""


class BadLine(Exception):
    """The line is in this format but cannot be read; the message is the reason."""


@dataclass(frozen=True)
class Settings:
    """How gateway log lines become records; the same for every line of a source.

    ``consumer`` says who the caller is: ``"auto"`` takes the identity the format logs (Kong's
    consumer, AWS's API key or Cognito identity), else none (the map's generic ``client``:
    public traffic from thousands of addresses is one caller, not thousands); ``"client"``
    takes the client address; ``"header:NAME"`` a captured request header (where the format
    captures headers), else the client address. With ``hash_clients``, client addresses are
    stored and shown as a keyed hash (``hash_key``), so requests stay countable per client
    without the address. ``fields`` maps Clew's field names to a format's own names where the
    operator chose them: a JSON format's keys (NGINX ``log_format ... escape=json``, AWS
    ``$context`` variables), or the headers HAProxy captures (``request_headers`` and
    ``response_headers``: their names, comma-separated, in the order the configuration
    captures them). ``timezone`` is the UTC offset in minutes for timestamps that carry none
    (HAProxy's accept date is the host's local time).
    """

    gateway: str | None = None
    consumer: str = "auto"
    hash_clients: bool = False
    hash_key: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    timezone: int = 0

    def client(self, address: str | None) -> str | None:
        """A client address as it is stored: as logged, or hashed."""
        if address is None or not self.hash_clients:
            return address
        digest = hmac.new(self.hash_key.encode(), address.encode(), hashlib.sha256).hexdigest()
        return f"client-{digest[:16]}"

    def consumer_of(
        self,
        client: str | None,
        identity: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        """The consumer of a request, by ``consumer`` (see the class)."""
        if self.consumer == "auto":
            return identity or None
        if self.consumer.startswith("header:") and headers:
            value = headers.get(self.consumer[7:].lower())
            if value:
                return value
        return self.client(client)


#: A compiled reader of many lines at once: ``(data, start, end, most)`` reads the lines of
#: ``data[start:end]`` (each ending with a newline), at most ``most`` of them, up to the first one
#: it hands back, and gives ``(records, position, lines)``: the records, where it stopped and how
#: many lines it went past (blank ones included).
BlockReader = Callable[[bytes, int, int, int], tuple[list[GatewayRequest], int, int]]


@dataclass(frozen=True)
class LineFormat:
    """One line format: its name (``nginx_combined``, ``envoy_json``) and its parser.

    ``block``, where a format has one, gives for the ``Settings`` a ``BlockReader`` (or None
    when it has none for them, or is not built) that reads its lines exactly as ``parse`` and
    the collector's per-line loop do, and hands back every line it does not read so.
    """

    name: str
    parse: Callable[[str, Settings], GatewayRequest]
    block: Callable[[Settings], BlockReader | None] | None = None


# A container runtime's log line (CRI, as containerd and CRI-O write it): time, stream, a full or
# partial tag, then the line as the container wrote it.
_CRI = re.compile(r"(\d{4}-\d\d-\d\dT\S+) (?:stdout|stderr) ([FP]) ")
# A syslog header: RFC 3164 ("<PRI>Mmm dd hh:mm:ss host tag[pid]: ") or RFC 5424
# ("<PRI>1 2024-01-01T00:00:00Z host app pid msgid [sd] "), priority optional.
_SYSLOG_3164 = re.compile(
    r"(?:<\d{1,3}>)?[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s:\[]+(?:\[\d+\])?: "
)
_SYSLOG_5424 = re.compile(r"<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ (?:-|(?:\[.*?\])+) ")


def strip_prefix(line: str) -> tuple[str, bool]:
    """A line without its container-runtime or syslog prefix, and whether the runtime marked it
    partial (the rest of it follows on the next line)."""
    if (match := _CRI.match(line)) is not None:
        return line[match.end() :], match.group(2) == "P"
    if (match := _SYSLOG_3164.match(line) or _SYSLOG_5424.match(line)) is not None:
        return line[match.end() :], False
    return line, False


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_CLF_TIME = re.compile(
    r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?: ([+-])(\d\d)(\d\d))?$"
)


def clf_time_ns(text: str, default_offset_minutes: int = 0) -> int:
    """Unix nanoseconds of a Common Log Format time, ``10/Oct/2000:13:55:36 -0700`` (fractions of
    a second and a missing offset allowed: HAProxy's ``12/Mar/2021:06:56:28.088``).

    Raises ``BadLine`` when it is no such time.
    """
    match = _CLF_TIME.match(text)
    if match is None or match.group(2) not in _MONTHS:
        raise BadLine(f"{text!r} is not a time like 10/Oct/2000:13:55:36 -0700")
    day, month, year, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        seconds = calendar.timegm(
            (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        )
        datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    except ValueError as error:
        raise BadLine(f"{text!r} is not a valid time: {error}") from None
    _check_year(int(year), text)
    offset = default_offset_minutes * 60
    if sign is not None:
        offset = (int(off_h) * 60 + int(off_m)) * 60 * (-1 if sign == "-" else 1)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return (seconds - offset) * 1_000_000_000 + nanos


def _check_year(year: int, text: str) -> None:
    """Times are stored as signed 64-bit nanoseconds: years 1678 to 2261."""
    if not 1678 <= year <= 2261:
        raise BadLine(f"{text!r} is outside the years 1678 to 2261 that a time can hold")


_ISO_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9})\d*)?(Z|[+-]\d\d:?\d\d)?$"
)


def iso_time_ns(text: str, default_offset_minutes: int = 0) -> int:
    """Unix nanoseconds of an RFC 3339 / ISO 8601 time, to the nanosecond
    (``2025-12-31T17:37:40.493035218+01:00``); raises ``BadLine`` when it is no such time."""
    match = _ISO_TIME.match(text)
    if match is None:
        raise BadLine(f"{text!r} is not an ISO 8601 time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError as error:
        raise BadLine(f"{text!r} is not a valid time: {error}") from None
    _check_year(int(year), text)
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second))
    )
    if zone is None:
        offset = default_offset_minutes * 60
    elif zone == "Z":
        offset = 0
    else:
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * 60 * (-1 if zone[0] == "-" else 1)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return (seconds - offset) * 1_000_000_000 + nanos


def seconds_ns(text: str | float | int | None) -> int | None:
    """Nanoseconds of a duration in seconds (``"0.057"``, 0.057); None for ``-``, empty or
    missing. NGINX writes several (``"0.010, 0.020"``) when it tried several upstreams: their
    sum is the upstream time. Raises ``BadLine`` for anything else."""
    if text is None or text in ("-", ""):
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        total = float(text)
    elif isinstance(text, str):
        total = 0.0
        for part in text.replace(":", ",").split(","):
            part = part.strip()
            if part in ("-", ""):
                continue
            try:
                total += float(part)
            except ValueError:
                raise BadLine(f"{text!r} is not a duration in seconds") from None
    else:
        raise BadLine(f"{text!r} is not a duration in seconds")
    # Stored as signed 64-bit nanoseconds: 292 years at most, and never NaN.
    if not (math.isfinite(total) and abs(total) < 9.2e9):
        raise BadLine(f"{text!r} is not a duration in seconds that a record can hold")
    return round(total * 1_000_000_000)


#: Nanoseconds in a millisecond.
NS_PER_MS = 1_000_000
#: Counts are stored as signed 64-bit integers, and durations as that many nanoseconds.
MAX_COUNT = 2**63 - 1
MAX_MS = MAX_COUNT // NS_PER_MS


def whole_number(name: str, value: object) -> int:
    """A whole, non-negative number that a JSON log wrote as a number (``46``) or as text
    (``"46"``); ``BadLine`` naming the field ``name`` for anything else, or for more than a
    record holds."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    raise BadLine(f"{name} {value!r} is not a whole number of at least 0")


def milliseconds_ns(name: str, value: object) -> int:
    """Nanoseconds of a whole number of milliseconds, read as ``whole_number`` reads it."""
    milliseconds = whole_number(name, value)
    if milliseconds > MAX_MS:
        raise BadLine(f"{name} {value!r} is too long a duration")
    return milliseconds * NS_PER_MS


def integer(text: str | int | None) -> int | None:
    """An integer field; None for ``-``, empty or missing; ``BadLine`` for anything else."""
    if text is None or text in ("-", ""):
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):  # a float, a bool: not what an integer field holds
        raise BadLine(f"{text!r} is not a whole number")
    try:
        return int(text)
    except ValueError:
        raise BadLine(f"{text!r} is not a number") from None


def path_of(target: str | None) -> str | None:
    """The path of a request target, without its query string or fragment; an absolute-form
    target (``http://host/path``, as proxies receive) gives its path."""
    if target is None or target in ("-", ""):
        return None
    if "://" in target[:10]:
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    for mark in ("?", "#"):
        cut = target.find(mark)
        if cut >= 0:
            target = target[:cut]
    return target or "/"


def without_port(address: str) -> str:
    """An address without its port: ``10.0.0.1:80`` → ``10.0.0.1``, ``[fd00::1]:80`` →
    ``fd00::1``; a bare IPv6 address (``fd00::1``) or a Unix socket (``unix:/run/app.sock``) as
    it is."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 1 else address
    if address.count(":") == 1 and not address.startswith("unix:"):
        return address.partition(":")[0]
    return address


_HEX = re.compile(r"[0-9a-f]+")


def trace_id_of(value: str | None) -> str | None:
    """The trace id a propagation header carries: W3C ``traceparent``
    (``00-<32 hex>-<16 hex>-01``), B3 single (``<trace>-<span>[-<flags>]``), or a bare 16 or 32
    hex id (``X-B3-TraceId``, a propagated ``$request_id``); 32 lowercase hex digits, or None."""
    if not value or value == "-":
        return None
    value = value.strip().lower()
    parts = value.split("-")
    if len(parts) == 4 and len(parts[0]) == 2 and len(parts[1]) == 32:  # traceparent
        candidate = parts[1]
    else:
        candidate = parts[0]
    if len(candidate) not in (16, 32) or _HEX.fullmatch(candidate) is None:
        return None
    if candidate.strip("0") == "":
        return None  # all zeros: an invalid id in both W3C and B3
    return candidate.rjust(32, "0")


#: A request header a client pins an API version with (``Api-Version``, ``Accept-Version``,
#: ``X-API-Version``, ``Stripe-Version``): a name ending in "version".
VERSION_HEADER = re.compile(r"(?:^|[-_])version$", re.IGNORECASE)


def version_header_of(names: Iterable[str]) -> str | None:
    """The first (in name order) of a request's header names that pins a version, as logged;
    kept in a request's attributes as ``version_header``, so the inventory knows that clients
    pin versions of that route by a header, seen in traffic."""
    return next((name for name in sorted(names) if VERSION_HEADER.search(name)), None)


def attributes_json(values: Mapping[str, object]) -> str | None:
    """What else a line says, as the JSON object records keep; None when it says nothing."""
    kept = {key: value for key, value in values.items() if value not in (None, "", "-")}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode() if kept else None


class _LineSteps:
    """The steps every line of an access log takes, whichever way it is read (line by line, or
    handed back by a compiled block reader): a line the container runtime split (CRI tag
    ``P``) joined with its rest, blank lines skipped, the file's first line checked against
    the collector's ``rejects``, the rest read by its formats (the last that read one first)."""

    def __init__(self, collector: AccessLogCollector, source: Source) -> None:
        self.collector, self.source = collector, source
        self.formats = list(collector.formats)
        self.partial: list[str] = []  # of a line the container runtime split, so far
        self.first = True

    def read(self, raw: bytes, line_number: int) -> GatewayRequest | Quarantined | None:
        """The record of one line (``raw``, its newline included), or None: a blank line, or a
        piece of a split one."""
        text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
        line, is_partial = strip_prefix(text)
        if is_partial:
            self.partial.append(line)
            return None
        if self.partial:
            line = "".join(self.partial) + line
            self.partial = []
        if not line.strip():
            return None
        collector = self.collector
        if self.first and collector.rejects is not None:
            reason = collector.rejects(line)
            if reason is not None:
                raise CollectorError(f"{self.source.name}: line {line_number}: {reason}")
        self.first = False
        return collector._record(line, self.formats, collector.settings, line_number)


class AccessLogCollector:
    """Access logs of one product: its line formats, tried per line, and how lines become
    records (``settings``).

    ``rejects`` recognises files of the product that are no access logs (an NGINX error log):
    given a file's first non-blank line, it returns why the file is refused, or None.
    """

    #: Reads a file still being written (``Source.growing``): its half-written last line waits.
    reads_growing = True

    def __init__(
        self,
        name: str,
        description: str,
        formats: list[LineFormat],
        settings: Settings | None = None,
        rejects: Callable[[str], str | None] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.formats = formats
        self.settings = settings or Settings()
        self.rejects = rejects

    def configured(self, settings: Settings) -> AccessLogCollector:
        """The same collector with other settings."""
        return AccessLogCollector(self.name, self.description, self.formats, settings, self.rejects)

    def detect(self, head: bytes) -> bool:
        """Whether most of the head's first lines are in this product's formats, read or broken
        (or the head is a file of the product that ``rejects`` refuses, so that it is refused
        with its reason)."""
        text = head.decode("utf-8", errors="replace")
        candidates = text.split("\n")
        if len(head) >= 64 * 1024:
            candidates = candidates[:-1]  # cut off by the head's end
        sample = [line.rstrip("\r") for line in candidates if line.strip()][:DETECT_LINES]
        if not sample:
            return False
        if self.rejects is not None and self.rejects(strip_prefix(sample[0])[0]) is not None:
            return True
        known = sum(1 for line in sample if self._format_of(strip_prefix(line)[0]) is not None)
        return known * 2 > len(sample)

    def _format_of(self, line: str) -> LineFormat | None:
        """The format a line is in: one that reads it, or finds it broken (``BadLine`` says the
        line is in that format)."""
        for line_format in self.formats:
            try:
                line_format.parse(line, self.settings)
            except NotThisFormat:
                continue
            except BadLine:
                return line_format
            return line_format
        return None

    def collect(self, source: Source) -> Iterator[Record]:
        try:
            handle = source.open()
        except OSError as error:
            raise CollectorError(f"{source.name}: cannot read: {error.strerror}") from error
        with handle:
            line_number = 0
            remaining = source.offset
            while remaining > 0:  # lines before the checkpoint: positions stay true on resume
                block = handle.read(min(remaining, lines.READ_BYTES))
                if not block:
                    break
                line_number += block.count(b"\n")
                remaining -= len(block)
            handle.seek(source.offset)
            yield from self._records(handle, source, line_number)

    def _block_reader(self) -> tuple[LineFormat, BlockReader] | None:
        """A format's compiled reader of blocks of lines for these settings, if any."""
        for line_format in self.formats:
            if line_format.block is not None:
                reader = line_format.block(self.settings)
                if reader is not None:
                    return line_format, reader
        return None

    def _records(self, handle, source: Source, line_number: int) -> Iterator[Record]:
        if (block := self._block_reader()) is not None:
            yield from self._block_records(handle, source, line_number, *block)
            return
        steps = _LineSteps(self, source)
        position = source.offset
        since_checkpoint = 0
        try:
            for raw in lines.split_lines(handle):
                if source.growing and raw[-1:] != b"\n":
                    break  # half written, maybe: read with the rest of it next time
                line_number += 1
                position += len(raw)
                since_checkpoint += 1
                record = steps.read(bytes(raw), line_number)
                if record is not None:
                    yield record
                if since_checkpoint >= CHECKPOINT_LINES and not steps.partial:
                    yield Checkpoint(position)
                    since_checkpoint = 0
        except (OSError, EOFError) as error:  # a damaged gzip stream, a vanished disk
            raise CollectorError(
                f"{source.name}: after line {line_number}: cannot read on: {error}"
            ) from error
        if not steps.partial:
            yield Checkpoint(position)

    def _block_records(
        self,
        handle,
        source: Source,
        line_number: int,
        block_format: LineFormat,
        read_block: BlockReader,
    ) -> Iterator[Record]:
        """``_records`` with a compiled reader: the complete lines of each block read go to
        ``read_block``, the lines it hands back through the per-line loop's steps, one by one;
        records, checkpoints, positions and line numbers are exactly those of ``_records``."""
        steps = _LineSteps(self, source)
        formats = steps.formats
        position = source.offset
        since_checkpoint = 0

        pieces: list[bytes] = []  # of a line that runs on past the blocks read so far
        try:
            while chunk := handle.read(lines.READ_BYTES):
                complete = chunk.rfind(b"\n") + 1  # the chunk's part up to its last newline
                if not complete:
                    pieces.append(chunk)
                    continue
                data = b"".join((*pieces, chunk)) if pieces else chunk
                end = len(data) - len(chunk) + complete
                pieces = [chunk[complete:]] if complete < len(chunk) else []
                start = 0
                while start < end:
                    if steps.first or steps.partial:
                        stop, count, records = start, 0, []
                    else:
                        records, stop, count = read_block(
                            data, start, end, CHECKPOINT_LINES - since_checkpoint
                        )
                    if records:
                        yield from records
                        if formats[0] is not block_format:  # as _record moves a format
                            formats.insert(0, formats.pop(formats.index(block_format)))
                    line_number += count
                    position += stop - start
                    since_checkpoint += count
                    start = stop
                    if start < end and (not count or since_checkpoint < CHECKPOINT_LINES):
                        # a line the reader hands back (or any, before the first or in a
                        # partial one: past a checkpoint's count, too): the per-line loop's way
                        stop = data.index(b"\n", start, end) + 1
                        line_number += 1
                        position += stop - start
                        since_checkpoint += 1
                        record = steps.read(data[start:stop], line_number)
                        start = stop
                        if record is not None:
                            yield record
                    if since_checkpoint >= CHECKPOINT_LINES and not steps.partial:
                        yield Checkpoint(position)
                        since_checkpoint = 0
            if pieces and not source.growing:  # the last line, without a newline
                raw = b"".join(pieces)
                line_number += 1
                position += len(raw)
                since_checkpoint += 1
                record = steps.read(raw, line_number)
                if record is not None:
                    yield record
                if since_checkpoint >= CHECKPOINT_LINES and not steps.partial:
                    yield Checkpoint(position)
                    since_checkpoint = 0
        except (OSError, EOFError) as error:  # a damaged gzip stream, a vanished disk
            raise CollectorError(
                f"{source.name}: after line {line_number}: cannot read on: {error}"
            ) from error
        if not steps.partial:
            yield Checkpoint(position)

    def _record(
        self, line: str, formats: list[LineFormat], settings: Settings, line_number: int
    ) -> GatewayRequest | Quarantined:
        reasons = []
        for index, line_format in enumerate(formats):
            try:
                request = line_format.parse(line, settings)
            except NotThisFormat:
                continue
            except BadLine as error:
                reasons.append(f"{line_format.name}: {error}")
                continue
            if index:  # the last format that read a line is tried first
                formats.insert(0, formats.pop(index))
            if settings.gateway is not None and request.gateway != settings.gateway:
                request = request._replace(gateway=settings.gateway)
            return request
        if not reasons:
            names = ", ".join(f.name for f in self.formats)
            reasons.append(f"not a line of {names}")
        return Quarantined(f"line {line_number}", "; ".join(reasons), excerpt(line))
