"""Versioning: can a client pin the version of what it calls, and is a contract's own version a
semantic version."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class VersionedOptions:
    #: Judge only endpoints a contract documents (documented, zombie, orphan): an endpoint in no
    #: contract is the drift pack's finding, and has no declared scheme to judge.
    documented_only: bool = True


@CHECKS.register("endpoint-versioned", "endpoint", VersionedOptions)
def endpoint_versioned(endpoint: Endpoint, options: VersionedOptions, context: Context):
    """An HTTP endpoint whose version a client cannot pin by any configured scheme: not in the
    path, the server URL, a header, the media type or the query."""
    if endpoint.protocol != "http" or not endpoint.unversioned:
        return
    if options.documented_only and endpoint.status == "shadow":
        return
    where = f" ({endpoint.contract})" if endpoint.contract else ""
    yield Hit(
        f"{endpoint.method} {endpoint.route}{where}: a client cannot pin a version — none in"
        " the path, the server URL, a header, the media type or the query"
    )


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
