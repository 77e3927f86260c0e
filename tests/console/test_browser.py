"""The console in Debian's headless Chromium: pages draw, controls drive the URL, names stay text.

Skipped when Chromium or chromedriver is missing, unless CLEW_REQUIRE_BROWSER=1 (then it fails).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import orjson
import pytest

from clew import store
from clew.app import create_app

from .conftest import (
    HOSTILE,
    HOSTILE_APPROVER,
    HOSTILE_CONSUMER,
    HOSTILE_CONTRACT,
    HOSTILE_FILE,
    HOSTILE_OPERATION,
    HOSTILE_REASON,
    HOSTILE_ROUTE,
    HOSTILE_SERVICE,
    HOSTILE_SYSTEM,
    HOSTILE_TEAM,
    SAMPLE_SERVICES,
    WAIVED,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TIMEOUT = 30

#: The map is drawn when cytoscape holds nodes and every one of them has been laid out.
MAP_DRAWN = """
const cy = window.cy;
const canvas = document.querySelector('#map-graph canvas');
if (!cy || !canvas || canvas.width === 0 || cy.nodes().length === 0) return false;
const spots = new Set(cy.nodes().map(n => Math.round(n.position('x')) + ',' +
                                          Math.round(n.position('y'))));
return spots.size === cy.nodes().length;
"""
NODE_NAMES = "return window.cy.nodes().map(n => n.data('label'))"


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
    if os.environ.get("CLEW_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def serving(db: str) -> Iterator[str]:
    """The web app on ``db`` on a free local port; yields its base URL.

    Werkzeug's threaded server, because its ``shutdown`` is safe from another thread (closing
    waitress's loop from outside races with the loop's own wake-up pipe).
    """
    from werkzeug.serving import make_server

    app = create_app({"DATABASE_URL": "sqlite:///" + db, "DEMO": True, "AUTH": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        store.engine_of(app).dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--window-size=1440,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sample_url(sample_db) -> Iterator[str]:
    with serving(sample_db) as url:
        yield url


def wait(browser, condition: Callable | str, timeout: float = TIMEOUT):
    """Wait until ``condition`` (a function of the driver, or a script) is truthy; return it.
    An element that Dash re-renders between being found and being read is asked for again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    check = (lambda d: d.execute_script(condition)) if isinstance(condition, str) else condition
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, timeout, ignored_exceptions=ignored).until(check)


def text_of(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def query(browser) -> dict[str, list[str]]:
    return parse_qs(urlsplit(browser.current_url).query)


def severe_console_errors(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
    ]


def test_overview_shows_the_headline_figures_and_the_worst_edges(browser, sample_url):
    browser.get(sample_url + "/?window=all")
    wait(browser, "return document.querySelectorAll('#overview-worst .ag-row').length > 0")
    wait(browser, "return document.querySelectorAll('#overview-cards .card').length === 6")
    cards = text_of(browser, "overview-cards")
    for label in ("SERVICES", "EDGES", "CALLS", "ENTRY REQUESTS", "P95 LATENCY", "ERROR RATIO"):
        assert label in cards.upper()
    assert "integration-hub" in text_of(browser, "overview-worst")
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#overview-series .scatterlayer .trace').length"
        )
        == 2
    )
    assert "Demo mode — sample landscape, no authentication" in text_of(browser, "demo-banner")
    assert severe_console_errors(browser) == []


def test_the_map_draws_every_sample_service(browser, sample_url):
    browser.get(sample_url + "/map?window=all")
    wait(browser, MAP_DRAWN)
    names = set(browser.execute_script(NODE_NAMES))
    assert set(SAMPLE_SERVICES) <= names
    assert len(names) >= 15
    # fitted: every node is inside the visible canvas
    assert browser.execute_script(
        "const cy = window.cy; return cy.nodes().every(n => {const p = n.renderedPosition();"
        " return p.x >= 0 && p.y >= 0 && p.x <= cy.width() && p.y <= cy.height();})"
    )
    assert (
        browser.execute_script("return window.cy.getElementById('orders-db').style('shape')")
        == "barrel"
    )
    assert "Nothing selected" in text_of(browser, "map-panel")
    assert severe_console_errors(browser) == []


def test_gateways_and_their_consumers_are_on_the_map(browser, sample_url, manifest):
    """The sample's Kong and NGINX logs: partners → api-gateway → payments-api and the web's
    client → shop-edge → storefront-web, the gateways drawn as gateways and partners as
    clients; the edge both the traces and the log saw shows both and the gateway's overhead."""
    browser.get(sample_url + "/map?window=all")
    wait(browser, MAP_DRAWN)
    kinds = browser.execute_script(
        "const out = {}; window.cy.nodes().forEach(n => { out[n.id()] = n.data('kind'); });"
        " return out;"
    )
    partners = set(manifest["gateway_logs"]["kong-access.log"]["consumers"])
    assert {kinds[name] for name in partners} == {"client"}
    assert kinds["api-gateway"] == kinds["shop-edge"] == "gateway"
    assert (
        browser.execute_script("return window.cy.getElementById('api-gateway').style('shape')")
        == "rhomboid"
    )
    edges = set(
        map(
            tuple,
            browser.execute_script(
                "return window.cy.edges().map(e => [e.data('source'), e.data('target')])"
            ),
        )
    )
    assert {(partner, "api-gateway") for partner in partners} <= edges
    assert {("api-gateway", "payments-api"), ("shop-edge", "storefront-web")} <= edges
    browser.execute_script(
        "window.cy.edges().filter(e => e.data('source') === 'api-gateway'"
        " && e.data('target') === 'payments-api').emit('tap')"
    )
    wait(browser, lambda d: query(d).get("server") == ["payments-api"])
    wait(browser, lambda d: "Gateway overhead p50 / p95" in text_of(d, "map-panel"))
    panel = text_of(browser, "map-panel")
    assert "gateway, trace" in panel  # the evidence: both, counted once
    assert severe_console_errors(browser) == []


def test_tapping_a_node_then_an_edge_fills_the_panel_and_the_url(browser, sample_url):
    browser.get(sample_url + "/map?window=all")
    wait(browser, MAP_DRAWN)
    browser.execute_script("window.cy.getElementById('payments-api').emit('tap')")
    wait(browser, lambda d: query(d).get("node") == ["payments-api"])
    wait(browser, lambda d: "CALLED BY" in text_of(d, "map-panel").upper())
    assert "payments-api" in text_of(browser, "map-panel")
    browser.execute_script(
        "window.cy.edges().filter(e => e.data('source') === 'integration-hub'"
        " && e.data('target') === 'warehouse-service').emit('tap')"
    )
    wait(browser, lambda d: query(d).get("server") == ["warehouse-service"])
    wait(browser, lambda d: "p50 / p95 / p99" in text_of(d, "map-panel"))
    wait(browser, "return !!document.querySelector('#map-edge-series .trace')")
    assert query(browser) == {
        "window": ["all"],
        "client": ["integration-hub"],
        "server": ["warehouse-service"],
    }


def test_controls_write_the_url_and_the_back_button_restores_the_view(browser, sample_url):
    browser.get(sample_url + "/map?window=all")
    wait(browser, MAP_DRAWN)
    browser.find_element("xpath", "//*[@id='map-window']//label[normalize-space()='1h']").click()
    wait(browser, lambda d: query(d).get("window") == ["1h"])
    # the sample ended days ago: nothing in the last hour, and the page says so
    wait(browser, lambda d: "No data in this window" in text_of(d, "map-message"))
    browser.back()
    wait(browser, lambda d: query(d).get("window") == ["all"])
    wait(browser, lambda d: text_of(d, "map-message") == "")
    wait(browser, MAP_DRAWN)
    assert set(SAMPLE_SERVICES) <= set(browser.execute_script(NODE_NAMES))


def test_a_worst_edge_opens_on_the_map_selected(browser, sample_url):
    browser.get(sample_url + "/?window=all")
    wait(browser, "return document.querySelectorAll('#overview-worst .ag-row a').length > 0")
    link = browser.find_element("css selector", "#overview-worst .ag-row a")
    target = parse_qs(urlsplit(link.get_attribute("href")).query)
    link.click()
    wait(browser, MAP_DRAWN)
    wait(browser, lambda d: "p50 / p95 / p99" in text_of(d, "map-panel"))
    assert target["client"][0] in text_of(browser, "map-panel")
    assert query(browser)["server"] == target["server"]


def test_a_link_with_bad_values_explains_them(browser, sample_url):
    browser.get(sample_url + "/map?window=5y&kind=blob")
    wait(browser, lambda d: "'5y'" in text_of(d, "map-problems"))
    assert "'blob'" in text_of(browser, "map-problems")


#: What a payload would leave had it been rendered as HTML: a window global it set, an image of
#: ``src=x``, an element holding its handler, a script holding its code. On the console's pages
#: the Content-Security-Policy stops inline handlers, so there the elements give it away.
PAYLOAD_TRACES = """
const made = Array.from(document.querySelectorAll('*')).filter(e =>
    e.matches('img[src="x"]')
    || (e.tagName === 'SCRIPT' && e.textContent.includes('__clew_xss'))
    || Array.from(e.attributes).some(a => a.name.startsWith('on')
                                          && a.value.includes('__clew_xss')));
return Object.keys(window).filter(k => k.startsWith('__clew_xss'))
    .concat(made.map(e => e.outerHTML.slice(0, 200)));
"""
GRID_ROWS = "return document.querySelectorAll('#{} .ag-center-cols-container .ag-row').length"


def texts(browser, selector: str) -> list[str]:
    """The visible text of each element ``selector`` finds."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)", selector
    )


def column(browser, grid_id: str, field: str) -> list[str]:
    """The cells of a grid's column, row by row as drawn."""
    return texts(browser, f"#{grid_id} .ag-center-cols-container .ag-row [col-id='{field}']")


def not_shown(browser, element_id: str, *wanted: str) -> list[str]:
    """Those of ``wanted`` the element does not show as visible text (a name rendered as HTML
    would not read as itself)."""
    shown = text_of(browser, element_id)
    return [t for t in wanted if t not in shown]


def test_hostile_names_render_as_inert_text_on_every_page(browser, hostile_governed_db):
    """A service, route, consumer, catalog team and system, contract title, operation path,
    file, waiver reason and approver named in HTML read as that text on every page, in the
    map's labels and panels, in the Governance page's grids, charts, scorecards, callout,
    filters and tooltips, and in the HTML report; and none of it runs or makes an element."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    service, consumer = HOSTILE_SERVICE, HOSTILE_CONSUMER
    team, system = HOSTILE_TEAM, HOSTILE_SYSTEM
    edge = f"{consumer} → {service}"
    with serving(hostile_governed_db) as url:
        browser.get(f"{url}/?window=all")
        wait(browser, GRID_ROWS.format("overview-worst") + " === 3")
        assert {consumer, "shop", "client"} == set(column(browser, "overview-worst", "client"))
        assert service in column(browser, "overview-worst", "server")
        assert browser.execute_script(PAYLOAD_TRACES) == []

        # the map: labels with their findings badges, the failing edges, a node's panel and an
        # edge's, with their findings
        browser.get(f"{url}/map?window=all")
        wait(browser, MAP_DRAWN)
        labels = dict(
            browser.execute_script(
                "return window.cy.nodes().map(n => [n.data('label'), n.style('label')])"
            )
        )
        assert labels[consumer] == consumer  # no open findings: no badge
        count = labels[service].rsplit(" ", 1)[-1]  # its badge: how many open findings
        assert labels[service] == f"{service} \u2691 {count}" and int(count) > 0
        assert not_shown(browser, "map-panel", edge, f"shop → {service}") == []
        browser.execute_script("window.cy.getElementById(arguments[0]).emit('tap')", service)
        wait(browser, lambda d: f"OPEN FINDINGS ({count})" in text_of(d, "map-panel").upper())
        assert query(browser)["node"] == [service]
        assert texts(browser, "#map-panel .panel-title") == [service]
        messages = "\n".join(texts(browser, "#map-panel .findings-table td:nth-child(3)"))
        for name in (HOSTILE_ROUTE, HOSTILE_OPERATION, HOSTILE_CONTRACT, consumer, service):
            assert name in messages
        assert consumer in "\n".join(texts(browser, "#map-panel .mini-table td:first-child"))
        assert browser.execute_script(PAYLOAD_TRACES) == []
        browser.execute_script(
            "window.cy.edges().filter(e => e.data('source') === arguments[0]"
            " && e.data('target') === arguments[1]).emit('tap')",
            consumer,
            service,
        )
        wait(browser, lambda d: texts(d, "#map-panel .panel-title") == [edge])
        assert texts(browser, "#map-panel .findings-table td:nth-child(3)") == [
            f"{consumer} calls {service} (4 calls in the window), which its catalog entry"
            " does not declare"
        ]
        assert browser.execute_script(PAYLOAD_TRACES) == []

        browser.get(f"{url}/paths?window=all")
        wait(browser, "return document.querySelectorAll('#paths-waterfall .wf-row').length > 0")
        assert not_shown(browser, "paths-list", edge, f"shop → {service}") == []
        assert not_shown(browser, "paths-failing-span", service, f"GET {HOSTILE_ROUTE}") == []
        assert browser.execute_script(PAYLOAD_TRACES) == []

        browser.get(f"{url}/endpoints?window=all")
        wait(browser, GRID_ROWS.format("endpoints-grid") + " === 4")
        routes = {"/", "/x", HOSTILE_ROUTE, HOSTILE_OPERATION}
        assert set(column(browser, "endpoints-grid", "route")) == routes
        assert set(column(browser, "endpoints-grid", "service")) == {"shop", service}
        assert consumer in column(browser, "endpoints-grid", "callers")
        assert set(column(browser, "endpoints-grid", "owner")) == {f"group:default/{team}"}
        assert f"{HOSTILE_CONTRACT}@1.0.0" in column(browser, "endpoints-grid", "contract")
        assert browser.execute_script(PAYLOAD_TRACES) == []

        browser.get(f"{url}/sources")
        wait(browser, GRID_ROWS.format("sources-grid") + " === 4")
        assert any(
            s.endswith(f"/{HOSTILE_FILE}") for s in column(browser, "sources-grid", "source")
        )
        assert browser.execute_script(PAYLOAD_TRACES) == []

        browser.get(f"{url}/contracts?window=all")
        wait(browser, GRID_ROWS.format("contracts-changes") + " === 1")
        assert column(browser, "contracts-versions", "title") == [HOSTILE_CONTRACT] * 2
        assert column(browser, "contracts-versions", "source")[0].endswith(f"/{HOSTILE_FILE}")
        for picked, version in (("contracts-old", "1.0.0"), ("contracts-new", "2.0.0")):
            assert not_shown(browser, picked, f"{HOSTILE_CONTRACT} @ {version}") == []
        assert text_of(browser, "contracts-summary").startswith(f"{HOSTILE_CONTRACT}@1.0.0")
        assert not_shown(browser, "contracts-summary", f"served by {service}") == []
        assert column(browser, "contracts-changes", "operation") == [f"GET {HOSTILE_ROUTE}"]
        assert column(browser, "contracts-changes", "consumers") == [f"{consumer} (4)"]
        assert browser.execute_script(PAYLOAD_TRACES) == []

        browser.get(f"{url}/governance")
        wait(browser, GRID_ROWS.format("governance-findings") + " > 0")
        wait(browser, "return !!document.querySelector('#governance-by-system .barlayer .trace')")
        subjects = column(browser, "governance-findings", "subject")
        for subject in (
            f"{HOSTILE_CONTRACT}@2.0.0",  # a contract's
            f"{service} GET {HOSTILE_ROUTE}",  # endpoints'
            f"{service} GET {HOSTILE_OPERATION}",
            edge,  # an edge's
        ):
            assert subject in subjects
        messages = "\n".join(column(browser, "governance-findings", "message"))
        assert f"by {consumer}" in messages and f"GET {HOSTILE_OPERATION} has no" in messages
        assert set(column(browser, "governance-findings", "team")) == {team}
        assert set(column(browser, "governance-findings", "system")) == {system}
        assert not_shown(browser, "governance-by-team", team) == []
        assert not_shown(browser, "governance-by-system", system) == []
        assert not_shown(browser, "governance-scorecards", team, system) == []
        waiver = {"subject": WAIVED[1], "reason": HOSTILE_REASON, "approver": HOSTILE_APPROVER}
        for field, value in waiver.items():
            assert column(browser, "governance-waivers", field) == [value]
        assert not_shown(browser, "governance-callout", WAIVED[1], HOSTILE_APPROVER) == []
        options = "return Array.from(document.querySelectorAll('[role=option]'), o => o.innerText)"
        for dropdown, name in (("governance-team", team), ("governance-system", system)):
            browser.find_element("id", dropdown).click()
            assert wait(browser, options) == [name]
            browser.switch_to.active_element.send_keys(Keys.ESCAPE)
        reason = "#governance-waivers .ag-row [col-id='reason']"
        ActionChains(browser).move_to_element(
            browser.find_element("css selector", reason)
        ).perform()
        wait(browser, "return !!document.querySelector('.ag-tooltip')")
        assert texts(browser, ".ag-tooltip") == [HOSTILE_REASON]
        assert browser.execute_script(PAYLOAD_TRACES) == []
        assert severe_console_errors(browser) == []

        # the HTML report the page links to: a download, so opened from its bytes, where no
        # Content-Security-Policy stops a handler (the app's blocks inline ones)
        with urlopen(f"{url}/reports/governance.html") as response:
            page = base64.b64encode(response.read()).decode()
        browser.get(f"data:text/html;charset=utf-8;base64,{page}")
        assert browser.title == "Clew compliance report"
        report = browser.find_element("tag name", "body").text
        for name in (team, system, edge, HOSTILE_REASON, HOSTILE_APPROVER, HOSTILE_OPERATION):
            assert name in report
        assert browser.execute_script(PAYLOAD_TRACES) == []


FAILING_EDGE = (
    "window.cy.edges().filter(e => e.data('source') === 'integration-hub'"
    " && e.data('target') === 'warehouse-service')"
)


def test_the_map_shows_the_failing_edge_the_slow_path_and_the_overlays(browser, sample_url):
    browser.get(sample_url + "/map?window=all")
    wait(browser, MAP_DRAWN)
    assert browser.execute_script(f"return {FAILING_EDGE}.style('line-color')") == "rgb(214,69,69)"
    slow = browser.execute_script(
        "return window.cy.edges('.slow').map(e => e.data('source') + '>' + e.data('target')"
        " + ' ' + e.style('label'))"
    )
    assert any(s.startswith("storefront-web>recommendation-service p95 ") for s in slow)
    assert any(s.startswith("recommendation-service>catalog-service p95 ") for s in slow)
    # the node panel's button shows the blast radius, and the URL keeps it
    browser.execute_script("window.cy.getElementById('warehouse-service').emit('tap')")
    wait(browser, lambda d: "ENDPOINTS IT SERVES" in text_of(d, "map-panel").upper())
    browser.find_element("id", "map-blast-button").click()
    wait(browser, lambda d: query(d).get("blast") == ["warehouse-service"])
    wait(browser, "return window.cy.getElementById('integration-hub').hasClass('blast')")
    outside = "return parseFloat(window.cy.getElementById('payments-api').style('opacity'))"
    assert browser.execute_script(outside) < 0.5
    assert "Blast radius of warehouse-service" in text_of(browser, "map-overlay-legend")
    # search highlights the matching nodes and keeps itself in the URL
    from selenium.webdriver.common.keys import Keys

    browser.find_element("id", "map-search").send_keys("warehouse", Keys.ENTER)
    wait(browser, lambda d: query(d).get("q") == ["warehouse"])
    wait(browser, "return window.cy.getElementById('warehouse-service').hasClass('match')")
    assert browser.execute_script("return window.cy.getElementById('pos-api').hasClass('dim')")
    # the diff with the previous 45 minutes marks the edge that started failing
    browser.get(sample_url + "/map?since=1794997260&until=1794999960&diff=1")
    wait(browser, MAP_DRAWN)
    wait(browser, f"return {FAILING_EDGE}.hasClass('diff-changed')")
    assert browser.execute_script(f"return {FAILING_EDGE}.style('label')") == "error ratio ↑"
    assert "Compared with the 45 minutes before" in text_of(browser, "map-overlay-legend")
    assert severe_console_errors(browser) == []


def test_the_paths_page_leads_to_the_failing_span(browser, sample_url):
    browser.get(sample_url + "/paths?window=all")
    wait(browser, "return document.querySelectorAll('#paths-waterfall .wf-row.failing').length > 0")
    first = browser.find_element("css selector", "#paths-list .path-row.selected .path-line")
    assert first.text.endswith("→ warehouse-service")
    failing = browser.find_element("css selector", "#paths-waterfall .wf-row.failing")
    assert "warehouse-service" in failing.text
    assert "WMS connection pool exhausted" in text_of(browser, "paths-failing-span")
    critical = "return document.querySelectorAll('#paths-waterfall .wf-row.critical').length"
    assert browser.execute_script(critical) >= 3
    wait(
        browser,
        "return !!document.querySelector('#paths-map canvas')"
        " && window.cy && window.cy.edges('.failing').length === 1",
    )
    # choosing another path puts it in the URL and shows its exemplar
    rows = browser.find_elements("css selector", "#paths-list .path-row a")
    target = parse_qs(urlsplit(rows[1].get_attribute("href")).query)["path"]
    rows[1].click()
    wait(browser, lambda d: query(d).get("path") == target)
    wait(
        browser,
        lambda d: (
            d.find_element("css selector", "#paths-list .path-row.selected").get_attribute(
                "data-path-id"
            )
            == target[0]
        ),
    )
    browser.back()
    wait(browser, lambda d: "path" not in query(d))
    assert severe_console_errors(browser) == []


def test_the_sources_page_lists_what_was_read_and_what_was_quarantined(browser, tmp_path):
    """Access logs of the corpus and a log with a hostile broken line: every source with its
    format and counts, the quarantined line with where and why, all of it inert text."""
    from clew.pipeline import ingest
    from collectors import load_registry
    from tests.conftest import corpus

    bad = tmp_path / "logs" / "edge.log"
    bad.parent.mkdir()
    good = (corpus("nginx") / "nginx_http-logs.log").read_text().splitlines()[0]
    bad.write_text(f"{good}\n{good}\nnot a request {HOSTILE}\n")
    engine = store.open_engine(str(tmp_path / "clew.db"))
    store.ensure_schema(engine)
    ingest(engine, [corpus("haproxy"), bad.parent], load_registry())
    engine.dispose()
    with serving(str(tmp_path / "clew.db")) as url:
        browser.get(f"{url}/sources")
        wait(browser, "return document.querySelectorAll('#sources-grid .ag-row').length === 3")
        listed = text_of(browser, "sources-grid")
        assert "logfile_haproxy.0" in listed and "edge.log" in listed and "haproxy" in listed
        wait(browser, lambda d: HOSTILE in text_of(d, "sources-quarantine"))
        quarantined = text_of(browser, "sources-quarantine")
        assert "line 3" in quarantined and "a proxy event" in quarantined
        images = "return document.querySelectorAll('img[src=\"x\"]').length"
        assert browser.execute_script(images) == 0
        assert browser.execute_script("return window.__clew_xss === undefined")
        assert severe_console_errors(browser) == []


ENDPOINT_ROWS = (
    "return document.querySelectorAll('#endpoints-grid .ag-center-cols-container .ag-row').length"
)


def test_the_endpoints_page_lists_the_inventory_and_filters_it(browser, sample_url):
    browser.get(sample_url + "/endpoints?window=all")
    wait(browser, ENDPOINT_ROWS + " > 0")
    cards = text_of(browser, "endpoints-cards").upper()
    assert "SHADOW" in cards and "UNVERSIONED" in cards
    grid = text_of(browser, "endpoints-grid")
    assert "payments-api" in grid and "/v2/payments" in grid
    everything = browser.execute_script(ENDPOINT_ROWS)
    browser.find_element(
        "xpath", "//*[@id='endpoints-status']//label[normalize-space()='unversioned']"
    ).click()
    wait(browser, lambda d: d.execute_script(ENDPOINT_ROWS) < everything)
    shown = text_of(browser, "endpoints-grid")
    assert "/v2/payments" not in shown  # versioned by its path
    browser.find_element(
        "xpath", "//*[@id='endpoints-window']//label[normalize-space()='24h']"
    ).click()
    wait(browser, lambda d: query(d).get("window") == ["24h"])
    # the sample ended days ago: nothing in the last day, and the page says so
    wait(browser, lambda d: "No data in this window" in text_of(d, "endpoints-message"))
    assert severe_console_errors(browser) == []


def test_the_contracts_page_shows_versions_and_what_a_change_breaks(browser, tmp_path):
    """Two versions of a contract whose service partners call through a gateway: the page picks
    them, lists the changes breaking first, with the partners each breaking one would break."""
    from click.testing import CliRunner

    from clew.cli import main
    from tests.clew.test_diff import OLD, PLANTED, new_version, traffic

    db = tmp_path / "clew.db"
    engine = store.open_engine(str(db))
    store.upgrade(engine)
    traffic(engine, tmp_path)
    engine.dispose()
    for version, document in (("1", OLD), ("2", new_version())):
        path = tmp_path / f"pets-{version}.json"
        path.write_bytes(orjson.dumps(document))
        assert CliRunner().invoke(main, ["ingest", str(path), "--db", str(db)]).exit_code == 0
    with serving(str(db)) as url:
        browser.get(url + "/contracts?window=all")
        wait(browser, "return document.querySelectorAll('#contracts-versions .ag-row').length == 2")
        wait(browser, lambda d: "breaking" in text_of(d, "contracts-summary"))
        summary = text_of(browser, "contracts-summary")
        breaking = sum(1 for planted in PLANTED if planted[1])
        assert summary.startswith("Pets@1.0.0")
        assert f"{len(PLANTED)} changes, {breaking} breaking" in summary
        assert "served by pets-api through edge" in summary
        changes = text_of(browser, "contracts-changes")
        assert "operation-removed" in changes and "partner-a (4), partner-b (2)" in changes
        assert severe_console_errors(browser) == []


def test_the_map_shows_undeclared_and_unused_dependencies(browser, tmp_path):
    """The declared-dependencies overlay: shop → pricing is observed but undeclared, shop →
    mailer declared but never called (drawn with its node, though the window has neither)."""
    from collectors import load_registry
    from tests.clew.test_inventory import declared_landscape

    db = tmp_path / "clew.db"
    engine = store.open_engine(str(db))
    store.upgrade(engine)
    declared_landscape(engine, load_registry(), tmp_path)
    engine.dispose()
    marks = (
        "const out = {}; window.cy.edges().forEach(e => {"
        " out[e.data('source') + '>' + e.data('target')] = e.classes().filter("
        " c => c.startsWith('declared-')).join(' '); }); return out;"
    )
    with serving(str(db)) as url:
        browser.get(url + "/map?window=all")
        wait(browser, MAP_DRAWN)
        browser.find_element(
            "xpath", "//*[@id='map-declared']//label[normalize-space()='Declared dependencies']"
        ).click()
        wait(browser, lambda d: query(d).get("declared") == ["1"])
        wait(browser, lambda d: "shop>mailer" in d.execute_script(marks))
        wait(browser, MAP_DRAWN)
        found = browser.execute_script(marks)
        assert found["shop>pricing"] == "declared-undeclared"
        assert found["shop>mailer"] == "declared-unused"
        assert found["shop>stock-service"] == "" and found["shop>orders-db"] == ""
        legend = text_of(browser, "map-overlay-legend")
        assert "1 undeclared" in legend and "1 unused" in legend
        assert severe_console_errors(browser) == []
