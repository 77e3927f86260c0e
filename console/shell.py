"""The shell around every page: navigation, the demo banner, and the router.

Pages are registered explicitly in ``PAGES``; the router renders ``page.layout(**query)`` from the
URL. A page writes its own state into the query string as its controls change; the router ignores
those writes (it knows them from ``URL_WRITTEN``) but re-renders for any other change, such as the
browser's back button or a link to the same page with other parameters.
"""

from __future__ import annotations

from types import ModuleType

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from console import ids
from console.pages import (
    admin,
    contracts,
    endpoints,
    governance,
    overview,
    paths,
    service_map,
    sources,
)
from console.state import WINDOW_KEYS, parse, query_of, search

#: Path → page module, in navigation order. Later pages (Endpoints, Governance, …) join here.
PAGES: dict[str, ModuleType] = {
    overview.PATH: overview,
    service_map.PATH: service_map,
    paths.PATH: paths,
    endpoints.PATH: endpoints,
    governance.PATH: governance,
    contracts.PATH: contracts,
    sources.PATH: sources,
    admin.PATH: admin,
}

DEMO_TEXT = "Demo mode — sample landscape, no authentication"


def layout(demo: bool = False, auth: bool = False) -> html.Div:
    """The static shell; the page itself is rendered into ``ids.PAGE`` by ``route``. With
    ``auth`` (logins on) the top bar links to the log-out page."""
    banner = html.Div(DEMO_TEXT, id=ids.BANNER, className="demo-banner", role="status")
    header = html.Header(
        [
            dcc.Link([html.Span("◉", className="brand-mark"), "Clew"], href="/", className="brand"),
            html.Nav(
                [
                    dcc.Link(page.TITLE, href=path, id=ids.nav_link(path), className="nav-link")
                    for path, page in PAGES.items()
                ],
                id=ids.NAV,
                className="nav",
            ),
            html.Span("Integration observability", className="tagline"),
            # A plain link: /logout is the web app's page (a button posting the form), not Dash's.
            *(
                [html.A("Log out", href="/logout", id=ids.LOGOUT, className="nav-link")]
                if auth
                else []
            ),
        ],
        className="topbar",
    )
    return html.Div(
        [
            dcc.Location(id=ids.LOCATION, refresh=False),
            *([banner] if demo else []),
            header,
            html.Main(frame([]), id=ids.PAGE, className="main"),
        ],
        className="shell",
    )


def not_found(pathname: str) -> html.Div:
    """What an unknown path shows."""
    return html.Div(
        [
            html.H1("Page not found"),
            html.P(["There is no page at ", html.Code(pathname), "."]),
            dcc.Link("Go to the overview", href="/", className="link"),
        ],
        className="page",
    )


def frame(content, query_string: str | None = "") -> html.Div:
    """A page with the location it writes its state to and the query string it was drawn for.

    The shell starts with an empty frame so the router's state exists before the first page.
    """
    return html.Div(
        [
            # callback-nav: the shell's location hears the page's writes, so the back button
            # and the navigation links always see the current query string.
            dcc.Location(id=ids.PAGE_URL, refresh="callback-nav"),
            dcc.Store(id=ids.URL_WRITTEN, data=query_string or ""),
            content,
        ],
        className="page-frame",
    )


def render(pathname: str | None, query_string: str | None) -> html.Div:
    """The page for a URL: its module's ``layout`` called with the query parameters."""
    page = PAGES.get((pathname or "/").rstrip("/") or "/")
    content = not_found(pathname or "") if page is None else page.layout(**query_of(query_string))
    return frame(content, query_string)


def nav_links(pathname: str | None, query_string: str | None) -> tuple[list[str], list[str]]:
    """Each navigation link's href (carrying the current window) and class (active or not)."""
    state, _ = parse(query_of(query_string))
    carry = search(state, WINDOW_KEYS)
    current = (pathname or "/").rstrip("/") or "/"
    hrefs = [path + carry for path in PAGES]
    classes = ["nav-link active" if path == current else "nav-link" for path in PAGES]
    return hrefs, classes


def register_callbacks(app: Dash) -> None:
    """The router and the navigation bar."""
    search_prop = f"{ids.LOCATION}.search"

    @app.callback(
        Output(ids.PAGE, "children"),
        Input(ids.LOCATION, "pathname"),
        Input(ids.LOCATION, "search"),
        State(ids.URL_WRITTEN, "data"),
    )
    def route(pathname, query_string, written):
        if set(ctx.triggered_prop_ids) == {search_prop} and (query_string or "") == (written or ""):
            return no_update  # the page wrote this query itself: it already shows it
        return render(pathname, query_string)

    @app.callback(
        *[Output(ids.nav_link(path), "href") for path in PAGES],
        *[Output(ids.nav_link(path), "className") for path in PAGES],
        Input(ids.LOCATION, "pathname"),
        Input(ids.LOCATION, "search"),
    )
    def navigation(pathname, query_string):
        hrefs, classes = nav_links(pathname, query_string)
        return (*hrefs, *classes)
