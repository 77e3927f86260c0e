"""Screenshots of the console for the docs: ``python docs/make_screenshots.py DB_PATH OUT_DIR``.

Serves the console on ``DB_PATH`` (a SQLite file or database URL; `clew demo --no-serve --db X`
makes one) with waitress on a free local port, opens the Overview and the Service map over all
the data in Debian's headless Chromium at 1440×900, and saves ``overview.png``, ``map.png``,
``paths.png`` (the worst failing path with its exemplar trace), ``endpoints.png``,
``governance.png`` (findings, scorecards and waivers), ``contracts.png`` (the sample's two
payments-api versions) and ``sources.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import waitress
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from clew.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1440, 900

#: The page is ready when this returns true: data drawn, not just the shell.
READY = {
    "overview": "return document.querySelectorAll('.card').length >= 6"
    " && document.querySelectorAll('.ag-row').length > 0"
    " && document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length > 0",
    "map": "return !!(window.cy && window.cy.nodes().length > 0"
    " && document.querySelector('#map-panel').children.length > 0)",
    "paths": "return document.querySelectorAll('#paths-list .path-row').length > 0"
    " && document.querySelectorAll('#paths-waterfall .wf-row.failing').length > 0"
    " && !!document.querySelector('#paths-map canvas')",
    "sources": "return document.querySelectorAll('#sources-grid .ag-row').length > 0",
    "endpoints": "return document.querySelectorAll('#endpoints-grid .ag-row').length > 0"
    " && document.querySelectorAll('#endpoints-cards .card').length > 0",
    "contracts": "return document.querySelectorAll('#contracts-changes .ag-row').length > 0",
    "governance": "return document.querySelectorAll('#governance-findings .ag-row').length > 0"
    " && document.querySelectorAll('#governance-waivers .ag-row').length > 0"
    " && document.querySelectorAll('#governance-by-rule .barlayer .trace').length > 0"
    " && document.querySelectorAll('#governance-scorecards table').length === 2",
}
#: What each screenshot shows.
PAGES = (
    ("overview", "/?window=all"),
    ("map", "/map?window=all"),
    ("paths", "/paths?window=all"),
    ("endpoints", "/endpoints?window=all"),
    ("governance", "/governance"),
    ("contracts", "/contracts?window=all"),
    ("sources", "/sources"),
)


def driver(profile: str) -> webdriver.Chrome:
    """Headless Chromium at the screenshot size, with no network chatter of its own."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # --window-size sizes the window, not the page: pin the viewport itself.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return browser


def shoot(base: str, out: Path) -> list[Path]:
    """Open each page under ``base`` and save its screenshot in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as profile:
        browser = driver(profile)
        try:
            for name, path in PAGES:
                browser.get(base + path)
                WebDriverWait(browser, 30).until(lambda b, n=name: b.execute_script(READY[n]))
                time.sleep(1.0)  # let the map's layout and the charts' transitions settle
                target = out / f"{name}.png"
                browser.save_screenshot(str(target))
                saved.append(target)
        finally:
            browser.quit()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="SQLite file or database URL holding the landscape")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    args = parser.parse_args(argv)
    # As `clew demo` serves it: the demo banner, no logins (the pages, not the login form).
    app = create_app({"DATABASE_URL": args.db, "DEMO": True, "AUTH": False})
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for path in shoot(f"http://127.0.0.1:{server.effective_port}", args.out):
            print(path)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
