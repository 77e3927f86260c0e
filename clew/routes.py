"""Route templates for concrete request paths: ``GET /v1/orders/8812`` is ``/v1/orders/{id}``.

Gateway access logs, and spans whose instrumentation does not know the route, give concrete paths;
the inventory groups them into endpoints by route template. ``route_for`` tries, in order
(DESIGN.md, "Endpoint matching and the inventory"):

1. the span's ``http.route``, when the instrumentation knows it;
2. the service's contract operations, compiled into a ``Templates`` set: ``/pets/{petId}``;
3. heuristics for identifier segments (``template_of``);
4. cardinality (``Cardinality``): a segment position with many distinct values under one prefix.

Heuristics look at one segment at a time and name a parameter after the segment's form (what
cardinality finds is named ``{param}``: values alike in nothing but their number):

==============================================================  =========================
``8812``                                                        ``{id}``
``2024/01/31`` (a year, a month, a day: a run of segments)      ``{year}/{month}/{day}``
``550e8400-e29b-41d4-a716-446655440000``, or its 32 hex digits  ``{uuid}``
``2024-01-31``, ``2024-01-31T09:30:00Z``                        ``{date}``
``507f1f77bcf86cd799439011`` (16 or more hex digits)            ``{hash}``
``01ARZ3NDEKTSV4RRFFQ69G5FAV`` (a ULID)                         ``{id}``
``cus_NffrFeUfNV2Hib``, ``sub_sched_1Mr3YcLkdIwHu7ix``          ``{id}``
``SM`` and 32 lowercase hex digits (a Twilio SID)               ``{id}``
``jane@example.com``, ``jane%40example.com``                    ``{email}``
``eyJhbGciOiJIUzI1NiJ9`` (20 or more, mixed case and digits)    ``{token}``
``8812.json`` (an identifier with a file extension)             ``{id}.json``
==============================================================  =========================

A prefixed id is a lowercase prefix of one to three words of 1–8 letters, each followed by ``_`` or
``-``, then 8 or more letters and digits with a digit among them (a slug such as ``nous-contacter``
has none). A long hex run is called a hash whatever it stands for (a digest, a MongoDB ObjectId):
the name says the form, which is all a path shows.

A version marker is never a parameter: ``v1``, ``V2``, ``v2beta1``, ``v1.2``, ``2.0`` stay literal
wherever they are. Two forms are versions or identifiers by position: a single digit and a date.
They are versions at a *version position* — the first segment (``/2/tweets``,
``/2010-04-01/Accounts``) and the segment after one named ``api`` (``/rest/api/2/issue``,
``/api/0/projects``) — and identifiers anywhere else (``/orders/7``, ``/reports/2024-01-31``). A
date is a version after the service's own name too, when the name is the first segment
(``/lambda/2015-03-31/functions`` for the service ``lambda``); a digit is not, because a service is
often named for the resource it serves (``/orders/7`` for ``orders``). A first segment of two
digits or more is an identifier: ``/42/orders`` is a tenant's, not version 42. The service's own
name is never a parameter.

The path keeps its shape: repeated slashes and a trailing slash stay (``/index.php/nous-contacter/``
is its own template), because frameworks route ``/a`` and ``/a/`` apart and an odd shape is worth
seeing; only a query string or fragment is cut. Percent-escapes are decoded to classify a segment,
but a literal segment is kept as logged: decoding ``%2F`` would change the path's shape. A segment
that already is a parameter (``{id}``) stays, so ``template_of`` is idempotent.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

#: The parameter ``Cardinality`` puts where a position has too many distinct values.
PARAM = "{param}"

# A parameter as OpenAPI writes it: the whole segment (``{petId}``) or part of one (``{Sid}.json``).
_PARAMETER = re.compile(r"\{[^{}/]+\}")

_VERSION = re.compile(r"[vV][0-9]+(?:\.[0-9]+)*(?:[a-z]+[0-9]*)?|[0-9]+(?:\.[0-9]+)+")
_INTEGER = re.compile(r"[0-9]+")  # not \d: str patterns match every script's digits with it
_DATE = re.compile(r"(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])")
_DATE_TIME = re.compile(
    _DATE.pattern + r"T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_MONTH = re.compile(r"0[1-9]|1[0-2]")
_DAY = re.compile(r"0[1-9]|[12][0-9]|3[01]")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
# Crockford's base 32 without I, L, O and U; the first character holds a timestamp's top 3 bits.
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
# Capitals naming the kind, then lowercase hex: Twilio's SIDs (``SM`` and 32 hex digits).
_CAPITAL_PREFIXED_HEX = re.compile(r"[A-Z]{1,4}[0-9a-f]{16,}")
_PREFIXED_ID = re.compile(r"(?:[a-z]{1,8}[_-]){1,3}(?=[A-Za-z]*[0-9])[A-Za-z0-9]{8,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_TOKEN = re.compile(r"[A-Za-z0-9+=_-]{20,}")
# What sets a random token apart from a long slug or title (``Nous-Contacter-2024``): a capital
# inside a word, and a digit against a letter.
_INNER_CAPITAL = re.compile(r"[a-z0-9][A-Z]")
_DIGIT_BY_LETTER = re.compile(r"[A-Za-z][0-9]|[0-9][A-Za-z]")
_DIGIT_OR_AT = re.compile(r"[0-9@]")
_EXTENSION = re.compile(r"(.+)(\.[A-Za-z][A-Za-z0-9]{0,4})", re.DOTALL)


def _without_query(path: str) -> str:
    for mark in ("?", "#"):
        cut = path.find(mark)
        if cut >= 0:
            path = path[:cut]
    return path


def _parameter_name(text: str, version_position: bool, after_service: bool) -> str | None:
    """The parameter an identifier segment (decoded) stands for; None for a literal."""
    if _VERSION.fullmatch(text):
        return None
    if _INTEGER.fullmatch(text):
        return None if version_position and len(text) == 1 else "id"
    if _DATE.fullmatch(text):
        return None if version_position or after_service else "date"
    if _UUID.fullmatch(text):
        return "uuid"
    if _DATE_TIME.fullmatch(text):
        return "date"
    if _CAPITAL_PREFIXED_HEX.fullmatch(text):
        return "id"
    if _HEX.fullmatch(text):
        return "hash"
    if _ULID.fullmatch(text) or _PREFIXED_ID.fullmatch(text):
        return "id"
    if _EMAIL.fullmatch(text):
        return "email"
    if _TOKEN.fullmatch(text) and _INNER_CAPITAL.search(text) and _DIGIT_BY_LETTER.search(text):
        return "token"
    return None


def _template_segment(segment: str, version_position: bool, after_service: bool) -> str:
    if _PARAMETER.search(segment):
        return segment  # a template already: keeps template_of idempotent
    name = _parameter_name(unquote(segment), version_position, after_service)
    if name is not None:
        return f"{{{name}}}"
    extension = _EXTENSION.fullmatch(segment)
    if extension is not None:
        name = _parameter_name(unquote(extension[1]), version_position, after_service)
        if name is not None:
            return f"{{{name}}}{extension[2]}"
    return segment


def _date_run(segments: list[str], start: int) -> list[str]:
    """The parameters of a year/month[/day] run of segments beginning at ``start``, or []."""
    if not (
        start + 1 < len(segments)
        and _YEAR.fullmatch(segments[start])
        and _MONTH.fullmatch(segments[start + 1])
    ):
        return []
    if start + 2 < len(segments) and _DAY.fullmatch(segments[start + 2]):
        return ["{year}", "{month}", "{day}"]
    return ["{year}", "{month}"]


def template_of(path: str, *, service: str | None = None) -> str:
    """The route template the heuristics give a concrete path (the rules: this module's docstring).

    ``service`` names the service the path was sent to: a date after its name is a version.
    """
    segments = _without_query(path).split("/")
    first = next((i for i, segment in enumerate(segments) if segment), len(segments))
    names_service = (
        service is not None and first < len(segments) and segments[first].lower() == service.lower()
    )
    out: list[str] = []
    while len(out) < len(segments):
        index = len(out)
        segment = segments[index]
        # Every identifier form but an email has a digit (a UUID or hash without one is vanishingly
        # rare), and so does an escape that decodes to one (%30-%39, %40): a segment with neither
        # is a literal without trying the forms. Most segments are.
        if not _DIGIT_OR_AT.search(segment) or (index == first and names_service):
            out.append(segment)
            continue
        run = _date_run(segments, index)
        if run:
            out.extend(run)
            continue
        version_position = index == first or (index > 0 and segments[index - 1].lower() == "api")
        after_service = names_service and index == first + 1
        out.append(_template_segment(segment, version_position, after_service))
    return "/".join(out)


class _Node:
    """A trie node: the templates ending here, and the branches for the next segment."""

    __slots__ = ("literals", "mixed", "parameter", "templates")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        # Segments mixing text and parameters (``{Sid}.json``), keyed by their text pieces
        # (``"", ".json"``): most literal text first once ``rank`` has run.
        self.mixed: dict[tuple[str, ...], _Node] = {}
        self.parameter: _Node | None = None  # a segment that is one parameter
        self.templates: dict[str, str] = {}  # method (``_ANY_METHOD``: any) -> template

    def child(self, segment: str) -> _Node:
        """The node a template's segment leads to, made when new."""
        pieces = tuple(unquote(piece) for piece in _PARAMETER.split(segment))
        if len(pieces) == 1:
            return self.literals.setdefault(pieces[0], _Node())
        if pieces == ("", ""):
            if self.parameter is None:
                self.parameter = _Node()
            return self.parameter
        return self.mixed.setdefault(pieces, _Node())

    def rank(self) -> None:
        """Order the mixed segments most specific first (more literal text), here and below."""
        order = sorted(self.mixed, key=lambda pieces: (-sum(map(len, pieces)), pieces))
        self.mixed = {pieces: self.mixed[pieces] for pieces in order}
        for node in (*self.literals.values(), *self.mixed.values()):
            node.rank()
        if self.parameter is not None:
            self.parameter.rank()


def _fits(pieces: tuple[str, ...], segment: str) -> bool:
    """Whether a segment fits a mixed template segment: its text pieces in order, with at least
    one character for each parameter between them.

    Each middle piece is taken where it first fits, which leaves the most room for the rest: linear
    in the segment, where a regular expression per parameter backtracks in cubic time.
    """
    first, *middle, last = pieces
    end = len(segment) - len(last)
    if not (segment.startswith(first) and segment.endswith(last)):
        return False
    position = len(first)
    for piece in middle:
        found = segment.find(piece, position + 1, end - 1)
        if found < 0:
            return False
        position = found + len(piece)
    return position < end


# Sorts before every method name, so an unknown method prefers the any-method template.
_ANY_METHOD = "*"


def _template_at(node: _Node, method: str | None) -> str | None:
    if not node.templates:
        return None
    if method is None:
        return node.templates[min(node.templates)]
    found = node.templates.get(method)
    return found if found is not None else node.templates.get(_ANY_METHOD)


def _find(node: _Node, segments: list[str], index: int, method: str | None) -> str | None:
    """Depth first, most specific branch first: the first template found is the one that wins.

    Recursion goes no deeper than the longest template, whatever the path's length.
    """
    if index == len(segments):
        return _template_at(node, method)
    segment = segments[index]
    literal = node.literals.get(segment)
    if literal is not None:
        found = _find(literal, segments, index + 1, method)
        if found is not None:
            return found
    for pieces, child in node.mixed.items():
        if _fits(pieces, segment):
            found = _find(child, segments, index + 1, method)
            if found is not None:
                return found
    if node.parameter is not None and segment:  # a parameter is never empty
        return _find(node.parameter, segments, index + 1, method)
    return None


class Templates:
    """The path templates of one service's contract operations, matched most specific first.

    Built from ``(method, template)`` pairs, ``method`` None for any method. Templates are compiled
    into a trie of segments, so a match follows one path through it (backtracking only where a
    literal branch dead-ends) instead of trying a pattern per operation. At each segment a literal
    beats a segment mixing text and a parameter (more literal text first), which beats a parameter:
    ``/v1/invoices/upcoming`` beats ``/v1/invoices/{invoice}``. Among templates of one shape, one
    for the request's method beats one for any method, and two spellings of one template
    (``/pets/{id}``, ``/pets/{petId}``) give the smaller, whatever order they came in.
    """

    def __init__(self, operations: Iterable[tuple[str | None, str]]) -> None:
        self._root = _Node()
        for method, template in operations:
            node = self._root
            for segment in _without_query(template).split("/"):
                node = node.child(segment)
            key = method.upper() if method else _ANY_METHOD
            held = node.templates.get(key)
            node.templates[key] = template if held is None else min(held, template)
        self._root.rank()

    def match(self, method: str | None, path: str) -> str | None:
        """The template that matches ``method path`` most specifically, or None.

        Segments are compared percent-decoded, as contracts write them. A path with a trailing
        slash that matches nothing is tried without it (``/pets/`` for ``/pets``).
        """
        segments = [
            unquote(segment) if "%" in segment else segment
            for segment in _without_query(path).split("/")
        ]
        method = method.upper() if method else None
        found = _find(self._root, segments, 0, method)
        if found is None and len(segments) > 2 and segments[-1] == "":
            found = _find(self._root, segments[:-1], 0, method)
        return found


def server_path(url: str) -> str:
    """The path of a server URL (``https://api.example.com/v1/`` → ``/v1``; a bare path as it
    is), without a trailing slash."""
    match = re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/]*(/.*)?$", url)
    path = (match.group(1) or "") if match else url
    return path.rstrip("/")


def match_under(
    templates: Templates, prefixes: Sequence[str], method: str | None, route: str
) -> str | None:
    """``templates.match`` of a route that may carry one of the servers' path ``prefixes``
    (``/api/v1``, longest first) before the contract's paths; the route as it is last."""
    for prefix in prefixes:
        if route.startswith(prefix + "/"):
            found = templates.match(method, route[len(prefix) :])
            if found is not None:
                return found
    return templates.match(method, route)


def versioned_path(path: str) -> bool:
    """Whether a path (or route template) pins a version: a version marker anywhere (``v1``,
    ``v2beta1``, ``2.0``), or at a version position (the first segment, the one after ``api``) a
    date (``/2010-04-01/``) or a single digit (``/2/tweets``), as the heuristics read them."""
    segments = [segment for segment in _without_query(path).split("/") if segment]
    for index, segment in enumerate(segments):
        if _VERSION.fullmatch(segment):
            return True
        at_version_position = index == 0 or segments[index - 1].lower() == "api"
        if at_version_position and (
            _DATE.fullmatch(segment) or (len(segment) == 1 and segment.isdigit())
        ):
            return True
    return False


def _is_marker(segment: str) -> bool:
    """A version marker or ``api``: what an API's resources are listed after."""
    # The heuristics leave an integer or a date literal only at a version position.
    return bool(
        segment.lower() == "api"
        or _VERSION.fullmatch(segment)
        or _INTEGER.fullmatch(segment)
        or _DATE.fullmatch(segment)
    )


def _digest(value: str) -> bytes:
    # Fixed size whatever the segment's length, and the same in every process (unlike hash()).
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()


#: A segment position: (service, method or None for any, the prefix before it).
Position = tuple[str, str | None, str]


class Cardinality:
    """Learns which literal segment positions are parameters from the paths a service is sent.

    A position is the segment after a prefix (the templated segments before it) for one service and
    method: ``/users/alice`` and ``/users/bob/repos`` both put a value at the position after
    ``/users``. When ``threshold`` distinct literal values have been seen at a position, it becomes
    ``{param}`` for good: the path that tipped it and every later one are templated with it, and
    the prefixes of deeper positions then hold ``{param}`` too. Once a position is a parameter,
    every literal there is: ``/users/search`` joins ``/users/{param}``.

    Never a parameter: a version marker, ``api``, a segment holding a parameter already, and a
    segment naming a resource at an API's root — the first segment, and one right after a version
    marker or ``api`` (``/v1/customers``, ``/billing/api/invoices``). A large API lists more
    resources there than the threshold (Stripe's ``/v1`` has about a hundred), and scanners probing
    ``/wp-admin`` and ``/.env`` pile up distinct values at the first segment.

    The same stream of paths gives the same templates. Memory is bounded: a position remembers at
    most ``threshold - 1`` values, as 8-byte digests; at most ``max_positions`` undecided positions
    are tracked, the least recently seen forgotten first (its count starts again if it comes back);
    and after ``max_decisions`` decisions no more are made. When a path was seen is what
    ``template`` is told (the ingest tells the minute of the request, so the store's state does not
    depend on how requests were batched), else the order paths are shown in. ``state()`` keeps the
    decisions and the counting (each undecided position's values and when it was last seen), so
    ``from_state()`` goes on as if the stream had not stopped; ``changes()`` tells what the counting
    did since it was last asked, for a store that keeps it as it goes.
    """

    def __init__(
        self, *, threshold: int = 50, max_positions: int = 10_000, max_decisions: int = 10_000
    ) -> None:
        if threshold < 2:
            raise ValueError(f"threshold must be at least 2 distinct values, not {threshold}")
        if max_positions < 1 or max_decisions < 1:
            raise ValueError("max_positions and max_decisions must be positive")
        self._threshold = threshold
        self._max_positions = max_positions
        self._max_decisions = max_decisions
        self._parameters: set[Position] = set()
        self._values: dict[Position, set[bytes]] = {}
        # When each counted position was last seen, and a heap of (when, position order,
        # position) that finds the least recent: an entry a later sighting made stale is skipped.
        self._seen: dict[Position, int] = {}
        self._recency: list[tuple[int, tuple[str, str, str], Position]] = []
        self._shown = 0  # paths shown: when one was seen, unless told
        # Since ``changes()`` was last asked: positions counted, and positions whose counting
        # ended (decided, or forgotten).
        self._counted: set[Position] = set()
        self._ended: set[Position] = set()

    def template(self, service: str, method: str | None, path: str, seen: int | None = None) -> str:
        """The path's template: heuristics first, then the positions decided to be parameters.

        Observes the path's literal segments on the way, which may make a position a parameter.
        ``seen`` is when the path was sent, in any unit that grows with time; by default, how many
        paths were shown before it.
        """
        self._shown += 1
        when = self._shown if seen is None else seen
        method = method.upper() if method else None
        segments = template_of(path, service=service).split("/")
        previous: str | None = None
        for index, segment in enumerate(segments):
            if not segment:
                continue
            names_resource = previous is None or _is_marker(previous)
            previous = segment
            if names_resource or _PARAMETER.search(segment) or _is_marker(segment):
                continue
            position = (service, method, "/".join(segments[:index]))
            if position in self._parameters or self._observe(position, segment, when):
                segments[index] = PARAM
        return "/".join(segments)

    def _observe(self, position: Position, value: str, when: int) -> bool:
        """Count ``value`` at ``position``, seen at ``when``; True when that makes the position a
        parameter."""
        if len(self._parameters) >= self._max_decisions:
            return False
        values = self._values.get(position)
        if values is None:
            if len(self._values) >= self._max_positions:
                self._end(self._least_recent())
            values = self._values[position] = set()
        values.add(_digest(value))
        if len(values) >= self._threshold:
            self._parameters.add(position)
            self._end(position)
            return True
        self._see(position, when)
        self._counted.add(position)
        self._ended.discard(position)
        return False

    def _see(self, position: Position, when: int) -> None:
        last = self._seen.get(position)
        if last is not None and last >= when:
            return
        self._seen[position] = when
        heapq.heappush(self._recency, (when, _position_order(position), position))
        if len(self._recency) > 4 * len(self._seen) + 64:  # mostly stale: built again
            self._recency = [(w, _position_order(p), p) for p, w in self._seen.items()]
            heapq.heapify(self._recency)

    def _least_recent(self) -> Position:
        """The counted position seen least recently (the first in position order, of several)."""
        while True:
            when, _, position = heapq.heappop(self._recency)
            if self._seen.get(position) == when:
                return position

    def _end(self, position: Position) -> None:
        """Stop counting at a position (decided, or forgotten)."""
        self._values.pop(position, None)
        self._seen.pop(position, None)
        self._counted.discard(position)
        self._ended.add(position)

    def decisions(self) -> frozenset[Position]:
        """The positions decided to be parameters: (service, method or None, prefix)."""
        return frozenset(self._parameters)

    def changes(self) -> tuple[list[tuple[Position, int, list[bytes]]], list[Position]]:
        """What the counting did since this was last asked: the positions counted, each with when
        it was last seen and its values' digests (sorted); and the positions whose counting ended
        (decided, or forgotten). Both in order: least recently seen first, then by position."""
        counted = [(p, self._seen[p], sorted(self._values[p])) for p in self._counted]
        counted.sort(key=lambda entry: (entry[1], _position_order(entry[0])))
        ended = sorted(self._ended, key=_position_order)
        self._counted, self._ended = set(), set()
        return counted, ended

    def state(self) -> dict[str, list]:
        """The decisions and the counting, JSON-serialisable: ``decisions`` as
        ``[service, method, prefix]`` each (the position after ``prefix`` being a parameter),
        sorted; ``counting`` as ``[service, method, prefix, when last seen, [value digest in
        hex, ...]]`` each, least recently seen first."""
        decided = sorted(self._parameters, key=_position_order)
        counting = sorted(self._seen, key=lambda p: (self._seen[p], _position_order(p)))
        return {
            "decisions": [list(position) for position in decided],
            "counting": [
                [*p, self._seen[p], sorted(digest.hex() for digest in self._values[p])]
                for p in counting
            ],
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, list],
        *,
        threshold: int = 50,
        max_positions: int = 10_000,
        max_decisions: int = 10_000,
    ) -> Cardinality:
        """A ``Cardinality`` going on from what ``state()`` gave (a state without ``counting``
        counts afresh)."""
        cardinality = cls(
            threshold=threshold, max_positions=max_positions, max_decisions=max_decisions
        )
        for service, method, prefix in state["decisions"]:
            cardinality._parameters.add(_position(service, method, prefix))
        for service, method, prefix, when, digests in state.get("counting", ()):
            position = _position(service, method, prefix)
            cardinality._values[position] = {bytes.fromhex(digest) for digest in digests}
            cardinality._see(position, when)
            cardinality._shown = max(cardinality._shown, when)
        return cardinality


def _position(service: str, method: str | None, prefix: str) -> Position:
    return (str(service), method.upper() if method else None, str(prefix))


def _position_order(position: Position) -> tuple[str, str, str]:
    return (position[0], position[1] or "", position[2])


def route_for(
    path: str,
    method: str | None,
    service: str,
    *,
    http_route: str | None = None,
    templates: Templates | None = None,
    cardinality: Cardinality | None = None,
) -> str:
    """The route template of one request: its ``http.route`` when known, else the service's
    contract template that matches, else the heuristics, with ``cardinality``'s decisions when
    given (which also learns from the path)."""
    if http_route:
        return http_route
    if templates is not None and (matched := templates.match(method, path)) is not None:
        return matched
    if cardinality is not None:
        return cardinality.template(service, method, path)
    return template_of(path, service=service)
