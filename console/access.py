"""Who may change what through the console and its JSON API.

``may_change_waivers`` is the one place that decides whether the current request may create or
revoke a waiver: the role ``clew.auth`` found for it (governance or admin), unless the app is
``READ_ONLY``, which wins over every role.
"""

from __future__ import annotations

from flask import current_app, g

from clew.store.accounts import ROLES

#: The least role that may create and revoke waivers.
WAIVER_ROLE = "governance"
#: The least role that may run and download compliance reports (``/reports/...``).
REPORT_ROLE = "governance"
#: The role that manages accounts and API tokens.
ADMIN_ROLE = "admin"


def role() -> str | None:
    """The current request's role, as ``clew.auth`` found it; with ``AUTH`` off, everyone's is
    admin. None for nobody (or an ingest token)."""
    if "clew_role" in g:
        return g.clew_role
    return None if current_app.config.get("AUTH") else "admin"


def actor() -> str | None:
    """The name of the account or token making the current request, when there is one."""
    identity = g.get("clew_identity")
    return identity["name"] if identity else None


def may_change_waivers() -> bool:
    """Whether the current request may create or revoke waivers: never when the app's config
    says ``READ_ONLY`` (``CLEW_READ_ONLY``), else with the governance or admin role. Call it
    inside a request."""
    if current_app.config.get("READ_ONLY"):
        return False
    return _at_least(WAIVER_ROLE)


def _at_least(wanted: str) -> bool:
    current = role()
    return current in ROLES and ROLES.index(current) >= ROLES.index(wanted)


def may_administer() -> bool:
    """Whether the current request may manage accounts and API tokens (admin)."""
    return _at_least(ADMIN_ROLE)


def user() -> str | None:
    """The username of the account making the current request (None for a token)."""
    identity = g.get("clew_identity")
    return identity["name"] if identity and identity["kind"] == "user" else None


def may_download_reports() -> bool:
    """Whether the current request may run compliance reports (governance or admin)."""
    return _at_least(REPORT_ROLE)


def refusal() -> str:
    """What the console and the API say when ``may_change_waivers`` refuses."""
    if current_app.config.get("READ_ONLY"):
        return READ_ONLY_TEXT
    return ROLE_TEXT.format(role=role() or "none")


#: What the console and the API say when ``may_change_waivers`` refuses on a read-only Clew.
READ_ONLY_TEXT = "This Clew is read-only (READ_ONLY is set): waivers cannot be changed here."
#: ... and when the role is short of governance.
ROLE_TEXT = "Your role ({role}) cannot change waivers: that needs governance or admin."
#: What the Admin page and its API say to a role short of admin.
ADMIN_TEXT = "Your role ({role}) cannot manage accounts and tokens: that needs admin."
#: Where the report links would be, for a role short of ``REPORT_ROLE``.
REPORT_ROLE_TEXT = "Reports need the governance or admin role."
