"""What the sample landscape's owners declare about it: OpenAPI and AsyncAPI contracts, some in
several versions, and a Backstage catalog, written beside the traces and logs that show what
really happens.

The contracts describe the routes the traffic uses (the generator's `http.route`s), with the
planted gaps: a breaking change from one version of the Payments API to the next on an operation
the partners call, a deprecated operation past its sunset that partners still call, a route the
traffic uses that no contract has, a documented operation nobody calls, and an API whose clients
cannot pin a version. The catalog declares owners, systems and the dependencies the table makes,
but one: the planted undeclared dependency; and it declares one that never happens.

Loaded by path by generator.py (standard library only); `write` is its entry point. YAML is
written by `to_yaml`, in block style with every string that could be read as anything else
quoted, so that any YAML 1.2 reader gives back the data exactly.
"""

import datetime
import pathlib
import re
from collections.abc import Mapping
from typing import Any

CONTRACTS_DIR = "contracts"
CATALOG_DIR = "catalog"
#: The sunset of the deprecated refunds operation: before any sample's end (samples end "now").
REFUNDS_SUNSET = "2026-06-30"

# --- YAML, written as text ---------------------------------------------------------------------

#: A string YAML reads back as itself when written plainly in block context.
_PLAIN = re.compile(r"[A-Za-z_/$][A-Za-z0-9 _./{}()\-,'+@$:]*")
_RESERVED = frozenset(
    {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "nan", "inf"}
)


def _printable(code: int) -> bool:
    """Whether YAML lets the character stand as itself in a double-quoted string."""
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    ) and code not in (0x2028, 0x2029, 0xFEFF)  # line breaks to some readers; a BOM


def _quoted(text: str) -> str:
    """`text` as a YAML double-quoted string."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif _printable(code):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    """A scalar as YAML writes it: a string plainly where that reads back as the same string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not written: {value!r}")
    if (
        _PLAIN.fullmatch(value)
        and ": " not in value
        and not value.endswith((" ", ":"))
        and value.lower() not in _RESERVED
    ):
        return value
    return _quoted(value)


def _block(value: Any, indent: int) -> list[str]:
    """The lines of a mapping or a sequence at `indent` spaces."""
    pad, lines = " " * indent, []
    items = value.items() if isinstance(value, Mapping) else ((None, item) for item in value)
    for key, item in items:
        head = f"{pad}{_scalar(key)}:" if isinstance(value, Mapping) else f"{pad}-"
        if isinstance(item, Mapping | list) and item:
            if isinstance(value, Mapping):
                nested = _block(item, indent + 2)
                lines.append(head)
                lines.extend(nested)
            else:  # a sequence item: its first line follows the dash
                nested = _block(item, indent + 2)
                lines.append(f"{head} {nested[0].lstrip()}")
                lines.extend(nested[1:])
        elif isinstance(item, Mapping | list):
            lines.append(f"{head} {'{}' if isinstance(item, Mapping) else '[]'}")
        else:
            lines.append(f"{head} {_scalar(item)}")
    return lines


def to_yaml(*documents: Mapping) -> str:
    """YAML text of `documents`, a `---` line between two."""
    return "---\n".join(
        "\n".join(_block(document, 0) if document else ["{}"]) + "\n" for document in documents
    )


# --- the contracts ------------------------------------------------------------------------------


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}
_PROBLEM_RESPONSE = {
    "description": "The request was not accepted: a problem document says why.",
    "content": {"application/problem+json": {"schema": _ref("schemas", "Problem")}},
}
_RATE_LIMITED = {
    "description": "Too many requests: the client's rate limit is spent; `Retry-After` says"
    " when to try again.",
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    "content": {"application/problem+json": {"schema": _ref("schemas", "Problem")}},
}
_MONEY = {
    "type": "object",
    "required": ["value", "currency"],
    "properties": {
        "value": {"type": "integer", "description": "In the currency's minor unit (cents)."},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"},
    },
}


def payments_api(version: str) -> dict:
    """The Payments API as partners (through the API gateway) and the shop's services see it:
    versioned by path (`/v2/`). `version` is the document's: 2.3.0 is what runs; 2.4.0, the
    next release, moves a payment's settlement date into a `settlement` object."""
    details_properties = {
        "authorization": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "network_reference": {"type": "string"},
            },
        },
        "captured_at": {"type": "string", "format": "date-time"},
        "settlement_date": {
            "type": "string",
            "format": "date",
            "description": "The day the card network settles the payment.",
        },
    }
    if tuple(map(int, version.split("."))) >= (2, 4, 0):
        del details_properties["settlement_date"]  # the planted breaking change
        details_properties["settlement"] = {  # and the harmless one
            "type": "object",
            "properties": {
                "date": {"type": "string", "format": "date"},
                "batch_id": {"type": "string"},
            },
        }
    payment_id = {
        "name": "paymentId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^pay_[0-9a-f]{16}$"},
    }
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "A key of the client's choosing; a request repeated with it is answered"
        " as the first one was.",
        "schema": {"type": "string", "maxLength": 64},
    }
    refund_request = {
        "type": "object",
        "required": ["amount"],
        "properties": {
            "amount": _ref("schemas", "Money"),
            "reason": {"type": "string", "enum": ["requested_by_customer", "duplicate", "fraud"]},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Payments API",
            "version": version,
            "description": "Card payments and refunds, for the shop's own services and for"
            " partners, who reach it through the API gateway with their API key.",
            "contact": {"name": "Team Payments", "email": "payments-team@shop.example"},
        },
        "servers": [
            {"url": "https://api.payments.example", "description": "Partners, through Kong"},
            {
                "url": "https://payments-api.payments.svc:8443",
                "description": "The shop's services, in-cluster",
            },
        ],
        "security": [{"partnerKey": []}, {"serviceToken": []}],
        "tags": [
            {"name": "payments", "description": "Card payments: authorised and captured."},
            {"name": "refunds", "description": "Money given back, in whole or in part."},
        ],
        "paths": {
            "/v2/payments": {
                "post": {
                    "operationId": "createPayment",
                    "tags": ["payments"],
                    "summary": "Authorise and capture a card payment",
                    "description": "Authorises the card with the card network and captures the"
                    " amount at once; a request repeated with its idempotency key is answered"
                    " with the first one's payment.",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref("schemas", "PaymentRequest")}
                        },
                    },
                    "responses": {
                        "201": _json_body(_ref("schemas", "Payment"), "The payment."),
                        "400": _PROBLEM_RESPONSE,
                        "402": _PROBLEM_RESPONSE,
                        "409": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                }
            },
            "/v2/payments/{paymentId}": {
                "parameters": [payment_id],
                "get": {
                    "operationId": "getPayment",
                    "tags": ["payments"],
                    "summary": "A payment, with its authorisation and settlement",
                    "description": "The payment as it stands: its status, the card network's"
                    " authorisation and when the money settles.",
                    "responses": {
                        "200": _json_body(_ref("schemas", "PaymentDetails"), "The payment."),
                        "404": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                },
            },
            "/v2/payments/{paymentId}/refunds": {
                "parameters": [payment_id],
                "post": {
                    "operationId": "refundPayment",
                    "tags": ["refunds"],
                    "summary": "Refund a payment, in whole or in part",
                    "description": "Gives back some or all of a captured payment; the refunds"
                    " of one payment add up to its amount at most.",
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": refund_request}},
                    },
                    "responses": {
                        "201": _json_body(_ref("schemas", "Refund"), "The refund."),
                        "404": _PROBLEM_RESPONSE,
                        "409": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                },
            },
            "/v2/refunds": {
                "post": {
                    "operationId": "createRefund",
                    "tags": ["refunds"],
                    "summary": "Refund a payment named in the body",
                    "description": "Deprecated: use POST /v2/payments/{paymentId}/refunds.",
                    "deprecated": True,
                    "x-sunset": REFUNDS_SUNSET,
                    "parameters": [idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        refund_request,
                                        {
                                            "type": "object",
                                            "required": ["payment_id"],
                                            "properties": {"payment_id": {"type": "string"}},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json_body(_ref("schemas", "Refund"), "The refund."),
                        "400": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "partnerKey": {"type": "apiKey", "in": "header", "name": "apikey"},
                "serviceToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": {
                "Money": _MONEY,
                "PaymentRequest": {
                    "type": "object",
                    "required": ["amount", "card_token", "reference"],
                    "properties": {
                        "amount": _ref("schemas", "Money"),
                        "card_token": {"type": "string"},
                        "reference": {"type": "string", "description": "The order or invoice."},
                        "capture": {"type": "boolean", "default": True},
                    },
                },
                "Payment": {
                    "type": "object",
                    "required": ["id", "status", "amount", "created_at"],
                    "properties": {
                        "id": {"type": "string", "example": "pay_3f9c2a7e5b1d4c08"},
                        "status": {
                            "type": "string",
                            "enum": ["authorized", "captured", "declined", "refunded"],
                        },
                        "amount": _ref("schemas", "Money"),
                        "reference": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
                "PaymentDetails": {
                    "allOf": [
                        _ref("schemas", "Payment"),
                        {"type": "object", "properties": details_properties},
                    ]
                },
                "Refund": {
                    "type": "object",
                    "required": ["id", "payment_id", "amount", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "payment_id": {"type": "string"},
                        "amount": _ref("schemas", "Money"),
                        "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
                    },
                },
                "Problem": _PROBLEM,
            },
        },
    }


def catalog_api() -> dict:
    """The product catalog: products, search, related products. Unversioned: neither its paths,
    its server nor any header lets a client pin a version. Open: no security requirement, a
    plain-HTTP server, no rate limit (the planted security findings, ``CONTRACT_FINDINGS``)."""
    sku = {"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}}
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 12},
    }
    product = {
        "type": "object",
        "required": ["sku", "name", "status"],
        "properties": {
            "sku": {"type": "string", "example": "100231"},
            "name": {"type": "string"},
            "brand": {"type": ["string", "null"]},
            "category": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "discontinued"]},
            "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
        },
    }
    products = {"type": "array", "items": _ref("schemas", "Product")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Catalog API",
            "version": "3.9.0",
            "description": "Products as the web shop, the tills and the recommender read them.",
            "contact": {"name": "Team Merchandising", "email": "merch-team@shop.example"},
        },
        "servers": [{"url": "http://catalog-service:8080"}],
        "tags": [{"name": "products", "description": "Products, their search and relations."}],
        "paths": {
            "/products/{sku}": {
                "parameters": [sku],
                "get": {
                    "operationId": "getProduct",
                    "tags": ["products"],
                    "description": "A product by its SKU, with its images.",
                    "responses": {
                        "200": _json_body(_ref("schemas", "Product"), "The product."),
                        "404": {"description": "No such product."},
                    },
                },
            },
            "/products/{sku}/related": {
                "parameters": [sku],
                "get": {
                    "operationId": "listRelatedProducts",
                    "tags": ["products"],
                    "description": "Products bought or viewed with this one, best first.",
                    "parameters": [limit],
                    "responses": {"200": _json_body(products, "Related products, best first.")},
                },
            },
            "/search": {
                "get": {
                    "operationId": "searchProducts",
                    "tags": ["products"],
                    "description": "Products matching a query, a page at a time.",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        limit,
                        {
                            "name": "page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                    ],
                    "responses": {"200": _json_body(products, "Matching products.")},
                }
            },
        },
        "components": {"schemas": {"Product": product}},
    }


def orders_api() -> dict:
    """Orders, for the web shop: versioned by an `Api-Version` request header (dated versions,
    the latest when none is sent). The backorders lookup inventory-service uses is not in it."""
    order_id = {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}
    line = {
        "type": "object",
        "required": ["sku", "quantity"],
        "properties": {
            "sku": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1},
            "unit_price": _ref("schemas", "Money"),
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Orders API",
            "version": "6.3.0",
            "description": "Orders placed in the web shop, and their state.",
            "contact": {"name": "Team Orders", "email": "orders-team@shop.example"},
        },
        "servers": [{"url": "https://order-service.retail.svc:8443"}],
        "security": [{"serviceToken": []}],
        "tags": [{"name": "orders", "description": "Orders and their state."}],
        "paths": {
            "/orders": {
                "parameters": [_ref("parameters", "ApiVersion")],
                "post": {
                    "operationId": "placeOrder",
                    "tags": ["orders"],
                    "description": "Places an order for a cart's lines; payment follows.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("schemas", "NewOrder")}},
                    },
                    "responses": {
                        "201": _json_body(_ref("schemas", "Order"), "The order, placed."),
                        "400": _PROBLEM_RESPONSE,
                        "402": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                },
            },
            "/orders/{orderId}": {
                "parameters": [order_id, _ref("parameters", "ApiVersion")],
                "get": {
                    "operationId": "getOrder",
                    "tags": ["orders"],
                    "description": "An order with its lines, total and state.",
                    "responses": {
                        "200": _json_body(_ref("schemas", "Order"), "The order."),
                        "404": _PROBLEM_RESPONSE,
                        "429": _RATE_LIMITED,
                    },
                },
            },
        },
        "components": {
            "parameters": {
                "ApiVersion": {
                    "name": "Api-Version",
                    "in": "header",
                    "required": False,
                    "description": "The version of the API the client was written against.",
                    "schema": {
                        "type": "string",
                        "enum": ["2025-03-01", "2024-06-01"],
                        "default": "2025-03-01",
                    },
                }
            },
            "securitySchemes": {
                "serviceToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Money": _MONEY,
                "OrderLine": line,
                "NewOrder": {
                    "type": "object",
                    "required": ["customer_id", "cart_id", "lines"],
                    "properties": {
                        "customer_id": {"type": "string"},
                        "cart_id": {"type": "string"},
                        "lines": {"type": "array", "items": _ref("schemas", "OrderLine")},
                    },
                },
                "Order": {
                    "type": "object",
                    "required": ["id", "status", "lines", "total"],
                    "properties": {
                        "id": {"type": "string", "example": "00417733"},
                        "status": {
                            "type": "string",
                            "enum": ["placed", "paid", "picking", "shipped", "cancelled"],
                        },
                        "lines": {"type": "array", "items": _ref("schemas", "OrderLine")},
                        "total": _ref("schemas", "Money"),
                        "payment_id": {"type": "string"},
                    },
                },
                "Problem": _PROBLEM,
            },
        },
    }


def shipment_events(topic: str, partitions: int) -> dict:
    """The events shipment-service sends on Kafka: AsyncAPI 3.0, from the sender's side."""
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shipment events",
            "version": "1.6.0",
            "description": "A shipment announced once its carrier is chosen; tracking and"
            " customer notifications follow from it.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "kafka.logistics.svc:9092",
                "protocol": "kafka",
                "description": "The logistics Kafka cluster",
            }
        },
        "channels": {
            "shipmentEvents": {
                "address": topic,
                "messages": {"shipmentCreated": _ref("messages", "ShipmentCreated")},
                "bindings": {
                    "kafka": {"partitions": partitions, "replicas": 3, "bindingVersion": "0.5.0"}
                },
            }
        },
        "operations": {
            "sendShipmentCreated": {
                "action": "send",
                "channel": {"$ref": "#/channels/shipmentEvents"},
                "summary": "A shipment was created for an order",
                "messages": [{"$ref": "#/channels/shipmentEvents/messages/shipmentCreated"}],
            }
        },
        "components": {
            "messages": {
                "ShipmentCreated": {
                    "name": "ShipmentCreated",
                    "contentType": "application/json",
                    "payload": _ref("schemas", "ShipmentCreated"),
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": "The order id."},
                            "bindingVersion": "0.5.0",
                        }
                    },
                }
            },
            "schemas": {
                "ShipmentCreated": {
                    "type": "object",
                    "required": ["order_id", "shipment_id", "carrier", "created_at"],
                    "properties": {
                        "order_id": {"type": "string"},
                        "shipment_id": {"type": "string", "example": "SHP004211873"},
                        "carrier": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                }
            },
        },
    }


# --- who provides what, and who owns it ---------------------------------------------------------

#: An API entity: its name, the service providing it, its definition's file (the version the
#: catalog points at) and, for messaging, the topic it is about.
APIS = (
    ("payments-v2", "payments-api", "payments-api.2.3.0.yaml", None),
    ("catalog", "catalog-service", "catalog-service.yaml", None),
    ("orders", "order-service", "order-service.yaml", None),
    ("shipment-events", "shipment-service", "shipment-events.asyncapi.yaml", "shipment-events"),
)
#: Every contract file, in the order they are read (versions oldest first): (file, service,
#: how a client pins a version: path, header or None).
CONTRACT_FILES = (
    ("payments-api.2.3.0.yaml", "payments-api", "path"),
    ("payments-api.2.4.0.yaml", "payments-api", "path"),
    ("catalog-service.yaml", "catalog-service", None),
    ("order-service.yaml", "order-service", "header"),
    ("shipment-events.asyncapi.yaml", "shipment-service", None),
)
TEAMS = {
    "team-web-shop": ("Web shop", ("storefront-web", "cart-service", "customer-service")),
    "team-merchandising": (
        "Merchandising",
        ("catalog-service", "pricing-service", "recommendation-service"),
    ),
    "team-stores": ("Store systems", ("pos-api", "inventory-service", "warehouse-service")),
    "team-orders": ("Orders and integration", ("order-service", "integration-hub")),
    "team-payments": ("Payments", ("payments-api", "fraud-service", "ledger-service")),
    "team-logistics": (
        "Logistics",
        ("shipment-service", "tracking-service", "notification-service"),
    ),
}
SYSTEMS = {  # area → (owner, description)
    "retail": ("team-orders", "The web shop, the stores' tills and the warehouse, through the hub"),
    "payments": ("team-payments", "Card payments for the shop and its partners"),
    "logistics": ("team-logistics", "Shipments, their tracking and customer notifications"),
}
RESOURCES = {  # name → (type, owner, area)
    "orders-db": ("database", "team-orders", "retail"),
    "session-cache": ("cache", "team-web-shop", "retail"),
}
DESCRIPTIONS = {
    "storefront-web": "The web shop's pages and their backend-for-frontend",
    "pos-api": "The stores' tills",
    "catalog-service": "Products and search",
    "cart-service": "Shopping carts",
    "pricing-service": "Prices and promotions",
    "recommendation-service": "Related products",
    "customer-service": "Customer accounts and sessions",
    "order-service": "Orders",
    "integration-hub": "The ESB between the shop, the tills, the warehouse and payments",
    "inventory-service": "Stock levels and reservations",
    "warehouse-service": "The warehouse management system's adapter",
    "payments-api": "Card payments, for the shop and for partners",
    "fraud-service": "Risk assessment of payments",
    "ledger-service": "The payments ledger",
    "shipment-service": "Shipments and carrier choice",
    "tracking-service": "Shipment tracking, from the carriers",
    "notification-service": "Customer e-mails",
}
LIFECYCLE = {"notification-service": "experimental"}
REPOSITORIES = "https://git.shop.example"
COMPONENT_TYPE = {"storefront-web": "website"}
#: The planted undeclared dependency: the web shop's click & collect widget asks the hub for
#: store stock directly, and storefront-web's catalog entry does not say so.
UNDECLARED = ("storefront-web", "integration-hub")
#: Declared, never observed: a risk signal from customer data, planned and never built.
UNOBSERVED = ("fraud-service", "customer-service")
#: The planted breaking change between the two versions of the Payments API.
BREAKING = {
    "old": "payments-api.2.3.0.yaml",
    "new": "payments-api.2.4.0.yaml",
    "changes": [
        {
            "id": "response-property-removed",
            "breaking": True,
            "operation": "GET /v2/payments/{paymentId}",
            "where": "response 200 application/json: property settlement_date",
        },
        {
            "id": "response-property-added",
            "breaking": False,
            "operation": "GET /v2/payments/{paymentId}",
            "where": "response 200 application/json: property settlement",
        },
    ],
}


def contract_documents(topic: str, partitions: int) -> dict[str, dict]:
    """Every contract file's document, by file name."""
    return {
        "payments-api.2.3.0.yaml": payments_api("2.3.0"),
        "payments-api.2.4.0.yaml": payments_api("2.4.0"),
        "catalog-service.yaml": catalog_api(),
        "order-service.yaml": orders_api(),
        "shipment-events.asyncapi.yaml": shipment_events(topic, partitions),
    }


def http_operations(document: dict) -> dict[str, dict]:
    """An OpenAPI document's operations by "METHOD /path"."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method != "parameters"
    }


# --- the catalog --------------------------------------------------------------------------------


def _entity(kind: str, name: str, spec: dict, **metadata: Any) -> dict:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _org() -> list[dict]:
    groups = [
        _entity(
            "Group",
            "engineering",
            {"type": "department", "children": sorted(TEAMS)},
            title="Engineering",
        )
    ]
    for name, (title, _) in TEAMS.items():
        spec = {
            "type": "team",
            "parent": "engineering",
            "children": [],
            "profile": {"email": f"{name.removeprefix('team-')}@shop.example"},
        }
        groups.append(_entity("Group", name, spec, title=title))
    systems = [
        _entity("System", area, {"owner": owner}, description=description)
        for area, (owner, description) in SYSTEMS.items()
    ]
    return groups + systems


def _owner(service: str) -> str:
    return next(team for team, (_, services) in TEAMS.items() if service in services)


def _components(
    areas: Mapping[str, str],
    frameworks: Mapping[str, str],
    calls: list[tuple[str, str, str, str]],
    documents: dict[str, dict],
) -> list[dict]:
    """A Component for each service and a Resource for each database, declaring what the table's
    `calls` (service, kind, target, operation) make it depend on, as their owners would: an API
    where the callee's contract documents the operation, else the component or resource, and
    the planted exceptions."""
    provided = {provider: name for name, provider, _, topic in APIS if topic is None}
    topics = {topic: name for name, _, _, topic in APIS if topic is not None}
    documented = {
        provider: set(http_operations(documents[file]))
        for _, provider, file, topic in APIS
        if topic is None
    }
    consumes: dict[str, set[str]] = {service: set() for service in areas}
    depends: dict[str, set[str]] = {service: set() for service in areas}
    externals: dict[str, str] = {}  # a third-party API's host → the service that calls it
    for service, kind, target, operation in calls:
        if (service, target) == UNDECLARED:
            continue
        if kind == "http" and operation in documented.get(target, ()):
            consumes[service].add(provided[target])
        elif kind == "http":
            depends[service].add(f"component:{target}")
        elif kind == "db":
            depends[service].add(f"resource:{target}")
        elif kind == "external":  # a third-party API, registered as a Resource
            depends[service].add(f"resource:{target}")
            externals.setdefault(target, service)
        elif kind == "receive":
            consumes[service].add(topics[target])
    depends[UNOBSERVED[0]].add(f"component:{UNOBSERVED[1]}")
    entities = []
    for service, area in areas.items():
        spec = {
            "type": COMPONENT_TYPE.get(service, "service"),
            "lifecycle": LIFECYCLE.get(service, "production"),
            "owner": _owner(service),
            "system": area,
        }
        provides = sorted(name for name, provider, _, _ in APIS if provider == service)
        for field, refs in (
            ("providesApis", provides),
            ("consumesApis", sorted(consumes[service])),
            ("dependsOn", sorted(depends[service])),
        ):
            if refs:
                spec[field] = refs
        entities.append(
            _entity(
                "Component",
                service,
                spec,
                description=DESCRIPTIONS[service],
                tags=["python", frameworks[service]],
                annotations={
                    "backstage.io/source-location": f"url:{REPOSITORIES}/{area}/{service}/"
                },
            )
        )
    for name, (kind, owner, area) in RESOURCES.items():
        entities.append(_entity("Resource", name, {"type": kind, "owner": owner, "system": area}))
    for host, service in sorted(externals.items()):
        spec = {"type": "external-api", "owner": _owner(service), "system": areas[service]}
        entities.append(
            _entity("Resource", host, spec, description=f"A third party's API at {host}")
        )
    return entities


def _api_entities(documents: dict[str, dict], areas: Mapping[str, str]) -> list[dict]:
    """An API entity for each API, its definition the file beside the catalog file."""
    entities = []
    for name, provider, file, topic in APIS:
        spec = {
            "type": "asyncapi" if topic else "openapi",
            "lifecycle": "production",
            "owner": _owner(provider),
            "system": areas[provider],
            "definition": {"$text": f"./{file}"},
        }
        entities.append(_entity("API", name, spec, title=documents[file]["info"]["title"]))
    return entities


# --- writing it, and what the manifest says about it ---------------------------------------------

Traffic = Mapping[tuple[str, str, str], int]


def _consumers(
    traffic: Traffic, gateways: Mapping[str, str], service: str, operation: str
) -> list[dict]:
    """Who calls `operation` of `service`, as `clew diff` counts them: the service's own callers,
    and the consumers of the gateways in front of it instead of the gateways themselves."""
    fronting = {gateway for gateway, upstream in gateways.items() if upstream == service}
    callers: dict[str, int] = {}
    for (client, server, called), n in traffic.items():
        if called != operation or (server != service and server not in fronting):
            continue
        if server == service and client in fronting:
            continue  # the gateway's own hop: its consumers are counted at the gateway
        callers[client] = callers.get(client, 0) + n
    return [
        {"name": name, "calls": n}
        for name, n in sorted(callers.items(), key=lambda i: (-i[1], i[0]))
    ]


def _statuses(
    documents: dict[str, dict], traffic: Traffic, gateways: Mapping[str, str], end_date: str
) -> dict:
    """The status every endpoint of a service with an OpenAPI contract should get, from the
    latest contract of that service and the traffic: shadow (called, not in it), orphan (in it,
    never called), zombie (deprecated or past its sunset, called), unversioned (called, in a
    contract with no way to pin a version), else documented."""
    latest: dict[str, tuple[str, str | None]] = {}
    for file, service, versioning in CONTRACT_FILES:
        if "openapi" in documents[file]:
            latest[service] = (file, versioning)
    endpoints, gateway_only = [], []
    for service, (file, versioning) in latest.items():
        documented = http_operations(documents[file])
        calls: dict[str, int] = {}
        for (_, server, operation), n in traffic.items():
            if server == service:
                calls[operation] = calls.get(operation, 0) + n
        for operation in sorted(set(documented) | set(calls)):
            declared = documented.get(operation)
            called = calls.get(operation, 0)
            if declared is None:
                status = "shadow"
            elif not called:
                status = "orphan"
            elif (
                declared.get("deprecated") is True or declared.get("x-sunset", end_date) < end_date
            ):
                status = "zombie"
            elif versioning is None:
                status = "unversioned"
            else:
                status = "documented"
            method, route = operation.split(" ", 1)
            endpoints.append(
                {
                    "service": service,
                    "method": method,
                    "route": route,
                    "status": status,
                    "calls": called,
                    "contract": documents[file]["info"]["title"],
                }
            )
        for gateway in sorted(g for g, upstream in gateways.items() if upstream == service):
            seen: dict[str, int] = {}
            for (_, server, operation), n in traffic.items():
                if server == gateway and operation not in calls and operation not in documented:
                    seen[operation] = seen.get(operation, 0) + n
            for operation, n in sorted(seen.items()):
                method, route = operation.split(" ", 1)
                gateway_only.append(
                    {
                        "gateway": gateway,
                        "upstream": service,
                        "method": method,
                        "route": route,
                        "requests": n,
                    }
                )
    return {
        "services": sorted(latest),
        "endpoints": endpoints,
        # requests the gateway refused itself (no key): they never reached the service, so
        # their routes are no endpoint of it
        "answered_by_gateway_only": gateway_only,
    }


#: The governance board's waivers (``waivers.yaml``): (rule, subject glob, reason, approver,
#: days from the sample's last day to the expiry). One active, one expiring within a fortnight,
#: one expired: its finding is open again.
WAIVERS = (
    (
        "undocumented-service",
        "pos-api",
        "The tills' API is replaced by the store platform next quarter; no contract will be"
        " written for it",
        "architecture-board@shop.example",
        90,
    ),
    (
        "edge-latency-p99",
        "storefront-web → recommendation-service",
        "Recommendations load after the page is shown; the slow tail blocks no purchase"
        " (RETAIL-412)",
        "lead.web-shop@shop.example",
        10,
    ),
    (
        "shadow-endpoint",
        "order-service GET /orders/backorders/*",
        "The backorders lookup is to be documented in the Orders API's next release",
        "lead.orders@shop.example",
        -7,
    ),
)
WAIVERS_FILE = "waivers.yaml"
#: What the built-in contract-quality and security packs find in the contracts: the Catalog API
#: is open (no security requirement, a plain-HTTP server, no rate limit); the others are clean.
#: (rule, contract file, operation or None for the whole contract)
CONTRACT_FINDINGS = (
    ("owasp-no-http-servers", "catalog-service.yaml", None),
    *(
        (rule, "catalog-service.yaml", operation)
        for rule in ("owasp-operation-security", "owasp-rate-limit-response")
        for operation in ("GET /products/{sku}", "GET /products/{sku}/related", "GET /search")
    ),
)


def _contract_name(document: dict) -> str:
    """A contract as Clew's findings name it: ``Title@version``."""
    return f"{document['info']['title']}@{document['info']['version']}"


def write_waivers(out_dir: pathlib.Path, end_date: str) -> list[dict]:
    """Writes out_dir/waivers.yaml; returns its waivers with their expiry dates."""
    last = datetime.date.fromisoformat(end_date)
    waivers = [
        {
            "rule": rule,
            "subject": subject,
            "reason": reason,
            "approver": approver,
            "expires": (last + datetime.timedelta(days=days)).isoformat(),
        }
        for rule, subject, reason, approver, days in WAIVERS
    ]
    (out_dir / WAIVERS_FILE).write_text(to_yaml({"waivers": waivers}))
    return waivers


def write(
    out_dir: pathlib.Path,
    *,
    areas: Mapping[str, str],
    frameworks: Mapping[str, str],
    calls: list[tuple[str, str, str, str]],
    traffic: Traffic,
    gateways: Mapping[str, str],
    topic: str,
    partitions: int,
    end_date: str,
) -> dict:
    """Writes out_dir/contracts/, out_dir/catalog/ and out_dir/waivers.yaml; returns the
    manifest's `waivers`, `contracts`, `catalog` and `endpoint_statuses`.

    `areas` and `frameworks` are by service; `calls` are what the table lets a service do
    (service, http | db | receive, target, "METHOD /route"); `traffic` counts the requests
    into each node as Clew sees them ((caller, server, "METHOD /route") → n: a service's own
    callers, `client` or the gateway for entry requests, a gateway's consumers for each of its
    lines); `gateways` names each gateway's upstream; `end_date` is the sample's last day.
    """
    documents = contract_documents(topic, partitions)
    contracts, catalog = out_dir / CONTRACTS_DIR, out_dir / CATALOG_DIR
    contracts.mkdir(parents=True, exist_ok=True)
    catalog.mkdir(parents=True, exist_ok=True)
    for file, document in documents.items():
        (contracts / file).write_text(to_yaml(document))
    org = _org()
    components = _components(areas, frameworks, calls, documents)
    apis = _api_entities(documents, areas)
    files = {
        f"{CATALOG_DIR}/org.yaml": org,
        f"{CATALOG_DIR}/components.yaml": components,
        # the API entities live with their definitions: a $text path stays in its folder
        f"{CONTRACTS_DIR}/catalog-info.yaml": apis,
    }
    for name, entities in files.items():
        (out_dir / name).write_text(to_yaml(*entities))
    entities = org + components + apis
    waivers = write_waivers(out_dir, end_date)
    by_kind: dict[str, int] = {}
    for entity in entities:
        by_kind[entity["kind"]] = by_kind.get(entity["kind"], 0) + 1
    old, new = (documents[BREAKING[key]]["info"] for key in ("old", "new"))
    service = next(s for f, s, _ in CONTRACT_FILES if f == BREAKING["old"])
    changes = [
        change | {"consumers": _consumers(traffic, gateways, service, change["operation"])}
        if change["breaking"]
        else change | {"consumers": []}
        for change in BREAKING["changes"]
    ]
    return {
        "waivers": {"file": WAIVERS_FILE, "waivers": waivers},
        "contract_findings": [
            {"rule": rule, "contract": _contract_name(documents[file]), "operation": operation}
            for rule, file, operation in CONTRACT_FINDINGS
        ],
        "contracts": {
            "files": [
                {
                    "file": f"{CONTRACTS_DIR}/{file}",
                    "kind": "asyncapi" if "asyncapi" in documents[file] else "openapi",
                    "spec_version": documents[file].get("openapi") or documents[file]["asyncapi"],
                    "title": documents[file]["info"]["title"],
                    "version": documents[file]["info"]["version"],
                    "service": service_of,
                    "versioning": versioning,
                    "operations": len(http_operations(documents[file]))
                    or len(documents[file].get("operations", {})),
                }
                for file, service_of, versioning in CONTRACT_FILES
            ],
            "diff": {
                "old": f"{CONTRACTS_DIR}/{BREAKING['old']}",
                "new": f"{CONTRACTS_DIR}/{BREAKING['new']}",
                "old_ref": f"{old['title']}@{old['version']}",
                "new_ref": f"{new['title']}@{new['version']}",
                "service": service,
                "gateways": sorted(g for g, upstream in gateways.items() if upstream == service),
                "breaking": sum(change["breaking"] for change in changes),
                "changes": changes,
            },
        },
        "catalog": {
            "files": sorted(files),
            "entities": len(entities),
            "by_kind": dict(sorted(by_kind.items())),
            "owners": {
                e["metadata"]["name"]: f"group:default/{e['spec']['owner']}"
                for e in components
                if e["kind"] == "Component"
            },
            "undeclared_dependency": {
                "client": UNDECLARED[0],
                "server": UNDECLARED[1],
                "calls": sum(n for (c, s, _), n in traffic.items() if (c, s) == UNDECLARED),
            },
            "declared_unobserved": [{"client": UNOBSERVED[0], "server": UNOBSERVED[1]}],
        },
        "endpoint_statuses": _statuses(documents, traffic, gateways, end_date),
    }
