"""The Governance page in headless Chromium on a copy of the sample: the charts and the grid
show the planted findings, a waiver made through the form waives its finding, and the map
badges a node with its findings.

Skipped when Chromium or chromedriver is missing, unless CLEW_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest

from .test_browser import MAP_DRAWN, browser, query, serving, severe_console_errors, text_of, wait

__all__ = ["browser"]  # the module's Chromium, shared with test_browser's fixture

pytestmark = pytest.mark.browser

GRID_ROWS = "#governance-findings .ag-center-cols-container .ag-row"
ZOMBIE_ROW = (
    "return Array.from(document.querySelectorAll(arguments[0])).find(r =>"
    " r.textContent.includes('payments-api POST /v2/refunds')"
    " && r.textContent.includes('zombie-endpoint')) || null"
)


def test_a_waiver_made_on_the_governance_page_waives_its_finding(browser, sample_db, tmp_path):
    db = tmp_path / "clew.db"
    shutil.copyfile(sample_db, db)
    with serving(str(db)) as url:
        browser.get(url + "/governance?team=team-payments")
        wait(browser, f"return document.querySelectorAll('{GRID_ROWS}').length > 0")
        grid = text_of(browser, "governance-findings")
        assert "payments-api POST /v2/refunds" in grid and "zombie-endpoint" in grid
        assert "Payments API@2.4.0" in grid and "breaking-change" in grid
        assert "team-web-shop" not in grid  # the team filter from the URL
        # the charts drew the same findings
        wait(browser, "return !!document.querySelector('#governance-by-rule .barlayer .trace')")
        rules = browser.execute_script(
            "return document.querySelector('#governance-by-rule .js-plotly-plot').data"
            ".flatMap(t => t.y).filter((v, i, a) => a.indexOf(v) === i)"
        )
        assert {"zombie-endpoint", "breaking-change"} <= set(rules)
        assert "team-payments" in text_of(browser, "governance-scorecards")

        # choosing a row fills the form; the waiver it makes waives that finding
        browser.execute_script(ZOMBIE_ROW, GRID_ROWS).find_element(
            "css selector", "[col-id='subject']"
        ).click()
        rule = browser.find_element("id", "governance-rule")
        wait(browser, lambda d: rule.get_attribute("value") == "zombie-endpoint")
        subject = browser.find_element("id", "governance-subject").get_attribute("value")
        assert subject == "payments-api POST /v2/refunds"
        browser.find_element("id", "governance-reason").send_keys("Partners move off by January")
        browser.find_element("id", "governance-approver").send_keys("lead.payments@shop.example")
        expiry = (date.today() + timedelta(days=60)).isoformat()
        browser.find_element("id", "governance-expires").send_keys(expiry)
        browser.find_element("id", "governance-create").click()
        wait(
            browser,
            lambda d: (
                "Waiver #4 created; it waives 1 finding." in text_of(d, "governance-form-message")
            ),
        )
        wait(browser, lambda d: "Partners move off by January" in text_of(d, "governance-waivers"))
        waivers = text_of(browser, "governance-waivers")
        assert "payments-api POST /v2/refunds (zombie-endpoint, waived)" in waivers
        wait(browser, lambda d: "waived" in d.execute_script(ZOMBIE_ROW, GRID_ROWS).text)

        # a state filter writes the URL and keeps only the waived findings
        browser.get(url + "/governance?state=waived")
        wait(browser, f"return document.querySelectorAll('{GRID_ROWS}').length === 2")
        assert "payments-api POST /v2/refunds" in text_of(browser, "governance-findings")
        assert query(browser) == {"state": ["waived"]}

        # the map badges a node with its open findings and its panel lists them
        browser.get(url + "/map?window=all")
        wait(browser, MAP_DRAWN)
        hub = browser.execute_script(
            "const n = window.cy.getElementById('integration-hub');"
            " return [n.data('findings'), n.data('finding_severity'), n.style('label')]"
        )
        assert hub == [2, "warning", "integration-hub \u2691 2"]
        browser.execute_script("window.cy.getElementById('integration-hub').emit('tap')")
        wait(browser, lambda d: "OPEN FINDINGS (2)" in text_of(d, "map-panel").upper())
        assert "dependency-cycle" in text_of(browser, "map-panel")
        assert severe_console_errors(browser) == []
