"""OpenRPC document generated from the route table (what ``rpc.discover`` returns).

How it works: the route table already holds everything a client needs to call a
method: names, parameter schemas, descriptions, result schema. ``build_document``
walks it once and writes an OpenRPC 1.2 document (https://spec.open-rpc.org): one
method object per entry with ``paramStructure: "either"`` (we accept positional and
named params), its result schema (usually a ``$ref`` to a named shape of
node/rpc/result_schemas.py, copied with what it references into
``components.schemas``), its errors as references to ``components.errors`` (those
any call may answer, WebsocketRequired for subscriptions, and the codes the entry
declares), and the ``x-websocket-only`` extension on subscription methods. Nothing is
written by hand, so the document cannot drift from what the server accepts;
tests/node/test_openrpc_schema.py validates it against the OpenRPC meta-schema and
every method's real answer against its result schema.
"""

from __future__ import annotations

from typing import Any, Sequence

from node.rpc.jsonrpc import (
    CHAIN_ERROR,
    HEIGHT_PRUNED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    PARSE_ERROR,
    REQUEST_TIMEOUT,
    WEBSOCKET_REQUIRED,
    Method,
)
from node.rpc.result_schemas import reachable

OPENRPC_VERSION = "1.2.6"
#: The schema every OpenRPC document conforms to (vendored in tests/vectors for the test).
META_SCHEMA_URL = "https://raw.githubusercontent.com/open-rpc/meta-schema/master/schema.json"

#: Every error the server answers: name -> (code, meaning and what ``data`` holds).
ERRORS: dict[str, tuple[int, str]] = {
    "ParseError": (PARSE_ERROR, "Parse error: the body is not valid JSON (or not UTF-8); data.reason says where."),
    "InvalidRequest": (INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request object; data.reason says why."),
    "MethodNotFound": (METHOD_NOT_FOUND, "Method not found."),
    "InvalidParams": (INVALID_PARAMS, "Invalid params: the message names the param, what was expected and what was "
                                      "found; data, when present, holds param, expected and found."),
    "InternalError": (INTERNAL_ERROR, "Internal error: data.incident identifies the server log entry."),
    "ChainError": (CHAIN_ERROR, "A rule of the chain refused the call; data.type names the error class (e.g. "
                                "MempoolError, ContractError, MailboxError), data.reason its code if any; a busy "
                                "refusal (reason busy) adds data.retry_after_ms, when to send the same bytes again."),
    "RequestTimeout": (REQUEST_TIMEOUT, "The call did not finish within the server's per-call timeout; data.limit "
                                        "is call_timeout_seconds and data.max its value."),
    "WebsocketRequired": (WEBSOCKET_REQUIRED, "Subscription methods are only available over the websocket endpoint /ws."),
    "NotFound": (NOT_FOUND, "The block, certificate, transaction, receipt or contract asked for does not exist (yet). "
                            "data, when present: head (a height above it), genesis_hash (height 0), status (a "
                            "receipt's transaction: pending or unknown), oldest_height (on a node that does not "
                            "hold the whole chain, a lookup by id cannot tell pruned from unknown)."),
    "LimitExceeded": (LIMIT_EXCEEDED, "A request, batch, response, connection, subscription or work-budget limit was "
                                      "exceeded; data names the limit (limit, max, found) and the message says how to "
                                      "ask for less (a chain_getEvents scan adds scanned_from, scanned_to, "
                                      "receipts_read and suggested_to_height)."),
    "HeightPruned": (HEIGHT_PRUNED, "The height asked for is below the oldest this node holds (blocks pruned by "
                                    "[storage] retain_blocks, or before the snapshot it state-synced from; for state "
                                    "reads, a state pruned by [storage] retain_states). data.oldest_height is the "
                                    "oldest height held and data.head the head; state reads add "
                                    "data.oldest_state_height. An archive node has the height."),
}
#: Errors any call may answer, whatever the method.
ANY_CALL_ERRORS = ("ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams", "InternalError", "ChainError",
                   "RequestTimeout", "LimitExceeded")
_NAME_OF_CODE = {code: name for name, (code, _) in ERRORS.items()}


def method_errors(method: Method) -> list[str]:
    """Names of the errors ``method`` can answer: any call's, WebsocketRequired for
    subscriptions, then the codes the route-table entry declares."""
    names = list(ANY_CALL_ERRORS)
    if method.websocket_only:
        names.append("WebsocketRequired")
    for code in method.errors:
        name = _NAME_OF_CODE.get(code)
        if name is None:
            raise KeyError(f"{method.name} declares error code {code}, which node.rpc.openrpc.ERRORS does not document")
        if name not in names:
            names.append(name)
    return names


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
        "errors": [{"$ref": f"#/components/errors/{name}"} for name in method_errors(method)],
    }
    if method.summary:
        obj["summary"] = method.summary
    doc = method.handler.__doc__
    if doc:
        obj["description"] = " ".join(doc.split())
    if method.websocket_only:
        obj["x-websocket-only"] = True
    if method.notifications:
        obj["x-notifications"] = dict(method.notifications)
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
            "schemas": reachable([*(m.result_schema for m in methods), *(m.notifications for m in methods)]),
            "errors": {name: {"code": code, "message": text} for name, (code, text) in ERRORS.items()},
        },
    }
