"""JSON-RPC 2.0 protocol: parse, validate, dispatch, batch, errors. No sockets here.

How it works: ``Dispatcher.handle(body, ctx)`` takes the raw request body (one
request object or a batch array) and returns the response text, or ``None`` when the
specification says nothing is returned (notifications, all-notification batches).
Every step that can fail maps to exactly one error object:

    bytes --json--> value            parse error (-32700), id null
    value --shape--> Request         invalid request (-32600)
    Request.method --table--> Method method not found (-32601)
    Request.params --schema--> args  invalid params (-32602): which param, expected, found
    await handler(ctx, **args)       RpcError as raised; other ChainError -> CHAIN_ERROR;
                                     work budget spent -> limit exceeded (-32005);
                                     anything else -> internal error (-32603), logged
                                     with an incident id, never a traceback on the wire
    response text --size-->          limit exceeded past ``max_response_bytes``

Any string the JSON decoder accepts gets an answer. JSON may spell lone UTF-16
surrogates (``"\ud800"``), which are not Unicode text: an id holding one cannot be echoed
(-32600, id null), params holding one are refused (-32602), and ``encode_response``
writes whatever is left (a handler echoing such a string) as a JSON escape instead of
failing to encode, so one odd string can never turn a batch into an HTTP 500 or stop a
websocket writer.

Batches run their calls one after the other under one ``WorkBudget``
(node/rpc/budget.py) with a yield to the event loop between calls, so a batch of heavy
calls cannot hold the loop that consensus runs on; ``heavy`` methods also wait for a
lane (at most ``max_concurrent_heavy`` run at once).

The route table is data: each ``Method`` carries its name, async handler, parameter
schema (``Param`` with a ``ParamType``), result description and whether it needs a
websocket. The same table validates params here and generates the OpenRPC document
(node/rpc/openrpc.py). Transports (node/rpc/server.py) only move bytes and enforce size
limits; everything the specification says about requests lives in this module.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Sequence

from ledger.errors import ChainError
from node.rpc.budget import (
    BATCH_WORK_BUDGET_SECONDS,
    CALL_WORK_BUDGET_SECONDS,
    MAX_CONCURRENT_HEAVY_CALLS,
    WORK_SLICE_SECONDS,
    WorkBudget,
    WorkBudgetExceeded,
    WorkLanes,
    WorkStats,
)
from node.rpc.types import ParamType, ParamTypeError, describe_value, json_default

log = logging.getLogger("shopchain.rpc")

JSONRPC_VERSION = "2.0"

# --- error codes (specification section 5.1) ------------------------------------------
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: The specification reserves -32768..-32000; of those, only -32099..-32000 are free
#: for implementation-defined server errors. Application codes must use this range
#: (or lie outside the reserved range entirely).
RESERVED_MIN, RESERVED_MAX = -32768, -32000
SERVER_ERROR_MIN, SERVER_ERROR_MAX = -32099, -32000

# --- named server-range codes (the node adds its own, e.g. mempool refusals) ----------
#: A deliberate ChainError from the layers below (its message is meant for users);
#: data.type names its class, data.reason carries its ``reason`` code if it has one.
CHAIN_ERROR = -32000
#: The call did not finish within RpcLimits.call_timeout_seconds.
REQUEST_TIMEOUT = -32001
#: A subscription method was called over HTTP; it needs the /ws endpoint.
WEBSOCKET_REQUIRED = -32002
#: What was asked for (block, transaction, receipt, contract) does not exist, or not yet.
NOT_FOUND = -32004
#: A request, batch, connection or subscription limit was exceeded; data names it.
LIMIT_EXCEEDED = -32005
#: The height asked for is below the oldest this node holds (pruned, or before its
#: state-sync snapshot); data.oldest_height names the oldest height held.
HEIGHT_PRUNED = -32006

#: code -> short name, used for metric labels (NOT_FOUND and HEIGHT_PRUNED are counted as
#: server_error there). The OpenRPC error list is node.rpc.openrpc.ERRORS.
ERROR_NAMES: dict[int, str] = {
    PARSE_ERROR: "parse_error",
    INVALID_REQUEST: "invalid_request",
    METHOD_NOT_FOUND: "method_not_found",
    INVALID_PARAMS: "invalid_params",
    INTERNAL_ERROR: "internal_error",
    CHAIN_ERROR: "chain_error",
    REQUEST_TIMEOUT: "timeout",
    WEBSOCKET_REQUIRED: "websocket_required",
    LIMIT_EXCEEDED: "limit_exceeded",
}

# --- limits (defaults for RpcLimits; see node/rpc/server.py for the transport ones) ---
#: Most request objects in one batch; a longer batch is refused as a whole.
MAX_BATCH_LEN = 100
#: Wall-clock seconds one method call may take before it is cancelled.
CALL_TIMEOUT_SECONDS = 10.0
#: Largest response (UTF-8 bytes) to one request body; a larger one is replaced by a
#: LimitExceeded error asking for less (the websocket buffers must hold one answer).
#: A full block of the largest size (4 MiB encoded) is about 9 MiB as JSON.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Longest method name accepted in a route table (requests with longer names simply
#: are not found).
MAX_METHOD_NAME_LEN = 64

#: The house naming rule (DESIGN.md §8): ``namespace_verb``, e.g. ``chain_getBlock``.
NAMESPACED_NAME_RE = re.compile(r"^[a-z][a-z0-9]*_[a-z][A-Za-z0-9]*$")
#: What any route-table name must look like (the demo table of the specification's
#: examples uses plain names such as ``subtract``).
ANY_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
#: Names under the specification's reserved ``rpc.`` prefix that we implement.
BUILTIN_NAMES = frozenset({"rpc.discover"})


class RpcConfigError(ChainError, ValueError):
    """A route table or a limits object is malformed (found at server construction)."""


class RpcError(ChainError):
    """An error a handler raises to answer the caller with a JSON-RPC error object.

    ``code`` must be a standard code, a server-range code (-32099..-32000), or an
    application code outside the reserved range; ``data`` must be JSON-serialisable.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        if type(code) is not int:
            raise RpcConfigError(f"RpcError code must be an int, found {describe_value(code)}")
        reserved = RESERVED_MIN <= code <= RESERVED_MAX
        if reserved and code not in ERROR_NAMES and not SERVER_ERROR_MIN <= code <= SERVER_ERROR_MAX:
            raise RpcConfigError(
                f"RpcError code {code} lies in the reserved range {RESERVED_MIN}..{RESERVED_MAX} "
                f"but is neither a standard code nor in the server range {SERVER_ERROR_MIN}..{SERVER_ERROR_MAX}"
            )
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


#: Outcomes of one request object, as the request metric labels them.
OUTCOME_OK, OUTCOME_CLIENT_ERROR, OUTCOME_TIMEOUT, OUTCOME_SERVER_ERROR = "ok", "client_error", "timeout", "server_error"


def outcome_of(code: int | None) -> str:
    """How a request ended, for metrics and alerts (None: it succeeded).

    Only an internal error (-32603: a handler raised something unexpected) is the
    server's fault. Every deliberate answer is the client's: a malformed or unknown
    request, bad params, a chain-rule refusal (ChainError, NotFound, HeightPruned and
    the other server-range codes), a limit, a subscription over HTTP; an alert on
    server_error must not fire because clients ask for receipts that do not exist.
    A timeout is its own outcome: the node was too slow or the request too heavy."""
    if code is None:
        return OUTCOME_OK
    if code == INTERNAL_ERROR:
        return OUTCOME_SERVER_ERROR
    if code == REQUEST_TIMEOUT:
        return OUTCOME_TIMEOUT
    return OUTCOME_CLIENT_ERROR


def error_name(code: int) -> str:
    """Short stable name of a code, for metric labels."""
    name = ERROR_NAMES.get(code)
    if name is not None:
        return name
    return "server_error" if SERVER_ERROR_MIN <= code <= SERVER_ERROR_MAX else "application_error"


@dataclass(frozen=True)
class Param:
    """One parameter of a method: validated on every call, documented in OpenRPC."""

    name: str
    type: ParamType
    description: str
    required: bool = True
    #: Value passed to the handler when an optional param is absent or null.
    default: Any = None


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """One route-table entry. The handler is called as ``await handler(ctx, **params)``."""

    name: str
    handler: Handler
    params: tuple[Param, ...] = ()
    #: What the result is, in words (OpenRPC ``result.description``).
    result: str = ""
    #: JSON Schema of the result for the OpenRPC document.
    result_schema: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    #: Subscriptions: only callable over the websocket, where notifications can flow.
    websocket_only: bool = False
    #: Scans and contract views: run in a bounded number of lanes (node/rpc/budget.py).
    heavy: bool = False
    #: Codes this method raises beyond those any call may answer (e.g. NOT_FOUND), for
    #: the method's ``errors`` in the OpenRPC document.
    errors: tuple[int, ...] = ()
    #: Subscriptions: topic -> JSON Schema of the payload its notifications carry
    #: (OpenRPC has no notification object; written as ``x-notifications``).
    notifications: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "errors", tuple(self.errors))
        if not isinstance(self.name, str) or not ANY_NAME_RE.match(self.name) or len(self.name) > MAX_METHOD_NAME_LEN:
            raise RpcConfigError(
                f"method name must match {ANY_NAME_RE.pattern} and be at most {MAX_METHOD_NAME_LEN} chars, "
                f"found {self.name!r}"
            )
        if self.name.startswith("rpc.") and self.name not in BUILTIN_NAMES:
            raise RpcConfigError(f"method names starting with 'rpc.' are reserved by JSON-RPC 2.0, found {self.name!r}")
        if not inspect.iscoroutinefunction(self.handler):
            raise RpcConfigError(f"handler of {self.name} must be an async function, found {self.handler!r}")
        seen: set[str] = set()
        optional_seen = False
        for p in self.params:
            if p.name in seen:
                raise RpcConfigError(f"method {self.name} declares param {p.name!r} twice")
            if p.required and optional_seen:
                raise RpcConfigError(
                    f"method {self.name}: required param {p.name!r} follows an optional one "
                    "(positional calls could not omit the optional param)"
                )
            optional_seen = optional_seen or not p.required
            seen.add(p.name)


def check_route_table(methods: Sequence[Method], *, namespaced: bool = True) -> dict[str, Method]:
    """Index a route table by name, refusing duplicates and (by default) names that
    break the ``namespace_verb`` rule."""
    table: dict[str, Method] = {}
    for m in methods:
        if not isinstance(m, Method):
            raise RpcConfigError(f"route table entries must be Method, found {describe_value(m)}")
        if m.name in table:
            raise RpcConfigError(f"method {m.name} appears twice in the route table")
        if namespaced and m.name not in BUILTIN_NAMES and not NAMESPACED_NAME_RE.match(m.name):
            raise RpcConfigError(f"method name must be namespace_verb ({NAMESPACED_NAME_RE.pattern}), found {m.name!r}")
        table[m.name] = m
    return table


@dataclass
class CallContext:
    """What a handler may know about the caller. ``subscriptions`` is set on websocket
    connections only (an object with ``subscribe(topic, filter)`` and ``unsubscribe(id)``)."""

    transport: str
    remote: str | None = None
    subscriptions: Any = None
    #: The request body's work budget, set by the dispatcher for every call; loops over
    #: blocks call ``await ctx.work.checkpoint()`` between units (node/rpc/budget.py).
    work: WorkBudget | None = None


#: observer(transport, method_label, outcome, code_or_None, seconds_or_None) — called once
#: per request object; outcome is ``outcome_of(code)``, code the JSON-RPC error code (None
#: when it succeeded), seconds None when no handler ran (invalid request, unknown method).
CallObserver = Callable[[str, str, str, "int | None", "float | None"], None]

#: Metric label for requests whose method is not in the table (bounded cardinality).
UNKNOWN_METHOD_LABEL = "unknown"

_NO_ID = object()  # marks a notification: the "id" member is absent


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json(body: bytes | str) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting. Raises RpcError(PARSE_ERROR)."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        reason = f"body is not UTF-8 ({exc.reason} at byte {exc.start})"
    except RecursionError:
        reason = "JSON nested too deeply"
    except ValueError as exc:
        reason = f"invalid JSON: {exc}"
    # The message is the specification's; the detail goes in data.
    raise RpcError(PARSE_ERROR, "Parse error", {"reason": reason})


def dump_json(value: Any) -> str:
    """Compact JSON; bytes become 0x-hex; NaN refused (it is not JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=json_default)


def error_response(req_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC_VERSION, "error": error.to_json(), "id": req_id}


def limit_error(limit: str, maximum: float, found: float | None, message: str) -> RpcError:
    """A LimitExceeded error whose data names the limit, its value and what was found."""
    data: dict[str, Any] = {"limit": limit, "max": maximum}
    if found is not None:
        data["found"] = found
    return RpcError(LIMIT_EXCEEDED, message, data)


def encode_response(text: str) -> bytes:
    """UTF-8 bytes of a response; a lone surrogate becomes its JSON escape.

    ``dump_json`` leaves non-ASCII text as is, and surrogates only occur inside JSON
    strings, so ``backslashreplace`` (``\ud800``) yields valid JSON with the same value.
    """
    return text.encode("utf-8", "backslashreplace")


#: A JSON escape that may decode to a surrogate; bodies without one need no surrogate check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """Whether a decoded JSON string holds a UTF-16 surrogate (valid pairs decode to one
    character, so any surrogate left is a lone one)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def find_lone_surrogate(value: Any, path: str) -> str | None:
    """Where in a decoded JSON value a string (or key) holds a lone surrogate, or None.

    Iterative: params may be nested as deeply as the JSON decoder allows.
    """
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return where
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, dict):
            for k, v in item.items():
                if has_lone_surrogate(k):
                    return f"{where} (a key)"
                stack.append((v, f"{where}.{k}"))
    return None


def _valid_id(value: Any) -> bool:
    # The specification allows String, Number (SHOULD NOT be fractional) or Null. We
    # refuse fractional numbers: float ids do not survive every client's round trip.
    if type(value) is str:
        return not has_lone_surrogate(value)
    return value is None or type(value) is int or (type(value) is float and value.is_integer())


@dataclass(frozen=True)
class _Request:
    method: str
    params: Any  # list, dict or None
    id: Any  # _NO_ID for notifications


def _check_request(obj: Any) -> _Request:
    """Shape check of one request object; raises _BadRequest with the id to echo."""
    if not isinstance(obj, dict):
        raise _BadRequest(None, f"expected a request object, found {describe_value(obj)}")
    req_id = obj.get("id", _NO_ID)
    echo_id = req_id if req_id is not _NO_ID and _valid_id(req_id) else None
    if req_id is not _NO_ID and not _valid_id(req_id):
        if type(req_id) is str:
            raise _BadRequest(None, "id holds a lone UTF-16 surrogate (e.g. \\ud800), which is not Unicode "
                                    "text and cannot be echoed; use ASCII or valid Unicode ids")
        raise _BadRequest(None, f"id must be a string, an integer or null, found {describe_value(req_id)}")
    version = obj.get("jsonrpc", _NO_ID)
    if version != JSONRPC_VERSION or type(version) is not str:
        found = "nothing" if version is _NO_ID else describe_value(version)
        raise _BadRequest(echo_id, f'expected "jsonrpc": "2.0", found {found}')
    method = obj.get("method", _NO_ID)
    if type(method) is not str:
        found = "nothing" if method is _NO_ID else describe_value(method)
        raise _BadRequest(echo_id, f"method must be a string, found {found}")
    params = obj.get("params")
    if "params" in obj and not isinstance(params, (list, dict)):
        raise _BadRequest(echo_id, f"params must be an array or an object, found {describe_value(params)}")
    return _Request(method, params, req_id)


class _BadRequest(Exception):
    def __init__(self, echo_id: Any, message: str) -> None:
        super().__init__(message)
        self.echo_id = echo_id
        self.error = RpcError(INVALID_REQUEST, "Invalid Request", {"reason": message})


def bind_params(method: Method, params: Any) -> dict[str, Any]:
    """Validate params (positional or named) against the schema; return handler kwargs."""
    decl = method.params
    given: dict[str, Any] = {}
    if isinstance(params, list):
        if len(params) > len(decl):
            names = ", ".join(p.name for p in decl) or "none"
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params: {method.name} takes at most {len(decl)} positional params ({names}), found {len(params)}",
            )
        given = {p.name: v for p, v in zip(decl, params)}
    elif isinstance(params, dict):
        known = {p.name for p in decl}
        unknown = sorted(k for k in params if k not in known)
        if unknown:
            expected = ", ".join(p.name for p in decl) or "no params"
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: unknown param {unknown[0]!r} for {method.name}; expected {expected}"
            )
        given = params
    kwargs: dict[str, Any] = {}
    for position, p in enumerate(decl):
        value = given.get(p.name)
        if value is None:
            if p.required:
                what = "is null" if p.name in given else "is missing"
                raise RpcError(
                    INVALID_PARAMS,
                    f"Invalid params: required param {p.name!r} (position {position}) {what}; expected {p.type.description}",
                    {"param": p.name, "expected": p.type.description},
                )
            kwargs[p.name] = p.default
            continue
        try:
            kwargs[p.name] = p.type.convert(value)
        except ParamTypeError as exc:
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params: param {p.name!r} (position {position}): expected {exc.expected}, found {exc.found}",
                {"param": p.name, "expected": exc.expected, "found": exc.found},
            ) from None
    return kwargs


class Dispatcher:
    """Runs requests against a route table. One per server; stateless between bodies
    except for the heavy-work lanes and the work statistics they share."""

    def __init__(
        self,
        methods: Sequence[Method],
        *,
        max_batch_len: int = MAX_BATCH_LEN,
        call_timeout_seconds: float = CALL_TIMEOUT_SECONDS,
        observer: CallObserver | None = None,
        namespaced: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        call_work_seconds: float = CALL_WORK_BUDGET_SECONDS,
        batch_work_seconds: float = BATCH_WORK_BUDGET_SECONDS,
        work_slice_seconds: float = WORK_SLICE_SECONDS,
        max_concurrent_heavy: int = MAX_CONCURRENT_HEAVY_CALLS,
    ) -> None:
        self.table = check_route_table(methods, namespaced=namespaced)
        self.max_batch_len = max_batch_len
        self.call_timeout_seconds = call_timeout_seconds
        self.max_response_bytes = max_response_bytes
        self.call_work_seconds, self.batch_work_seconds = call_work_seconds, batch_work_seconds
        self.work_slice_seconds = work_slice_seconds
        self.lanes = WorkLanes(max_concurrent_heavy)
        self.work_stats = WorkStats()
        self._observer = observer

    async def handle(self, body: bytes | str, ctx: CallContext) -> str | None:
        """Response text for a request body, or None when nothing is to be returned."""
        try:
            value = parse_json(body)
        except RpcError as exc:
            self._observe(ctx, UNKNOWN_METHOD_LABEL, exc.code, None)
            return dump_json(error_response(None, exc))
        # Only a body spelling a surrogate escape can hold one (raw ones are not UTF-8).
        pattern = _SURROGATE_ESCAPE if isinstance(body, str) else _SURROGATE_ESCAPE_BYTES
        check = pattern.search(body) is not None  # type: ignore[arg-type]
        ctx = replace(ctx, work=WorkBudget(self.call_work_seconds, self.batch_work_seconds,
                                           self.work_slice_seconds, self.work_stats))
        if not isinstance(value, list):
            text = await self._handle_one(value, ctx, check)
            if text is not None and self._too_big(text):
                req_id = value.get("id") if isinstance(value, dict) and _valid_id(value.get("id")) else None
                return self._too_big_answer(req_id, text)
            return text
        if not value:
            self._observe(ctx, UNKNOWN_METHOD_LABEL, INVALID_REQUEST, None)
            return dump_json(error_response(None, RpcError(INVALID_REQUEST, "Invalid Request", {"reason": "empty batch array"})))
        if len(value) > self.max_batch_len:
            self._observe(ctx, UNKNOWN_METHOD_LABEL, LIMIT_EXCEEDED, None)
            err = limit_error("max_batch_len", self.max_batch_len, len(value),
                              f"batch of {len(value)} requests exceeds the limit of {self.max_batch_len}")
            return dump_json(error_response(None, err))
        # The specification allows any order of processing; one after the other, with a
        # yield between calls, keeps a batch from holding the event loop (rpc_budget.py).
        kept: list[str] = []
        for item in value:
            response = await self._handle_one(item, ctx, check)
            if response is not None:
                kept.append(response)
            await ctx.work.pause()  # type: ignore[union-attr]
        # An all-notification batch returns nothing at all, not an empty array.
        text = "[" + ",".join(kept) + "]" if kept else None
        if text is not None and self._too_big(text):
            return self._too_big_answer(None, text)
        return text

    def _too_big(self, text: str) -> bool:
        return len(text) > self.max_response_bytes // 4 and len(encode_response(text)) > self.max_response_bytes

    def _too_big_answer(self, req_id: Any, text: str) -> str:
        size = len(encode_response(text))
        err = limit_error("max_response_bytes", self.max_response_bytes, size,
                          f"the response of {size} bytes exceeds the limit of {self.max_response_bytes} bytes; "
                          "ask for less per request (smaller batches, narrower height ranges, full=false)")
        return dump_json(error_response(req_id, err))

    async def _handle_one(self, obj: Any, ctx: CallContext, check_surrogates: bool = True) -> str | None:
        try:
            req = _check_request(obj)
        except _BadRequest as bad:
            self._observe(ctx, UNKNOWN_METHOD_LABEL, bad.error.code, None)
            return dump_json(error_response(bad.echo_id, bad.error))
        method = self.table.get(req.method)
        label = req.method if method is not None else UNKNOWN_METHOD_LABEL
        started = time.perf_counter()
        ran = False
        try:
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
            if method.websocket_only and ctx.subscriptions is None:
                raise RpcError(WEBSOCKET_REQUIRED, f"{method.name} is only available over the websocket endpoint /ws")
            where = find_lone_surrogate(req.params, "params") if check_surrogates else None
            if where is not None:
                raise RpcError(INVALID_PARAMS, f"Invalid params: {where} holds a lone UTF-16 surrogate (e.g. \\ud800), "
                                               "which is not Unicode text", {"param": where})
            kwargs = bind_params(method, req.params)
            ran = True
            result = await self._call(method, ctx, kwargs)
            # Serialised here, once, so a non-JSON result is this call's internal
            # error and not the whole batch's.
            result_text = dump_json(result)
            code: int | None = None
            response = None if req.id is _NO_ID else f'{{"jsonrpc":"2.0","result":{result_text},"id":{dump_json(req.id)}}}'
        except RpcError as exc:
            code, response = exc.code, self._error_text(req, exc)
        except WorkBudgetExceeded as exc:
            err = RpcError(LIMIT_EXCEEDED, exc.default_message(req.method if method else label), exc.data())
            code, response = err.code, self._error_text(req, err)
        except ChainError as exc:
            data = {"type": type(exc).__name__}
            reason = getattr(exc, "reason", None)
            if isinstance(reason, str):  # e.g. MempoolError's stable refusal code
                data["reason"] = reason
            extra = getattr(exc, "data", None)
            if isinstance(extra, dict):  # what the client acts on, e.g. a busy refusal's retry_after_ms
                data.update({k: v for k, v in extra.items() if k not in ("type", "reason")})
            err = RpcError(CHAIN_ERROR, str(exc), data)
            code, response = err.code, self._error_text(req, err)
        except Exception:  # noqa: BLE001 - the wire must never see a traceback
            incident = secrets.token_hex(6)
            log.exception("internal error in %s (incident %s)", label, incident)
            err = RpcError(INTERNAL_ERROR, "Internal error", {"incident": incident})
            code, response = err.code, self._error_text(req, err)
        self._observe(ctx, label, code, time.perf_counter() - started if ran else None)
        return response

    @staticmethod
    def _error_text(req: _Request, err: RpcError) -> str | None:
        if req.id is _NO_ID:
            return None  # notifications get no response, whatever happened
        try:
            return dump_json(error_response(req.id, err))
        except (TypeError, ValueError):
            log.error("error data of %s is not JSON-serialisable: %r", req.method, err.data)
            return dump_json(error_response(req.id, RpcError(err.code, err.message)))

    async def _call(self, method: Method, ctx: CallContext, kwargs: dict[str, Any]) -> Any:
        work: WorkBudget = ctx.work  # type: ignore[assignment]
        work.begin_call()  # raises when earlier calls of the batch spent its budget
        try:
            async with asyncio.timeout(self.call_timeout_seconds) as scope:
                if not method.heavy:
                    return await method.handler(ctx, **kwargs)
                lane = self.lanes.lane()
                waits = lane.locked()
                async with lane:
                    if waits:
                        work.resumed()  # the wait was not work
                    return await method.handler(ctx, **kwargs)
        except TimeoutError:
            if not scope.expired():
                raise  # the handler's own TimeoutError: an ordinary exception
            raise RpcError(
                REQUEST_TIMEOUT,
                f"{method.name} did not finish within {self.call_timeout_seconds} s",
                {"limit": "call_timeout_seconds", "max": self.call_timeout_seconds},
            ) from None
        finally:
            work.end_call()

    def _observe(self, ctx: CallContext, label: str, code: int | None, seconds: float | None) -> None:
        if self._observer is not None:
            self._observer(ctx.transport, label, outcome_of(code), code, seconds)
