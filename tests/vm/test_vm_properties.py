"""Property tests: random bytecode never escapes the VM, and execution is deterministic.

1. Random programs (raw bytes, or instruction streams drawn with stack heights in
   mind so that many pass verification) are either rejected by the verifier with a
   VerifyError, or run to a result or a named VM error within their gas: never a
   Python exception (the catch-all VMFault counts as a failure here), never more
   steps than gas.
2. The same call on the same state gives the same result, gas, state changes and
   events: across repeated runs in one process, and across processes started with
   different PYTHONHASHSEED values.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts_vm import errors as E
from contracts_vm.api import CallContext, execute_call, install_contract
from contracts_vm.builtins import BUILTINS, HOSTS
from contracts_vm.bytecode import encode_container
from contracts_vm.errors import VerifyError
from contracts_vm.memstate import MemoryState
from contracts_vm.opcodes import CTX_FIELDS, OPCODES, imm_size
from contracts_vm.verifier import verify
from ledger.encoding import encode

ROOT = Path(__file__).resolve().parents[2]
GAS = 20_000
CTX = CallContext(sender=b"\x05" * 32, height=3, timestamp_ms=1000, chain_id="prop", tx_id=b"\x09" * 32)

SCALARS = [0, 1, -1, 2, 7, 2**62, 2**63 - 1, -(2**63), b"", b"ab", b"\x00", "", "k", "héllo", True, False, None,
           "other", "main", "f"]
DESCRIPTORS = [["a", "b"], "f", ["s", [], 0], ["m", ["bytes"], 0], ["p", ["int", "str"], None], ["E", ["x"]]]
CONSTS = SCALARS + DESCRIPTORS
ABI = {"methods": [{"name": "main", "function": 0, "kind": "public", "requires": None, "args": [], "returns": "any"},
                   {"name": "f", "function": 1, "kind": "public", "requires": None, "args": [["a", "any"]],
                    "returns": "any"}],
       "records": {}, "events": [], "storage": []}
OPS = sorted(OPCODES.values(), key=lambda op: op.code)
_FIXED_POPS = {"imm": None}


def _immediate(draw, op, nlocals: int, length: int):
    kind = op.imm
    if kind == "const":
        return draw(st.integers(0, len(CONSTS)))
    if kind in ("record", "field", "slot", "event"):
        return draw(st.integers(len(SCALARS), len(CONSTS)))
    if kind == "local":
        return draw(st.integers(0, nlocals))
    if kind == "count":
        return draw(st.integers(0, 3))
    if kind == "fn":
        return draw(st.integers(0, 2))
    if kind == "builtin":
        return draw(st.integers(0, len(BUILTINS)))
    if kind == "host":
        return draw(st.integers(0, len(HOSTS)))
    if kind == "ctx":
        return draw(st.integers(0, len(CTX_FIELDS)))
    if kind == "target":
        return draw(st.integers(0, length))
    if kind == "loop":
        return (draw(st.integers(0, max(nlocals - 2, 0))), draw(st.integers(0, length)))
    return None


def _encode(op, imm) -> bytes:
    out = bytes([op.code])
    if op.imm == "loop":
        return out + imm[0].to_bytes(2, "big") + imm[1].to_bytes(2, "big")
    if imm_size(op):
        return out + imm.to_bytes(2, "big")
    return out


@st.composite
def function_body(draw, nlocals: int) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=40))
    count = draw(st.integers(1, 30))
    # offsets of a plausible layout, so that some jump targets land on boundaries
    ops = [draw(st.sampled_from(OPS)) for _ in range(count)]
    offsets = []
    pc = 0
    for op in ops:
        offsets.append(pc)
        pc += 1 + imm_size(op)
    out = b""
    for op in ops:
        if op.imm in ("target", "loop") and draw(st.booleans()):
            target = draw(st.sampled_from(offsets))
            imm = target if op.imm == "target" else (draw(st.integers(0, max(nlocals - 2, 0))), target)
        else:
            imm = _immediate(draw, op, nlocals, pc)
        out += _encode(op, imm)
    if draw(st.booleans()):
        out += bytes([OPCODES[0x01].code, 0, 0, 0x34])  # CONST 0; RET
    return out


@st.composite
def programs(draw) -> bytes:
    n0 = draw(st.integers(0, 6))
    body0 = draw(function_body(n0))
    body1 = draw(function_body(2))
    return encode_container(CONSTS, [["main", 0, n0, body0], ["f", 1, 2, body1]], ABI)


_KIND_CONSTS = {
    "const": list(range(len(SCALARS))),
    "record": [len(SCALARS)],
    "field": [len(SCALARS) + 1],
    "slot": [len(SCALARS) + 2, len(SCALARS) + 3, len(SCALARS) + 4],
    "event": [len(SCALARS) + 5],
}
_FN_PARAMS = [0, 1]
VALID_LOCALS = 6


def _pops(op, imm) -> int:
    from contracts_vm.verifier import stack_effect
    from contracts_vm.bytecode import Container
    c = Container(1, CONSTS, [["main", 0, VALID_LOCALS, b""], ["f", 1, 2, b""]], ABI)
    return stack_effect(c, op, imm)


@st.composite
def valid_programs(draw, capture_stack: bool = False) -> bytes:
    """Instruction streams whose immediates and stack heights are valid by construction.

    With ``capture_stack`` the function returns a list of its whole frame (locals, then
    the operand stack) instead of 0, so a run that leaves any slot different shows."""
    count = draw(st.integers(1, 40))
    instrs = []      # [op, imm]
    heights = []     # height before each instruction, assuming fall-through
    h = 0
    for _ in range(count):
        op = draw(st.sampled_from(OPS))
        kind = op.imm
        if kind in _KIND_CONSTS:
            imm = draw(st.sampled_from(_KIND_CONSTS[kind]))
        elif kind == "local":
            imm = draw(st.integers(0, VALID_LOCALS - 1))
        elif kind == "count":
            imm = draw(st.integers(0, 3))
        elif kind == "fn":
            imm = draw(st.integers(0, 1))
        elif kind == "builtin":
            imm = draw(st.integers(0, len(BUILTINS) - 1))
        elif kind == "host":
            imm = draw(st.integers(0, len(HOSTS) - 1))
        elif kind == "ctx":
            imm = draw(st.integers(0, len(CTX_FIELDS) - 1))
        elif kind == "loop":
            imm = [draw(st.integers(0, VALID_LOCALS - 4)), None]
        elif kind == "target":
            imm = None
        else:
            imm = None
        pops, pushes = _pops(op, imm if kind != "loop" else (imm[0], 0))
        if pops > h or h - pops + pushes > 64 or op.name == "RET":
            continue
        heights.append(h)
        instrs.append([op, imm])
        h = h - pops + pushes
    # resolve branch targets to instructions reached with the same height
    for i, (op, imm) in enumerate(instrs):
        if op.imm in ("target", "loop"):
            pops, _ = _pops(op, 0 if op.imm == "target" else (imm[0], 0))
            after = heights[i] - pops
            candidates = [j for j, hj in enumerate(heights) if hj == after]
            if not candidates:
                instrs[i] = None
                continue
            target = draw(st.sampled_from(candidates))
            if op.imm == "target":
                instrs[i][1] = target
            else:
                instrs[i][1][1] = target
    # a JUMP breaks linear heights only if its fall-through successor's height differs; it cannot
    # (JUMP pops nothing), and dropped branches only remove instructions that pop nothing.
    kept = [(op, imm) for op, imm in ((x[0], x[1]) for x in instrs if x is not None)]
    index_map = {}
    k = 0
    for i, x in enumerate(instrs):
        index_map[i] = k
        if x is not None:
            k += 1
    offsets = []
    pc = 0
    for op, _ in kept:
        offsets.append(pc)
        pc += 1 + imm_size(op)
    end_offset = pc
    body = b""
    for op, imm in kept:
        if op.imm == "target":
            j = index_map[imm]
            imm = offsets[j] if j < len(offsets) else end_offset
        elif op.imm == "loop":
            j = index_map[imm[1]]
            imm = (imm[0], offsets[j] if j < len(offsets) else end_offset)
        body += _encode(op, imm)
    if capture_stack:
        # LOAD every local, then BUILD_LIST of operands + locals; RET (the end must be reached at height h)
        body += b"".join(bytes([0x02, 0, i]) for i in range(VALID_LOCALS)) + bytes([0x40, 0, h + VALID_LOCALS, 0x34])
    else:
        body += bytes([0x01, 0, 0, 0x34])     # CONST 0; RET (the end is reachable at any height)
    return encode_container(CONSTS, [["main", 0, VALID_LOCALS, body], ["f", 1, 2, bytes([0x02, 0, 0, 0x34])]], ABI)


def _fresh_state(code: bytes) -> MemoryState:
    state = MemoryState()
    install_contract(state, "t", code)
    install_contract(state, "other", code)
    return state


def _outcome(state: MemoryState, result) -> tuple:
    return (result.status, result.error, encode(result.return_value) if result.ok else None, result.gas_used,
            result.steps, repr(result.events), sorted(state.data.items()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(programs(), valid_programs()))
def test_random_bytecode_is_rejected_or_runs_to_a_named_outcome(code):
    try:
        verify(code)
    except VerifyError as exc:
        assert exc.name in E.VERIFY_ERRORS
        return
    state = _fresh_state(code)
    result = execute_call(state, "t", "main", [], CTX, GAS)
    assert result.status in ("ok", "failed")
    if not result.ok:
        assert result.error in E.RUNTIME_ERRORS
        assert result.error != E.VM_FAULT, result.error_message
    assert 0 <= result.gas_used <= GAS
    assert result.steps <= GAS
    again_state = _fresh_state(code)
    again = execute_call(again_state, "t", "main", [], CTX, GAS)
    assert _outcome(state, result) == _outcome(again_state, again)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_verifier(data):
    try:
        verify(b"SCVM\x01" + data)
    except VerifyError as exc:
        assert exc.name in E.VERIFY_ERRORS


TOKEN = (ROOT / "contracts_vm" / "examples" / "token.sc.py").read_text()


def corpus_digest(seed: int = 7, count: int = 60) -> str:
    """Digest of results, gas, events and state for a fixed corpus of calls."""
    h = hashlib.sha256()
    rng = random.Random(seed)
    state = MemoryState()
    owner = b"\x01" * 32
    install_contract(state, "token", TOKEN, init_args=[owner], ctx=CallContext(sender=owner))
    accounts = [bytes([i]) * 32 for i in range(1, 6)]
    execute_call(state, "token", "mint", [owner, 10**9], CallContext(sender=owner), 100_000)
    for _ in range(count):
        who, to = rng.choice(accounts), rng.choice(accounts)
        method, args = rng.choice([("transfer", [to, rng.randint(-5, 10**6)]), ("approve", [to, rng.randint(0, 100)]),
                                   ("transfer_from", [who, to, rng.randint(0, 50)]), ("balance_of", [who])])
        r = execute_call(state, "token", method, args, CallContext(sender=who, height=rng.randint(1, 9)), 50_000)
        h.update(repr((r.status, r.error, r.return_value, r.gas_used, r.steps, r.events)).encode())
    h.update(repr(sorted(state.data.items())).encode())
    # the marketplace: records, tuple-keyed prefix iteration, maps built and iterated in views
    examples = ROOT / "contracts_vm" / "examples"
    install_contract(state, "ledger", (examples / "escrow_ledger.sc.py").read_text(), init_args=[owner],
                     ctx=CallContext(sender=owner))
    install_contract(state, "market", (examples / "marketplace.sc.py").read_text(), capabilities=["escrow"],
                     init_args=[owner, owner], ctx=CallContext(sender=owner))
    merchant, carrier = accounts[0], accounts[1]
    execute_call(state, "market", "register_merchant", [merchant], CallContext(sender=owner), 100_000)
    terms = {"accept_blocks": 5, "ship_blocks": 5, "deliver_blocks": 5, "confirm_blocks": 5, "fee_bps": 333,
             "arbiter": accounts[2]}
    orders = []
    for i in range(count // 3):
        buyer = rng.choice(accounts[2:])
        execute_call(state, "ledger", "mint", [buyer, 10**6], CallContext(sender=owner), 100_000)
        r = execute_call(state, "market", "place", [merchant, carrier, [rng.randint(1, 999), 7], terms],
                         CallContext(sender=buyer, height=i), 1_000_000)
        h.update(repr((r.status, r.error, r.return_value, r.gas_used, r.events)).encode())
        if r.ok:
            orders.append(r.return_value)
    for i, oid in enumerate(orders):
        who, method, args = rng.choice([(merchant, "accept", [oid]), (carrier, "poke", [oid]),
                                        (merchant, "reject", [oid]), (carrier, "ship", [oid, b"\x01" * 32])])
        r = execute_call(state, "market", method, args, CallContext(sender=who, height=i + rng.randint(0, 9)), 1_000_000)
        h.update(repr((r.status, r.error, r.return_value, r.gas_used, r.events)).encode())
    for view in (["merchant_stats", [merchant]], ["stats", []], ["orders_of_merchant", [merchant, 50]]):
        r = execute_call(state, "market", view[0], view[1], CallContext(sender=owner), 1_000_000)
        h.update(repr((r.status, r.return_value, r.gas_used)).encode())
    h.update(repr(sorted(state.data.items())).encode())
    # and random verified programs from a seeded generator, with maps of mixed keys
    for i in range(count):
        body = bytes([0x01, 0, rng.randrange(len(SCALARS)), 0x01, 0, rng.randrange(len(SCALARS)), 0x41, 0, 1,
                      0x01, 0, rng.randrange(len(SCALARS)), 0x01, 0, 1, 0x45, 0x35, 0x34])
        code = encode_container(CONSTS, [["main", 0, 0, body], ["f", 1, 2, bytes([0x02, 0, 0, 0x34])]], ABI)
        try:
            verify(code)
        except VerifyError as exc:
            h.update(exc.name.encode())
            continue
        s = _fresh_state(code)
        r = execute_call(s, "t", "main", [], CTX, GAS)
        h.update(repr(_outcome(s, r)).encode())
    return h.hexdigest()


def test_same_results_across_runs():
    assert corpus_digest() == corpus_digest()


@pytest.mark.integration  # child processes with other hash seeds
def test_same_results_across_processes_with_different_hash_seeds():
    digests = set()
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", "from tests.vm.test_vm_properties import corpus_digest; print(corpus_digest())"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
        digests.add(out.stdout.strip())
    digests.add(corpus_digest())
    assert len(digests) == 1, digests
