"""Logging in and writing with auth on, in headless Chromium: the login form leads back to the
page asked for, dash-renderer's callback requests carry the session's CSRF token (a waiver made
through the Governance form is stored), and "Log out" ends the session.

Skipped when Chromium or chromedriver is missing, unless CLEW_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import shutil
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from clew import store
from clew.app import create_app
from clew.store import accounts

from .test_browser import browser, text_of, wait

__all__ = ["browser"]  # the module's Chromium, shared with test_browser's fixture

pytestmark = pytest.mark.browser

PASSWORD = "a long enough passphrase"
GRID_ROWS = "#governance-findings .ag-center-cols-container .ag-row"
USER_ROWS = "#admin-users .ag-center-cols-container .ag-row"


def test_a_governance_account_logs_in_and_makes_a_waiver_through_the_form(
    browser, sample_db, tmp_path
):
    from werkzeug.serving import make_server

    db = tmp_path / "clew.db"
    shutil.copyfile(sample_db, db)
    engine = store.open_engine(str(db))
    with engine.begin() as conn:
        accounts.add_user(conn, "gov", PASSWORD, "governance", store.utcnow())
        accounts.add_user(conn, "boss", PASSWORD, "admin", store.utcnow())
    app = create_app({"DATABASE_URL": "sqlite:///" + str(db), "AUTH": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        browser.get(url + "/governance?team=team-payments")
        wait(browser, lambda d: d.current_url.startswith(url + "/login?next="))
        browser.find_element("id", "username").send_keys("gov")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("css selector", "button[type=submit]").click()
        wait(browser, lambda d: d.current_url == url + "/governance?team=team-payments")
        wait(browser, f"return document.querySelectorAll('{GRID_ROWS}').length > 0")
        cookies = browser.execute_script("return document.cookie")
        assert "_csrf_token=" in cookies and "clew_session" not in cookies  # HttpOnly

        browser.find_element("id", "governance-rule").send_keys("zombie-endpoint")
        browser.find_element("id", "governance-subject").send_keys("payments-api POST /v2/refunds")
        browser.find_element("id", "governance-reason").send_keys("Partners move off by January")
        browser.find_element("id", "governance-approver").send_keys("lead.payments@shop.example")
        expiry = (date.today() + timedelta(days=60)).isoformat()
        browser.find_element("id", "governance-expires").send_keys(expiry)
        browser.find_element("id", "governance-create").click()
        wait(browser, lambda d: "created" in text_of(d, "governance-form-message"))
        assert "Waiver #4 created" in text_of(browser, "governance-form-message")
        with engine.begin() as conn:
            made = conn.execute(text("SELECT created_by, origin FROM waivers WHERE id = 4")).one()
        assert tuple(made) == ("gov", "console")

        # the top bar's "Log out" leads to the button that ends the session
        browser.find_element("id", "logout-link").click()
        wait(browser, lambda d: d.current_url == url + "/logout")
        browser.find_element("css selector", "button[type=submit]").click()
        wait(browser, lambda d: d.current_url == url + "/login")
        browser.get(url + "/governance")
        wait(browser, lambda d: d.current_url.startswith(url + "/login?next="))

        # An admin manages accounts and tokens on the Admin page.
        browser.get(url + "/login?next=/admin")
        browser.find_element("id", "username").send_keys("boss")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("css selector", "button[type=submit]").click()
        wait(browser, lambda d: d.current_url == url + "/admin")
        wait(browser, lambda d: "gov" in text_of(d, "admin-users"))
        browser.find_element("id", "admin-token-name").send_keys("otel collector")
        browser.find_element("id", "admin-create").click()
        wait(browser, lambda d: "not shown again" in text_of(d, "admin-created"))
        token = browser.find_element("id", "admin-created-token").text
        assert token.startswith("clew_") and len(token) == 48
        wait(browser, lambda d: "otel collector" in text_of(d, "admin-tokens"))
        rows = browser.find_elements("css selector", f"{USER_ROWS}")
        next(row for row in rows if row.text.startswith("gov")).click()
        browser.find_element("id", "admin-disable").click()
        wait(browser, lambda d: "gov is disabled." in text_of(d, "admin-user-message"))
        with engine.begin() as conn:
            assert accounts.authenticate(conn, "gov", PASSWORD) is None
            assert accounts.use_token(conn, token, store.utcnow())["scope"] == "ingest"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        store.engine_of(app).dispose()
        engine.dispose()
