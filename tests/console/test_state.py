"""URL state: parsing a query into a view state, problems for bad values, and back to a query."""

from __future__ import annotations

import pytest

from clew.store.queries import Window
from console.state import DEFAULT_WINDOW, WINDOW_KEYS, ViewState, parse, query_of, search

NOW = 1_795_000_000 * 1_000_000_000  # a minute boundary, in ns
NOW_MINUTE = NOW // 60_000_000_000


def test_an_empty_query_is_the_default_window_with_no_filters():
    state, problems = parse({})
    assert state == ViewState()
    assert state.window == DEFAULT_WINDOW == "3h"
    assert problems == []


def test_a_full_query_is_read_as_is():
    state, problems = parse(
        {
            "window": "24h",
            "namespace": "retail",
            "environment": "production",
            "kind": "database",
            "q": " pay ",
        },
        NOW,
    )
    assert problems == []
    assert state == ViewState(
        window="24h", namespace="retail", environment="production", kind="database", q="pay"
    )


@pytest.mark.parametrize(
    ("window", "minutes"),
    [("15m", 15), ("1h", 60), ("3h", 180), ("6h", 360), ("24h", 1440), ("7d", 10080)],
)
def test_preset_windows_end_now(window, minutes):
    assert ViewState(window=window).resolve(NOW) == Window(NOW_MINUTE - minutes, None)


def test_all_has_no_bounds():
    assert ViewState(window="all").resolve(NOW) == Window(None, None)


def test_since_and_until_override_the_preset():
    state, problems = parse(
        {"window": "15m", "since": "2026-11-18T09:00:00Z", "until": "2026-11-18T10:00:00Z"}, NOW
    )
    assert problems == []
    assert state.explicit
    window = state.resolve(NOW)
    assert window.until_minute - window.since_minute == 60
    assert state.describe() == "from 2026-11-18T09:00:00Z until 2026-11-18T10:00:00Z"


def test_relative_since_alone_is_open_until_now():
    state, _ = parse({"since": "2h"}, NOW)
    assert state.resolve(NOW) == Window(NOW_MINUTE - 120, None)
    assert state.describe() == "from 2h until now"


def test_bad_values_fall_back_and_are_explained():
    state, problems = parse({"window": "5y", "since": "yesterday", "kind": "blob"}, NOW)
    assert state == ViewState()
    assert len(problems) == 3
    assert "'5y'" in problems[0] and "showing the last 3 hours" in problems[0]
    assert "'yesterday' is not a time" in problems[1]
    assert "'blob'" in problems[2] and "database" in problems[2]


def test_since_after_until_is_refused():
    state, problems = parse({"since": "1h", "until": "2h"}, NOW)
    assert (state.since, state.until) == (None, None)
    assert problems and "not before" in problems[0]


def test_search_leaves_defaults_out():
    assert search(ViewState()) == ""
    assert search(ViewState(window="all", namespace="retail")) == "?window=all&namespace=retail"


def test_explicit_times_drop_the_preset_from_the_url():
    assert search(ViewState(window="1h", since="2h")) == "?since=2h"


def test_search_can_keep_only_the_window_and_add_page_keys():
    state = ViewState(window="all", namespace="retail", q="pay")
    query = search(state, WINDOW_KEYS, client="a b", server="c&d", node=None)
    assert query == "?window=all&client=a+b&server=c%26d"


def test_search_and_parse_round_trip():
    state = ViewState(
        window="7d", namespace="pay ments", environment="prod", kind="service", q="<img src=x>"
    )
    parsed, problems = parse(query_of(search(state)))
    assert problems == [] and parsed == state


def test_query_of_takes_the_last_repeated_key():
    assert query_of("?window=1h&window=all&q=") == {"window": "all"}
    assert query_of(None) == {}


def test_connection_type_and_minimum_rate_are_read_and_written_back():
    state, problems = parse({"connection": "messaging_system", "min_rate": "0.5"}, NOW)
    assert problems == []
    assert (state.connection, state.min_rate) == ("messaging_system", 0.5)
    assert search(state) == "?connection=messaging_system&min_rate=0.5"
    assert parse(query_of(search(ViewState(min_rate=2.0))))[0].min_rate == 2.0
    assert search(ViewState(min_rate=2.0)) == "?min_rate=2"


def test_a_control_gives_the_minimum_rate_as_a_number():
    state, problems = parse({"min_rate": 3}, NOW)
    assert problems == [] and state.min_rate == 3.0


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_a_bad_minimum_rate_is_explained_and_dropped(value):
    state, problems = parse({"min_rate": value}, NOW)
    assert state.min_rate is None
    assert problems == [
        f"Minimum rate {value!r} is not a number of calls per second; it is ignored."
    ]


def test_a_zero_minimum_rate_means_no_filter():
    state, problems = parse({"min_rate": "0"}, NOW)
    assert problems == [] and state.min_rate is None


def test_an_unknown_connection_type_is_explained_and_dropped():
    state, problems = parse({"connection": "carrier-pigeon"}, NOW)
    assert state.connection is None
    assert "'carrier-pigeon'" in problems[0] and "virtual_node" in problems[0]


def test_moving_between_pages_drops_every_filter():
    from console.state import window_only

    state = ViewState(window="all", namespace="x", connection="direct", min_rate=1.0, q="a")
    assert window_only(state) == ViewState(window="all")
