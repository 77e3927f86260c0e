"""URL state: every page keeps its window and filters in the query string, so a view is a link.

``parse`` turns a query into a ``ViewState`` and a list of problems (shown to the user, never
raised); ``search`` turns a state back into the shortest query string that means the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from urllib.parse import parse_qsl, urlencode

from clew.records import ConnectionType, NodeKind
from clew.store.queries import Window, parse_time, window_between

#: The windows offered in the toolbar, relative to now; ``all`` has no bounds.
WINDOWS: dict[str, str] = {
    "15m": "last 15 minutes",
    "1h": "last hour",
    "3h": "last 3 hours",
    "6h": "last 6 hours",
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "all": "all data",
}
DEFAULT_WINDOW = "3h"
#: Longest search text kept from a URL.
MAX_SEARCH = 200


@dataclass(frozen=True)
class ViewState:
    """The window and filters a page shows. ``since``/``until`` override ``window`` when set."""

    window: str = DEFAULT_WINDOW
    since: str | None = None
    until: str | None = None
    namespace: str | None = None
    environment: str | None = None
    kind: str | None = None
    #: Only edges of this connection type (``direct``, ``messaging_system``, ...).
    connection: str | None = None
    #: Only edges carrying at least this many calls per second.
    min_rate: float | None = None
    q: str | None = None

    @property
    def explicit(self) -> bool:
        """Whether the window is given by ``since``/``until`` rather than a preset."""
        return bool(self.since or self.until)

    def resolve(self, now_ns: int | None = None) -> Window:
        """The store's window for this state; raises ``ValueError`` on a bad time."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if self.explicit:
            return window_between(self.since, self.until, now_ns)
        if self.window == "all":
            return Window()
        return window_between(self.window, None, now_ns)

    def describe(self) -> str:
        """The window in words, for headings."""
        if self.explicit:
            since = f"from {self.since}" if self.since else "from the beginning"
            until = f" until {self.until}" if self.until else " until now"
            return since + until
        return WINDOWS[self.window]


STATE_KEYS = tuple(f.name for f in fields(ViewState))


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse(query: Mapping[str, object], now_ns: int | None = None) -> tuple[ViewState, list[str]]:
    """The view state in ``query`` (URL parameters or control values) and what was wrong with it.

    A bad value is dropped in favour of its default and explained in the problems list.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    problems: list[str] = []
    values = {key: _clean(query.get(key)) for key in STATE_KEYS}
    window = values["window"] or DEFAULT_WINDOW
    if window not in WINDOWS:
        problems.append(
            f"Window {window!r} is not one of {', '.join(WINDOWS)}; showing the"
            f" {WINDOWS[DEFAULT_WINDOW]} instead."
        )
        window = DEFAULT_WINDOW
    times = {}
    for key in ("since", "until"):
        value = values[key]
        if value is None:
            continue
        try:
            times[key] = parse_time(value, now_ns)
        except ValueError as error:
            problems.append(f"{key.capitalize()}: {error}; it is ignored.")
            values[key] = None
    if values["since"] and values["until"] and times["since"] >= times["until"]:
        problems.append(
            f"Since ({values['since']}) is not before until ({values['until']}); both are ignored."
        )
        values["since"] = values["until"] = None
    kind = values["kind"]
    if kind is not None and kind not in NodeKind.ALL:
        problems.append(f"Kind {kind!r} is not one of {', '.join(NodeKind.ALL)}; it is ignored.")
        kind = None
    connection = values["connection"]
    if connection is not None and connection not in ConnectionType.ALL:
        problems.append(
            f"Connection type {connection!r} is not one of {', '.join(ConnectionType.ALL)};"
            " it is ignored."
        )
        connection = None
    min_rate = _rate(values["min_rate"], problems)
    q = values["q"]
    if q is not None and len(q) > MAX_SEARCH:
        q = q[:MAX_SEARCH]
    state = ViewState(
        window=window,
        since=values["since"],
        until=values["until"],
        namespace=values["namespace"],
        environment=values["environment"],
        kind=kind,
        connection=connection,
        min_rate=min_rate,
        q=q,
    )
    return state, problems


def _rate(value: str | None, problems: list[str]) -> float | None:
    """A minimum rate from the URL: a finite number of calls per second, zero meaning none."""
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate < 0:
        problems.append(
            f"Minimum rate {value!r} is not a number of calls per second; it is ignored."
        )
        return None
    return rate or None


def query_of(search: str | None) -> dict[str, str]:
    """The parameters of a query string (``?a=1&b=2``); the last of repeated keys wins."""
    return dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False))


def search(state: ViewState, keys: tuple[str, ...] = STATE_KEYS, **extra: str | None) -> str:
    """The shortest query string for ``state`` (defaults left out) plus ``extra`` page keys.

    Only ``keys`` of the state are written, so a page without filters can drop them. Returns ``""``
    when everything is at its default, else a string starting with ``?``.
    """
    default = ViewState()
    pairs = []
    for key in keys:
        value = getattr(state, key)
        if value is None or value == getattr(default, key):
            continue
        pairs.append((key, f"{value:g}" if isinstance(value, float) else value))
    if state.explicit and "window" in keys:
        pairs = [(k, v) for k, v in pairs if k != "window"]
    pairs.extend((k, v) for k, v in extra.items() if v)
    return "?" + urlencode(pairs) if pairs else ""


def window_only(state: ViewState) -> ViewState:
    """The state with its filters dropped: what carries over when moving between pages."""
    return replace(
        state,
        namespace=None,
        environment=None,
        kind=None,
        connection=None,
        min_rate=None,
        q=None,
    )


WINDOW_KEYS = ("window", "since", "until")
