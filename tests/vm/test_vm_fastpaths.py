"""Fast paths must be invisible: fused vs unfused code, fast vs reference walks and encodings.

1. Random programs (the generators of test_vm_properties) run fused and unfused under
   many gas limits, so that runs out of gas land inside fused blocks: status, error
   name and message, gas used, return value, events and state must be identical.
2. The commerce suite's placement, run fused and unfused at every gas limit from
   zero to what it needs (in steps), gives identical outcomes.
3. walk_cost's recursive fast path equals the node-by-node walk, including the partial
   total it returns above the budget; encode's inline scalar checks raise the same
   errors as the item-by-item walk; storage reads of remembered bytes decode alike.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts_vm.program as P
from contracts_vm.api import execute_call
from contracts_vm.bytecode import assemble, code_hash
from contracts_vm.errors import VerifyError, VMError
from contracts_vm.values import _walk_exact, from_bytes, to_bytes, walk_cost
from contracts_vm.verifier import verify
from ledger.encoding import MAX_DEPTH, decode, encode
from ledger.errors import CorruptionError, DecodeError, EncodeError
from tests.commerce_harness import Chain, h
from tests.vm.test_vm_properties import CTX, GAS, _fresh_state, programs, valid_programs


def _outcome(state, r) -> tuple:
    return (r.status, r.error, r.error_message, r.gas_used, encode(r.return_value) if r.ok else None,
            repr(r.events), sorted(state.data.items()))


def _run(code: bytes, fused: bool, gas: int) -> tuple:
    hsh = code_hash(code)
    P._cache[hsh] = P.build_program(code, hsh, fused=fused)
    try:
        state = _fresh_state(code)
        return _outcome(state, execute_call(state, "t", "main", [], CTX, gas))
    finally:
        P._cache.pop(hsh, None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(valid_programs(), valid_programs(capture_stack=True), programs()),
       st.lists(st.integers(0, GAS), min_size=1, max_size=4))
def test_fused_code_gives_the_same_outcome_as_unfused_code(code, limits):
    try:
        verify(code)
    except VerifyError:
        return
    full = _run(code, False, GAS)
    used = full[3]
    for gas in [GAS, used, max(used - 1, 0), max(used - 2, 0)] + limits + [g % (used + 1) for g in limits]:
        assert _run(code, True, gas) == _run(code, False, gas), gas


#: Stack shuffles and int operations whose operands are always ints: every sequence runs to the end.
_SHUFFLES = [("CONST 3", 0, 1), ("CONST -2", 0, 1), ("LOAD 0", 0, 1), ("LOAD 1", 0, 1), ("STORE 0", 1, 0),
             ("STORE 1", 1, 0), ("POP", 1, 0), ("DUP", 1, 2), ("DUP2", 2, 4), ("SWAP", 2, 2), ("ADD", 2, 1),
             ("SUB", 2, 1), ("NEG", 1, 1), ("MUL", 2, 1), ("CTX height", 0, 1), ("LABEL", 0, 0)]


@st.composite
def shuffle_programs(draw) -> bytes:
    """Straight-line int code with block boundaries, returning the whole frame as a list."""
    lines = ["func main 0 2", "CONST 1", "STORE 0", "CONST 5", "STORE 1"]
    height = 0
    labels = 0
    for _ in range(draw(st.integers(1, 30))):
        text, pops, pushes = draw(st.sampled_from(_SHUFFLES))
        if pops > height or height - pops + pushes > 40:
            continue
        if text == "LABEL":
            labels += 1
            lines += [f"JUMP l{labels}", f"l{labels}:"]
            continue
        lines.append(text)
        height += pushes - pops
    lines += ["LOAD 0", "LOAD 1", f"BUILD_LIST {height + 2}", "RET"]
    return assemble("\n".join(lines))


@settings(max_examples=300, deadline=None)
@given(shuffle_programs(), st.integers(0, 200))
def test_fused_stack_shuffles_leave_the_same_frame(code, gas):
    full = _run(code, False, GAS)
    assert full[0] == "ok", full
    assert _run(code, True, GAS) == full
    assert _run(code, True, gas) == _run(code, False, gas)



def test_a_placement_runs_out_of_gas_at_the_same_instruction_fused_and_unfused():
    c = Chain()
    terms = c.publish_terms()
    args = [c.keys["merchant1"], [[h("product-1"), 1, 10, terms], [h("product-2"), 2, 7, terms]], h("pii"), h("pl"),
            h("rk"), b"", b"", b""]
    from contracts_vm.api import CallContext
    ctx = CallContext(sender=c.keys["buyer1"], height=c.height, chain_id="commerce-test")

    def attempt(gas: int) -> tuple:
        cp = c.state.checkpoint()
        r = execute_call(c.state, "orders", "place", list(args), ctx, gas)
        out = (r.status, r.error, r.error_message, r.gas_used, r.return_value, repr(r.events),
               sorted(c.state.data.items()))
        c.state.revert(cp)
        return out

    needed = attempt(10_000_000)[3]
    for gas in list(range(0, needed + 2, 7)) + [needed - 1, needed]:
        fused = attempt(gas)
        with P.unfused():
            plain = attempt(gas)
        assert fused == plain, gas


# ---- walk_cost ---------------------------------------------------------------------------

scalars = st.one_of(st.integers(-2**63, 2**63 - 1), st.binary(max_size=70), st.text(max_size=40), st.booleans(),
                    st.none())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                       st.dictionaries(st.text(max_size=20), inner, max_size=6)),
                      max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(0, 400))
def test_walk_cost_equals_the_node_by_node_walk(value, budget):
    assert walk_cost(value, budget) == _walk_exact(value, budget)


def _nested(depth: int):
    v: list = []
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5])
@pytest.mark.parametrize("budget", [3, 10_000])
def test_walk_cost_of_deep_values_matches_too(depth, budget):
    def outcome(f):
        try:
            return f(_nested(depth), budget)
        except VMError as exc:
            return exc.name, exc.message
    assert outcome(walk_cost) == outcome(_walk_exact)


def test_walk_cost_of_a_self_containing_list_is_not_encodable():
    v: list = [1]
    v.append(v)
    with pytest.raises(VMError):
        walk_cost(v, 10**9)


# ---- encode and storage reads -------------------------------------------------------------

def _reference_normalize(obj, depth):
    """The item-by-item walk ``_normalize`` replaced (errors in the same order)."""
    if depth > MAX_DEPTH:
        raise EncodeError("deep")
    t = type(obj)
    if t is bool or obj is None:
        return obj
    if t is int:
        if obj < -(2**63) or obj > 2**64 - 1:
            raise EncodeError(f"int {obj}")
        return obj
    if t in (bytes, str):
        return obj
    if t in (list, tuple):
        return [_reference_normalize(x, depth + 1) for x in obj]
    if t is dict:
        for k in obj:
            if type(k) is not str:
                raise EncodeError(f"key {k!r}")
        return {k: _reference_normalize(obj[k], depth + 1) for k in sorted(obj)}
    raise EncodeError(f"type {t.__name__}")


odd = st.one_of(scalars, st.integers(2**63, 2**65), st.integers(-(2**65), -(2**63) - 1), st.floats(), st.just(b"x"))
odd_values = st.recursive(odd, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 3)), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(odd_values)
def test_encode_accepts_and_rejects_exactly_like_the_item_by_item_walk(value):
    try:
        expected = ("ok", _reference_normalize(value, 0))
    except EncodeError:
        expected = ("error",)
    try:
        data = encode(value)
        got = ("ok", decode(data))
    except EncodeError:
        got = ("error",)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert encode(expected[1]) == data


def test_encode_error_names_the_first_bad_item_in_key_order():
    with pytest.raises(EncodeError, match="integer 18446744073709551616"):
        encode({"b": 1.5, "a": 2**64})
    with pytest.raises(EncodeError, match="floats"):
        encode([1, [2, 1.5], 2**64])
    deep: list = [1]
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(EncodeError, match="nested deeper"):
        encode(deep)                            # the 1 sits one level below the limit
    encode(deep[0])


@settings(max_examples=200, deadline=None)
@given(values)
def test_remembered_storage_bytes_decode_to_the_same_value(value):
    try:
        data = to_bytes(value, "v")
    except VMError:
        return
    assert from_bytes(data) == decode(data)
    assert from_bytes(data) == decode(data)     # second read: from the remembered bytes


def test_non_canonical_bytes_are_still_rejected_after_the_canonical_form_was_seen():
    good = to_bytes({"a": 1, "b": 2}, "v")
    assert from_bytes(good) == {"a": 1, "b": 2}
    swapped = b"\x82\xa1b\x02\xa1a\x01"         # same map, keys out of order
    with pytest.raises(DecodeError):
        decode(swapped)
    with pytest.raises(CorruptionError):  # contracts store only canonical bytes: this is the store failing
        from_bytes(swapped)


def test_functions_too_long_to_fuse_or_that_fail_to_fuse_run_unfused(monkeypatch):
    lines = ["func main 0 1", "CONST 0", "STORE 0"] + ["LOAD 0", "CONST 1", "ADD", "STORE 0"] * 600 + ["LOAD 0", "RET"]
    code = assemble("\n".join(lines))
    fused = _run(code, True, GAS)
    assert fused == _run(code, False, GAS) and fused[0] == "ok"
    monkeypatch.setattr(P, "FUSE_MAX_INSTRUCTIONS", 100)
    assert _run(code, True, GAS) == fused

    def broken(name, code):
        raise RuntimeError("fuser bug")
    monkeypatch.setattr(P, "fuse", broken)
    monkeypatch.setattr(P, "FUSE_MAX_INSTRUCTIONS", 10**6)
    assert _run(code, True, GAS) == fused
