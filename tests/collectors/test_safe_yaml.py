"""YAML read safely: YAML 1.2 values, no objects from tags, size, alias and depth limits, and
errors that say where."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import safe_yaml
from collectors.safe_yaml import YamlError, load, load_all
from tests.conftest import examples


def test_yaml_1_2_keeps_words_as_words_and_numbers_as_numbers():
    data = load("lifecycle: on\nother: off\nyes: no\nmode: 017\nhex: 0x1F\nwhen: 2026-12-06\n", "c")
    assert data == {
        "lifecycle": "on",
        "other": "off",
        "yes": "no",
        "mode": 17,
        "hex": 31,
        "when": datetime.date(2026, 12, 6),
    }


def test_several_documents_and_exactly_one():
    assert load_all("a: 1\n---\nb: 2\n", "x") == [{"a": 1}, {"b": 2}]
    assert load("", "x") is None
    with pytest.raises(YamlError, match="2 YAML documents where one was expected"):
        load("a: 1\n---\nb: 2\n", "x")


def test_tags_that_would_build_objects_are_refused():
    with pytest.raises(YamlError) as caught:
        load("a: !!python/object/apply:os.system ['true']\n", "evil.yaml")
    assert caught.value.source == "evil.yaml" and caught.value.line == 1


def test_a_billion_laughs_is_refused_before_it_is_built():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    with pytest.raises(YamlError, match="alias bomb") as caught:
        load("\n".join(lines) + "\n", "bomb.yaml")
    assert caught.value.line is not None and caught.value.line <= len(lines)


def test_ordinary_anchors_and_merge_keys_still_work():
    data = load("base: &base {a: 1, b: 2}\nthis:\n  <<: *base\n  b: 3\nagain: *base\n", "x")
    assert data["this"] == {"a": 1, "b": 3} and data["again"] == {"a": 1, "b": 2}


def test_too_many_aliases_too_deep_and_too_large_are_refused(monkeypatch):
    many = "a: &a 1\nb: [" + ",".join(["*a"] * 30) + "]\n"
    monkeypatch.setattr(safe_yaml, "MAX_ALIASES", 20)
    with pytest.raises(YamlError, match="more than 20 aliases"):
        load(many, "x")
    monkeypatch.setattr(safe_yaml, "MAX_DEPTH", 10)
    with pytest.raises(YamlError, match="nested more than 10 levels"):
        load("[" * 11 + "]" * 11, "x")
    monkeypatch.setattr(safe_yaml, "MAX_BYTES", 100)
    with pytest.raises(YamlError, match="larger than 100 bytes"):
        load("a: " + "x" * 200, "big.yaml")


def test_errors_name_the_source_line_and_column():
    with pytest.raises(YamlError) as caught:
        load("a: 1\nb: [1, 2\nc: 3\n", "broken.yaml")
    error = caught.value
    assert (
        error.source == "broken.yaml"
        and error.line == 3
        and str(error).startswith("broken.yaml: line 3 column")
    )
    with pytest.raises(YamlError, match="duplicate key"):
        load("a: 1\na: 2\n", "dup.yaml")
    with pytest.raises(YamlError, match="not UTF-8 at byte 3"):
        load(b"a: \xff\n", "latin.yaml")


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-&*[]{},'\"!|>#\n \t%@`?0")), max_size=60))
def test_any_text_is_read_or_refused_with_a_yaml_error(text):
    try:
        load_all(text, "fuzz.yaml")
    except YamlError as error:
        assert str(error).startswith("fuzz.yaml: ")
