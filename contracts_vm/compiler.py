"""The contract compiler: a restricted Python subset to VM bytecode, with its ABI.

How it works: the source is parsed by the standard ``ast`` module. A first pass over
the module collects constants (folded at compile time), storage declarations,
records and functions; anything else at module level is a CompileError naming file,
line and column. A second pass compiles each function body to a list of
(mnemonic, immediate) pairs with symbolic labels (emit.py lays them out and builds
the container). Locals get frame slots in order of first assignment; loops keep
their hidden state in extra slots, so the operand stack is empty at every statement
boundary and every jump lands with the height the verifier expects. Nothing depends
on dict order, ids or time: the same source gives the same bytes and code hash.
docs/contract-language.md is the user-facing description of the subset.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from contracts_vm.builtins import HOST_INDEX
from contracts_vm.bytecode import code_hash
from contracts_vm.compile_function import FunctionCompiler
from contracts_vm.compile_model import (BINOPS, FUNCS, KEY_TYPES, SCALAR_TYPES, Func, Module, Storage,
                                        check_const_int)
from contracts_vm.emit import build_container
from contracts_vm.errors import CompileError, VerifyError
from contracts_vm.limits import MAX_CODE_BYTES, MAX_FUNCTIONS
from contracts_vm.values import default_of
from contracts_vm.verifier import verify
from ledger.errors import EncodeError

@dataclass(frozen=True)
class CompiledContract:
    code: bytes
    code_hash: bytes
    abi: dict


def compile_source(source: str, filename: str = "<contract>") -> CompiledContract:
    """Compile contract source; CompileError (file:line:col) for anything unsupported."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise CompileError(filename, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise CompileError(filename, 1, 1, "the source is nested too deeply to parse") from None
    try:
        return _compile_tree(tree, filename)
    except RecursionError:
        raise CompileError(filename, 1, 1, "an expression or block is nested too deeply") from None


def _compile_tree(tree: ast.Module, filename: str) -> CompiledContract:
    mod = Module(filename)
    for node in tree.body:          # records first, so any declaration may name them
        if isinstance(node, ast.ClassDef):
            _declare(mod, node)
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            _declare(mod, node)
    if not any(f.kind for f in mod.functions.values()):
        raise CompileError(filename, 1, 1, "a contract needs at least one @public or @view function")
    if len(mod.functions) > MAX_FUNCTIONS:
        raise CompileError(filename, 1, 1, f"more than {MAX_FUNCTIONS} functions")
    codes = [FunctionCompiler(mod, f).compile() for f in mod.functions.values()]
    abi = _abi(mod)
    try:
        code = build_container(codes, abi)
    except (OverflowError, EncodeError) as exc:
        raise CompileError(filename, 1, 1, f"contract too large for the code format ({exc})") from None
    if len(code) > MAX_CODE_BYTES:
        raise CompileError(filename, 1, 1, f"compiled code of {len(code)} bytes exceeds {MAX_CODE_BYTES}")
    try:
        verify(code)      # the compiler's output must always pass the deploy-time verifier
    except VerifyError as exc:
        raise CompileError(filename, 1, 1, f"compiled code fails verification ({exc}); split the function") from None
    return CompiledContract(code, code_hash(code), abi)


# ---- module level ---------------------------------------------------------------------

def _declare(mod: Module, node: ast.stmt) -> None:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise mod.error(node, "module-level assignment must be NAME = constant")
        name = node.targets[0].id
        _check_new_name(mod, node, name)
        mod.constants[name] = _fold(mod, node.value)
        return
    if isinstance(node, ast.AnnAssign):
        if not isinstance(node.target, ast.Name) or node.value is not None:
            raise mod.error(node, "storage is declared as `name: Type` without a value")
        name = node.target.id
        _check_new_name(mod, node, name)
        ann = node.annotation
        if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id == "Map":
            if not isinstance(ann.slice, ast.Tuple) or len(ann.slice.elts) != 2:
                raise mod.error(ann, "Map takes two types: Map[KeyType, ValueType]")
            key_types = _key_types(mod, ann.slice.elts[0])
            value_type = _type_text(mod, ann.slice.elts[1])
        else:
            key_types = []
            value_type = _type_text(mod, ann)
        mod.storage[name] = Storage(name, key_types, value_type, [name, key_types, default_of(value_type)])
        return
    if isinstance(node, ast.ClassDef):
        _declare_record(mod, node)
        return
    if isinstance(node, ast.FunctionDef):
        _check_new_name(mod, node, node.name)
        kind, requires = _decorators(mod, node)
        mod.functions[node.name] = Func(node, len(mod.functions), kind, requires)
        return
    raise mod.error(node, f"{type(node).__name__} is not allowed at module level "
                          f"(only constants, storage, records and functions)")


def _check_new_name(mod: Module, node: ast.AST, name: str) -> None:
    if name in mod.constants or name in mod.storage or name in mod.records or name in mod.functions:
        raise mod.error(node, f"{name!r} is already defined")
    if name in ("self", "ctx") or name in FUNCS or name in HOST_INDEX or name in (
            "require", "revert", "emit", "call", "len", "range", "Map", "Record"):
        raise mod.error(node, f"{name!r} is a reserved name")


def _declare_record(mod: Module, node: ast.ClassDef) -> None:
    if len(node.bases) != 1 or not isinstance(node.bases[0], ast.Name) or node.bases[0].id != "Record" \
            or node.keywords or node.decorator_list:
        raise mod.error(node, "classes are only allowed as records: `class Name(Record):` with typed fields")
    _check_new_name(mod, node, node.name)
    fields = []
    for item in node.body:
        if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str):
            continue
        if isinstance(item, ast.Pass):
            continue
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name) or item.value is not None:
            raise mod.error(item, "a record body holds only `field: Type` lines")
        if any(f[0] == item.target.id for f in fields):
            raise mod.error(item, f"field {item.target.id!r} declared twice")
        mod.records[node.name] = fields      # allows self-referencing types below
        fields.append([item.target.id, _type_text(mod, item.annotation)])
    if not fields:
        raise mod.error(node, f"record {node.name} has no fields")
    mod.records[node.name] = fields


def _decorators(mod: Module, node: ast.FunctionDef) -> tuple[str | None, str | None]:
    kind = None
    requires = None
    for dec in node.decorator_list:
        if isinstance(dec, ast.Name) and dec.id in ("public", "view"):
            if kind is not None:
                raise mod.error(dec, "a function is either @public or @view, once")
            kind = dec.id
        elif (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id == "requires"
              and len(dec.args) == 1 and not dec.keywords and isinstance(dec.args[0], ast.Constant)
              and isinstance(dec.args[0].value, str)):
            requires = dec.args[0].value
        else:
            raise mod.error(dec, "decorators are @public, @view and @requires(\"capability\")")
    if requires is not None and kind is None:
        raise mod.error(node, "@requires applies to @public or @view functions")
    return kind, requires


def _type_text(mod: Module, node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    if isinstance(node, ast.Name):
        if node.id in SCALAR_TYPES or node.id in mod.records:
            return node.id
        if node.id in ("list", "dict"):
            return "list[any]" if node.id == "list" else "dict[str,any]"
        raise mod.error(node, f"unknown type {node.id!r}")
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id == "list":
            return f"list[{_type_text(mod, node.slice)}]"
        if node.value.id == "dict" and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
            key = _type_text(mod, node.slice.elts[0])
            if key not in KEY_TYPES:
                raise mod.error(node, "dict keys are int, bytes or str")
            return f"dict[{key},{_type_text(mod, node.slice.elts[1])}]"
    raise mod.error(node, "types are int, bytes, str, bool, None, any, list[T], dict[K, V] or a record name")


def _key_types(mod: Module, node: ast.expr) -> list:
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "tuple":
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    elif isinstance(node, ast.Tuple):
        parts = node.elts
    else:
        parts = [node]
    out = []
    for p in parts:
        if not isinstance(p, ast.Name) or p.id not in KEY_TYPES:
            raise mod.error(p, "map keys are int, bytes, str or tuple[...] of those")
        out.append(p.id)
    if not 1 <= len(out) <= 8:
        raise mod.error(node, "a tuple key has 1..8 parts")
    return out


def _fold(mod: Module, node: ast.expr) -> Any:
    """Evaluate a constant expression at compile time."""
    if isinstance(node, ast.Constant):
        v = node.value
        if type(v) in (int, str, bytes, bool) or v is None:
            return check_const_int(mod, node, v)
        raise mod.error(node, f"{type(v).__name__} literals are not supported (use integers in minor units)")
    if isinstance(node, ast.Name) and node.id in mod.constants:
        return mod.constants[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _fold(mod, node.operand)
        if type(v) is not int:
            raise mod.error(node, "unary - needs an int")
        return check_const_int(mod, node, -v)
    if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
        a, b = _fold(mod, node.left), _fold(mod, node.right)
        if type(a) is int and type(b) is int:
            op = type(node.op)
            if op in (ast.FloorDiv, ast.Mod) and b == 0:
                raise mod.error(node, "division by zero in a constant")
            if op is ast.Pow and not 0 <= b <= 255:
                raise mod.error(node, "exponent must be 0..255")
            value = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                     ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b, ast.Pow: lambda: a ** b}[op]()
            return check_const_int(mod, node, value)
        if isinstance(node.op, ast.Add) and type(a) is type(b) and type(a) in (str, bytes):
            return a + b
    raise mod.error(node, "module-level values must be constant expressions of literals")


def _abi(mod: Module) -> dict:
    methods = []
    for name, f in mod.functions.items():
        if f.kind is None:
            continue
        args = []
        for a in f.node.args.args:
            if a.annotation is None:
                raise mod.error(a, f"parameter {a.arg!r} of a {f.kind} method needs a type annotation")
            args.append([a.arg, _type_text(mod, a.annotation)])
        if f.node.returns is None:
            raise mod.error(f.node, f"{f.kind} method {name!r} needs a return annotation (-> None if nothing)")
        methods.append({"name": name, "function": f.index, "kind": f.kind, "requires": f.requires,
                        "args": args, "returns": _type_text(mod, f.node.returns)})
    return {
        "methods": methods,
        "records": {k: v for k, v in mod.records.items()},
        "events": [[name, fields] for name, fields in sorted(mod.events.items())],
        "storage": [[s.name, s.key_types, s.value_type] for s in mod.storage.values()],
    }

