"""The locator: where the node a JSON path names is written, in JSON and YAML."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.locate import Locator
from tests.conftest import corpus, examples

JSON_TEXT = b"""{
  "openapi": "3.0.3",
  "info": {"title": "Pets", "x-a\\"b": 1, "x-\\u00e9": 2},
  "tags": [ {"name": "a"}, "b", 3, [true, null] ],
  "paths": {
    "/pets/{id}": {
      "get": {"responses": {"200": {"description": "ok"}}}
    }
  }
}
"""


def test_json_keys_and_items_are_found_at_their_line_and_column():
    locator = Locator(JSON_TEXT)
    assert locator.position(("openapi",)) == (2, 3)
    assert locator.position(("info", "title")) == (3, 12)
    assert locator.position(("tags", 0)) == (4, 13)
    assert locator.position(("tags", 0, "name")) == (4, 14)
    assert locator.position(("tags", 1)) == (4, 28)
    assert locator.position(("tags", 2)) == (4, 33)
    assert locator.position(("tags", 3, 1)) == (4, 43)
    assert locator.position(("paths", "/pets/{id}", "get", "responses", "200")) == (7, 29)


def test_json_escaped_keys_are_matched_by_their_value():
    locator = Locator(JSON_TEXT)
    assert locator.position(("info", 'x-a"b')) == (3, 29)
    assert locator.position(("info", "x-é")) == (3, 42)


def test_absent_nodes_are_none():
    locator = Locator(JSON_TEXT)
    assert locator.position(("info", "nope")) is None
    assert locator.position(("tags", 9)) is None
    assert locator.position(("openapi", "x")) is None  # under a scalar
    assert locator.position(("tags", "name")) is None


def test_string_indexes_and_integer_keys_are_tolerated():
    locator = Locator(JSON_TEXT)
    assert locator.position(("tags", "1")) == (4, 28)
    assert locator.position(("paths", "/pets/{id}", "get", "responses", 200)) == (7, 29)


def test_the_index_is_built_on_the_first_question_only():
    locator = Locator(JSON_TEXT)
    assert locator._kind is None
    locator.position(("openapi",))
    tree = locator._json
    locator.position(("info",))
    assert locator._json is tree


YAML_TEXT = """\
openapi: 3.0.3
info:
  title: Pets
base: &base
  description: shared
  summary: s
tags:
  - name: a
  -   name: b
paths:
  /pets:
    get:
      <<: *base
      description: own
      responses:
        200: {description: ok}
weird: !!python/object:os.system {}
"""


def test_yaml_keys_items_merges_and_integer_keys():
    locator = Locator(YAML_TEXT.encode())
    assert locator.position(("info", "title")) == (3, 3)
    assert locator.position(("tags", 1)) == (9, 7)
    assert locator.position(("tags", 1, "name")) == (9, 7)
    assert locator.position(("paths", "/pets", "get", "description")) == (14, 7)
    assert locator.position(("paths", "/pets", "get", "summary")) == (6, 3)  # merged
    assert locator.position(("paths", "/pets", "get", "responses", "200")) == (16, 9)
    assert locator.position(("paths", "/pets", "get", "responses", "200", "description")) == (
        16,
        15,
    )
    assert locator.position(("weird",)) == (17, 1)  # the tag is never constructed
    assert locator.position(("paths", "/nope")) is None


def test_unreadable_documents_locate_nothing():
    assert Locator(b"\xff\xfe").position(("a",)) is None
    assert Locator(b"a: [").position(("a",)) is None
    assert Locator(b"").position(("a",)) is None


def test_yaml_flow_mapping_that_is_not_json_is_read_as_yaml():
    locator = Locator(b"{a: 1,\n b: [x, y]}\n")
    assert locator.position(("b", 1)) == (2, 9)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=examples(150), deadline=None)
@given(json_values, st.sampled_from([None, 1, 2]))
def test_every_json_node_is_found_where_its_key_or_value_is_written(value, indent):
    text = json.dumps({"root": value}, indent=indent, ensure_ascii=False)
    locator = Locator(text.encode())
    lines = text.split("\n")
    for path in _paths(value, ("root",)):
        line, column = locator.position(path)
        written = lines[line - 1][column - 1 :]
        last = path[-1]
        if isinstance(last, str):
            assert written.startswith(json.dumps(last, ensure_ascii=False))
        else:
            node = value
            for part in path[1:]:
                node = node[part]
            assert written.startswith(json.dumps(node, ensure_ascii=False)[:1])


def test_stripe_positions():
    locator = Locator(corpus("openapi", "stripe_spec3.json").read_bytes())
    assert locator.position(("paths", "/v1/accounts", "get", "responses", "200")) == (38548, 11)
    assert locator.position(("servers", 0, "url")) == (109536, 7)
    assert locator.position(("paths", "/v1/nope")) is None


def _compiled_index():
    """Locators use the compiled ``json_index`` inside this (whatever CLEW_NO_NATIVE says);
    the test is skipped, or fails in CI, where it is not built."""
    from unittest import mock

    from policies import locate
    from tests.conftest import require_built

    try:
        from collectors._otlp_native import json_index
    except ImportError:
        json_index = require_built(None, "collectors._otlp_native (json_index)")
    return mock.patch.object(locate, "_JSON_INDEX", json_index)


@settings(max_examples=examples(150), deadline=None)
@given(json_values, st.sampled_from([None, 2]), st.booleans())
def test_the_compiled_index_finds_what_the_python_index_finds(value, indent, bom):
    text = json.dumps({"root": value, "é ☃": [value]}, indent=indent, ensure_ascii=False)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    with _compiled_index():
        compiled = Locator(data)
    python = Locator(data, native=False)
    for path in [*_paths(value, ("root",)), ("é ☃", 0), ("nope",), ("root", 99)]:
        assert compiled.position(path) == python.position(path), path


def test_the_compiled_index_agrees_on_every_corpus_json_contract():
    for path in sorted(corpus("openapi").glob("*.json")):
        data = path.read_bytes()
        document = json.loads(data)
        with _compiled_index():
            compiled = Locator(data)
        python = Locator(data, native=False)
        paths = list(_paths(document, ()))[::97]  # every 97th node: thousands in Stripe's
        assert paths
        for node in paths:
            assert compiled.position(node) == python.position(node), (path.name, node)


def test_yaml_opening_with_a_flow_mapping_is_not_taken_for_json():
    _compiled_index()
    data = b"{openapi: 3.0.3, info: {title: x}}\n"
    assert (
        Locator(data).position(("info", "title"))
        == Locator(data, native=False).position(("info", "title"))
        == (1, 25)
    )
