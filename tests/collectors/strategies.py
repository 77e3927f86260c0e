"""Hypothesis strategies that the collectors' "any JSON never crashes" tests share."""

from __future__ import annotations

from hypothesis import strategies as st


def json_values(*, text: int, keys: int, items: int, leaves: int) -> st.SearchStrategy:
    """Any decoded JSON value, nested: strings up to ``text`` characters, object keys up to
    ``keys``, arrays and objects of up to ``items``, and at most ``leaves`` scalars in all."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=text),
        lambda children: (
            st.lists(children, max_size=items)
            | st.dictionaries(st.text(max_size=keys), children, max_size=items)
        ),
        max_leaves=leaves,
    )


@st.composite
def mutated_lines(draw: st.DrawFn, samples: list[str]) -> str:
    """One of ``samples`` (real log lines) with a slice cut out, replaced or doubled."""
    text = draw(st.sampled_from(samples))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 40)))
    filler = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
    how = draw(st.sampled_from(["cut", "replace", "double"]))
    if how == "cut":
        return text[:start] + text[end:]
    if how == "replace":
        return text[:start] + filler + text[end:]
    return text[:end] + text[start:]


@st.composite
def edited_lines(draw: st.DrawFn, samples: list[str]) -> str:
    """One of ``samples`` with one to four small edits: a few characters cut and a few put in."""
    line = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        cut = draw(st.integers(0, 8))
        line = line[:at] + draw(st.text(max_size=4)) + line[at + cut :]
    return line


def parses_or_refuses(line: str, config, *parsers) -> list:
    """Each line format either reads ``line`` into a request with an integer start, or refuses
    it with ``NotThisFormat`` or ``BadLine``; nothing else escapes. Returns the requests read,
    for the caller's own checks of them."""
    from clew.records import GatewayRequest
    from collectors.access_logs import BadLine, NotThisFormat

    read = []
    for parse in parsers:
        try:
            request = parse(line, config)
        except (NotThisFormat, BadLine):
            continue
        assert type(request) is GatewayRequest
        assert isinstance(request.start_ns, int)
        read.append(request)
    return read
