"""YAML read safely: every YAML document Clew reads (contracts, catalogs, rule packs) goes through
here, never through a loader of its own.

- ruamel.yaml's safe loader, pure Python: plain data only (no tag builds an object), and YAML 1.2,
  so ``on``, ``off``, ``yes`` and ``no`` stay strings (a Backstage ``lifecycle: on`` is not true)
  and ``017`` is seventeen;
- at most ``MAX_BYTES`` of text;
- an alias budget: aliases may not make the document more than ``MAX_NODES`` nodes once every
  alias is expanded (a "billion laughs" document of a kilobyte stands for 10⁹ strings), nor
  number more than ``MAX_ALIASES``; and at most ``MAX_DEPTH`` levels of nesting;
- a key twice in one mapping is an error, as YAML 1.2 says.

Every error is a ``YamlError`` naming the source, the line and column where the reader stopped,
and the reason.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ruamel.yaml is imported when YAML is first read: JSON readers never pay
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

#: Text larger than this is refused before it is parsed (the largest real contracts, Stripe's
#: and GitHub's, are 4 to 12 MB).
MAX_BYTES = 32 * 2**20
#: Nodes a document may stand for with every alias expanded.
MAX_NODES = 2_000_000
#: Aliases in one stream.
MAX_ALIASES = 10_000
#: Levels of nesting.
MAX_DEPTH = 256


class YamlError(ValueError):
    """A YAML source that cannot be read, or may not be: where and why."""

    def __init__(
        self, source: str, reason: str, line: int | None = None, column: int | None = None
    ):
        self.source, self.reason, self.line, self.column = source, reason, line, column
        where = f"line {line} column {column}: " if line is not None else ""
        super().__init__(f"{source}: {where}{reason}")


def _reader() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Scanner = _depth_scanner()
    return yaml


@cache
def _depth_scanner() -> type:
    """ruamel.yaml's scanner, refusing to nest past ``MAX_DEPTH`` as it reads. Left to the
    composer, a stream of 200,000 ``[`` costs seconds before the depth is noticed: the scanner
    keeps every open bracket as a possible simple key and checks them all at each token."""
    from ruamel.yaml.scanner import Scanner, ScannerError

    def refuse(scanner: Scanner) -> None:
        mark = scanner.reader.get_mark()
        raise ScannerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)

    class DepthScanner(Scanner):
        def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
            if self.flow_level >= MAX_DEPTH:
                refuse(self)
            super().fetch_flow_collection_start(TokenClass, to_push)

        def add_indent(self, column: int) -> bool:
            if len(self.indents) >= MAX_DEPTH:
                refuse(self)
            return super().add_indent(column)

    return DepthScanner


def load_all(data: str | bytes, source: str) -> list[Any]:
    """Every document of a YAML stream, as plain data (dicts, lists, str, int, float, bool,
    None, dates as ``datetime.date``)."""
    yaml = _reader()
    nodes = _composed(yaml, data, source)
    with _errors(source):
        return [yaml.constructor.construct_document(node) for node in nodes]


def load(data: str | bytes, source: str) -> Any:
    """The one document of a YAML stream (None for an empty stream); more than one is an
    error."""
    documents = load_all(data, source)
    if len(documents) > 1:
        raise YamlError(source, f"{len(documents)} YAML documents where one was expected")
    return documents[0] if documents else None


def compose(data: str | bytes, source: str) -> Any:
    """The one document of a YAML stream as ruamel.yaml's composed nodes (each with its start
    mark; aliases left as shared nodes, no tag constructed), under the same budget as ``load``;
    None for an empty stream."""
    nodes = _composed(_reader(), data, source)
    if len(nodes) > 1:
        raise YamlError(source, f"{len(nodes)} YAML documents where one was expected")
    return nodes[0] if nodes else None


def _composed(yaml: YAML, data: str | bytes, source: str) -> list[Any]:
    """The stream's documents as composed nodes (an alias is the node it names, shared: a
    kilobyte's alias bomb composes to a kilobyte's nodes), each weighed within the budget
    before anything is built from it."""
    text = _text(data, source)
    with _errors(source):
        nodes = list(yaml.compose_all(text))
    budget = _Budget(source)
    for node in nodes:
        budget.weigh(node)
    return nodes


class _errors:
    """ruamel.yaml's errors as ``YamlError``s naming the source, line and column."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _tb: Any) -> bool:
        if error is None:
            return False
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        if isinstance(error, MarkedYAMLError):
            raise _located(error, self.source) from None
        if isinstance(error, YAMLError):
            raise YamlError(self.source, str(error).strip()) from None
        if isinstance(error, RecursionError):
            raise YamlError(self.source, f"nested more than {MAX_DEPTH} levels deep") from None
        return False


def _text(data: str | bytes, source: str) -> str:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise YamlError(source, f"{size:,} bytes: YAML larger than {MAX_BYTES:,} bytes is refused")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise YamlError(source, f"not UTF-8 at byte {error.start}") from None


class _Budget:
    """Weighs composed nodes: each node counts with every alias in it expanded (a shared node
    is weighed once and counted where it is used), so that an alias costs what it stands for;
    refuses a stream over ``MAX_NODES`` nodes, ``MAX_ALIASES`` aliases or ``MAX_DEPTH``
    levels."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = 0  # the stream's nodes so far, aliases expanded
        self.aliases = 0
        self.weights: dict[int, int] = {}  # id(node) → its weight, once weighed

    def weigh(self, root: Any) -> None:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.nodes += self._weight(root, MappingNode, SequenceNode)
        if self.nodes > MAX_NODES:
            raise _at(
                root,
                self.source,
                f"aliases expand the document beyond {MAX_NODES:,} nodes (an alias bomb?)",
            )

    def _weight(self, root: Any, mapping: type, sequence: type) -> int:
        # An explicit stack: (node, depth, children left, weight so far).
        open_nodes: set[int] = set()
        stack: list[list[Any]] = []

        def enter(node: Any, depth: int) -> int | None:
            """The node's weight when known at once; else it is opened (None)."""
            known = self.weights.get(id(node))
            if known is not None or id(node) in open_nodes:
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _at(node, self.source, f"more than {MAX_ALIASES:,} aliases")
                return known if known is not None else 1  # a node inside itself counts once
            if isinstance(node, mapping):
                children = [part for pair in node.value for part in pair]
            elif isinstance(node, sequence):
                children = list(node.value)
            else:
                self.weights[id(node)] = 1
                return 1
            if depth > MAX_DEPTH:
                raise _at(node, self.source, f"nested more than {MAX_DEPTH} levels deep")
            open_nodes.add(id(node))
            stack.append([node, depth, children[::-1], 1])
            return None

        total = enter(root, 1)
        while stack:
            frame = stack[-1]
            if frame[2]:
                child = frame[2].pop()
                weight = enter(child, frame[1] + 1)
                if weight is not None:
                    frame[3] += weight
                    if frame[3] > MAX_NODES:
                        raise _at(
                            child,
                            self.source,
                            f"aliases expand the document beyond {MAX_NODES:,} nodes"
                            " (an alias bomb?)",
                        )
                continue
            node, _, _, weight = stack.pop()
            open_nodes.discard(id(node))
            self.weights[id(node)] = weight
            if stack:
                stack[-1][3] += weight
            else:
                total = weight
        return total or 0


def _at(node: Any, source: str, reason: str) -> YamlError:
    mark = node.start_mark
    return YamlError(source, reason, mark.line + 1, mark.column + 1)


def _located(error: MarkedYAMLError, source: str) -> YamlError:
    mark = error.problem_mark or error.context_mark
    reason = " ".join(part for part in (error.context, error.problem) if part) or str(error)
    if mark is None:
        return YamlError(source, reason)
    return YamlError(source, reason, mark.line + 1, mark.column + 1)
