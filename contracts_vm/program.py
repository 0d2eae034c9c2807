"""Verified code, pre-decoded once per code hash into what the interpreter loop runs.

How it works: ``load_program(code)`` verifies the code (verifier.py), then turns every
function's instructions into a Python list of ``(handler, argument, gas)`` tuples
with each immediate already resolved: constants to their values, jump offsets to
list indices, function indices to Function objects, builtins and host functions to
(callable, arity) with their table gas folded into the instruction's gas. An
instruction's base gas is its opcode's price in the code's own VM version
(opcodes.opcode_gas), looked up here, once, not in the interpreter loop. The
result is cached by code hash (bounded), so a contract called a thousand times per
block is decoded once per process. Methods of the ABI get their argument and return
checkers built here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from contracts_vm.builtins import BUILTINS, HOSTS
from contracts_vm.bytecode import code_hash
from contracts_vm.fuse import fuse
from contracts_vm.limits import PROGRAM_CACHE_SIZE
from contracts_vm.opcodes import APPLY_BY_ARITY, CTX_FIELDS, base_gas_table
from contracts_vm.values import parse_type
from contracts_vm.verifier import verify


class Function:
    """One function: ``plain`` has an entry per instruction; ``code`` is what the loop runs
    (fused, see fuse.py) and ``plain_index`` maps its entries back into ``plain``.

    ``code`` is None until the function first runs: fusing compiles Python source, and
    most functions of a contract never run in a given process."""

    __slots__ = ("index", "name", "nparams", "nlocals", "code", "plain", "plain_index")

    def __init__(self, index: int, name: str, nparams: int, nlocals: int) -> None:
        self.index = index
        self.name = name
        self.nparams = nparams
        self.nlocals = nlocals
        self.plain: list = []
        self.code: list | None = self.plain
        self.plain_index: list = []

    def fuse(self) -> list:
        """Fuse the code (once) and return it.

        Fusing is only a faster way to run the same instructions, so a function that is
        too long to be worth compiling, or that the fuser fails on for any reason, runs
        its unfused code, with the same results."""
        if len(self.plain) > FUSE_MAX_INSTRUCTIONS:
            self.code = self.plain
            return self.plain
        try:
            f = fuse(self.name, self.plain)
        except Exception:  # noqa: BLE001 - see docstring: the unfused code is the reference
            self.code = self.plain
            return self.plain
        self.plain_index = f.plain_index
        self.code = f.code
        return f.code


class Slot:
    """A storage variable: its key prefix inside the contract and its key types."""

    __slots__ = ("name", "prefix", "key_types", "default")

    def __init__(self, name: str, key_types: list, default: Any) -> None:
        self.name = name
        self.prefix = name.encode("utf-8") + b"/"
        self.key_types = key_types
        self.default = default


@dataclass
class Method:
    name: str
    function: Function
    kind: str                  # "public" or "view"
    requires: str | None       # capability the calling contract must hold
    arg_checks: list           # one predicate per argument
    arg_types: list
    returns: str
    return_check: Callable[[Any], bool]


@dataclass
class Program:
    code_hash: bytes
    version: int
    functions: list
    methods: dict
    abi: dict


_cache: dict[bytes, Program] = {}
#: Longest function (in instructions) that is fused: compiling costs about 50 us per
#: instruction once per process, so a pathological 20,000-instruction function runs
#: unfused instead (the largest system contract function has about 300).
FUSE_MAX_INSTRUCTIONS = 2048


def load_program(code: bytes, known_hash: bytes | None = None) -> Program:
    """Verified, decoded program for ``code`` (from the cache when seen before)."""
    h = known_hash if known_hash is not None else code_hash(code)
    program = _cache.get(h)
    if program is None:
        program = build_program(code, h)
        if len(_cache) >= PROGRAM_CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[h] = program
    return program


def cached_program(h: bytes) -> Program | None:
    return _cache.get(h)


@contextmanager
def unfused() -> Iterator[None]:
    """Inside the block every cached program runs its unfused code (one dispatch per
    instruction): benchmarks and tests compare the two forms in one process."""
    saved = [(fn, fn.code) for prog in _cache.values() for fn in prog.functions]
    for fn, _ in saved:
        fn.code = fn.plain
    try:
        yield
    finally:
        for fn, code in saved:
            fn.code = code


def build_program(code: bytes, h: bytes, fused: bool = True) -> Program:
    """Verify and decode ``code``; ``fused=False`` keeps one entry per instruction (tests
    compare both forms)."""
    verified = verify(code)
    c = verified.container
    functions = [Function(i, f[0], f[1], f[2]) for i, f in enumerate(c.functions)]
    slots: dict[int, Slot] = {}
    base_gas = base_gas_table(c.version)
    for fn, instrs in zip(functions, verified.instructions):
        index_of = {pc: i for i, (pc, _, _) in enumerate(instrs)}
        for pc, op, imm in instrs:
            arg, extra = _resolve(op, imm, c.consts, functions, index_of, slots)
            handler = op.handler
            if op.imm == "builtin" or op.imm == "host":
                handler = APPLY_BY_ARITY.get(arg[1], handler)
            fn.plain.append((handler, arg, base_gas[op.code] + extra))
    if fused:
        for fn in functions:
            fn.code = None
    records = c.abi["records"]
    methods = {}
    for m in c.abi["methods"]:
        methods[m["name"]] = Method(
            name=m["name"], function=functions[m["function"]], kind=m["kind"], requires=m["requires"],
            arg_checks=[parse_type(t, records) for _, t in m["args"]], arg_types=[t for _, t in m["args"]],
            returns=m["returns"], return_check=parse_type(m["returns"], records))
    return Program(h, c.version, functions, methods, c.abi)


def _resolve(op, imm, consts: list, functions: list, index_of: dict, slots: dict) -> tuple[Any, int]:
    kind = op.imm
    if kind == "none":
        return None, 0
    if kind in ("local", "count"):
        return imm, 0
    if kind == "const" or kind == "field":
        return consts[imm], 0
    if kind == "target":
        return index_of[imm], 0
    if kind == "loop":
        return (imm[0], index_of[imm[1]]), 0
    if kind == "fn":
        return functions[imm], 0
    if kind == "record":
        return tuple(consts[imm]), 0
    if kind == "event":
        return (consts[imm][0], tuple(consts[imm][1])), 0
    if kind == "slot":
        if imm not in slots:
            name, key_types, default = consts[imm]
            slots[imm] = Slot(name, key_types, default)
        return slots[imm], 0
    if kind == "builtin":
        _, arity, gas, fn = BUILTINS[imm]
        return (fn, arity), gas
    if kind == "host":
        _, arity, gas, fn = HOSTS[imm]
        return (fn, arity), gas
    if kind == "ctx":
        return CTX_FIELDS[imm], 0
    raise AssertionError(f"unhandled immediate kind {kind}")
