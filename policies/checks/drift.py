"""Documentation drift, from the endpoint inventory over the evaluation's window: endpoints
called but in no contract (shadow), called though deprecated, past their sunset or removed
(zombie), documented but never called (orphan), and services serving HTTP with no contract at
all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from policies.engine import CHECKS, Context, Hit, NoOptions

if TYPE_CHECKING:  # the inventory is read only when a store is evaluated
    from clew.inventory import Endpoint


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _callers(endpoint: Endpoint, most: int = 5) -> str:
    names = endpoint.callers[:most]
    more = len(endpoint.callers) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _inventory(context: Context) -> list[Endpoint]:
    from clew.inventory import inventory

    return context.cached(
        "inventory", lambda: inventory(context.conn, context.window, now=context.now)
    )


def _has_contract(context: Context, service: str) -> bool:
    """Whether an HTTP contract (OpenAPI) of ``service`` is known: an AsyncAPI one documents
    its messages, not its HTTP endpoints."""
    documented = context.cached(
        "services-with-contracts",
        lambda: {
            e.service
            for e in _inventory(context)
            if e.contract is not None and e.protocol == "http"
        },
    )
    return service in documented


@CHECKS.register("shadow-endpoint", "endpoint")
def shadow_endpoint(endpoint: Endpoint, options: NoOptions, context: Context):
    """An HTTP endpoint called in the window that no contract of its service documents (a
    service with no OpenAPI contract at all is ``undocumented-service``'s finding instead)."""
    if endpoint.status != "shadow" or not _has_contract(context, endpoint.service):
        return
    yield Hit(
        f"{endpoint.method} {endpoint.route} is in no contract of {endpoint.service}, yet was"
        f" called {_count(endpoint.calls, 'time')} by {_callers(endpoint)}"
    )


@dataclass(frozen=True)
class ZombieOptions:
    min_calls: int = 1  # calls in the window before it counts


@CHECKS.register("zombie-endpoint", "endpoint", ZombieOptions)
def zombie_endpoint(endpoint: Endpoint, options: ZombieOptions, context: Context):
    """An endpoint still called though its contract deprecates it, its sunset has passed, its
    version is deprecated in its registry, or a later version removed it; every call counts."""
    if endpoint.status != "zombie" or endpoint.calls < options.min_calls:
        return
    yield Hit(
        f"{endpoint.method} {endpoint.route}: {endpoint.why}: {_count(endpoint.calls, 'call')}"
        f" ({endpoint.errors:,} failed) by {_callers(endpoint)}"
    )


@CHECKS.register("orphan-endpoint", "endpoint")
def orphan_endpoint(endpoint: Endpoint, options: NoOptions, context: Context):
    """An operation the current contract documents that nothing called in the window."""
    if endpoint.status == "orphan":
        yield Hit(f"{endpoint.method} {endpoint.route}: {endpoint.why}")


@CHECKS.register("undocumented-service", "service")
def undocumented_service(service: str, options: NoOptions, context: Context):
    """A service that serves HTTP endpoints in the window and has no OpenAPI contract."""
    served = [
        e for e in _inventory(context) if e.service == service and e.protocol == "http" and e.calls
    ]
    if served and not _has_contract(context, service):
        calls = sum(e.calls for e in served)
        yield Hit(
            f"{service} served {_count(len(served), 'HTTP endpoint')} ({_count(calls, 'call')})"
            " and has no OpenAPI contract"
        )
