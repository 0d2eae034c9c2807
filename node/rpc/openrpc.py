"""OpenRPC document generated from the route table (what ``rpc.discover`` returns).

How it works: the route table already holds everything a client needs to call a
method: names, parameter schemas, descriptions, result description. ``build_document``
walks it once and writes an OpenRPC 1.2 document (https://spec.open-rpc.org): one
method object per entry with ``paramStructure: "either"`` (we accept positional and
named params), the common error objects under ``components.errors``, and the
``x-websocket-only`` extension on subscription methods. Nothing is written by hand,
so the document cannot drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any, Sequence

from node.rpc.jsonrpc import (
    CHAIN_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    REQUEST_TIMEOUT,
    WEBSOCKET_REQUIRED,
    Method,
)

OPENRPC_VERSION = "1.2.6"
#: The schema every OpenRPC document conforms to (rpc.discover's result schema).
META_SCHEMA_URL = "https://raw.githubusercontent.com/open-rpc/meta-schema/master/schema.json"

#: Errors any method can answer; documented once and referenced by every method.
COMMON_ERRORS: dict[str, tuple[int, str]] = {
    "ParseError": (PARSE_ERROR, "Parse error: the body is not valid JSON."),
    "InvalidRequest": (INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request object."),
    "MethodNotFound": (METHOD_NOT_FOUND, "Method not found."),
    "InvalidParams": (INVALID_PARAMS, "Invalid params: the message names the param, what was expected and what was found."),
    "InternalError": (INTERNAL_ERROR, "Internal error: data.incident identifies the server log entry."),
    "ChainError": (CHAIN_ERROR, "A rule of the chain refused the call; data.type names the error class, data.reason its code if any."),
    "RequestTimeout": (REQUEST_TIMEOUT, "The call did not finish within the server's per-call timeout."),
    "WebsocketRequired": (WEBSOCKET_REQUIRED, "Subscription methods are only available over the websocket endpoint /ws."),
    "LimitExceeded": (LIMIT_EXCEEDED, "A request, batch, response, connection, subscription or work-budget limit was exceeded; data names the limit (limit, max, found) and the message says how to ask for less."),
}


def method_object(method: Method) -> dict[str, Any]:
    """One OpenRPC Method Object for a route-table entry."""
    obj: dict[str, Any] = {
        "name": method.name,
        "params": [
            {
                "name": p.name,
                "description": p.description,
                "required": p.required,
                "schema": p.type.schema,
            }
            for p in method.params
        ],
        "result": {
            "name": "result",
            "description": method.result,
            "schema": method.result_schema,
        },
        "paramStructure": "either",
        "errors": [{"$ref": f"#/components/errors/{name}"} for name in COMMON_ERRORS],
    }
    if method.summary:
        obj["summary"] = method.summary
    doc = method.handler.__doc__
    if doc:
        obj["description"] = " ".join(doc.split())
    if method.websocket_only:
        obj["x-websocket-only"] = True
    return obj


def build_document(methods: Sequence[Method], title: str, version: str, description: str = "") -> dict[str, Any]:
    """The OpenRPC document of every method in the route table, in table order."""
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openrpc": OPENRPC_VERSION,
        "info": info,
        "methods": [method_object(m) for m in methods],
        "components": {
            "errors": {name: {"code": code, "message": text} for name, (code, text) in COMMON_ERRORS.items()}
        },
    }
