"""Conformance vectors (tests/vectors/vm_conformance.json): every row, plus coverage.

Each row is data: code (assembly lines, contract source or raw code hex), the initial
storage of contract "t", other contracts it calls, the gas limit, and the expected
result or error name. The coverage tests make sure every opcode, builtin, host
function and error name appears in at least one row, so adding an opcode without a
vector fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts_vm import errors as E
from contracts_vm.api import CallContext, execute_call, execute_view, install_contract
from contracts_vm.builtins import BUILTINS, HOSTS
from contracts_vm.bytecode import assemble, decode_container, decode_instructions
from contracts_vm.compiler import compile_source
from contracts_vm.errors import VerifyError
from contracts_vm.machine import storage_prefix
from contracts_vm.memstate import MemoryState
from contracts_vm.opcodes import OPCODES
from contracts_vm.values import encode_key
from contracts_vm.verifier import verify
from ledger.encoding import encode

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "vm_conformance.json").read_text())
ROWS = VECTORS["rows"]


def untag(v):
    if isinstance(v, dict):
        if "$b" in v:
            return bytes.fromhex(v["$b"])
        if "$m" in v:
            return {untag(k): untag(x) for k, x in v["$m"]}
        raise ValueError(f"untagged JSON object in a vector: {v}")
    if isinstance(v, list):
        return [untag(x) for x in v]
    return v


def row_code(row) -> bytes:
    if "asm" in row:
        return assemble("\n".join(row["asm"]), abi=row.get("abi"))
    if "source" in row:
        return compile_source(row["source"], row["name"]).code
    return bytes.fromhex(row["code_hex"])


def storage_key(contract: str, slot: str, key_types: list, key) -> bytes:
    base = storage_prefix(contract) + slot.encode() + b"/"
    return base + (encode_key(untag(key), key_types) if key_types else b"")


def run_row(row):
    state = MemoryState()
    for name, spec in sorted(row.get("contracts", {}).items()):
        code = assemble("\n".join(spec["asm"]), abi=spec.get("abi"))
        install_contract(state, name, code, spec.get("capabilities", ()))
    for key_hex, value_hex in row.get("raw_state", []):
        state.put(bytes.fromhex(key_hex), bytes.fromhex(value_hex))
    code = row_code(row)
    install_contract(state, "t", code, row.get("capabilities", ()))
    for slot, key_types, key, value in row.get("state", []):
        state.put(storage_key("t", slot, key_types, key), encode(untag(value)))
    ctx_fields = untag(row.get("ctx", {"$m": []})) if isinstance(row.get("ctx"), dict) else {}
    ctx = CallContext(sender=ctx_fields.get("sender", b"\x01" * 32), height=ctx_fields.get("height", 1),
                      timestamp_ms=ctx_fields.get("timestamp_ms", 0), chain_id=ctx_fields.get("chain_id", "test"),
                      tx_id=ctx_fields.get("tx_id", b""))
    run = execute_view if row.get("view") else execute_call
    return state, run(state, "t", row["method"], untag(row["args"]), ctx, row["gas"])


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_vector(row):
    expect = row["expect"]
    if "verify_error" in expect:
        with pytest.raises(VerifyError) as info:
            verify(row_code(row))
        assert info.value.name == expect["verify_error"], str(info.value)
        return
    state, result = run_row(row)
    if "error" in expect:
        assert (result.status, result.error) == ("failed", expect["error"]), result
        assert result.events == []
    else:
        assert result.status == "ok", result
        assert result.return_value == untag(expect["result"])
        assert type(result.return_value) is type(untag(expect["result"]))
    if "error_message" in row:
        assert result.error_message == row["error_message"]
    if "gas_used" in row:
        assert result.gas_used == row["gas_used"]
    assert 0 <= result.gas_used <= row["gas"]
    assert result.steps <= row["gas"]
    if "events" in row:
        assert [[c, n, d] for c, n, d in result.events] == [[c, n, untag(d)] for c, n, d in row["events"]]
    if "state_after" in row:
        stored = {k: v for k, v in state.data.items() if k.startswith(storage_prefix("t"))}
        expected = {storage_key("t", s, kt, k): encode(untag(v)) for s, kt, k, v in row["state_after"]}
        assert stored == expected


def _used_opcodes() -> set:
    used = set()
    for row in ROWS:
        if row["expect"].get("verify_error"):
            continue
        c = decode_container(row_code(row))
        for fn in c.functions:
            used.update(op.name for _, op, _ in decode_instructions(fn[3]))
    return used


def test_every_opcode_has_a_vector():
    missing = {op.name for op in OPCODES.values()} - _used_opcodes()
    assert not missing, f"opcodes without a conformance row: {sorted(missing)}"


def test_every_builtin_and_host_function_has_a_vector():
    text = json.dumps(ROWS)
    missing = [name for name, *_ in BUILTINS if f"BUILTIN {name}" not in text]
    missing += [name for name, *_ in HOSTS if f"HOST {name}" not in text]
    assert not missing


def test_every_error_has_a_vector():
    seen = {r["expect"].get("error") for r in ROWS} | {r["expect"].get("verify_error") for r in ROWS}
    wanted = (set(E.RUNTIME_ERRORS) - {E.VM_FAULT}) | set(E.VERIFY_ERRORS)
    assert not wanted - seen, f"errors without a conformance row: {sorted(wanted - seen)}"


def test_at_least_200_rows_each_with_a_comment():
    assert len(ROWS) >= 200
    assert all(r["comment"] for r in ROWS)
    assert len({r["name"] for r in ROWS}) == len(ROWS)
