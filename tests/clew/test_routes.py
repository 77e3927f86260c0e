"""Route templates: heuristics for identifier segments, contract templates matched most specific
first, cardinality learned from the stream, and the order ``route_for`` tries them in."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clew.routes import PARAM, Cardinality, Templates, _digest, route_for, template_of
from tests.conftest import corpus, examples


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/orders/8812", "/api/v1/orders/{id}"),
        (
            "/v1/customers/cus_NffrFeUfNV2Hib/sources/card_1MvoiELkdIwHu7ixOeFh",
            "/v1/customers/{id}/sources/{id}",
        ),
        (
            "/v1/subscription_schedules/sub_sched_1Mr3YcLkdIwHu7ix",
            "/v1/subscription_schedules/{id}",
        ),
        ("/v1/checkout/sessions/cs_test_a1B2c3D4e5F6g7H8", "/v1/checkout/sessions/{id}"),
        ("/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{uuid}"),
        ("/orders/550E8400-E29B-41D4-A716-446655440000", "/orders/{uuid}"),
        ("/orders/550e8400e29b41d4a716446655440000", "/orders/{uuid}"),
        ("/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/events/{id}"),
        ("/events/01arz3ndektsv4rrffq69g5fav", "/events/{id}"),
        ("/documents/507f1f77bcf86cd799439011", "/documents/{hash}"),
        (
            "/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "/blobs/sha256/{hash}",
        ),
        ("/traces/4bf92f3577b34da6", "/traces/{hash}"),
        (
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            "/2010-04-01/Accounts/{id}/Messages.json",
        ),
        ("/reports/2024-01-31", "/reports/{date}"),
        ("/reports/2024-01-31T09:30:00Z/summary", "/reports/{date}/summary"),
        ("/blog/2024/01/31/hello-world", "/blog/{year}/{month}/{day}/hello-world"),
        ("/stats/2024/01", "/stats/{year}/{month}"),
        ("/users/jane.doe@example.com/roles", "/users/{email}/roles"),
        ("/users/jane%40example.com", "/users/{email}"),
        (
            "/.well-known/acme-challenge/FMuukC2JOJ5HKmLBujjE_BkDo",
            "/.well-known/acme-challenge/{token}",
        ),
        ("/sessions/eyJhbGciOiJIUzI1NiJ9", "/sessions/{token}"),
        ("/orders/8812.json", "/orders/{id}.json"),
        ("/assets/4f3a9c8e7d6b5a41.js", "/assets/{hash}.js"),
        ("/orders/8812?expand=items#top", "/orders/{id}"),
        ("/orders/8812/", "/orders/{id}/"),
        ("//orders//8812", "//orders//{id}"),
    ],
)
def test_identifier_segments_become_named_parameters(path, template):
    assert template_of(path) == template


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/health",
        "/static/app.js",
        "/index.php/nous-contacter/",
        "/v1",
        "/V2/pets",
        "/v2beta1/pets",
        "/v1.2/pets",
        "/2.0/folders",
        "/1.1/statuses/home_timeline.json",
        "/2010-04-01/Accounts",
        "/2015-03-31/functions",
        "/user-profile/settings",
        "/sign-in",
        "/media/core/bootstrap_3.3.7/css/bootstrap.css",
        "/media/pi_popup/1.1.0/magnific-popup.css",
        "/charsets/iso-8859-1",
        "/getAllCustomersByRegion",
        "/pages/Nous-Contacter-Aujourdhui-2024",  # a long title, not a token
        "/files/my%20docs",  # percent-escapes are kept as logged
        "/files/a%2Fb",
        "/hosts/10.0.0.1",
    ],
)
def test_literal_paths_and_version_markers_stay_as_they_are(path):
    assert template_of(path) == path


@pytest.mark.parametrize(
    ("path", "template"),
    [
        # A single digit is a version at the first segment and after ``api``; an id elsewhere.
        ("/2/tweets/1460323737035677698", "/2/tweets/{id}"),
        ("/1", "/1"),
        ("/rest/api/2/issue/10001", "/rest/api/2/issue/{id}"),
        ("/api/0/projects/", "/api/0/projects/"),
        ("/orders/7", "/orders/{id}"),
        ("/orders/7/items/3", "/orders/{id}/items/{id}"),
        # Two digits or more at the first segment: a tenant, not version 42.
        ("/42/orders", "/{id}/orders"),
        ("/api/12/orders", "/api/{id}/orders"),
        # A date is a version at the first segment and after ``api``; a date elsewhere.
        ("/2010-04-01/Accounts/7", "/2010-04-01/Accounts/{id}"),
        ("/api/2023-10-01/orders", "/api/2023-10-01/orders"),
        ("/v1/2024-01-31", "/v1/{date}"),
        # A run of year and month is a date even at a version position.
        ("/2024/01/31", "/{year}/{month}/{day}"),
        # A year alone is an integer, and so is a month out of range.
        ("/teams/2024/members", "/teams/{id}/members"),
        ("/teams/2024/13", "/teams/{id}/{id}"),
        ("/teams/2024/1", "/teams/{id}/{id}"),
    ],
)
def test_digits_and_dates_are_versions_at_a_version_position_only(path, template):
    assert template_of(path) == template


def test_a_date_after_the_services_name_is_a_version():
    assert template_of("/lambda/2015-03-31/functions", service="lambda") == (
        "/lambda/2015-03-31/functions"
    )
    assert template_of("/Lambda/2015-03-31/functions/f1", service="lambda") == (
        "/Lambda/2015-03-31/functions/f1"
    )
    assert template_of("/lambda/2015-03-31/functions") == "/lambda/{date}/functions"
    assert template_of("/orders/2015-03-31", service="billing") == "/orders/{date}"


def test_a_digit_after_the_services_name_is_an_identifier():
    assert template_of("/orders/7", service="orders") == "/orders/{id}"
    assert template_of("/orders/2024-01-31", service="orders") == "/orders/2024-01-31"


def test_the_services_name_is_never_a_parameter():
    assert template_of("/42/orders/7", service="42") == "/42/orders/{id}"
    assert template_of("/42/2010-04-01/orders", service="42") == "/42/2010-04-01/orders"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/{id}",
        "/v1/customers/{customer}/sources/{id}",
        "/orders/{id}.json",
        "/blog/{year}/{month}/{day}",
        "/users/{param}/repos",
    ],
)
def test_a_template_is_its_own_template(path):
    assert template_of(path) == path


# Segments of the forms the heuristics know, and of the characters that sit near their borders.
_SEGMENTS = st.one_of(
    st.sampled_from(
        ["", "api", "v1", "v2beta1", "2.0", "1", "0", "42", "2024", "01", "31", "13", "2010-04-01"]
    ),
    st.from_regex(r"[0-9a-fA-F]{14,34}", fullmatch=True),
    st.from_regex(r"[a-z]{1,9}[_-][A-Za-z0-9]{6,24}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9+=_.@%-]{1,30}", fullmatch=True),
    st.from_regex(r"\{[a-z]{1,5}\}(\.json)?", fullmatch=True),
    st.text(max_size=12),
)
_PATHS = st.one_of(
    st.text(),
    st.lists(_SEGMENTS, max_size=8).map(lambda segments: "/" + "/".join(segments)),
)


@settings(max_examples=examples(150), deadline=None)
@given(_PATHS, st.sampled_from([None, "api", "lambda", "42", "v1", ""]))
def test_template_of_never_raises_and_is_idempotent(path, service):
    template = template_of(path, service=service)
    assert template_of(template, service=service) == template
    assert template.count("/") <= path.count("/")


def test_real_access_log_paths_template_idempotently():
    request = re.compile(r'"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) (\S+)')
    paths = {
        match[1]
        for folder in ("nginx", "traefik", "envoy", "haproxy")
        for log in sorted(corpus(folder).iterdir())
        for match in request.finditer(log.read_text(errors="replace"))
    }
    assert "/index.php/nous-contacter/" in paths
    for path in paths:
        template = template_of(path)
        assert template_of(template) == template, path
    assert template_of("/media/core/core.css?1550939640") == "/media/core/core.css"


# --- contract templates ----------------------------------------------------------------------


def test_a_literal_segment_beats_a_parameter():
    templates = Templates(
        [
            ("GET", "/v1/invoices/{invoice}"),
            ("GET", "/v1/invoices/upcoming"),
            ("GET", "/v1/invoices/upcoming/lines"),
            ("GET", "/v1/invoices/{invoice}/lines"),
        ]
    )
    assert templates.match("GET", "/v1/invoices/upcoming") == "/v1/invoices/upcoming"
    assert templates.match("GET", "/v1/invoices/in_1Mt") == "/v1/invoices/{invoice}"
    assert templates.match("GET", "/v1/invoices/upcoming/lines") == "/v1/invoices/upcoming/lines"
    assert templates.match("GET", "/v1/invoices/in_1Mt/lines") == "/v1/invoices/{invoice}/lines"


def test_a_literal_branch_that_dead_ends_falls_back_to_the_parameter():
    templates = Templates([(None, "/pets/mine/toys"), (None, "/pets/{id}/toys/{toy}")])
    assert templates.match("GET", "/pets/mine/toys/3") == "/pets/{id}/toys/{toy}"
    assert templates.match("GET", "/pets/mine/toys") == "/pets/mine/toys"


def test_a_literal_for_another_method_does_not_hide_the_parameter():
    templates = Templates([("GET", "/v1/customers/search"), ("DELETE", "/v1/customers/{customer}")])
    assert templates.match("DELETE", "/v1/customers/search") == "/v1/customers/{customer}"
    assert templates.match("POST", "/v1/customers/search") is None


def test_the_requests_method_beats_any_method_among_templates_of_one_shape():
    templates = Templates([(None, "/pets/{id}"), ("delete", "/pets/{petId}")])
    assert templates.match("DELETE", "/pets/7") == "/pets/{petId}"
    assert templates.match("get", "/pets/7") == "/pets/{id}"


def test_path_specificity_comes_before_the_method():
    templates = Templates([(None, "/pets/mine"), ("GET", "/pets/{id}")])
    assert templates.match("GET", "/pets/mine") == "/pets/mine"


def test_an_unknown_method_prefers_the_any_method_template_then_the_first_method():
    assert Templates([("POST", "/pets"), (None, "/pets")]).match(None, "/pets") == "/pets"
    templates = Templates([("POST", "/pets/{b}"), ("GET", "/pets/{a}")])
    assert templates.match(None, "/pets/7") == "/pets/{a}"


@pytest.mark.parametrize(
    "operations",
    [
        [("GET", "/pets/{petId}"), ("GET", "/pets/{id}")],
        [("GET", "/pets/{id}"), ("GET", "/pets/{petId}")],
    ],
)
def test_two_spellings_of_one_template_give_the_same_one_whatever_the_order(operations):
    assert Templates(operations).match("GET", "/pets/7") == "/pets/{id}"


def test_segments_mixing_text_and_parameters_rank_by_their_literal_text():
    templates = Templates(
        [
            (None, "/Accounts/{Sid}"),
            (None, "/Accounts/{Sid}.json"),
            (None, "/files/{name}.gz"),
            (None, "/files/{name}.tar.gz"),
            (None, "/files/{name}"),
        ]
    )
    assert templates.match("GET", "/Accounts/AC1.json") == "/Accounts/{Sid}.json"
    assert templates.match("GET", "/Accounts/AC1") == "/Accounts/{Sid}"
    assert templates.match("GET", "/files/x.tar.gz") == "/files/{name}.tar.gz"
    assert templates.match("GET", "/files/x.gz") == "/files/{name}.gz"
    assert templates.match("GET", "/files/.gz") == "/files/{name}"  # a parameter is never empty


@settings(max_examples=examples(100), deadline=None)
@given(
    st.sampled_from(["{a}.{b}", "{a}-{b}.json", "x{a}", "{a}x", "{a}{b}", "{a}.{b}.{c}", "a{b}a"]),
    st.text(alphabet="ax.-jsonb", max_size=12),
)
def test_a_mixed_segment_matches_as_its_regular_expression_would(template, segment):
    pieces = re.split(r"\{[a-z]\}", template)
    expression = ".+".join(re.escape(piece) for piece in pieces)
    expected = f"/{template}" if re.fullmatch(expression, segment) and "/" not in segment else None
    assert Templates([(None, f"/{template}")]).match("GET", f"/{segment}") == expected


def test_matching_keeps_the_paths_shape_but_forgives_a_trailing_slash():
    templates = Templates([("GET", "/pets"), ("GET", "/pets/{id}"), ("GET", "/docs/")])
    assert templates.match("GET", "/pets/") == "/pets"
    assert templates.match("GET", "/docs/") == "/docs/"
    assert templates.match("GET", "/docs") is None
    assert templates.match("GET", "/pets//7") is None
    assert templates.match("GET", "/pets/7?expand=owner") == "/pets/{id}"
    assert templates.match("GET", "/") is None


def test_segments_compare_percent_decoded():
    templates = Templates([("GET", "/files/my docs"), ("GET", "/files/{name}/raw")])
    assert templates.match("GET", "/files/my%20docs") == "/files/my docs"
    assert templates.match("GET", "/files/a%2Fb/raw") == "/files/{name}/raw"


def test_every_stripe_operation_matches_its_own_template():
    spec = json.loads(corpus("openapi", "stripe_spec3.json").read_text())
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    ]
    assert len(operations) == 417
    templates = Templates(operations)
    for method, template in operations:
        concrete = re.sub(r"\{[^}]+\}", "x_1Mvo", template)
        assert templates.match(method, concrete) == template, (method, concrete)
    assert templates.match("GET", "/v1/customers/cus_NffrFeUfNV2Hib/sources/card_1Mvoi") == (
        "/v1/customers/{customer}/sources/{id}"
    )
    assert templates.match("GET", "/v2/customers") is None


@settings(max_examples=examples(75), deadline=None)
@given(_PATHS, st.sampled_from([None, "GET", "post", ""]))
def test_matching_never_raises(path, method):
    templates = Templates(
        [
            (None, "/"),
            ("GET", "/v1/{a}/{b}.json"),
            ("GET", "/v1/customers/{customer}"),
            (None, "/{tenant}/orders/{id}"),
            ("POST", "/v1/customers/search"),
        ]
    )
    found = templates.match(method, path)
    assert found is None or found.count("/") <= path.count("/")


# --- cardinality -----------------------------------------------------------------------------


def test_a_position_becomes_a_parameter_at_the_threshold_and_stays_one():
    cardinality = Cardinality(threshold=5)
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    templates = [cardinality.template("users", "GET", f"/users/{name}/repos") for name in names]
    assert templates[:4] == [f"/users/{name}/repos" for name in names[:4]]
    assert templates[4:] == ["/users/{param}/repos"] * 2
    # Monotonic: values seen before the decision, and literals never seen, are parameters now.
    assert cardinality.template("users", "GET", "/users/alice") == "/users/{param}"
    assert cardinality.template("users", "GET", "/users/search") == "/users/{param}"


def test_only_distinct_literal_values_count():
    cardinality = Cardinality(threshold=3)
    for _ in range(10):
        assert cardinality.template("users", "GET", "/users/alice") == "/users/alice"
        assert cardinality.template("users", "GET", "/users/bob") == "/users/bob"
    for number in range(10):  # heuristic parameters are not literal values
        assert cardinality.template("users", "GET", f"/users/{number}") == "/users/{id}"
    assert cardinality.template("users", "GET", "/users/carol") == "/users/{param}"


def test_positions_are_per_service_method_and_prefix():
    cardinality = Cardinality(threshold=3)
    for name in ("alice", "bob", "carol"):
        cardinality.template("users", "GET", f"/users/{name}")
    assert cardinality.template("users", "GET", "/users/dave") == "/users/{param}"
    assert cardinality.template("users", "DELETE", "/users/dave") == "/users/dave"
    assert cardinality.template("accounts", "GET", "/users/dave") == "/users/dave"
    assert cardinality.template("users", "GET", "/teams/dave") == "/teams/dave"
    assert cardinality.template("users", "get", "/users/erin") == "/users/{param}"


def test_deeper_positions_count_under_the_parameter():
    cardinality = Cardinality(threshold=3)
    for user in ("alice", "bob", "carol"):
        cardinality.template("git", "GET", f"/repos/{user}/tools")
    # carol's path tipped the position after /repos, and put "tools" after /repos/{param}.
    templates = [cardinality.template("git", "GET", f"/repos/dave/{repo}") for repo in "xyz"]
    assert templates == ["/repos/{param}/x", "/repos/{param}/{param}", "/repos/{param}/{param}"]


def test_resources_at_an_apis_root_and_version_markers_never_become_parameters():
    cardinality = Cardinality(threshold=3)
    for number in range(10):
        resource = f"resource{chr(97 + number)}"
        for path in (f"/{resource}", f"/v1/{resource}", f"/shop/api/{resource}", f"/v{number}"):
            assert cardinality.template("shop", "GET", path) == path
        assert cardinality.template("shop", "GET", f"/shop/v{number}") == f"/shop/v{number}"
    assert cardinality.state() == {"decisions": [], "counting": []}  # not even counted


def test_the_same_stream_gives_the_same_templates_and_state():
    stream = [("svc", "GET", f"/files/name{n % 7}/part{n % 11}") for n in range(200)]
    runs = []
    for _ in range(2):
        cardinality = Cardinality(threshold=4)
        runs.append(([cardinality.template(*request) for request in stream], cardinality.state()))
    assert runs[0] == runs[1]
    assert runs[0][1]["decisions"] == [["svc", "GET", "/files"], ["svc", "GET", "/files/{param}"]]


def test_decisions_survive_a_json_round_trip():
    cardinality = Cardinality(threshold=2)
    cardinality.template("b", None, "/users/alice")
    cardinality.template("b", None, "/users/bob")
    cardinality.template("a", "POST", "/orders/x/lines/y")
    cardinality.template("a", "POST", "/orders/z/lines/w")
    state = json.loads(json.dumps(cardinality.state()))
    assert state["decisions"] == [["a", "POST", "/orders"], ["b", None, "/users"]]
    restored = Cardinality.from_state(state, threshold=2)
    assert restored.state() == state
    assert restored.template("b", None, "/users/carol") == "/users/{param}"
    # /orders/{param}/lines had counted w: r is its second value, and tips it.
    assert restored.template("a", "post", "/orders/q/lines/r") == "/orders/{param}/lines/{param}"


def test_a_stream_stopped_and_restored_from_its_state_goes_on_as_if_it_had_not_stopped():
    """What is counted but not decided yet is part of the state, recency included: the restored
    learner templates the rest of the stream exactly as one that saw it all."""
    stream = [("svc", "GET", f"/files/name{n % 7}/part{n % 11}") for n in range(60)]
    stream += [("svc", "GET", f"/users/u{n}") for n in range(10)]
    whole = Cardinality(threshold=6, max_positions=3)
    expected = [whole.template(*request) for request in stream]
    for cut in (1, 4, 13, 40, 63, 68):
        first = Cardinality(threshold=6, max_positions=3)
        got = [first.template(*request) for request in stream[:cut]]
        state = json.loads(json.dumps(first.state()))
        restored = Cardinality.from_state(state, threshold=6, max_positions=3)
        got += [restored.template(*request) for request in stream[cut:]]
        assert got == expected, cut
        assert restored.state() == whole.state(), cut
    # Restored without its counting, it counts afresh: /users tips three values late.
    first = Cardinality(threshold=6, max_positions=3)
    got = [first.template(*request) for request in stream[:63]]
    decided = Cardinality.from_state({"decisions": first.state()["decisions"]}, threshold=6)
    got += [decided.template(*request) for request in stream[63:]]
    assert got[-5:] == ["/users/u5", "/users/u6", "/users/u7", "/users/{param}", "/users/{param}"]
    assert expected[-5:] == ["/users/{param}"] * 5


def test_changes_tell_what_the_counting_did_since_last_asked():
    cardinality = Cardinality(threshold=3, max_positions=2)
    cardinality.template("s", "GET", "/a/x1")
    cardinality.template("s", "GET", "/b/x1")
    cardinality.template("s", "GET", "/a/x2")  # /a is now the most recent: the third path shown
    counted, ended = cardinality.changes()
    assert [(position, seen, len(digests)) for position, seen, digests in counted] == [
        (("s", "GET", "/b"), 2, 1),
        (("s", "GET", "/a"), 3, 2),
    ]
    assert ended == []
    assert cardinality.changes() == ([], [])  # nothing since
    cardinality.template("s", "GET", "/a/x3")  # decided
    cardinality.template("s", "GET", "/c/x1")
    cardinality.template("s", "GET", "/d/x1")  # a third position: /b, the least recent, goes
    counted, ended = cardinality.changes()
    assert [position for position, _, _ in counted] == [("s", "GET", "/c"), ("s", "GET", "/d")]
    assert ended == [("s", "GET", "/a"), ("s", "GET", "/b")]


def test_told_when_paths_were_sent_the_counting_does_not_depend_on_their_order():
    """The ingest tells the minute of each request: the state is then the same whatever order
    (and batches) the requests came in, and the position forgotten is the one seen longest ago
    (the first by name, of several)."""
    paths = [("/a/x", 5), ("/b/x", 9), ("/c/x", 7), ("/a/y", 8), ("/d/x", 9), ("/b/y", 2)]
    states = []
    for ordered in (paths, list(reversed(paths)), sorted(paths)):
        cardinality = Cardinality(threshold=3)
        for path, minute in ordered:
            cardinality.template("s", "GET", path, minute)
        states.append(cardinality.state())
    assert states[0] == states[1] == states[2]

    def hexes(*values: str) -> list[str]:
        return sorted(_digest(value).hex() for value in values)

    assert states[0]["counting"] == [
        ["s", "GET", "/c", 7, hexes("x")],
        ["s", "GET", "/a", 8, hexes("x", "y")],
        ["s", "GET", "/b", 9, hexes("x", "y")],
        ["s", "GET", "/d", 9, hexes("x")],
    ]
    cardinality = Cardinality(threshold=3, max_positions=3)
    for path, minute in paths[:5]:  # /d comes when three are counted: /c, seen at 7, goes
        cardinality.template("s", "GET", path, minute)
    assert [entry[2] for entry in cardinality.state()["counting"]] == ["/a", "/b", "/d"]
    cardinality.template("s", "GET", "/e/x", 3)  # then /a, seen at 8
    assert [entry[2] for entry in cardinality.state()["counting"]] == ["/e", "/b", "/d"]


def test_the_least_recently_seen_position_is_forgotten_first():
    cardinality = Cardinality(threshold=3, max_positions=2)
    cardinality.template("s", "GET", "/a/1x")
    cardinality.template("s", "GET", "/a/2x")  # /a holds two values
    cardinality.template("s", "GET", "/b/1x")
    cardinality.template("s", "GET", "/a/2x")  # /a seen again: /b is the least recent
    cardinality.template("s", "GET", "/c/1x")  # a third position: /b is forgotten
    assert cardinality.template("s", "GET", "/a/3x") == "/a/{param}"  # /a kept its count
    cardinality.template("s", "GET", "/b/2x")
    assert cardinality.template("s", "GET", "/b/3x") == "/b/3x"  # /b counts afresh: 2 values


def test_no_decisions_beyond_the_cap():
    cardinality = Cardinality(threshold=2, max_decisions=1)
    for prefix in ("a", "b"):
        for value in ("x", "y", "z"):
            cardinality.template("s", "GET", f"/{prefix}/{value}")
    assert cardinality.template("s", "GET", "/a/w") == "/a/{param}"
    assert cardinality.template("s", "GET", "/b/w") == "/b/w"
    assert cardinality.state() == {"decisions": [["s", "GET", "/a"]], "counting": []}


def test_memory_stays_bounded_under_a_flood_of_distinct_paths():
    cardinality = Cardinality(threshold=10, max_positions=50, max_decisions=20)
    for n in range(5000):
        cardinality.template("s", "GET", f"/p{n % 97}/q{n}/r{n % 13}/{'x' * (n % 300)}")
    # What the bounds promise, read from the inside: positions, values per position, decisions.
    assert len(cardinality._values) <= 50
    assert all(len(values) < 10 for values in cardinality._values.values())
    assert len(cardinality.state()["decisions"]) <= 20


@pytest.mark.parametrize("limits", [{"threshold": 1}, {"max_positions": 0}, {"max_decisions": 0}])
def test_limits_that_cannot_work_are_refused(limits):
    with pytest.raises(ValueError):
        Cardinality(**limits)


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(_PATHS, max_size=20))
def test_cardinality_never_raises_and_keeps_the_heuristics_parameters(paths):
    cardinality = Cardinality(threshold=2)
    for path in paths:
        template = cardinality.template("s", "GET", path)
        heuristic = template_of(path, service="s")
        assert template.count("/") == heuristic.count("/")
        for mine, theirs in zip(template.split("/"), heuristic.split("/"), strict=True):
            assert mine in (theirs, PARAM)


# --- the order of matching -------------------------------------------------------------------


def test_route_for_tries_the_span_route_then_the_contract_then_the_heuristics():
    templates = Templates([("GET", "/pets/{petId}")])
    assert route_for("/pets/7", "GET", "pets", http_route="/pets/:id", templates=templates) == (
        "/pets/:id"
    )
    assert route_for("/pets/7", "GET", "pets", http_route="", templates=templates) == (
        "/pets/{petId}"
    )
    assert route_for("/pets/7/toys", "GET", "pets", templates=templates) == "/pets/{id}/toys"
    assert route_for("/lambda/2015-03-31/functions", "GET", "lambda") == (
        "/lambda/2015-03-31/functions"
    )


def test_route_for_applies_and_feeds_the_cardinality_decisions():
    cardinality = Cardinality(threshold=2)
    templates = Templates([("GET", "/pets/{petId}")])
    assert route_for("/users/alice", "GET", "s", templates=templates, cardinality=cardinality) == (
        "/users/alice"
    )
    assert route_for("/users/bob", "GET", "s", cardinality=cardinality) == "/users/{param}"
    assert route_for("/pets/7", "GET", "s", templates=templates, cardinality=cardinality) == (
        "/pets/{petId}"
    )
