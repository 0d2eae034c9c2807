"""The VM's entry points: revert on failure, views, install, governed deploy, examples.

Also checks the import rule of DESIGN.md section 1 for contracts_vm and that the fast
scalar codec produces exactly the canonical encoding.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts_vm import CallContext, VMError, compile_source, execute_call, execute_view, get_contract_info, install_contract
from contracts_vm.deploy import apply_deploy, decode_deploy, encode_deploy, install_deploy, make_deploy
from contracts_vm.memstate import MemoryState
from contracts_vm.values import _decode_scalar, _encode_scalar
from ledger.encoding import encode
from ledger.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contracts_vm" / "examples"
ADMIN = b"\xad" * 32
ALICE = b"\xa1" * 32
BOB = b"\xb0" * 32

COUNTER = """
count: int
log: Map[int, str]

@public
def init(start: int) -> None:
    self.count = start

@public
def bump(note: str, fail: bool) -> int:
    self.count += 1
    self.log[self.count] = note
    emit(Bumped, n=self.count)
    require(not fail, "asked to fail")
    return self.count

@view
def get() -> int:
    return self.count

@view
def sneaky() -> int:
    self.count = 99
    return 0
"""


def _state_with_counter() -> MemoryState:
    state = MemoryState()
    install_contract(state, "counter", COUNTER, init_args=[10], ctx=CallContext(sender=ADMIN))
    return state


def test_failed_call_reverts_everything_and_charges_gas():
    state = _state_with_counter()
    before = state.snapshot()
    r = execute_call(state, "counter", "bump", ["x", True], CallContext(sender=ALICE), 50_000)
    assert (r.status, r.error, r.error_message) == ("failed", "RequireFailed", "asked to fail")
    assert r.gas_used > 200 and r.events == []
    assert state.snapshot() == before


def test_successful_call_keeps_changes_and_events():
    state = _state_with_counter()
    r = execute_call(state, "counter", "bump", ["x", False], CallContext(sender=ALICE), 50_000)
    assert r.ok and r.return_value == 11 and r.events == [("counter", "Bumped", {"n": 11})]
    assert execute_view(state, "counter", "get", [], CallContext(sender=ALICE), 10_000).return_value == 11


def test_views_never_change_state():
    state = _state_with_counter()
    before = state.snapshot()
    assert execute_view(state, "counter", "bump", ["x", False], CallContext(sender=ALICE), 50_000).error == "ReadOnlyViolation"
    assert execute_call(state, "counter", "sneaky", [], CallContext(sender=ALICE), 50_000).error == "ReadOnlyViolation"
    assert state.snapshot() == before


def test_gas_limit_validation_and_unknown_contract():
    state = _state_with_counter()
    assert execute_call(state, "counter", "get", [], CallContext(sender=ALICE), -1).error == "BadArguments"
    assert execute_call(state, "nobody", "get", [], CallContext(sender=ALICE), 10_000).error == "UnknownContract"
    assert execute_call(state, "counter", "get", "notalist", CallContext(sender=ALICE), 10_000).error == "BadArguments"


def test_failed_init_installs_nothing():
    state = MemoryState()
    with pytest.raises(VMError) as info:
        install_contract(state, "counter", COUNTER.replace("self.count = start", "require(start > 0, 'no')"),
                         init_args=[0])
    assert info.value.name == "RequireFailed"
    assert state.snapshot() == {}


def test_contract_info_and_bad_names():
    state = _state_with_counter()
    info = get_contract_info(state, "counter")
    assert info["code_hash"] == compile_source(COUNTER).code_hash and info["capabilities"] == []
    assert get_contract_info(state, "missing") is None
    with pytest.raises(VMError):
        install_contract(state, "Bad-Name", COUNTER)


# ---- governed deploy ----------------------------------------------------------------------

def test_deploy_payload_round_trip():
    code = compile_source(COUNTER).code
    tx = make_deploy("deploy", "counter", code, ["b", "a"], [5])
    again = decode_deploy(encode_deploy(tx))
    assert again == tx and again.capabilities == ["a", "b"]
    for bad in (b"\x01", encode(["other/tag", "deploy", "n", b"", b"", {}, [], None]),
                encode(["shopchain/deploy/v1", "destroy", "n", b"", b"", {}, [], None])):
        with pytest.raises(ValidationError):
            decode_deploy(bad)


def test_no_key_may_deploy_directly_any_more():
    """Issue 14: the former platform admin is refused like everyone; only governance installs code."""
    state = MemoryState()
    tx = make_deploy("deploy", "counter", compile_source(COUNTER).code, (), [1])
    for sender in (ALICE, ADMIN, b"\x00" * 32):
        denied = apply_deploy(state, tx, CallContext(sender=sender), 10**7)
        assert denied.error == "PermissionDenied" and "governance" in denied.error_message
    assert get_contract_info(state, "counter") is None


def test_install_deploy_installs_once():
    state = MemoryState()
    tx = make_deploy("deploy", "counter", compile_source(COUNTER).code, (), [1])
    ok = install_deploy(state, tx, CallContext(sender=ADMIN), 10**7)
    assert ok.ok and ok.return_value == tx.code_hash
    assert install_deploy(state, tx, CallContext(sender=ADMIN), 10**7).error == "BadArguments"  # exists already


def test_upgrade_keeps_storage_and_checks_hash_and_abi():
    state = MemoryState()
    ctx = CallContext(sender=ADMIN)
    install_deploy(state, make_deploy("deploy", "counter", compile_source(COUNTER).code, (), [7]), ctx, 10**7)
    v2 = compile_source(COUNTER + "\n@view\ndef double() -> int:\n    return self.count * 2\n").code
    assert install_deploy(state, make_deploy("upgrade", "other", v2), ctx, 10**7).error == "UnknownContract"
    tx = make_deploy("upgrade", "counter", v2)
    forged = type(tx)(tx.action, tx.name, tx.code, b"\x00" * 32, tx.abi, tx.capabilities)
    assert install_deploy(state, forged, ctx, 10**7).error == "InvalidCode"
    wrong_abi = type(tx)(tx.action, tx.name, tx.code, tx.code_hash, {"methods": []}, tx.capabilities)
    assert install_deploy(state, wrong_abi, ctx, 10**7).error == "InvalidCode"
    assert install_deploy(state, tx, ctx, 10**7).ok
    assert execute_view(state, "counter", "double", [], CallContext(sender=ALICE), 10_000).return_value == 14
    bad = make_deploy("upgrade", "counter", v2)
    broken = type(bad)(bad.action, bad.name, b"SCVM\x01\xc1", bad.code_hash, bad.abi, bad.capabilities)
    assert not install_deploy(state, broken, ctx, 10**7).ok
    too_little_gas = install_deploy(state, tx, ctx, 10)
    assert too_little_gas.error == "OutOfGas"


# ---- the example contracts ------------------------------------------------------------------

def _market():
    state = MemoryState()
    install_contract(state, "ledger", (EXAMPLES / "escrow_ledger.sc.py").read_text(), init_args=[ADMIN],
                     ctx=CallContext(sender=ADMIN))
    install_contract(state, "market", (EXAMPLES / "marketplace.sc.py").read_text(), capabilities=["escrow"],
                     init_args=[ADMIN, b"\xf0" * 32], ctx=CallContext(sender=ADMIN))
    assert execute_call(state, "ledger", "mint", [ALICE, 100_000], CallContext(sender=ADMIN), 100_000).ok
    assert execute_call(state, "market", "register_merchant", [BOB], CallContext(sender=ADMIN), 100_000).ok
    return state


TERMS = {"accept_blocks": 10, "ship_blocks": 10, "deliver_blocks": 10, "confirm_blocks": 10, "fee_bps": 250,
         "arbiter": b"\xab" * 32}
CARRIER = b"\xca" * 32


def _call(state, who, method, args, height=1, contract="market"):
    return execute_call(state, contract, method, args, CallContext(sender=who, height=height), 1_000_000)


def _balance(state, who):
    return execute_view(state, "ledger", "balance_of", [who], CallContext(sender=who), 100_000).return_value


def test_marketplace_happy_path_conserves_money():
    state = _market()
    oid = _call(state, ALICE, "place", [BOB, CARRIER, [1000, 2001], TERMS]).return_value
    assert _balance(state, ALICE) == 100_000 - 3001
    assert _call(state, BOB, "accept", [oid], 2).ok
    assert _call(state, CARRIER, "ship", [oid, b"\x01" * 32], 3).ok
    assert _call(state, BOB, "deliver", [oid, b"p"], 4).error == "RequireFailed"   # only the named carrier
    assert _call(state, CARRIER, "deliver", [oid, b"p"], 4).ok
    assert _call(state, ALICE, "confirm", [oid], 5).ok
    fee = 3001 * 250 // 10000
    assert _balance(state, BOB) == 3001 - fee and _balance(state, b"\xf0" * 32) == fee
    escrow = execute_view(state, "ledger", "escrow_of", [oid], CallContext(sender=ALICE), 100_000).return_value
    assert escrow == 0
    assert _call(state, ALICE, "orders_of_buyer", [ALICE, 10]).return_value == [oid]


def test_marketplace_timeouts_and_rulings():
    state = _market()
    oid = _call(state, ALICE, "place", [BOB, CARRIER, [500], TERMS]).return_value
    assert _call(state, CARRIER, "poke", [oid], 5).return_value == 1          # before the deadline: nothing
    assert _call(state, CARRIER, "poke", [oid], 50).return_value == 4         # accept-by passed: cancelled
    assert _balance(state, ALICE) == 100_000
    oid2 = _call(state, ALICE, "place", [BOB, CARRIER, [800], TERMS]).return_value
    assert _call(state, BOB, "accept", [oid2], 2).ok
    assert _call(state, ALICE, "dispute", [oid2, b"evidence"], 3).ok
    assert _call(state, ALICE, "rule", [oid2, 800, 0], 4).error == "RequireFailed"
    assert _call(state, b"\xab" * 32, "rule", [oid2, 500, 301], 4).error == "RequireFailed"   # exceeds escrow
    assert _call(state, b"\xab" * 32, "rule", [oid2, 500, 250], 4).ok
    assert _balance(state, ALICE) == 100_000 - 300 and _balance(state, BOB) == 250


def test_marketplace_lock_requires_the_capability():
    state = _market()
    install_contract(state, "fake", (EXAMPLES / "marketplace.sc.py").read_text(), init_args=[ADMIN, ADMIN],
                     ctx=CallContext(sender=ADMIN))
    _call(state, ADMIN, "register_merchant", [BOB], contract="fake")
    r = _call(state, ALICE, "place", [BOB, CARRIER, [500], TERMS], contract="fake")
    assert r.error == "PermissionDenied"
    assert _balance(state, ALICE) == 100_000


# ---- codec and import rules -------------------------------------------------------------------

SCALARS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.binary(max_size=300), st.text(max_size=100),
                    st.booleans(), st.none())


@settings(max_examples=500, deadline=None)
@given(SCALARS)
def test_fast_scalar_codec_is_the_canonical_encoding(value):
    fast = _encode_scalar(value)
    assert fast == encode(value)
    assert _decode_scalar(fast) == (True, value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=12))
def test_fast_scalar_decoder_accepts_only_canonical_bytes(data):
    ok, value = _decode_scalar(data)
    if ok:
        assert encode(value) == data


def test_contracts_vm_imports_only_ledger_and_safe_stdlib():
    forbidden = {"asyncio", "time", "random", "os", "consensus", "p2p", "node", "cli", "threading", "socket"}
    for path in (ROOT / "contracts_vm").rglob("*.py"):
        if path.name.endswith(".sc.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
