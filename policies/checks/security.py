"""Security: what an OpenAPI contract says about access, in the spirit of the OWASP API Security
Top 10 (2023) — broken authentication (API2), unrestricted resource consumption (API4) and
security misconfiguration (API8) as far as a contract can show them. Each check reads the
contract as written, references followed, and reports one finding per operation, server or
scheme, at its JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from policies.checks.oas import OPERATION_KEYS, Path, is_oas2, is_oas3, view
from policies.engine import CHECKS, Context, Hit, NoOptions
from policies.subjects import ContractDoc

#: Query parameter names that carry a credential, compared without case, ``-`` or ``_``.
CREDENTIAL_NAMES = (
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "auth_token",
    "id_token",
    "refresh_token",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "session",
    "sessionid",
    "jwt",
)


def _operations(contract: ContractDoc) -> list[tuple[str, str, dict, dict]]:
    if contract.openapi is None or not isinstance(contract.document, dict):
        return []
    return view(contract).operations()


def _schemes(contract: ContractDoc) -> dict:
    document = contract.document
    if is_oas2(contract):
        schemes = document.get("securityDefinitions")
    else:
        components = document.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    return schemes if isinstance(schemes, dict) else {}


def _effective_security(contract: ContractDoc, operation: dict) -> tuple[Any, Path | None]:
    """An operation's security requirements (its own, else the document's) and where they
    are written (None when nowhere)."""
    if "security" in operation:
        return operation["security"], ()
    if "security" in contract.document:
        return contract.document["security"], ("security",)
    return None, None


@CHECKS.register("owasp-operation-security", "contract", NoOptions)
def operation_security(contract: ContractDoc, options: Any, context: Context):
    """An operation no security requirement protects: none of its own nor a global one, an
    explicit ``security: []``, or a requirement ``{}`` that lets anonymous callers in."""
    for path, method, operation, _ in _operations(contract):
        where = ("paths", path, method)
        security, written = _effective_security(contract, operation)
        if security is None:
            yield Hit(f"{method.upper()} {path} has no security requirement", where)
        elif not isinstance(security, list) or not security:
            at = (*where, "security") if written == () else where
            yield Hit(f"{method.upper()} {path} has an empty security requirement list", at)
        elif any(isinstance(r, dict) and not r for r in security):
            at = (*where, "security") if written == () else where
            yield Hit(f"{method.upper()} {path} lets anonymous callers in (security: {{}})", at)


@dataclass(frozen=True)
class HttpServerOptions:
    #: Host names (globs, ``*.internal``) a plain-HTTP server may have: local development.
    allow_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")


def _server_urls(contract: ContractDoc) -> Iterator[tuple[Path, str]]:
    """Every OpenAPI 3 server URL (the document's, each path item's and each operation's),
    its variables replaced by their defaults."""
    places: list[tuple[Path, Any]] = [((), contract.document.get("servers"))]
    paths = contract.document.get("paths")
    if isinstance(paths, dict):
        for path, item in paths.items():
            if isinstance(item, dict):
                places.append((("paths", path), item.get("servers")))
                for method in OPERATION_KEYS:
                    operation = item.get(method)
                    if isinstance(operation, dict):
                        places.append((("paths", path, method), operation.get("servers")))
    for base, servers in places:
        if not isinstance(servers, list):
            continue
        for index, server in enumerate(servers):
            if isinstance(server, dict) and isinstance(server.get("url"), str):
                yield (*base, "servers", index, "url"), _substituted(server)


def _substituted(server: dict) -> str:
    variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}

    def default(match: re.Match) -> str:
        variable = variables.get(match.group(1))
        if isinstance(variable, dict) and "default" in variable:
            return str(variable["default"])
        return match.group(0)

    return re.sub(r"\{([^}]*)\}", default, server["url"])


def _allowed(host: str, options: HttpServerOptions) -> bool:
    # only * and ? are wildcards: a bracket is literal, so "[::1]" names IPv6's loopback
    host = host.lower()
    return any(
        fnmatchcase(host, pattern.lower().replace("[", "[[]")) for pattern in options.allow_hosts
    )


@CHECKS.register("owasp-no-http-servers", "contract", HttpServerOptions)
def no_http_servers(contract: ContractDoc, options: HttpServerOptions, context: Context):
    """A server reached over plain HTTP (a 3.x ``http://`` server URL, a 2.0 ``http`` scheme)
    other than the allowed hosts (by default only the local machine)."""
    if is_oas3(contract):
        for path, url in _server_urls(contract):
            parts = urlsplit(url.strip())
            if parts.scheme.lower() == "http" and not _allowed(_host(parts.netloc), options):
                yield Hit(f"server {url} is plain HTTP: credentials and data travel in clear", path)
    elif is_oas2(contract):
        host = contract.document.get("host")
        host = _host(host) if isinstance(host, str) else ""
        if host and _allowed(host, options):
            return
        places: list[tuple[Path, Any]] = [(("schemes",), contract.document.get("schemes"))]
        for path, method, operation, _ in _operations(contract):
            places.append((("paths", path, method, "schemes"), operation.get("schemes")))
        for base, schemes in places:
            if isinstance(schemes, list):
                for index, scheme in enumerate(schemes):
                    if isinstance(scheme, str) and scheme.lower() in ("http", "ws"):
                        yield Hit(
                            f"scheme {scheme} is plain: credentials and data travel in clear",
                            (*base, index),
                        )


def _host(netloc: str) -> str:
    """A URL's host without its user and port (an IPv6 host keeps its brackets)."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


@dataclass(frozen=True)
class QueryCredentialOptions:
    #: Query parameter names taken for credentials (compared without case, ``-`` or ``_``).
    names: tuple[str, ...] = CREDENTIAL_NAMES


def _normal(name: str) -> str:
    return re.sub(r"[-_.\s]", "", name.lower())


@CHECKS.register("owasp-no-credentials-in-query", "contract", QueryCredentialOptions)
def no_credentials_in_query(
    contract: ContractDoc, options: QueryCredentialOptions, context: Context
):
    """A credential sent in the query string, where logs, proxies and browser history keep it:
    an ``apiKey`` security scheme ``in: query``, or a query parameter named like a key, a
    token, a password or a secret."""
    if contract.openapi is None:
        return
    current = view(contract)
    location = ("securityDefinitions",) if is_oas2(contract) else ("components", "securitySchemes")
    for name, scheme in _schemes(contract).items():
        scheme = current.resolved(scheme)
        if not isinstance(scheme, dict):
            continue
        if scheme.get("type") == "apiKey" and scheme.get("in") == "query":
            yield Hit(
                f"security scheme {name} sends its key in the query ({scheme.get('name')!r})",
                (*location, name, "in"),
            )
    names = {_normal(n) for n in options.names}
    seen: set[Path] = set()
    for path, method, operation, item in _operations(contract):
        for base, parameters in (
            (("paths", path), item.get("parameters")),
            (("paths", path, method), operation.get("parameters")),
        ):
            if not isinstance(parameters, list):
                continue
            for index, parameter in enumerate(parameters):
                at = (*base, "parameters", index)
                parameter = current.resolved(parameter)
                if at in seen or not isinstance(parameter, dict):
                    continue
                name = parameter.get("name")
                if (
                    parameter.get("in") == "query"
                    and isinstance(name, str)
                    and _normal(name) in names
                ):
                    seen.add(at)
                    yield Hit(
                        f"{method.upper()} {path} takes a credential in the query ({name})", at
                    )


@CHECKS.register("owasp-security-schemes-defined", "contract", NoOptions)
def security_schemes_defined(contract: ContractDoc, options: Any, context: Context):
    """A security requirement (global or an operation's) naming a scheme the contract does not
    define: the operation's protection is unknown."""
    if contract.openapi is None:
        return
    defined = _schemes(contract)
    places: list[tuple[Path, Any]] = [(("security",), contract.document.get("security"))]
    for path, method, operation, _ in _operations(contract):
        places.append((("paths", path, method, "security"), operation.get("security")))
    for base, security in places:
        if not isinstance(security, list):
            continue
        for index, requirement in enumerate(security):
            if not isinstance(requirement, dict):
                continue
            for name in requirement:
                if name not in defined:
                    yield Hit(f"security scheme {name} is not defined", (*base, index, name))


@dataclass(frozen=True)
class RateLimitOptions:
    #: Take a ``default`` or ``4XX`` response for the 429 too. Off: a catch-all response does
    #: not tell a client it was throttled, nor when to retry.
    accept_default: bool = False


@CHECKS.register("owasp-rate-limit-response", "contract", RateLimitOptions)
def rate_limit_response(contract: ContractDoc, options: RateLimitOptions, context: Context):
    """An operation that declares no ``429 Too Many Requests`` response: clients are not told
    the API limits them."""
    for path, method, operation, _ in _operations(contract):
        responses = operation.get("responses")
        codes = {str(code).upper() for code in responses} if isinstance(responses, dict) else set()
        if "429" in codes or (options.accept_default and codes & {"DEFAULT", "4XX"}):
            continue
        where = (
            ("paths", path, method, "responses")
            if isinstance(responses, dict)
            else (
                "paths",
                path,
                method,
            )
        )
        yield Hit(f"{method.upper()} {path} declares no 429 (rate limited) response", where)
