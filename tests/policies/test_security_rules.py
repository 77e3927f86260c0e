"""The security pack's checks (``policies/checks/security.py``), each on small OpenAPI 2.0 and 3
contracts: what they find, where, with their options, and what they leave alone."""

from __future__ import annotations

from typing import Any

import policies.checks  # noqa: F401
from policies.engine import CHECKS, Context, build_options
from policies.subjects import ContractDoc

OK = {"200": {"description": "ok"}}


def oas3(paths: dict, **top: Any) -> ContractDoc:
    document = {"openapi": "3.0.3", "info": {"title": "Shop", "version": "1"}, "paths": paths}
    return ContractDoc("openapi", "3.0.3", "Shop", "1", document | top, "shop.yaml", "h")


def oas2(paths: dict, **top: Any) -> ContractDoc:
    document = {"swagger": "2.0", "info": {"title": "Shop", "version": "1"}, "paths": paths}
    return ContractDoc("openapi", "2.0", "Shop", "1", document | top, "shop.yaml", "h")


def found(check: str, contract: ContractDoc, **options: Any) -> list[tuple[str, tuple]]:
    """(message, path) of each of ``check``'s findings, with ``options`` read as a pack's."""
    registered = CHECKS.get(check)
    assert registered is not None
    built = build_options(registered.options, options)
    hits = registered.function(contract, built, Context(now=None))
    return [(hit.message, hit.path) for hit in hits]


# owasp-operation-security ---------------------------------------------------------------


def test_an_operation_with_no_security_anywhere_is_unprotected():
    contract = oas3({"/pets": {"get": {"responses": OK}, "post": {"responses": OK}}})
    assert found("owasp-operation-security", contract) == [
        ("GET /pets has no security requirement", ("paths", "/pets", "get")),
        ("POST /pets has no security requirement", ("paths", "/pets", "post")),
    ]


def test_a_global_requirement_protects_every_operation():
    contract = oas3({"/pets": {"get": {"responses": OK}}}, security=[{"key": []}])
    assert found("owasp-operation-security", contract) == []
    contract = oas2({"/pets": {"get": {"responses": OK}}}, security=[{"key": []}])
    assert found("owasp-operation-security", contract) == []


def test_an_empty_list_is_reported_where_it_is_written():
    own = oas3({"/pets": {"get": {"responses": OK, "security": []}}}, security=[{"key": []}])
    assert found("owasp-operation-security", own) == [
        (
            "GET /pets has an empty security requirement list",
            ("paths", "/pets", "get", "security"),
        )
    ]
    inherited = oas2({"/pets": {"get": {"responses": OK}}}, security=[])
    assert found("owasp-operation-security", inherited) == [
        ("GET /pets has an empty security requirement list", ("paths", "/pets", "get"))
    ]


def test_an_empty_requirement_lets_anonymous_callers_in():
    contract = oas3({"/pets": {"get": {"responses": OK, "security": [{"key": []}, {}]}}})
    assert found("owasp-operation-security", contract) == [
        (
            "GET /pets lets anonymous callers in (security: {})",
            ("paths", "/pets", "get", "security"),
        )
    ]


# owasp-no-http-servers --------------------------------------------------------------------


def test_plain_http_servers_are_found_at_every_level():
    contract = oas3(
        {
            "/pets": {
                "servers": [{"url": "http://pets.shop.test"}],
                "get": {"responses": OK, "servers": [{"url": "https://ops.shop.test"}]},
                "post": {"responses": OK, "servers": [{"url": "HTTP://ops.shop.test:8080/"}]},
            }
        },
        servers=[{"url": "https://api.shop.test"}, {"url": "http://api.shop.test/v1"}],
    )
    assert found("owasp-no-http-servers", contract) == [
        (
            "server http://api.shop.test/v1 is plain HTTP: credentials and data travel in clear",
            ("servers", 1, "url"),
        ),
        (
            "server http://pets.shop.test is plain HTTP: credentials and data travel in clear",
            ("paths", "/pets", "servers", 0, "url"),
        ),
        (
            "server HTTP://ops.shop.test:8080/ is plain HTTP: credentials and data travel in clear",
            ("paths", "/pets", "post", "servers", 0, "url"),
        ),
    ]


def test_a_server_variable_is_read_at_its_default():
    server = {"url": "{scheme}://api.shop.test", "variables": {"scheme": {"default": "http"}}}
    contract = oas3({}, servers=[server])
    assert found("owasp-no-http-servers", contract) == [
        (
            "server http://api.shop.test is plain HTTP: credentials and data travel in clear",
            ("servers", 0, "url"),
        )
    ]
    server["variables"]["scheme"]["default"] = "https"
    assert found("owasp-no-http-servers", contract) == []


def test_the_local_machine_may_be_plain_http_and_allow_hosts_replaces_it():
    servers = [
        {"url": "http://localhost:8080"},
        {"url": "http://user@127.0.0.1/v1"},
        {"url": "http://[::1]:3000"},
        {"url": "http://pets.internal"},
    ]
    contract = oas3({}, servers=servers)
    assert [path for _, path in found("owasp-no-http-servers", contract)] == [("servers", 3, "url")]
    allowed = found("owasp-no-http-servers", contract, allow_hosts=["*.INTERNAL"])
    assert [path for _, path in allowed] == [
        ("servers", 0, "url"),
        ("servers", 1, "url"),
        ("servers", 2, "url"),
    ]


def test_swagger_plain_schemes_are_found_unless_the_host_is_allowed():
    paths = {"/pets": {"get": {"responses": OK, "schemes": ["https", "ws"]}}}
    contract = oas2(paths, host="api.shop.test", schemes=["http", "https"])
    assert found("owasp-no-http-servers", contract) == [
        ("scheme http is plain: credentials and data travel in clear", ("schemes", 0)),
        (
            "scheme ws is plain: credentials and data travel in clear",
            ("paths", "/pets", "get", "schemes", 1),
        ),
    ]
    local = oas2(paths, host="localhost:8080", schemes=["http"])
    assert found("owasp-no-http-servers", local) == []
    secure = oas2({}, host="api.shop.test", schemes=["https", "wss"])
    assert found("owasp-no-http-servers", secure) == []


# owasp-no-credentials-in-query ------------------------------------------------------------


def test_an_api_key_scheme_in_the_query_is_found_in_both_versions():
    key = {"type": "apiKey", "in": "query", "name": "api_key"}
    header = {"type": "apiKey", "in": "header", "name": "X-Key"}
    three = oas3({}, components={"securitySchemes": {"key": key, "header": header}})
    assert found("owasp-no-credentials-in-query", three) == [
        (
            "security scheme key sends its key in the query ('api_key')",
            ("components", "securitySchemes", "key", "in"),
        )
    ]
    two = oas2({}, securityDefinitions={"key": key, "header": header})
    assert found("owasp-no-credentials-in-query", two) == [
        (
            "security scheme key sends its key in the query ('api_key')",
            ("securityDefinitions", "key", "in"),
        )
    ]


def test_query_parameters_named_like_credentials_are_found_once_where_written():
    shared = {"name": "Access-Token", "in": "query", "schema": {"type": "string"}}
    contract = oas3(
        {
            "/pets": {
                "parameters": [shared],
                "get": {
                    "responses": OK,
                    "parameters": [
                        {"name": "limit", "in": "query"},
                        {"$ref": "#/components/parameters/Key"},
                        {"name": "token", "in": "header"},
                    ],
                },
                "post": {"responses": OK},
            }
        },
        components={"parameters": {"Key": {"name": "API_KEY", "in": "query"}}},
    )
    assert found("owasp-no-credentials-in-query", contract) == [
        (
            "GET /pets takes a credential in the query (Access-Token)",
            ("paths", "/pets", "parameters", 0),
        ),
        (
            "GET /pets takes a credential in the query (API_KEY)",
            ("paths", "/pets", "get", "parameters", 1),
        ),
    ]


def test_names_replaces_the_credential_names():
    parameters = [{"name": "sig", "in": "query"}, {"name": "token", "in": "query"}]
    contract = oas2({"/files": {"get": {"responses": OK, "parameters": parameters}}})
    assert found("owasp-no-credentials-in-query", contract, names=["SIG"]) == [
        (
            "GET /files takes a credential in the query (sig)",
            ("paths", "/files", "get", "parameters", 0),
        )
    ]
    assert [p for _, p in found("owasp-no-credentials-in-query", contract)] == [
        ("paths", "/files", "get", "parameters", 1)
    ]


# owasp-security-schemes-defined -----------------------------------------------------------


def test_requirements_naming_undefined_schemes_are_found():
    paths = {"/pets": {"get": {"responses": OK, "security": [{"oauth": ["read"], "basic": []}]}}}
    contract = oas3(
        paths,
        security=[{"key": []}],
        components={"securitySchemes": {"oauth": {"type": "oauth2", "flows": {}}}},
    )
    assert found("owasp-security-schemes-defined", contract) == [
        ("security scheme key is not defined", ("security", 0, "key")),
        ("security scheme basic is not defined", ("paths", "/pets", "get", "security", 0, "basic")),
    ]
    two = oas2(paths, securityDefinitions={"oauth": {}, "basic": {}, "key": {}})
    assert found("owasp-security-schemes-defined", two) == []


# owasp-rate-limit-response ----------------------------------------------------------------


def test_operations_without_a_429_response_are_found():
    contract = oas3(
        {
            "/pets": {
                "get": {"responses": {"200": {}, "429": {}}},
                "put": {"responses": {"200": {}, "default": {}}},
                "post": {"responses": {"201": {}, "4XX": {}}},
                "delete": {},
            }
        }
    )
    assert found("owasp-rate-limit-response", contract) == [
        (
            "PUT /pets declares no 429 (rate limited) response",
            ("paths", "/pets", "put", "responses"),
        ),
        (
            "POST /pets declares no 429 (rate limited) response",
            ("paths", "/pets", "post", "responses"),
        ),
        ("DELETE /pets declares no 429 (rate limited) response", ("paths", "/pets", "delete")),
    ]


def test_accept_default_takes_a_catch_all_response_for_the_429():
    contract = oas2(
        {
            "/pets": {
                "put": {"responses": {"200": {}, "default": {}}},
                "post": {"responses": {"201": {}, "4xx": {}}},
                "patch": {"responses": {"200": {}}},
            }
        }
    )
    assert found("owasp-rate-limit-response", contract, accept_default=True) == [
        (
            "PATCH /pets declares no 429 (rate limited) response",
            ("paths", "/pets", "patch", "responses"),
        )
    ]


def test_asyncapi_contracts_are_left_alone():
    contract = ContractDoc("asyncapi", "2.6.0", "Events", "1", {"asyncapi": "2.6.0"}, "e.yaml", "h")
    for check in (
        "owasp-operation-security",
        "owasp-no-http-servers",
        "owasp-no-credentials-in-query",
        "owasp-security-schemes-defined",
        "owasp-rate-limit-response",
    ):
        assert found(check, contract) == []
