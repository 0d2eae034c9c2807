"""VM gas prices live in contracts_vm/limits.py, per VM version, and versioning works.

How it works: (a) every contracts_vm module is imported and its namespace scanned for
gas-like int names (``GAS_...``, ``..._GAS``); each must come from limits.py, and no
module but limits.py may assign one at top level (so a price added back elsewhere
fails here). (b) A hypothetical version 2 that reprices ADD is patched in: the same
contract, its header rewritten to version 2, is decoded and run with the new price
while the version-1 code keeps the old one. (c) Version 1's schedule is pinned to
the historical prices: changing one changes every receipt.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path
from types import MappingProxyType

import pytest

import contracts_vm
from contracts_vm import CallContext, bytecode, compile_source, execute_call, install_contract, limits, program
from contracts_vm.memstate import MemoryState
from contracts_vm.opcodes import BY_NAME, OPCODES, opcode_gas

GAS_NAME = re.compile(r"(^|_)GAS(_|$)")
PKG = Path(contracts_vm.__file__).resolve().parent

ADDER = """
@view
def add(a: int, b: int) -> int:
    return a + b
"""


def _modules() -> list:
    names = ["contracts_vm"] + [m.name for m in pkgutil.walk_packages(contracts_vm.__path__, "contracts_vm.")]
    return [importlib.import_module(n) for n in names]


def _gas_ints(namespace: dict) -> dict:
    return {k: v for k, v in namespace.items() if GAS_NAME.search(k) and type(v) is int}


def test_scan_sees_the_gas_constants():
    """The regex and the walk do find gas constants (else the next test proves nothing)."""
    found = _gas_ints(vars(limits))
    assert {"INTRINSIC_GAS", "GAS_PER_CODE_BYTE", "BYTES_PER_GAS", "BYTES_PER_COMPARE_GAS", "GAS_PER_NODE",
            "GAS_PER_WRITTEN_BYTE", "GAS_PER_ITER_ROW", "DEFAULT_INIT_GAS"} <= set(found)
    assert {"contracts_vm.machine", "contracts_vm.system", "contracts_vm.fuse"} <= {m.__name__ for m in _modules()}


def test_no_gas_constant_outside_limits():
    """A gas-like int in any other module is one imported from limits.py, not defined there."""
    defined_elsewhere = []
    for mod in _modules():
        if mod is limits:
            continue
        gas_ints = _gas_ints(vars(mod))
        for name, value in gas_ints.items():
            if getattr(limits, name, None) != value:
                defined_elsewhere.append(f"{mod.__name__}.{name} = {value} is not limits.{name}")
        path = Path(mod.__file__)
        for node in ast.parse(path.read_text()).body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Name) and t.id in gas_ints:
                    defined_elsewhere.append(f"{path.relative_to(PKG.parent)} assigns {t.id}")
    assert defined_elsewhere == []


def test_every_supported_version_has_a_schedule_that_only_reprices_opcodes():
    """The machine charges the module constants (version 1's) for every version; a
    schedule differing in anything but opcode_gas must first be wired where it is charged."""
    v1 = limits.GAS_SCHEDULES[1]
    for version in limits.SUPPORTED_VERSIONS:
        schedule = limits.GAS_SCHEDULES[version]
        assert dataclasses.replace(schedule, opcode_gas=v1.opcode_gas) == v1, version
        assert set(schedule.opcode_gas) <= set(BY_NAME), version


def test_version_1_schedule_is_the_historical_one():
    assert limits.GAS_SCHEDULES[1] == limits.GasSchedule(
        intrinsic=200, per_code_byte=10, per_written_byte=1, per_iter_row=20, per_node=1,
        bytes_per_gas=16, bytes_per_compare_gas=64, opcode_gas={})
    assert (limits.INTRINSIC_GAS, limits.GAS_PER_CODE_BYTE, limits.GAS_PER_WRITTEN_BYTE, limits.GAS_PER_ITER_ROW,
            limits.GAS_PER_NODE, limits.BYTES_PER_GAS, limits.BYTES_PER_COMPARE_GAS) == (200, 10, 1, 20, 1, 16, 64)
    assert (limits.DEFAULT_INIT_GAS, limits.GENESIS_CALL_GAS, limits.REGISTERED_VIEW_GAS) == (
        10_000_000, 5_000_000, 100_000)
    historical = {"CONST": 1, "LOAD": 1, "STORE": 1, "POP": 1, "DUP": 1, "DUP2": 1, "SWAP": 1, "ADD": 2, "SUB": 2,
                  "MUL": 3, "FLOORDIV": 3, "MOD": 3, "POW": 10, "NEG": 2, "EQ": 2, "NE": 2, "LT": 2, "LE": 2,
                  "GT": 2, "GE": 2, "NOT": 1, "IN": 3, "JUMP": 1, "JUMP_IF_FALSE": 1, "JUMP_IF_TRUE": 1,
                  "CALL": 10, "RET": 1, "ITER_PREP": 3, "FOR_ITER": 2, "FOR_RANGE": 2, "REQUIRE": 1,
                  "BUILD_LIST": 2, "BUILD_MAP": 3, "BUILD_RECORD": 3, "UNPACK": 2, "GET_ITEM": 2, "SET_ITEM": 3,
                  "DEL_ITEM": 3, "GET_FIELD": 1, "SET_FIELD": 2, "LEN": 1, "SLICE": 3, "APPEND": 2, "BUILTIN": 3,
                  "SGET": 40, "SGET_DEFAULT": 40, "SPUT": 100, "SDEL": 60, "SHAS": 30, "SITER_ITEMS": 60,
                  "SITER_KEYS": 60, "EMIT": 40, "CTX": 1, "CALL_CONTRACT": 200, "HOST": 5}
    assert {op.name: opcode_gas(op, 1) for op in OPCODES.values()} == historical


def _as_version(code: bytes, version: int) -> bytes:
    at = len(bytecode.MAGIC)
    return code[:at] + bytes([version]) + code[at + 1:]


def test_a_later_version_can_reprice_an_opcode(monkeypatch):
    add = BY_NAME["ADD"]
    monkeypatch.setattr(bytecode, "SUPPORTED_VERSIONS", (1, 2))
    monkeypatch.setitem(limits.GAS_SCHEDULES, 2, dataclasses.replace(
        limits.GAS_SCHEDULES[1], opcode_gas=MappingProxyType({"ADD": add.gas + 50})))
    assert opcode_gas(add, 1) == add.gas and opcode_gas(add, 2) == add.gas + 50

    v1 = compile_source(ADDER).code
    v2 = _as_version(v1, 2)
    for fused in (False, True):
        p1 = program.build_program(v1, b"v1", fused)
        p2 = program.build_program(v2, b"v2", fused)
        assert (p1.version, p2.version) == (1, 2)
        plain1, plain2 = p1.methods["add"].function.plain, p2.methods["add"].function.plain
        diff = [(g1, g2) for (h, _, g1), (_, _, g2) in zip(plain1, plain2) if g1 != g2]
        assert diff == [(add.gas, add.gas + 50)]
        assert all(h is add.handler for (h, _, g1), (_, _, g2) in zip(plain1, plain2) if g1 != g2)

    state = MemoryState()
    ctx = CallContext(sender=b"\xa1" * 32)
    install_contract(state, "old", v1)
    install_contract(state, "new", v2)
    old = execute_call(state, "old", "add", [2, 3], ctx, 10_000)
    new = execute_call(state, "new", "add", [2, 3], ctx, 10_000)
    assert old.ok and new.ok and old.return_value == new.return_value == 5
    assert new.gas_used - old.gas_used == 50


def test_unsupported_version_is_still_refused():
    with pytest.raises(Exception, match="version 2"):
        program.build_program(_as_version(compile_source(ADDER).code, 2), b"x")
