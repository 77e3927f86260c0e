"""Findings across runs: first and last seen, resolved when gone, open again when back; waivers
that waive what they cover until they expire or are revoked, then open it again. On SQLite and,
when configured, PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from clew.store import findings as stored
from policies.engine import Finding

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _finding(rule: str, subject: str, severity: str = "warning", **more) -> dict:
    return Finding(rule, severity, "endpoint", subject, f"{rule} on {subject}", **more).as_dict()


def _states(conn) -> dict[tuple[str, str], str]:
    rows = conn.execute(text("SELECT rule, subject, state FROM findings"))
    return {(rule, subject): state for rule, subject, state in rows}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, engine):
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


def test_findings_are_kept_across_runs_resolved_when_gone_and_open_when_back(db):
    shadow = _finding("shadow-endpoint", "orders GET /backorders/{sku}", team="team-orders")
    zombie = _finding("zombie-endpoint", "payments POST /v2/refunds", "error")
    with db.begin() as conn:
        first = stored.record_run(conn, [shadow, zombie, zombie], now=T0, rules=2)
        second = stored.record_run(conn, [zombie], now=T0 + DAY, rules=2)
        third = stored.record_run(conn, [shadow, zombie], now=T0 + 2 * DAY, rules=2)
        rows = {f["rule"]: f for f in stored.findings(conn)}
        history = conn.execute(
            text("SELECT run_id, count(*) FROM finding_history GROUP BY run_id ORDER BY run_id")
        ).all()
    assert (first.findings, first.opened, first.resolved) == (2, 2, 0)
    assert (second.findings, second.opened, second.resolved) == (1, 0, 1)
    assert (third.findings, third.opened, third.resolved) == (2, 1, 0)
    assert [tuple(r) for r in history] == [(first.run_id, 2), (second.run_id, 1), (third.run_id, 2)]
    assert rows["zombie-endpoint"]["first_seen_at"] == T0
    assert rows["zombie-endpoint"]["last_seen_at"] == T0 + 2 * DAY
    assert rows["shadow-endpoint"]["state"] == "open"
    assert rows["shadow-endpoint"]["resolved_at"] is None
    assert rows["shadow-endpoint"]["team"] == "team-orders"
    with db.connect() as conn:
        ordered = [f["rule"] for f in stored.findings(conn)]
    assert ordered == ["zombie-endpoint", "shadow-endpoint"]  # most severe first


def test_an_expired_waiver_reopens_its_finding(db):
    shadow = _finding("shadow-endpoint", "order-service GET /orders/backorders/{sku}")
    other = _finding("shadow-endpoint", "cart-service GET /carts/{id}")
    with db.begin() as conn:
        stored.record_run(conn, [shadow, other], now=T0, rules=1)
        waiver_id = stored.add_waiver(
            conn,
            rule="shadow-*",
            subject="order-service GET /orders/backorders/*",
            reason="to be documented in the next release",
            approver="lead.orders@shop.example",
            expires_at=T0 + 3 * DAY,
            now=T0,
        )
        # Waived at once, the other subject untouched.
        assert _states(conn) == {
            ("shadow-endpoint", shadow["subject"]): "waived",
            ("shadow-endpoint", other["subject"]): "open",
        }
        assert stored.covered_counts(conn) == {waiver_id: 1}
        # A run before the expiry keeps it waived; one after it opens it again.
        run = stored.record_run(conn, [shadow, other], now=T0 + 2 * DAY, rules=1)
        assert (run.open, run.waived) == (1, 1)
        run = stored.record_run(conn, [shadow, other], now=T0 + 4 * DAY, rules=1)
        assert (run.open, run.waived) == (2, 0)
        assert _states(conn)[("shadow-endpoint", shadow["subject"])] == "open"


def test_an_expired_waiver_reopens_its_finding_without_waiting_for_a_run(db):
    shadow = _finding("shadow-endpoint", "order-service GET /orders/backorders/{sku}")
    with db.begin() as conn:
        stored.record_run(conn, [shadow], now=T0, rules=1)
        stored.add_waiver(
            conn,
            rule="shadow-endpoint",
            subject="order-service *",
            reason="r",
            approver="a",
            expires_at=T0 + DAY,
            now=T0,
        )
        assert stored.reopen_expired(conn, T0 + DAY / 2) == 0
        assert _states(conn)[("shadow-endpoint", shadow["subject"])] == "waived"
        assert stored.reopen_expired(conn, T0 + 2 * DAY) == 1
        assert _states(conn)[("shadow-endpoint", shadow["subject"])] == "open"
        (waiver,) = stored.list_waivers(conn)
        assert stored.waiver_state(waiver, T0 + 2 * DAY, timedelta(days=14)) == "expired"
        assert stored.waiver_state(waiver, T0, timedelta(days=14)) == "expiring"
        assert stored.waiver_state(waiver, T0, timedelta(hours=1)) == "active"


def test_a_revoked_waiver_reopens_its_findings(db):
    zombie = _finding("zombie-endpoint", "payments POST /v2/refunds", "error")
    with db.begin() as conn:
        stored.record_run(conn, [zombie], now=T0, rules=1)
        waiver_id = stored.add_waiver(
            conn,
            rule="zombie-endpoint",
            subject="*",
            reason="r",
            approver="a",
            expires_at=T0 + 30 * DAY,
            now=T0,
        )
        assert stored.revoke_waiver(conn, waiver_id, T0 + DAY)
        assert not stored.revoke_waiver(conn, waiver_id, T0 + DAY)
        assert _states(conn)[("zombie-endpoint", zombie["subject"])] == "open"


def test_a_waiver_needs_every_field_and_a_future_expiry(db):
    base = dict(rule="r", subject="s", reason="why", approver="who", expires_at=T0 + DAY, now=T0)
    with db.begin() as conn:
        for field, value in (("rule", " "), ("subject", ""), ("reason", ""), ("approver", "")):
            with pytest.raises(ValueError, match=field):
                stored.add_waiver(conn, **(base | {field: value}))
        with pytest.raises(ValueError, match="not after now"):
            stored.add_waiver(conn, **(base | {"expires_at": T0 - DAY}))


def test_a_waivers_file_replaces_its_own_earlier_waivers_only(db):
    def waiver(subject: str, days: int) -> dict:
        return {
            "rule": "orphan-endpoint",
            "subject": subject,
            "reason": "planned",
            "approver": "board",
            "expires_at": T0 + days * DAY,
        }

    with db.begin() as conn:
        stored.add_waiver(
            conn,
            rule="x",
            subject="y",
            reason="console one",
            approver="a",
            expires_at=T0 + DAY,
            now=T0,
        )
        assert stored.replace_file_waivers(
            conn, "w.yaml", [waiver("a", 5), waiver("b", 5)], T0
        ) == (2, 0)
        assert stored.replace_file_waivers(
            conn, "w.yaml", [waiver("a", 5), waiver("c", -1)], T0
        ) == (1, 1)
        by_subject = {w["subject"]: w for w in stored.list_waivers(conn)}
    assert by_subject["b"]["revoked_at"] == T0
    assert by_subject["a"]["revoked_at"] is None
    assert stored.waiver_state(by_subject["c"], T0, timedelta(days=14)) == "expired"
    assert by_subject["y"]["origin"] == "console" and by_subject["y"]["revoked_at"] is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2027-01-31", datetime(2027, 2, 1, tzinfo=UTC)),
        ("2027-01-31T12:00:00Z", datetime(2027, 1, 31, 12, tzinfo=UTC)),
        (datetime(2027, 1, 31, 12), datetime(2027, 1, 31, 12, tzinfo=UTC)),
    ],
)
def test_an_expiry_date_runs_to_the_end_of_its_day(given, expected):
    assert stored.expiry(given) == expected
    with pytest.raises(ValueError, match="not a date"):
        stored.expiry("next week")


def test_the_console_shows_a_lapsed_waivers_finding_open_before_any_run(engine):
    from console import queries

    shadow = _finding("shadow-endpoint", "order-service GET /orders/backorders/{sku}")
    with engine.begin() as conn:
        stored.record_run(conn, [shadow], now=T0, rules=1)
        stored.add_waiver(
            conn,
            rule="shadow-endpoint",
            subject="order-service *",
            reason="r",
            approver="a",
            expires_at=T0 + DAY,
            now=T0,
        )
    assert [f["state"] for f in queries.findings(engine)] == ["waived"]
    (waiver,) = queries.waivers(engine, T0 + 2 * DAY)  # reading at a later time lapses it
    assert (waiver["state"], waiver["findings"]) == ("expired", 0)
    assert [f["state"] for f in queries.findings(engine)] == ["open"]
    assert queries.governance(engine, T0 + 2 * DAY)["counts"]["state"] == {"open": 1, "waived": 0}
