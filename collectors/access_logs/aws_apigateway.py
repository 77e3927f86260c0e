"""Amazon API Gateway access logs (REST and HTTP APIs) in JSON, as a stage writes them.

``aws_json``: one JSON object a line, built from ``$context`` variables under keys the operator
chooses. ``Settings.fields`` maps Clew's field names (``FIELDS`` below) to the keys a stage
uses; a field with no such entry is looked for under the default keys, which cover AWS's
documented example formats: the JSON format of "Access logging for REST APIs" (``requestId``,
``extendedRequestId``, ``ip``, ``caller``, ``user``, ``requestTime``, ``httpMethod``,
``resourcePath``, ``status``, ``protocol``, ``responseLength``) and of "Configure logging for HTTP
APIs in API Gateway" (the same with ``routeKey``), plus the variables' own names from "Variables
for access logging for API Gateway" and "Customize HTTP API access logs"
(``requestTimeEpoch``, ``responseLatency``, ``integrationLatency``, ``integrationStatus``,
``path``, ``domainName``, ``apiId``, ``stage``, ``xrayTraceId``, ``errorMessage``, ...). A key
with dots (``identity.sourceIp``) is read as it is, else as a path into nested objects
(``{"identity": {"sourceIp": ...}}``). A line is taken for this format when it is a JSON object
with a request id (``requestId`` or ``extendedRequestId``: AWS requires one of them in every
access log format); a line that names one but is no JSON (cut short, say) is quarantined with
the JSON parser's reason. API Gateway writes ``-`` for a variable it has no value for;
values are text, or numbers where the format leaves them unquoted.

How the fields become a request:

- ``start_ns``: ``requestTimeEpoch`` (Unix milliseconds), else ``requestTime``
  (``06/Dec/2026:10:00:00 +0000``, to the second). Both are when the request was received, its
  START.
- ``duration_ns``: ``responseLatency`` (ms); ``upstream_duration_ns``: ``integrationLatency`` (ms).
- ``method``: ``httpMethod``, else the method of ``routeKey``; ``path``: ``path`` (the request's
  path; for REST APIs it begins with the stage, ``/prod/pets/1``); ``host``: ``domainName``.
- ``route``: the template API Gateway matched: ``resourcePath`` (REST, ``/pets/{petId}``), else
  ``routeKey`` without its method (HTTP APIs, ``GET /pets/{id}`` → ``/pets/{id}``; the catch-all
  ``$default`` as it is).
- ``status``: ``status``; ``bytes_sent``: ``responseLength``; ``bytes_received``: none by default.
- ``upstream``: None. No ``$context`` variable names the integration, and the API id and stage
  name the API itself, not what it calls (they go to the attributes). A stage that logs a name
  for its integration (a stage variable, say) can map it to the ``upstream`` field.
- ``client``: ``ip`` / ``sourceIp`` (``$context.identity.sourceIp``: the address of the TCP
  connection that made the request).
- The consumer's identity: the API key id (``apiKeyId``), else the Cognito identity
  (``cognitoIdentityId``), else the Lambda authorizer's principal (``principalId``), else the IAM
  ``caller``, else ``user``. Identities are not repeated in the attributes.
- ``trace_id``: ``xrayTraceId`` (``1-5759e988-bd862e3fe1be46a994272793``) in W3C form, as the
  OpenTelemetry X-Ray propagator maps it: the 8 hex digits of its epoch then its 24 random ones
  (``5759e988bd862e3fe1be46a994272793``).
- ``attributes``: request id, extended request id, API id, stage, protocol, integration status,
  error message, integration error message, user agent, the X-Ray trace id as logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from clew.records import GatewayRequest
from collectors.access_logs import (
    AccessLogCollector,
    BadLine,
    LineFormat,
    NotThisFormat,
    Settings,
    attributes_json,
    clf_time_ns,
    milliseconds_ns,
    path_of,
    whole_number,
)

#: Clew's name for each value an access log can hold, and the keys it is looked for under when
#: ``Settings.fields`` does not name one.
FIELDS: Mapping[str, tuple[str, ...]] = {
    "request_id": ("requestId",),
    "extended_request_id": ("extendedRequestId",),
    "client": ("ip", "sourceIp", "identity.sourceIp"),
    "request_time": ("requestTime",),
    "request_time_epoch": ("requestTimeEpoch",),
    "method": ("httpMethod",),
    "resource_path": ("resourcePath",),
    "route_key": ("routeKey",),
    "path": ("path",),
    "host": ("domainName",),
    "status": ("status",),
    "protocol": ("protocol",),
    "bytes_sent": ("responseLength",),
    "bytes_received": (),
    "duration": ("responseLatency",),
    "upstream_duration": ("integrationLatency", "integration.latency"),
    "integration_status": ("integrationStatus", "integration.status"),
    "upstream": (),
    "api_id": ("apiId",),
    "stage": ("stage",),
    "api_key_id": ("apiKeyId", "identity.apiKeyId"),
    "cognito_identity_id": ("cognitoIdentityId", "identity.cognitoIdentityId"),
    "principal_id": ("principalId", "authorizer.principalId"),
    "caller": ("caller", "identity.caller"),
    "user": ("user", "identity.user"),
    "xray_trace_id": ("xrayTraceId",),
    "error_message": ("errorMessage", "error.message"),
    "integration_error_message": ("integrationErrorMessage",),
    "user_agent": ("userAgent", "identity.userAgent"),
}
_IDENTITIES = ("api_key_id", "cognito_identity_id", "principal_id", "caller", "user")
# An X-Ray trace id, alone or as the Root of an X-Amzn-Trace-Id header.
_XRAY = re.compile(r"(?:Root=)?1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})(?:;.*)?")


def parse(line: str, settings: Settings) -> GatewayRequest:
    """A line of an API Gateway stage's JSON access log."""
    if line[:1] != "{":
        raise NotThisFormat
    by_key = _fields_by_key(settings.fields)
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        if any(f'"{key.rpartition(".")[2]}"' in line for key in _request_id_keys(by_key)):
            raise BadLine(f"not JSON: {error}") from None
        raise NotThisFormat from None  # some other JSON, or too little of it to tell
    found = _fields_of(record, by_key)
    if "request_id" not in found and "extended_request_id" not in found:
        raise NotThisFormat

    def text(name: str) -> str | None:
        return _text(found.get(name))

    def count(name: str) -> int | None:
        return _count(found.get(name))

    route_key = text("route_key")
    route_method, route = None, route_key
    if route_key is not None and " " in route_key:
        route_method, _, route = route_key.partition(" ")
    client = text("client")
    identity = next(filter(None, map(text, _IDENTITIES)), None)
    xray_trace_id = text("xray_trace_id")
    return GatewayRequest(
        start_ns=_start_ns(found, settings),
        gateway="aws_apigateway",
        consumer=settings.consumer_of(client, identity),
        client=settings.client(client),
        method=text("method") or route_method,
        host=text("host"),
        path=path_of(text("path")),
        route=text("resource_path") or route,
        status=count("status"),
        duration_ns=_milliseconds(found.get("duration")),
        upstream_duration_ns=_milliseconds(found.get("upstream_duration")),
        upstream=text("upstream"),
        bytes_sent=count("bytes_sent"),
        bytes_received=count("bytes_received"),
        trace_id=_w3c_trace_id(xray_trace_id),
        attributes=attributes_json(
            {
                "request_id": text("request_id"),
                "extended_request_id": text("extended_request_id"),
                "api_id": text("api_id"),
                "stage": text("stage"),
                "protocol": text("protocol"),
                "integration_status": text("integration_status"),
                "error_message": text("error_message"),
                "integration_error_message": text("integration_error_message"),
                "user_agent": text("user_agent"),
                "xray_trace_id": xray_trace_id,
            }
        ),
    )


# A logged value and the key it was logged under (for the reason when it is not readable).
_Found = tuple[str, object]
# For each key, the fields it may hold and its rank among each field's keys (0 first).
_FieldsByKey = dict[str, list[tuple[str, int]]]


def _by_key(fields: Mapping[str, tuple[str, ...]]) -> _FieldsByKey:
    by_key: _FieldsByKey = {}
    for name, keys in fields.items():
        for rank, key in enumerate(keys):
            by_key.setdefault(key, []).append((name, rank))
    return by_key


_DEFAULT_BY_KEY = _by_key(FIELDS)
# The table of the fields last configured: a source is read with one Settings throughout.
_last_by_key: tuple[dict[str, str], _FieldsByKey] = ({}, _DEFAULT_BY_KEY)


def _fields_by_key(configured: Mapping[str, str]) -> _FieldsByKey:
    """The fields each key holds: the default keys, but a field that ``Settings.fields`` names is
    looked for under that key alone (names that are not in ``FIELDS`` name nothing)."""
    global _last_by_key
    if not configured:
        return _DEFAULT_BY_KEY
    last, by_key = _last_by_key
    if last != configured:
        by_key = _by_key({**FIELDS, **{name: (key,) for name, key in configured.items()}})
        _last_by_key = (dict(configured), by_key)
    return by_key


def _request_id_keys(by_key: _FieldsByKey) -> list[str]:
    return [
        key
        for key, fields in by_key.items()
        if any(name in ("request_id", "extended_request_id") for name, _ in fields)
    ]


def _fields_of(record: dict, by_key: _FieldsByKey) -> dict[str, _Found]:
    """The record's fields by Clew's name, each from its first key that has a value (API
    Gateway writes ``-`` for none). Nested objects are read as dotted keys (``identity.caller``)."""
    found: dict[str, tuple[str, object, int]] = {}
    pending: list[tuple[str, dict]] = [("", record)]
    while pending:
        prefix, members = pending.pop()
        for key, value in members.items():
            if prefix:
                key = prefix + key
            targets = by_key.get(key)
            if targets is None:
                if type(value) is dict:
                    pending.append((key + ".", value))
                continue
            if value is None or value == "-" or value == "":
                continue
            for name, rank in targets:
                other = found.get(name)
                if other is None or rank < other[2]:
                    found[name] = (key, value, rank)
    return {name: (key, value) for name, (key, value, _) in found.items()}


def _start_ns(found: Mapping[str, _Found], settings: Settings) -> int:
    epoch = _milliseconds(found.get("request_time_epoch"))
    if epoch is not None:
        return epoch
    request_time = _text(found.get("request_time"))
    if request_time is None:
        raise BadLine("no request time: neither requestTimeEpoch nor requestTime has a value")
    return clf_time_ns(request_time, settings.timezone)


def _text(found: _Found | None) -> str | None:
    if found is None:
        return None
    key, value = found
    if type(value) is str:
        return value
    if type(value) is int or type(value) is float:
        return str(value)
    raise BadLine(f"{key} {value!r} is not text")


def _count(found: _Found | None) -> int | None:
    """A whole, non-negative number, as text (``"200"``) or as a JSON number."""
    return None if found is None else whole_number(*found)


def _milliseconds(found: _Found | None) -> int | None:
    return None if found is None else milliseconds_ns(*found)


def _w3c_trace_id(xray_trace_id: str | None) -> str | None:
    """The W3C trace id of an X-Ray trace id: its epoch's 8 hex digits, then its 24 random ones
    (as the OpenTelemetry AWS X-Ray propagator maps them); None for anything else."""
    if xray_trace_id is None:
        return None
    match = _XRAY.fullmatch(xray_trace_id)
    if match is None:
        return None
    trace_id = (match.group(1) + match.group(2)).lower()
    return None if trace_id.strip("0") == "" else trace_id


AWS_JSON = LineFormat("aws_json", parse)
FORMATS = [AWS_JSON]


def collector() -> AccessLogCollector:
    """API Gateway's JSON access logs."""
    return AccessLogCollector(
        "aws_apigateway",
        "Amazon API Gateway access logs (REST and HTTP APIs) in JSON, keys as the stage names them",
        FORMATS,
    )
