"""Breaking changes between a contract's latest stored version and the one before it, each with
the consumers traffic shows calling what it breaks."""

from __future__ import annotations

from dataclasses import dataclass

from policies.engine import CHECKS, Context, Hit
from policies.subjects import ContractDoc, stored_contract


@dataclass(frozen=True)
class BreakingOptions:
    #: Report only breaking changes with at least this many observed consumers (0: all of them,
    #: a change nobody is seen calling included).
    min_consumers: int = 0


@CHECKS.register("breaking-change", "contract", BreakingOptions)
def breaking_change(contract: ContractDoc, options: BreakingOptions, context: Context):
    """A breaking change from the previous stored version of a contract to its latest, naming
    the observed consumers it would break and their calls in the window."""
    if context.conn is None:
        return  # files alone have no previous version
    from clew import diff  # the kernel's diff and store: only a store has versions
    from clew.store.contracts import every_version

    versions = context.cached("versions", lambda: every_version(context.conn))
    history = versions.get((contract.kind, contract.title), [])
    if len(history) < 2 or history[-1].content_hash != contract.content_hash:
        return
    previous = stored_contract(context.conn, history[-2])
    found = diff.changes(previous.document, contract.document)
    served = diff.observed(context.conn, context.window, previous.operations, previous.servers)
    for change in diff.with_consumers(found, served):
        if not change.breaking or len(change.consumers) < options.min_consumers:
            continue
        if change.consumers:
            names = ", ".join(f"{c['name']} ({c['calls']:,} calls)" for c in change.consumers)
            breaks = f"; breaks {names}"
        else:
            breaks = "; no consumer of it is seen"
        yield Hit(
            f"{previous.name} → {contract.name}: {change.text} [{change.id}]{breaks}",
            (change.id, change.operation, change.where),
        )
