"""Where a node of a JSON or YAML document is written: the 1-based line and column of the node a
JSON path (keys and list indexes from the root) names, so a finding can point into its file.

JSON is read by a scanner of its own (one regular expression over the text, no values built):
it records each key's and each list item's offset, once, on the first question. YAML is
composed (ruamel.yaml's nodes carry their marks; no tag builds an object) through
``collectors.safe_yaml``, and a path is followed node by node, so an alias is never expanded.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

import orjson

from collectors import safe_yaml

Path = tuple[str | int, ...]

_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_SCALAR = r"-?[0-9][0-9.eE+-]*|true|false|null"
#: One JSON token: an object's key (group 1) with a scalar or string value (no more group) or
#: an opening bracket (group 2); an opening bracket (group 3); a closing one (group 4); or a
#: scalar or string item of an array (no group). A member with a plain value is one token.
_JSON_TOKEN = re.compile(
    rf'"([^"\\]*(?:\\.[^"\\]*)*)"\s*:\s*(?:{_STRING}|([{{\[])|{_SCALAR})'
    rf"|([{{\[])|([}}\]])|{_STRING}|{_SCALAR}"
)


class Locator:
    """Positions of the nodes of one document (JSON or YAML), found lazily: nothing is read
    until the first ``position``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._text: str | None = None
        self._lines: list[int] | None = None  # the offset at which each line starts
        self._json: Any = None  # the scanned tree: dicts and lists of offsets
        self._yaml: Any = None  # the composed root node
        self._kind: str | None = None  # "json", "yaml", or "none" when unreadable

    def position(self, path: Path) -> tuple[int, int] | None:
        """The (line, column) of the node at ``path`` (for a mapping's member, its key's), both
        1-based; None when the document has no such node or cannot be read."""
        if self._kind is None:
            self._build()
        if self._kind == "json":
            offset = _json_offset(self._json, path)
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
            self._json = _scan_json(self._text)
            if self._json is not None:
                self._kind = "json"
                return  # else YAML that starts with a flow mapping
        try:
            self._yaml = safe_yaml.compose(data, "document")
        except safe_yaml.YamlError:
            self._kind = "none"
            return
        self._kind = "yaml"

    def _line_column(self, offset: int) -> tuple[int, int]:
        if self._lines is None:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self._text or "")]
        line = bisect_right(self._lines, offset)
        return line, offset - self._lines[line - 1] + 1


def _scan_json(text: str) -> Any:
    """The tree of a JSON text's containers: an object as a dict of key → the key's offset (or
    (offset, child) when its value is a container), an array as a list of the same per item;
    None when the text is not JSON (its brackets do not balance, or it is not read whole)."""
    root: Any = None
    stack: list[Any] = []
    top: Any = None
    end = 0
    try:
        for match in _JSON_TOKEN.finditer(text):
            end = match.end()
            group = match.lastindex
            if group is None:  # a scalar or string item of an array
                top.append(match.start())
                continue
            if group <= 2:  # an object's member
                key = match.group(1)
                if "\\" in key:
                    key = orjson.loads(f'"{key}"')
                if group == 1:
                    top[key] = match.start()
                    continue
                child: Any = {} if match.group(2) == "{" else []
                top[key] = (match.start(), child)
            elif group == 3:  # a container opens: the root, or an array's item
                child = {} if match.group(3) == "{" else []
                if top is None:
                    root = child
                else:
                    top.append((match.start(), child))
            else:  # group 4: a container closes
                top = stack.pop()
                continue
            stack.append(top)
            top = child
    except (AttributeError, IndexError, TypeError, orjson.JSONDecodeError):
        return None  # a member where an item belongs, or the reverse: not JSON
    if stack or top is not None or root is None or text[end:].strip():
        return None
    return root


def _json_offset(node: Any, path: Path) -> int | None:
    offset: int | None = None
    for part in path:
        if type(node) is dict:
            entry = node.get(part if isinstance(part, str) else str(part))
        elif type(node) is list:
            index = _index(part)
            entry = node[index] if index is not None and index < len(node) else None
        else:
            return None
        if entry is None:
            return None
        if type(entry) is tuple:
            offset, node = entry
        else:
            offset, node = entry, None
    return offset


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
