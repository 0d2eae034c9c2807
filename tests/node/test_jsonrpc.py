"""JSON-RPC 2.0 protocol core: the specification's examples, params, errors, limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ChainError, ValidationError
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
    CallContext,
    Dispatcher,
    Method,
    Param,
    RpcConfigError,
    RpcError,
    check_route_table,
    outcome_of,
)
from node.rpc.types import BIGINT, HASH32, INTEGER, UINT, Array, BigInt, Hex, Int, ParamTypeError, Str, hex_decode, hex_encode

# --- the demo route table of the specification's examples -----------------------------

NOTIFIED: list[tuple[str, Any]] = []


async def subtract(ctx: CallContext, minuend: int, subtrahend: int) -> int:
    return minuend - subtrahend


async def sum_(ctx: CallContext, a: int, b: int, c: int = 0) -> int:
    return a + b + c


async def get_data(ctx: CallContext) -> list[Any]:
    return ["hello", 5]


async def notify_hello(ctx: CallContext, value: int) -> None:
    NOTIFIED.append(("notify_hello", value))


async def notify_sum(ctx: CallContext, a: int, b: int, c: int = 0) -> None:
    NOTIFIED.append(("notify_sum", a + b + c))


def _abc() -> tuple[Param, ...]:
    return (
        Param("a", INTEGER, "first addend"),
        Param("b", INTEGER, "second addend"),
        Param("c", INTEGER, "third addend", required=False, default=0),
    )


def demo_routes() -> list[Method]:
    return [
        Method(
            "subtract",
            subtract,
            (Param("minuend", INTEGER, "number to subtract from"), Param("subtrahend", INTEGER, "number subtracted")),
            result="minuend - subtrahend",
            result_schema={"type": "integer"},
        ),
        Method("sum", sum_, _abc(), result="a + b + c", result_schema={"type": "integer"}),
        Method("get_data", get_data, result="a fixed array", result_schema={"type": "array"}),
        Method("notify_hello", notify_hello, (Param("value", INTEGER, "anything"),), result="nothing"),
        Method("notify_sum", notify_sum, _abc(), result="nothing"),
    ]


# Every example of the specification's section 7, as (request text, expected response).
# None means "nothing is returned". Our error objects also carry a `data` member with
# the detail (the specification allows it); comparisons strip it and check it apart.
SPEC_EXAMPLES: list[tuple[str, str, Any]] = [
    ("positional params", '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
     {"jsonrpc": "2.0", "result": 19, "id": 1}),
    ("positional params reversed", '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
     {"jsonrpc": "2.0", "result": -19, "id": 2}),
    ("named params", '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
     {"jsonrpc": "2.0", "result": 19, "id": 3}),
    ("named params reordered", '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
     {"jsonrpc": "2.0", "result": 19, "id": 4}),
    ("notification", '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None),
    ("notification without params", '{"jsonrpc": "2.0", "method": "foobar"}', None),
    ("non-existent method", '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}),
    ("invalid JSON", '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ("invalid Request object", '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ("batch, invalid JSON",
     '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method"]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ("empty array", "[]",
     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ("invalid batch, not empty", "[1]",
     [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]),
    ("invalid batch", "[1,2,3]",
     [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}] * 3),
    ("mixed batch",
     """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
     ]""",
     [
         {"jsonrpc": "2.0", "result": 7, "id": "1"},
         {"jsonrpc": "2.0", "result": 19, "id": "2"},
         {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
         {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
         {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
     ]),
    ("all-notification batch",
     '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]',
     None),
]


def strip_data(response: Any) -> Any:
    """The response without error `data` members, after checking each is an object."""
    if isinstance(response, list):
        return [strip_data(r) for r in response]
    if isinstance(response, dict) and "error" in response:
        error = dict(response["error"])
        if "data" in error:
            assert isinstance(error["data"], dict), error
            del error["data"]
        return {**response, "error": error}
    return response


def make_dispatcher(routes: list[Method] | None = None, **kwargs: Any) -> Dispatcher:
    return Dispatcher(routes if routes is not None else demo_routes(), namespaced=False, **kwargs)


def call(dispatcher: Dispatcher, request: Any, ctx: CallContext | None = None) -> Any:
    body = request if isinstance(request, str) else json.dumps(request)
    text = asyncio.run(dispatcher.handle(body, ctx or CallContext("test")))
    return None if text is None else json.loads(text)


@pytest.mark.parametrize("name,request_text,expected", SPEC_EXAMPLES, ids=[e[0] for e in SPEC_EXAMPLES])
def test_specification_examples(name: str, request_text: str, expected: Any) -> None:
    assert strip_data(call(make_dispatcher(), request_text)) == expected


def test_notifications_are_executed_but_not_answered() -> None:
    NOTIFIED.clear()
    d = make_dispatcher()
    assert call(d, '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, '
                   '{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]') is None
    assert sorted(NOTIFIED) == [("notify_hello", 7), ("notify_sum", 7)]
    # A failing notification is not answered either.
    assert call(d, {"jsonrpc": "2.0", "method": "notify_hello", "params": ["x"]}) is None


def test_error_details_say_what_was_wrong() -> None:
    d = make_dispatcher()
    assert "NaN is not valid JSON" in call(d, "NaN")["error"]["data"]["reason"]
    r = call(d, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
    assert r["error"]["data"]["reason"] == "method must be a string, found integer 1"
    r = call(d, "[]")
    assert r["error"]["data"]["reason"] == "empty batch array"


@pytest.mark.parametrize(
    "request_obj,reason",
    [
        ({"jsonrpc": "2.0", "method": "get_data", "id": {"a": 1}}, "id must be a string, an integer or null, found object"),
        ({"jsonrpc": "2.0", "method": "get_data", "id": [1]}, "id must be a string, an integer or null, found array"),
        ({"jsonrpc": "2.0", "method": "get_data", "id": True}, "id must be a string, an integer or null, found boolean true"),
        ({"jsonrpc": "2.0", "method": "get_data", "id": 1.5}, "id must be a string, an integer or null, found number 1.5"),
        ({"method": "get_data", "id": 1}, 'expected "jsonrpc": "2.0", found nothing'),
        ({"jsonrpc": "1.0", "method": "get_data", "id": 1}, "expected \"jsonrpc\": \"2.0\", found string '1.0'"),
        ({"jsonrpc": 2.0, "method": "get_data", "id": 1}, 'found number 2.0'),
        ({"jsonrpc": "2.0", "id": 1}, "method must be a string, found nothing"),
        ({"jsonrpc": "2.0", "method": "get_data", "params": 5, "id": 1}, "params must be an array or an object"),
        ({"jsonrpc": "2.0", "method": "get_data", "params": None, "id": 1}, "params must be an array or an object"),
    ],
)
def test_invalid_requests(request_obj: dict[str, Any], reason: str) -> None:
    r = call(make_dispatcher(), request_obj)
    assert r["error"]["code"] == INVALID_REQUEST
    assert r["error"]["message"] == "Invalid Request"
    assert reason in r["error"]["data"]["reason"]
    # A valid id is echoed even when the request is otherwise invalid; a bad one is null.
    id_ok = not reason.startswith("id must")
    assert r["id"] == (request_obj.get("id") if id_ok else None)


def test_null_and_string_ids_are_requests_not_notifications() -> None:
    d = make_dispatcher()
    assert call(d, {"jsonrpc": "2.0", "method": "get_data", "id": None}) == {"jsonrpc": "2.0", "result": ["hello", 5], "id": None}
    assert call(d, {"jsonrpc": "2.0", "method": "get_data", "id": "x"})["id"] == "x"


@pytest.mark.parametrize(
    "params,message",
    [
        ([1], "required param 'subtrahend' (position 1) is missing; expected integer"),
        ({"minuend": 1}, "required param 'subtrahend' (position 1) is missing"),
        ([1, None], "required param 'subtrahend' (position 1) is null"),
        ([1, 2, 3], "subtract takes at most 2 positional params (minuend, subtrahend), found 3"),
        ({"minuend": 1, "subtrahend": 2, "x": 3}, "unknown param 'x' for subtract; expected minuend, subtrahend"),
        ([1, "2"], "param 'subtrahend' (position 1): expected integer, found string '2'"),
        ([True, 2], "param 'minuend' (position 0): expected integer, found boolean true"),
        ([1.0, 2], "param 'minuend' (position 0): expected integer, found number 1.0"),
        ([2**60, 2], "param 'minuend' (position 0): expected integer within ±(2^53-1)"),
    ],
)
def test_invalid_params_name_param_expected_and_found(params: Any, message: str) -> None:
    r = call(make_dispatcher(), {"jsonrpc": "2.0", "method": "subtract", "params": params, "id": 7})
    assert r["error"]["code"] == INVALID_PARAMS
    assert message in r["error"]["message"], r["error"]["message"]
    assert r["id"] == 7


def test_optional_params_take_their_default_when_absent_or_null() -> None:
    d = make_dispatcher()
    assert call(d, {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1})["result"] == 3
    assert call(d, {"jsonrpc": "2.0", "method": "sum", "params": [1, 2, None], "id": 1})["result"] == 3
    assert call(d, {"jsonrpc": "2.0", "method": "sum", "params": {"a": 1, "b": 2, "c": 3}, "id": 1})["result"] == 6
    assert call(d, {"jsonrpc": "2.0", "method": "get_data", "id": 1})["result"] == ["hello", 5]
    assert call(d, {"jsonrpc": "2.0", "method": "get_data", "params": [], "id": 1})["result"] == ["hello", 5]
    assert call(d, {"jsonrpc": "2.0", "method": "get_data", "params": {}, "id": 1})["result"] == ["hello", 5]


# --- handler failures -----------------------------------------------------------------


async def boom(ctx: CallContext) -> None:
    raise ValueError("secret internal detail /etc/passwd")


async def refuse(ctx: CallContext) -> None:
    raise RpcError(-32010, "mempool refused the transaction", {"reason": "nonce_too_low", "expected": 5, "found": 3})


async def chain_refusal(ctx: CallContext) -> None:
    raise ValidationError("signature does not verify: expected signer 0xab, found 0xcd")


class RefusalError(ChainError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


async def refuse_with_reason(ctx: CallContext) -> None:
    raise RefusalError("nonce_too_low", "nonce 3 is below the next nonce 5")


async def hang(ctx: CallContext) -> None:
    await asyncio.Event().wait()


async def own_timeout(ctx: CallContext) -> None:
    raise TimeoutError("backend timed out")


async def give_bytes(ctx: CallContext) -> dict[str, Any]:
    return {"hash": b"\x01\xab", "n": 3}


async def give_object(ctx: CallContext) -> object:
    return object()


async def subscribe_only(ctx: CallContext) -> str:
    return "ok"


def failure_routes() -> list[Method]:
    return [
        Method("test_boom", boom),
        Method("test_refuse", refuse),
        Method("test_chain", chain_refusal),
        Method("test_reason", refuse_with_reason),
        Method("test_hang", hang),
        Method("test_ownTimeout", own_timeout),
        Method("test_bytes", give_bytes),
        Method("test_object", give_object),
        Method("test_subscribe", subscribe_only, websocket_only=True),
    ]


def req(method: str, id: int = 1, **kw: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "id": id, **kw}


def test_internal_errors_never_leak_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    r = call(Dispatcher(failure_routes()), req("test_boom"))
    assert r["error"]["code"] == INTERNAL_ERROR and r["error"]["message"] == "Internal error"
    text = json.dumps(r)
    assert "secret" not in text and "Traceback" not in text and "ValueError" not in text
    incident = r["error"]["data"]["incident"]
    assert any(incident in rec.getMessage() for rec in caplog.records)  # the log has it


def test_application_and_chain_errors() -> None:
    d = Dispatcher(failure_routes())
    r = call(d, req("test_refuse"))
    assert r["error"] == {"code": -32010, "message": "mempool refused the transaction",
                          "data": {"reason": "nonce_too_low", "expected": 5, "found": 3}}
    r = call(d, req("test_chain"))
    assert r["error"]["code"] == CHAIN_ERROR
    assert r["error"]["message"] == "signature does not verify: expected signer 0xab, found 0xcd"
    assert r["error"]["data"] == {"type": "ValidationError"}
    r = call(d, req("test_reason"))
    assert r["error"] == {"code": CHAIN_ERROR, "message": "nonce 3 is below the next nonce 5",
                          "data": {"type": "RefusalError", "reason": "nonce_too_low"}}


def test_rpc_error_is_a_chain_error_and_refuses_reserved_codes() -> None:
    assert issubclass(RpcError, ChainError)
    RpcError(-32099, "server range ok")
    RpcError(1, "application code outside the reserved range ok")
    with pytest.raises(RpcConfigError, match="reserved range"):
        RpcError(-32500, "neither standard nor server range")
    with pytest.raises(RpcConfigError, match="must be an int"):
        RpcError("x", "bad")  # type: ignore[arg-type]


def test_call_timeout() -> None:
    d = Dispatcher(failure_routes(), call_timeout_seconds=0.02)
    r = call(d, req("test_hang"))
    assert r["error"]["code"] == REQUEST_TIMEOUT
    assert r["error"]["data"] == {"limit": "call_timeout_seconds", "max": 0.02}
    # A TimeoutError the handler raises itself is its own failure, not our timeout.
    assert call(d, req("test_ownTimeout"))["error"]["code"] == INTERNAL_ERROR


def test_results_bytes_become_hex_and_unserialisable_results_are_internal_errors() -> None:
    d = Dispatcher(failure_routes())
    assert call(d, req("test_bytes"))["result"] == {"hash": "0x01ab", "n": 3}
    batch = call(d, [req("test_object", 1), req("test_bytes", 2)])
    assert batch[0]["error"]["code"] == INTERNAL_ERROR and batch[1]["result"]["n"] == 3


def test_websocket_only_methods_refused_without_a_websocket() -> None:
    d = Dispatcher(failure_routes())
    r = call(d, req("test_subscribe"))
    assert r["error"]["code"] == WEBSOCKET_REQUIRED and "/ws" in r["error"]["message"]
    assert call(d, req("test_subscribe"), CallContext("ws", subscriptions=object()))["result"] == "ok"


def test_batch_length_limit() -> None:
    d = make_dispatcher(max_batch_len=3)
    ok = call(d, [req("get_data", i) for i in range(3)])
    assert [r["id"] for r in ok] == [0, 1, 2]
    r = call(d, [req("get_data", i) for i in range(4)])
    assert r["error"]["code"] == LIMIT_EXCEEDED
    assert r["error"]["data"] == {"limit": "max_batch_len", "max": 3, "found": 4}


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"\xff\xfe", "not UTF-8"),
        ("NaN", "not valid JSON"),
        ('{"a": Infinity}', "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("1" * 5000, "invalid JSON"),
        ("", "invalid JSON"),
    ],
)
def test_parse_errors(body: Any, reason: str) -> None:
    text = asyncio.run(make_dispatcher().handle(body, CallContext("test")))
    r = json.loads(text)
    assert r["error"]["code"] == PARSE_ERROR and r["id"] is None
    assert reason in r["error"]["data"]["reason"]


def test_observer_sees_every_request_object_with_its_outcome() -> None:
    seen: list[tuple[str, str, str, int | None, bool]] = []
    d = make_dispatcher(observer=lambda t, m, o, c, s: seen.append((t, m, o, c, s is not None)))
    call(d, '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2], "id": 1}, 1, '
            '{"jsonrpc": "2.0", "method": "nope", "id": 2}, {"jsonrpc": "2.0", "method": "sum", "params": ["x"], "id": 3}]')
    call(d, "{")
    call(d, "[]")
    assert seen == [
        ("test", "sum", "ok", None, True),
        ("test", "unknown", "client_error", INVALID_REQUEST, False),
        ("test", "unknown", "client_error", METHOD_NOT_FOUND, False),
        ("test", "sum", "client_error", INVALID_PARAMS, False),
        ("test", "unknown", "client_error", PARSE_ERROR, False),
        ("test", "unknown", "client_error", INVALID_REQUEST, False),
    ]


@pytest.mark.parametrize("code, outcome", [
    (None, "ok"), (PARSE_ERROR, "client_error"), (INVALID_REQUEST, "client_error"),
    (METHOD_NOT_FOUND, "client_error"), (INVALID_PARAMS, "client_error"), (INTERNAL_ERROR, "server_error"),
    (CHAIN_ERROR, "client_error"), (REQUEST_TIMEOUT, "timeout"), (WEBSOCKET_REQUIRED, "client_error"),
    (LIMIT_EXCEEDED, "client_error"), (-32004, "client_error"), (-32006, "client_error"), (42, "client_error"),
])
def test_only_internal_errors_are_the_servers_fault(code: int | None, outcome: str) -> None:
    """NotFound (-32004), HeightPruned (-32006) and every deliberate refusal are the client's."""
    assert outcome_of(code) == outcome


# --- route table rules ----------------------------------------------------------------


def test_route_table_rules() -> None:
    with pytest.raises(RpcConfigError, match="async"):
        Method("chain_x", lambda ctx: None)  # type: ignore[arg-type]
    with pytest.raises(RpcConfigError, match="reserved"):
        Method("rpc.mine", get_data)
    with pytest.raises(RpcConfigError, match="twice"):
        Method("chain_x", sum_, (Param("a", INTEGER, ""), Param("a", INTEGER, "")))
    with pytest.raises(RpcConfigError, match="follows an optional"):
        Method("chain_x", sum_, (Param("a", INTEGER, "", required=False), Param("b", INTEGER, "")))
    with pytest.raises(RpcConfigError, match="appears twice"):
        check_route_table([Method("chain_x", get_data), Method("chain_x", get_data)])
    with pytest.raises(RpcConfigError, match="namespace_verb"):
        check_route_table([Method("subtract", get_data)])
    assert set(check_route_table([Method("chain_getBlock", get_data), Method("rpc.discover", get_data)])) == {
        "chain_getBlock", "rpc.discover"}


# --- value conventions ----------------------------------------------------------------


def test_hex_helpers_and_type() -> None:
    assert hex_encode(b"\x00\xff") == "0x00ff"
    assert hex_decode("0x00FF") == b"\x00\xff"
    assert hex_decode("0x") == b""
    assert HASH32.convert("0x" + "ab" * 32) == b"\xab" * 32
    with pytest.raises(ParamTypeError) as exc:
        HASH32.convert("0x1234")
    assert exc.value.expected == "0x-hex of 32 bytes" and exc.value.found == "0x-hex of 2 bytes"
    for bad in ["1234", "0x123", "0xzz", 12, None, "0X12"]:
        with pytest.raises(ParamTypeError):
            Hex().convert(bad)
    with pytest.raises(ParamTypeError, match="at most 2 bytes"):
        Hex(max_len=2).convert("0x010203")


def test_bigint_accepts_int_or_decimal_string() -> None:
    big = 2**200 + 7
    assert BIGINT.convert(str(big)) == big
    assert BIGINT.convert(5) == 5
    assert BIGINT.convert("0") == 0
    for bad in ["01", "1.5", "1e3", " 1", "", "-1", -1, True, 1.0, "0x10", str(2**256)]:
        with pytest.raises(ParamTypeError):
            BIGINT.convert(bad)
    assert BigInt(minimum=-10).convert("-10") == -10


def test_other_types() -> None:
    assert UINT.convert(0) == 0
    with pytest.raises(ParamTypeError, match="integer >= 0"):
        UINT.convert(-1)
    assert Int(1, 3).description == "integer in [1, 3]"
    assert Str(enum=["a", "b"]).convert("a") == "a"
    with pytest.raises(ParamTypeError, match="one of 'a', 'b'"):
        Str(enum=["a", "b"]).convert("c")
    with pytest.raises(ParamTypeError, match="item 1"):
        Array(HASH32).convert(["0x" + "00" * 32, "0x00"])


# --- robustness: any JSON value gets a well-formed answer ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["2.0", "subtract", "sum", "get_data", "notify_hello", "jsonrpc", "id"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["jsonrpc", "method", "params", "id", "x"]), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=150)
@given(value=json_values)
def test_any_json_value_gets_a_well_formed_answer(value: Any) -> None:
    r = call(make_dispatcher(), json.dumps(value))
    if r is None:
        return
    for item in r if isinstance(r, list) else [r]:
        assert item["jsonrpc"] == "2.0" and "id" in item
        assert ("result" in item) != ("error" in item)
        if "error" in item:
            assert isinstance(item["error"]["code"], int) and isinstance(item["error"]["message"], str)
