"""What the compiler's passes share: operator tables and the module being compiled.

How it works: compiler.py's first pass fills a ``Module`` (constants, storage,
records, functions, events); compile_function.py and compile_expr.py read it while
compiling each ``Func`` body. The tables map ``ast`` operators and source-level
builtin/method names to VM mnemonics. This module imports nothing else from the
compiler, so the three compiler modules form a chain, not a circle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from contracts_vm.errors import CompileError
from contracts_vm.limits import INT_MAX, INT_MIN

#: ``ast`` arithmetic operator -> VM mnemonic (also the operators folded in constants).
BINOPS = {ast.Add: "ADD", ast.Sub: "SUB", ast.Mult: "MUL", ast.FloorDiv: "FLOORDIV", ast.Mod: "MOD", ast.Pow: "POW"}
#: ``ast`` comparison operator -> VM mnemonic.
CMPOPS = {ast.Eq: "EQ", ast.NotEq: "NE", ast.Lt: "LT", ast.LtE: "LE", ast.Gt: "GT", ast.GtE: "GE"}
#: Type names usable as a scalar annotation.
SCALAR_TYPES = ("int", "bytes", "str", "bool", "any")
#: Type names usable as a map or dict key.
KEY_TYPES = ("int", "bytes", "str")
#: builtin function name in source (same as its BUILTINS name) -> arity
FUNCS = {"min": 2, "max": 2, "abs": 1, "str": 1, "int": 1, "sorted": 1, "int_to_bytes": 1, "bytes_to_int": 1}
#: method name on a value -> (BUILTINS name, arity including the receiver)
METHODS = {"pop": ("pop", 1), "keys": ("keys", 1), "values": ("values", 1), "items": ("items", 1),
           "encode": ("encode", 1), "decode": ("decode", 1), "hex": ("hex", 1), "startswith": ("startswith", 2)}


@dataclass
class Storage:
    """One storage declaration: a scalar (no key types) or a map."""
    name: str
    key_types: list       # [] for a scalar
    value_type: str
    const: list           # slot descriptor [name, key_types, default]


@dataclass
class Func:
    """One function of the contract, numbered in order of declaration."""
    node: ast.FunctionDef
    index: int
    kind: str | None      # "public", "view" or None (internal)
    requires: str | None


class Module:
    """The declarations of one source file, collected by the compiler's first pass."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.constants: dict[str, Any] = {}
        self.storage: dict[str, Storage] = {}
        self.records: dict[str, list] = {}
        self.functions: dict[str, Func] = {}
        self.events: dict[str, list] = {}

    def error(self, node: ast.AST, message: str) -> CompileError:
        return CompileError(self.filename, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, message)


def check_const_int(mod: Module, node: ast.AST, v: Any) -> Any:
    """Return ``v``; CompileError at ``node`` if it is an int outside the VM's range."""
    if type(v) is int and not INT_MIN <= v <= INT_MAX:
        raise mod.error(node, f"integer {v} outside [{INT_MIN}, {INT_MAX}]")
    return v
