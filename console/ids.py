"""Every component id of the console, in one place, so pages never collide and tests can check.

Pages prefix their ids with the page name: a toolbar built for two pages must not share ids, or a
callback of one page would fire on the other.
"""

from __future__ import annotations

# The shell: present on every page.
LOCATION = "url"
PAGE = "page"
NAV = "nav"
BANNER = "demo-banner"
#: "Log out", in the top bar when logins are on.
LOGOUT = "logout-link"
# Rendered by the router with every page (so a page's callbacks write inside the page's own
# layout chunk, where ``prevent_initial_call`` holds): where pages write their query string,
# and the query string the page last wrote, so the router does not re-render for its own writes.
PAGE_URL = "page-url"
URL_WRITTEN = "url-written"


def nav_link(path: str) -> str:
    """The id of the navigation link to ``path``."""
    return "nav-" + (path.strip("/") or "overview")


class Toolbar:
    """Ids of the shared window/filter toolbar, prefixed per page."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.WINDOW = f"{prefix}-window"
        self.SINCE = f"{prefix}-since"
        self.UNTIL = f"{prefix}-until"
        self.NAMESPACE = f"{prefix}-namespace"
        self.ENVIRONMENT = f"{prefix}-environment"
        self.KIND = f"{prefix}-kind"
        self.CONNECTION = f"{prefix}-connection"
        self.MIN_RATE = f"{prefix}-min-rate"
        self.SEARCH = f"{prefix}-search"
        self.PROBLEMS = f"{prefix}-problems"


class Overview:
    TOOLBAR = Toolbar("overview")
    #: The page's URL parameters as a dict: controls write it, the view reads it.
    STATE = "overview-state"
    MESSAGE = "overview-message"
    CARDS = "overview-cards"
    SERIES = "overview-series"
    WORST = "overview-worst"
    WINDOW_LABEL = "overview-window-label"


class ServiceMap:
    TOOLBAR = Toolbar("map")
    STATE = "map-state"
    LABELS = "map-edge-labels"
    GRAPH = "map-graph"
    MESSAGE = "map-message"
    SUMMARY = "map-summary"
    SELECTION = "map-selection"
    PANEL = "map-panel"
    CLEAR = "map-clear-selection"
    EDGE_SERIES = "map-edge-series"
    EDGE_LATENCY = "map-edge-latency"
    NODE_SERIES = "map-node-series"
    LEGEND = "map-legend"
    #: The overlay switch (compare with the previous window) and the legend of the overlays.
    DIFF = "map-diff"
    #: The declared-dependencies overlay switch.
    DECLARED = "map-declared"
    OVERLAY_LEGEND = "map-overlay-legend"
    #: The node whose blast radius is shown ("" for none), and the panel's button toggling it.
    BLAST = "map-blast"
    BLAST_BUTTON = "map-blast-button"
    BLAST_CLEAR = "map-blast-clear"


class Paths:
    TOOLBAR = Toolbar("paths")
    STATE = "paths-state"
    WINDOW_LABEL = "paths-window-label"
    MESSAGE = "paths-message"
    LIST = "paths-list"
    DETAIL = "paths-detail"
    MAP = "paths-map"
    WATERFALL = "paths-waterfall"
    FAILING_SPAN = "paths-failing-span"


class Sources:
    TICK = "sources-tick"
    MESSAGE = "sources-message"
    SOURCES = "sources-grid"
    QUARANTINE = "sources-quarantine"


class Admin:
    #: Bumped after each change, so the grids are read again.
    VERSION = "admin-version"
    MESSAGE = "admin-message"
    USERS = "admin-users"
    ROLE = "admin-role"
    SET_ROLE = "admin-set-role"
    DISABLE = "admin-disable"
    ENABLE = "admin-enable"
    USER_MESSAGE = "admin-user-message"
    NEW_NAME = "admin-new-name"
    NEW_PASSWORD = "admin-new-password"
    NEW_ROLE = "admin-new-role"
    ADD = "admin-add"
    ADD_MESSAGE = "admin-add-message"
    TOKENS = "admin-tokens"
    REVOKE = "admin-revoke"
    REVOKE_MESSAGE = "admin-revoke-message"
    TOKEN_NAME = "admin-token-name"
    TOKEN_SCOPE = "admin-token-scope"
    CREATE = "admin-create"
    CREATED = "admin-created"


class Endpoints:
    TOOLBAR = Toolbar("endpoints")
    STATE = "endpoints-state"
    WINDOW_LABEL = "endpoints-window-label"
    MESSAGE = "endpoints-message"
    CARDS = "endpoints-cards"
    STATUS = "endpoints-status"
    GRID = "endpoints-grid"
    EXPORT = "endpoints-export"
    DEPENDENCIES = "endpoints-dependencies"


class Contracts:
    TOOLBAR = Toolbar("contracts")
    STATE = "contracts-state"
    WINDOW_LABEL = "contracts-window-label"
    MESSAGE = "contracts-message"
    VERSIONS = "contracts-versions"
    OLD = "contracts-old"
    NEW = "contracts-new"
    SUMMARY = "contracts-summary"
    CHANGES = "contracts-changes"


class Governance:
    #: The page's URL parameters (team, system, severity, state) as a dict.
    STATE = "governance-state"
    #: Bumped after each waiver written, so the view is read again.
    VERSION = "governance-version"
    TEAM = "governance-team"
    SYSTEM = "governance-system"
    SEVERITY = "governance-severity"
    FINDING_STATE = "governance-finding-state"
    MESSAGE = "governance-message"
    SUMMARY = "governance-summary"
    REPORTS = "governance-reports"
    CALLOUT = "governance-callout"
    BY_RULE = "governance-by-rule"
    BY_SEVERITY = "governance-by-severity"
    BY_TEAM = "governance-by-team"
    BY_SYSTEM = "governance-by-system"
    TREND = "governance-trend"
    SCORECARDS = "governance-scorecards"
    FINDINGS = "governance-findings"
    WAIVERS = "governance-waivers"
    REVOKE = "governance-revoke"
    REVOKE_MESSAGE = "governance-revoke-message"
    FORM = "governance-form"
    RULE = "governance-rule"
    RULE_CHOICES = "governance-rule-choices"
    SUBJECT = "governance-subject"
    REASON = "governance-reason"
    APPROVER = "governance-approver"
    EXPIRES = "governance-expires"
    CREATE = "governance-create"
    FORM_MESSAGE = "governance-form-message"
