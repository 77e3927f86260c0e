"""Versioning: can a client pin the version of what it calls, and is a contract's own version a
semantic version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from policies.engine import CHECKS, Context, Hit
from policies.subjects import ContractDoc

if TYPE_CHECKING:  # the inventory is read only when a store is evaluated
    from clew.inventory import Endpoint

#: semver.org's pattern for a version (2.0.0), without the optional ``v`` some teams write.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


#: The ways a client may pin a version (``clew.inventory.SCHEMES``, written here so that loading
#: the pack does not import the inventory; a test holds the two equal).
SCHEMES = ("path", "server", "header", "media", "query")
_SCHEME_WORDS = {
    "path": "the path",
    "server": "the server URL",
    "header": "a header",
    "media": "the media type",
    "query": "the query",
}


@dataclass(frozen=True)
class VersionedOptions:
    #: Judge only endpoints a contract documents (documented, zombie, orphan): an endpoint in no
    #: contract is the drift pack's finding, and has no declared scheme to judge.
    documented_only: bool = True
    #: The schemes that count (an organisation that pins by path alone lists only ``path``).
    schemes: list[str] = field(default_factory=lambda: list(SCHEMES))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.schemes) - set(SCHEMES))
        if unknown or not self.schemes:
            raise ValueError(f"schemes must be some of {list(SCHEMES)}, not {self.schemes}")


@CHECKS.register("endpoint-versioned", "endpoint", VersionedOptions)
def endpoint_versioned(endpoint: Endpoint, options: VersionedOptions, context: Context):
    """An HTTP endpoint whose version a client cannot pin by any of the rule's schemes: the
    path, the server URL, a header, the media type, the query."""
    if endpoint.protocol != "http":
        return
    if set(options.schemes) != set(SCHEMES):
        endpoint = _judged_by(endpoint, tuple(sorted(options.schemes)), context)
    if not endpoint.unversioned:
        return
    if options.documented_only and endpoint.status == "shadow":
        return
    where = f" ({endpoint.contract})" if endpoint.contract else ""
    ways = [_SCHEME_WORDS[s] for s in SCHEMES if s in options.schemes]
    listed = ", ".join(ways[:-1]) + f" or {ways[-1]}" if len(ways) > 1 else ways[0]
    yield Hit(
        f"{endpoint.method} {endpoint.route}{where}: a client cannot pin a version — none in"
        f" {listed}"
    )


def _judged_by(endpoint: Endpoint, schemes: tuple[str, ...], context: Context) -> Endpoint:
    """``endpoint`` as the inventory sees it when only ``schemes`` count."""
    from clew.inventory import inventory

    judged = context.cached(
        f"inventory {','.join(schemes)}",
        lambda: {
            (e.service, e.protocol, e.method, e.route): e
            for e in inventory(context.conn, context.window, now=context.now, schemes=schemes)
        },
    )
    key = (endpoint.service, endpoint.protocol, endpoint.method, endpoint.route)
    return judged.get(key, endpoint)


@dataclass(frozen=True)
class SemverOptions:
    allow_v_prefix: bool = False  # accept "v1.2.3"


@CHECKS.register("info-version-semver", "contract", SemverOptions)
def info_version_semver(contract: ContractDoc, options: SemverOptions, context: Context):
    """A contract whose ``info.version`` is not a semantic version (MAJOR.MINOR.PATCH)."""
    info = contract.document.get("info")
    version = info.get("version") if isinstance(info, dict) else None
    if version is None:
        yield Hit("info.version is missing", ("info",))
        return
    text = str(version)
    if options.allow_v_prefix and text[:1] in "vV":
        text = text[1:]
    if not _SEMVER.match(text):
        yield Hit(
            f"info.version {str(version)!r} is not a semantic version (MAJOR.MINOR.PATCH)",
            ("info", "version"),
        )
