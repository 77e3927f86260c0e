"""The API Gateway collector on lines written after AWS's documentation (there is no corpus file).

The lines follow the example JSON formats of "Access logging for REST APIs" and of "Configure
logging for HTTP APIs in API Gateway", with further ``$context`` variables from "Variables for
access logging for API Gateway", in the spacing AWS's examples use.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.records import GatewayRequest, Quarantined
from collectors import Source
from collectors.access_logs import Settings
from collectors.access_logs.aws_apigateway import FIELDS, collector, parse
from tests.collectors import strategies
from tests.conftest import examples

MS = 1_000_000
DEC_6_2026_10H = 1_796_551_200 * 1_000_000_000  # 06/Dec/2026:10:00:00 +0000

# The REST API example format of the console, as AWS documents it.
REST_PRESET = (
    '{ "requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef", '
    '"extendedRequestId":"DnCQGFbqoAMFeGA=","ip": "203.0.113.9", "caller":"-", "user":"-",'
    '"requestTime":"06/Dec/2026:10:00:00 +0000", "httpMethod":"GET",'
    '"resourcePath":"/pets/{petId}", "status":"200","protocol":"HTTP/1.1", "responseLength":"48" }'
)
# A REST API stage logging latencies, the integration, the API key and X-Ray.
REST_FULL = (
    '{"requestId":"5b2a3ae8-6a1f-4e0b-a0c6-9d2f0b6c1e42","ip":"198.51.100.23",'
    '"requestTime":"06/Dec/2026:10:00:01 +0000","requestTimeEpoch":"1796551201123",'
    '"httpMethod":"POST","resourcePath":"/pets","path":"/prod/pets","status":"201",'
    '"protocol":"HTTP/1.1","responseLength":"27","responseLatency":"85",'
    '"integrationLatency":"80","integrationStatus":"201","domainName":"api.example.com",'
    '"apiId":"a1b2c3d4e5","stage":"prod","apiKeyId":"k9x8y7w6v5",'
    '"xrayTraceId":"1-5759e988-bd862e3fe1be46a994272793","errorMessage":"-"}'
)
# The HTTP API example format, as AWS documents it.
HTTP_PRESET = (
    '{ "requestId":"JdU-Uj8MoAMEaZA=", "ip": "192.0.2.44", '
    '"requestTime":"06/Dec/2026:10:00:02 +0000", "httpMethod":"GET","routeKey":"GET /pets/{id}", '
    '"status":"404","protocol":"HTTP/1.1", "responseLength":"23" }'
)
# An HTTP API stage with numbers left unquoted, the $default route and an integration error.
HTTP_DEFAULT_ROUTE = (
    '{"requestId":"JdU-aB1CoAMEbcD=","ip":"192.0.2.44","requestTimeEpoch":1796551203456,'
    '"routeKey":"$default","path":"/pets/7","status":500,"protocol":"HTTP/1.1",'
    '"responseLength":35,"responseLatency":112,"integrationLatency":104,'
    '"errorMessage":"Internal Server Error","integrationErrorMessage":"The response from the '
    "Lambda function doesn't match the format that API Gateway expects.\"}"
)
# Nested keys, as a CDK ``AccessLogFormat.custom(JSON.stringify({...}))`` writes them.
NESTED = (
    '{"requestId":"0b7fc3a2-44d1-4c35-a0e4-1f6f5e0e9a10","identity":{"sourceIp":"203.0.113.77",'
    '"cognitoIdentityId":"us-east-1:1a2b3c4d-5678-90ab-cdef-EXAMPLE11111",'
    '"userAgent":"okhttp/4.12.0"},"requestTime":"06/Dec/2026:10:00:04 +0000",'
    '"httpMethod":"PUT","resourcePath":"/profiles/{id}","status":"200",'
    '"xrayTraceId":"Root=1-67891233-abcdef012345678912345678"}'
)
GOOD = [REST_PRESET, REST_FULL, HTTP_PRESET, HTTP_DEFAULT_ROUTE, NESTED]
# The console's CLF example format: not read (JSON only), so quarantined.
CLF_PRESET = (
    '203.0.113.9 - - [06/Dec/2026:10:00:05 +0000]"GET /pets/{petId} HTTP/1.1" 200 48 '
    "c6af9ac6-7b61-11e6-9a41-93e8deadbeef DnCQGFbqoAMFeGA="
)
BROKEN = [
    (REST_PRESET.replace('"status":"200"', '"status":"2x0"'), "status '2x0' is not a whole number"),
    (REST_FULL[:120], "aws_json: not JSON: unexpected end of data"),
    (CLF_PRESET, "not a line of aws_json"),
    ('{"requestId":"e1", "httpMethod":"GET", "status":"200"}', "no request time"),
    (
        REST_PRESET.replace("06/Dec/2026:10:00:00", "6/December/2026 10:00"),
        "'6/December/2026 10:00 +0000' is not a time like 10/Oct/2000:13:55:36 -0700",
    ),
    (REST_FULL.replace('"85"', '"8.5"'), "responseLatency '8.5' is not a whole number"),
    (HTTP_PRESET.replace('"GET /pets/{id}"', '["GET"]'), "routeKey ['GET'] is not text"),
]


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "access.log"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def records(tmp_path: Path, lines: list[str], config: Settings | None = None) -> list:
    chosen = collector() if config is None else collector().configured(config)
    return list(chosen.collect(Source(write(tmp_path, lines))))


def requests_of(recs: list) -> list[GatewayRequest]:
    return [r for r in recs if type(r) is GatewayRequest]


def quarantined_of(recs: list) -> list[Quarantined]:
    return [r for r in recs if type(r) is Quarantined]


def attributes(request: GatewayRequest) -> dict:
    return orjson.loads(request.attributes) if request.attributes else {}


@pytest.fixture
def sample(tmp_path) -> list[GatewayRequest]:
    recs = records(tmp_path, GOOD)
    assert quarantined_of(recs) == []
    return requests_of(recs)


def test_rest_api_example_format(sample):
    request = sample[0]
    assert request.start_ns == DEC_6_2026_10H  # requestTime: the request's arrival
    assert (request.gateway, request.method, request.status) == ("aws_apigateway", "GET", 200)
    assert request.route == "/pets/{petId}"  # resourcePath: the template
    assert (request.path, request.host, request.upstream) == (None, None, None)
    assert (request.client, request.consumer) == ("203.0.113.9", None)  # caller, user "-"
    assert (request.bytes_sent, request.bytes_received) == (48, None)
    assert (request.duration_ns, request.upstream_duration_ns, request.trace_id) == (None,) * 3
    assert attributes(request) == {
        "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "extended_request_id": "DnCQGFbqoAMFeGA=",
        "protocol": "HTTP/1.1",
    }


def test_rest_api_with_latencies_api_key_and_xray(sample):
    request = sample[1]
    assert request.start_ns == DEC_6_2026_10H + 1_123 * MS  # requestTimeEpoch, to the ms
    assert (request.method, request.route, request.path) == ("POST", "/pets", "/prod/pets")
    assert (request.status, request.host) == (201, "api.example.com")
    assert (request.duration_ns, request.upstream_duration_ns) == (85 * MS, 80 * MS)
    assert request.consumer == "k9x8y7w6v5"  # the API key id
    assert request.trace_id == "5759e988bd862e3fe1be46a994272793"  # X-Ray id in W3C form
    assert request.upstream is None  # API Gateway logs no name for the integration
    assert attributes(request) == {
        "request_id": "5b2a3ae8-6a1f-4e0b-a0c6-9d2f0b6c1e42",
        "api_id": "a1b2c3d4e5",
        "stage": "prod",
        "protocol": "HTTP/1.1",
        "integration_status": "201",
        "xray_trace_id": "1-5759e988-bd862e3fe1be46a994272793",
    }


def test_http_api_example_format_names_the_route_key(sample):
    request = sample[2]
    assert request.start_ns == DEC_6_2026_10H + 2_000 * MS
    assert (request.method, request.route, request.status) == ("GET", "/pets/{id}", 404)
    assert (request.client, request.bytes_sent) == ("192.0.2.44", 23)


def test_http_api_default_route_with_numbers_and_an_integration_error(sample):
    request = sample[3]
    assert request.start_ns == DEC_6_2026_10H + 3_456 * MS
    assert request.method is None  # neither httpMethod nor a method in "$default"
    assert (request.route, request.path, request.status) == ("$default", "/pets/7", 500)
    assert (request.duration_ns, request.upstream_duration_ns) == (112 * MS, 104 * MS)
    assert attributes(request)["error_message"] == "Internal Server Error"
    assert attributes(request)["integration_error_message"].startswith("The response from")


def test_nested_keys_cognito_identity_and_an_xray_root(sample):
    request = sample[4]
    assert request.client == "203.0.113.77"
    assert request.consumer == "us-east-1:1a2b3c4d-5678-90ab-cdef-EXAMPLE11111"
    assert request.trace_id == "67891233abcdef012345678912345678"
    assert attributes(request)["user_agent"] == "okhttp/4.12.0"
    assert "cognito_identity_id" not in attributes(request)  # identities stay in consumer


@pytest.mark.parametrize(
    ("identities", "consumer"),
    [
        ({"apiKeyId": "key", "cognitoIdentityId": "cog", "principalId": "p", "caller": "c"}, "key"),
        ({"apiKeyId": "-", "cognitoIdentityId": "cog", "principalId": "p", "caller": "c"}, "cog"),
        ({"principalId": "p", "caller": "AIDAEXAMPLE", "user": "u"}, "p"),
        ({"caller": "AIDAEXAMPLE", "user": "AIDAUSER"}, "AIDAEXAMPLE"),
        ({"user": "AIDAUSER"}, "AIDAUSER"),
        ({}, None),
    ],
)
def test_consumer_identity_in_order(tmp_path, identities, consumer):
    record = orjson.loads(REST_PRESET) | {"caller": "-", "user": "-"} | identities
    (request,) = requests_of(records(tmp_path, [orjson.dumps(record).decode()]))
    assert request.consumer == consumer


def test_settings_fields_name_the_keys_of_a_custom_format(tmp_path):
    # awslabs serverless-rules' example format: snake_case keys of the operator's choosing.
    line = (
        '{"stage":"prod","request_id":"7e57a3b0-9c1d-4e2f-8a6b-0c1d2e3f4a5b","api_id":"a1b2c3d4e5",'
        '"resource_path":"/orders/{id}","http_method":"GET","source_ip":"198.51.100.8",'
        '"user-agent":"curl/8.5.0","epoch_ms":"1796551200250","status":"304","latency":"12"}'
    )
    fields = {
        "request_id": "request_id",
        "resource_path": "resource_path",
        "method": "http_method",
        "client": "source_ip",
        "user_agent": "user-agent",
        "api_id": "api_id",
        "request_time_epoch": "epoch_ms",
        "duration": "latency",
        "upstream": "stage",
    }
    assert set(fields) <= set(FIELDS)
    assert quarantined_of(records(tmp_path, [line])) == [
        Quarantined("line 1", "not a line of aws_json", line)  # without the mapping
    ]
    (request,) = requests_of(records(tmp_path, [line], Settings(fields=fields)))
    assert request.start_ns == DEC_6_2026_10H + 250 * MS
    assert (request.method, request.route, request.status) == ("GET", "/orders/{id}", 304)
    assert (request.client, request.duration_ns, request.upstream) == (
        "198.51.100.8",
        12 * MS,
        "prod",
    )
    assert attributes(request)["user_agent"] == "curl/8.5.0"


def test_settings_gateway_name_client_consumer_and_hashing(tmp_path):
    lines = [REST_FULL]
    (named,) = requests_of(records(tmp_path, lines, Settings(gateway="pets-api-prod")))
    assert named.gateway == "pets-api-prod"
    (by_client,) = requests_of(records(tmp_path, lines, Settings(consumer="client")))
    assert by_client.consumer == "198.51.100.23"
    (hashed,) = requests_of(records(tmp_path, lines, Settings(hash_clients=True, hash_key="k")))
    assert hashed.client.startswith("client-") and "198.51.100.23" not in repr(hashed)
    assert hashed.consumer == "k9x8y7w6v5"  # an identity is not an address: kept


W3C = "5759e988bd862e3fe1be46a994272793"


@pytest.mark.parametrize(
    ("xray", "trace_id"),
    [
        ("1-5759e988-bd862e3fe1be46a994272793", W3C),
        (f"Root=1-5759E988-BD862E3FE1BE46A994272793;Parent={'5' * 16};Sampled=1", W3C),
        ("1-00000000-000000000000000000000000", None),
        ("2-5759e988-bd862e3fe1be46a994272793", None),
        ("1-5759e988-bd862e3fe1be46a99427279", None),
        ("-", None),
    ],
)
def test_xray_trace_ids_in_w3c_form(tmp_path, xray, trace_id):
    line = REST_PRESET.replace('"status"', f'"xrayTraceId":"{xray}","status"')
    (request,) = requests_of(records(tmp_path, [line]))
    assert request.trace_id == trace_id


@pytest.mark.parametrize(("line", "reason"), BROKEN)
def test_broken_lines_are_quarantined_with_the_reason(tmp_path, line, reason):
    recs = records(tmp_path, [REST_PRESET, line])
    assert len(requests_of(recs)) == 1
    (bad,) = quarantined_of(recs)
    assert bad.position == "line 2"
    assert reason in bad.reason, bad.reason


# --- Detection ----------------------------------------------------------------------------------


def test_a_stage_log_is_detected(tmp_path):
    path = write(tmp_path, GOOD + [line for line, _ in BROKEN[:2]])
    assert collector().detect(path.read_bytes())


# --- Any input: only NotThisFormat or BadLine escape --------------------------------------------

ANY_JSON = strategies.json_values(text=12, keys=8, items=3, leaves=6)
KEYS = sorted({key for keys in FIELDS.values() for key in keys} | {"identity", "authorizer"})
CONFIGS = st.builds(
    Settings,
    consumer=st.sampled_from(["auto", "client"]),
    hash_clients=st.booleans(),
    fields=st.dictionaries(st.sampled_from(sorted(FIELDS)), st.sampled_from(KEYS), max_size=3),
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(line=st.text(max_size=300) | strategies.edited_lines(GOOD), config=CONFIGS)
def test_any_line_parses_or_is_refused(line, config):
    strategies.parses_or_refuses(line, config, parse)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(
    record=st.dictionaries(
        st.sampled_from(KEYS), ANY_JSON | st.sampled_from(["-", "200"]), max_size=8
    ),
    config=CONFIGS,
)
def test_any_json_object_with_aws_keys_parses_or_is_refused(record, config):
    record = {"requestId": "r-1", "requestTimeEpoch": "1796551200000"} | record
    strategies.parses_or_refuses(
        json.dumps(record), config, parse
    )  # json: integers beyond 64 bits too
