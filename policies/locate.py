"""Where a node of a JSON or YAML document is written: the 1-based line and column of the node a
JSON path (keys and list indexes from the root) names, so a finding can point into its file.

JSON is indexed lazily, one container at a time and only the containers a question goes through:
a container's members (their keys' offsets, or its items') are found by Clew's compiled
``json_index`` (``collectors/_json_index.c``: values stepped over by their brackets, nothing
built), or where it is not built (or ``CLEW_NO_NATIVE`` is set) with the C decoder of the
standard library, which also steps over each member's value; either way the subtrees no finding
points into are never read by Python. YAML is composed (ruamel.yaml's nodes carry their marks;
no tag builds an object) through ``collectors.safe_yaml``, and a path is followed node by node,
so an alias is never expanded.
"""

from __future__ import annotations

import json
import os
import re
from json.decoder import scanstring
from typing import Any

from collectors import safe_yaml

Path = tuple[str | int, ...]

#: Characters per block of the line count.
_BLOCK = 1 << 12
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _native_index() -> Any:
    """The compiled ``json_index``; None when it is not built or CLEW_NO_NATIVE is set."""
    if os.environ.get("CLEW_NO_NATIVE", "") not in ("", "0"):
        return None
    try:
        from collectors._otlp_native import json_index
    except ImportError:
        return None
    return json_index


_JSON_INDEX = _native_index()


class NotJson(ValueError):
    """The text is not JSON (its containers do not close, or a member is malformed)."""


class Locator:
    """Positions of the nodes of one document (JSON or YAML), found lazily: nothing is read
    until the first ``position``."""

    def __init__(self, data: bytes, *, native: bool = True) -> None:
        self._data = data
        self._native = _JSON_INDEX if native else None
        self._text: str | None = None
        self._lines: list[int] | None = None  # lines before each block of _BLOCK characters
        self._json: JsonIndex | BytesJsonIndex | None = None
        self._yaml: Any = None  # the composed root node
        self._kind: str | None = None  # "json", "yaml", or "none" when unreadable

    def position(self, path: Path) -> tuple[int, int] | None:
        """The (line, column) of the node at ``path`` (for a mapping's member, its key's), both
        1-based; None when the document has no such node or cannot be read."""
        if self._kind is None:
            self._build()
        if self._kind == "json" and self._json is not None:
            offset = self._json.offset(path)
            return None if offset is None else self._line_column(offset)
        if self._kind == "yaml":
            return _yaml_position(self._yaml, path)
        return None

    def _build(self) -> None:
        data = self._data
        try:
            self._text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self._kind = "none"
            return
        if self._text.lstrip()[:1] in ("{", "["):
            try:
                if self._native is not None:
                    self._json = BytesJsonIndex(data, self._native)
                else:
                    self._json = JsonIndex(self._text)
            except NotJson:
                pass  # YAML that starts with a flow mapping
            else:
                self._kind = "json"
                return
        try:
            self._yaml = safe_yaml.compose(data, "document")
        except safe_yaml.YamlError:
            self._kind = "none"
            return
        self._kind = "yaml"

    def _line_column(self, offset: int) -> tuple[int, int]:
        # lines counted per block of the text once, then within the offset's block: a few
        # findings in a large file never pay for every line's start. The compiled index gives
        # offsets in the UTF-8 bytes: the column is counted in characters all the same.
        text: str | bytes = self._text or ""
        newline: str | bytes = "\n"
        if isinstance(self._json, BytesJsonIndex):
            text, newline = self._data, b"\n"
        if self._lines is None:
            self._lines = [0]
            for start in range(0, len(text), _BLOCK):
                self._lines.append(self._lines[-1] + text.count(newline, start, start + _BLOCK))
        block = offset // _BLOCK
        line = self._lines[block] + text.count(newline, block * _BLOCK, offset) + 1
        start = text.rfind(newline, 0, offset) + 1
        if isinstance(text, bytes):
            start = max(start, self._json.bom if isinstance(self._json, BytesJsonIndex) else 0)
            return line, len(text[start:offset].decode("utf-8", "replace")) + 1
        return line, offset - start + 1


def _skip(text: str, at: int) -> int:
    """The offset of the first character at or after ``at`` that is not JSON whitespace."""
    return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]  # * always matches


class JsonIndex:
    """A JSON text's containers, each indexed when a path first goes through it: an object as
    key → (the key's offset, the value's offset), an array as a list of its items' offsets.
    Made only for a text that is one JSON value (NotJson otherwise), which it checks by
    indexing the root (the decoder steps over every member)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root = _skip(text, 0)
        self._containers: dict[int, dict[str, tuple[int, int]] | list[int]] = {}
        end = self._index(self.root)[1]
        if text[end:].strip():
            raise NotJson("text after the document")

    def container(self, offset: int) -> dict[str, tuple[int, int]] | list[int] | None:
        """The index of the container at ``offset``; None for a scalar."""
        if offset not in self._containers:
            if self.text[offset] not in "{[":
                return None
            self._index(offset)
        return self._containers[offset]

    def offset(self, path: Path) -> int | None:
        """Where the node at ``path`` is written (a member's key, an item's value)."""
        offset, value = self.root, self.root
        for part in path:
            members = self.container(value)
            if type(members) is dict:
                entry = members.get(part if isinstance(part, str) else str(part))
                if entry is None:
                    return None
                offset, value = entry
            elif type(members) is list:
                index = _index(part)
                if index is None or index >= len(members):
                    return None
                offset = value = members[index]
            else:
                return None
        return offset

    def _index(self, start: int) -> tuple[Any, int]:
        """Index the container at ``start``; its index and the offset after it."""
        text = self.text
        try:
            if text[start] == "{":
                members: dict[str, tuple[int, int]] = {}
                at = _skip(text, start + 1)
                if text[at] != "}":
                    while True:
                        if text[at] != '"':
                            raise NotJson(f"a key expected at {at}")
                        key, after = scanstring(text, at + 1)
                        colon = _skip(text, after)
                        if text[colon] != ":":
                            raise NotJson(f"':' expected at {colon}")
                        value = _skip(text, colon + 1)
                        members[key] = (at, value)  # the last of a repeated key, as parsers do
                        at = _skip(text, _DECODER.raw_decode(text, value)[1])
                        if text[at] == "}":
                            break
                        if text[at] != ",":
                            raise NotJson(f"',' or '}}' expected at {at}")
                        at = _skip(text, at + 1)
                self._containers[start] = members
                return members, at + 1
            items: list[int] = []
            at = _skip(text, start + 1)
            if text[at] != "]":
                while True:
                    items.append(at)
                    at = _skip(text, _DECODER.raw_decode(text, at)[1])
                    if text[at] == "]":
                        break
                    if text[at] != ",":
                        raise NotJson(f"',' or ']' expected at {at}")
                    at = _skip(text, at + 1)
            self._containers[start] = items
            return items, at + 1
        except (IndexError, ValueError) as error:
            raise NotJson(str(error)) from error


class BytesJsonIndex:
    """``JsonIndex`` over the UTF-8 bytes, each container's members found by the compiled
    ``json_index``; offsets are into the bytes."""

    def __init__(self, data: bytes, json_index: Any) -> None:
        self.data = data
        self.bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        self._json_index = json_index
        self.root = len(data) - len(data[self.bom :].lstrip(b" \t\r\n"))
        self._containers: dict[int, dict[str, tuple[int, int]] | list[int]] = {}
        end = self._index(self.root)
        if data[end:].strip():
            raise NotJson("text after the document")

    def container(self, offset: int) -> dict[str, tuple[int, int]] | list[int] | None:
        if offset not in self._containers:
            if self.data[offset : offset + 1] not in (b"{", b"["):
                return None
            self._index(offset)
        return self._containers[offset]

    offset = JsonIndex.offset

    def _index(self, start: int) -> int:
        try:
            kind, members, end = self._json_index(self.data, start)
        except ValueError as error:
            raise NotJson(str(error)) from error
        if kind == "array":
            self._containers[start] = members
            return end
        found: dict[str, tuple[int, int]] = {}
        data = self.data
        for key_start, key_end, escaped, value in members:
            raw = data[key_start:key_end]
            try:
                key = json.loads(b'"' + raw + b'"') if escaped else raw.decode("utf-8")
            except ValueError as error:
                raise NotJson(f"a key at byte {key_start}: {error}") from error
            found[key] = (key_start - 1, value)  # the last of a repeated key, as parsers do
        self._containers[start] = found
        return end


def _index(part: str | int) -> int | None:
    if isinstance(part, int) and part >= 0:
        return part
    if isinstance(part, str) and part.isdigit():
        return int(part)
    return None


def _yaml_position(node: Any, path: Path) -> tuple[int, int] | None:
    mark = getattr(node, "start_mark", None)
    for part in path:
        found = _yaml_child(node, part, set())
        if found is None:
            return None
        mark, node = found
    if mark is None:
        return None
    return mark.line + 1, mark.column + 1


def _yaml_child(node: Any, part: str | int, seen: set[int]) -> tuple[Any, Any] | None:
    """The mark of ``part`` of a composed node (a key's mark for a mapping) and the node under
    it; a mapping's ``<<`` merges are looked through when it has no such key of its own."""
    kind = getattr(node, "id", None)
    if kind == "sequence":
        index = _index(part)
        if index is None or index >= len(node.value):
            return None
        item = node.value[index]
        return item.start_mark, item
    if kind != "mapping" or id(node) in seen:
        return None
    seen.add(id(node))
    wanted = str(part)
    merges = []
    for key, value in reversed(node.value):  # the last of a duplicated key wins
        if key.id != "scalar":
            continue
        if key.tag.endswith(":merge"):
            merges.append(value)
        elif key.value == wanted:
            return key.start_mark, value
    for merged in merges:
        for source in merged.value if merged.id == "sequence" else [merged]:
            found = _yaml_child(source, part, seen)
            if found is not None:
                return found
    return None
