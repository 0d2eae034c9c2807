"""Compile one function body: statements and expressions to VM instructions.

How it works: a recursive walk over the function's ``ast`` that appends
(mnemonic, immediate) pairs to a FunctionCode. Expressions leave exactly one value
on the operand stack; statements leave none, which keeps stack heights equal at
every label. Names are frame slots (parameters first, then locals by first
assignment); loops use hidden slots for their sequence and index. Anything not in
the language is a CompileError at the offending node.
"""

from __future__ import annotations

import ast
from typing import Any

from contracts_vm.compile_expr import ExprCompiler
from contracts_vm.compile_model import BINOPS, Func, Module
from contracts_vm.emit import FunctionCode, Label
from contracts_vm.limits import MAX_LOCALS

_UNSUPPORTED_STMT = {
    ast.Try: "try/except is not supported: use require(cond, message)",
    ast.With: "with is not supported",
    ast.Import: "imports are not allowed in contracts",
    ast.ImportFrom: "imports are not allowed in contracts",
    ast.Global: "global is not supported: storage is self.name",
    ast.Nonlocal: "nonlocal is not supported",
    ast.Assert: "assert is not supported: use require(cond, message)",
    ast.Raise: "raise is not supported: use revert(message)",
    ast.ClassDef: "classes are only allowed at module level, as records",
    ast.FunctionDef: "nested functions are not supported",
    ast.AsyncFunctionDef: "async is not supported",
    ast.AsyncFor: "async is not supported",
    ast.AsyncWith: "async is not supported",
}


class _Loop:
    def __init__(self, head: Label, end: Label) -> None:
        self.head = head
        self.end = end


class FunctionCompiler(ExprCompiler):
    def __init__(self, mod: Module, func: Func) -> None:
        self.mod = mod
        self.func = func
        node = func.node
        self.slots: dict[str, int] = {}
        self.nslots = 0
        self.loops: list[_Loop] = []
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.kw_defaults or args.posonlyargs:
            raise mod.error(node, "parameters are plain positional names (no defaults, *args, **kwargs)")
        for a in args.args:
            if a.arg == "self":
                raise mod.error(a, "functions take no self parameter: storage is reached as self.name")
            if a.arg in self.slots:
                raise mod.error(a, f"parameter {a.arg!r} repeated")
            self._slot(a, a.arg)
        self.code = FunctionCode(node.name, len(args.args))

    # ---- helpers ------------------------------------------------------------------

    def error(self, node: ast.AST, message: str):
        return self.mod.error(node, message)

    def emit(self, name: str, imm: Any = None) -> None:
        self.code.instrs.append((name, imm))

    def label(self, lbl: Label) -> None:
        self.code.instrs.append(("LABEL", lbl))

    def _slot(self, node: ast.AST, name: str) -> int:
        if name not in self.slots:
            self.slots[name] = self._hidden(node, 1)
        return self.slots[name]

    def _hidden(self, node: ast.AST, count: int) -> int:
        base = self.nslots
        self.nslots += count
        if self.nslots > MAX_LOCALS:
            raise self.error(node, f"more than {MAX_LOCALS} local variables in one function")
        return base

    def compile(self) -> FunctionCode:
        body = self.func.node.body
        for stmt in body:
            self.stmt(stmt)
        self.emit("CONST", None)
        self.emit("RET")
        self.code.nlocals = self.nslots
        return self.code

    # ---- statements ---------------------------------------------------------------

    def stmt(self, node: ast.stmt) -> None:
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            message = _UNSUPPORTED_STMT.get(type(node), f"{type(node).__name__} statements are not supported")
            raise self.error(node, message)
        method(node)

    def stmt_Pass(self, node: ast.Pass) -> None:
        pass

    def stmt_Expr(self, node: ast.Expr) -> None:
        v = node.value
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            return  # docstring or comment string
        if not isinstance(v, ast.Call):
            raise self.error(node, "an expression statement must be a call")
        if self.call(v, statement=True):
            self.emit("POP")

    def stmt_Return(self, node: ast.Return) -> None:
        if node.value is None:
            self.emit("CONST", None)
        else:
            self.expr(node.value)
        self.emit("RET")

    def stmt_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) != 1:
            raise self.error(node, "chained assignment (a = b = ...) is not supported")
        target = node.targets[0]
        if isinstance(target, (ast.Tuple, ast.List)):
            names = []
            for elt in target.elts:
                if not isinstance(elt, ast.Name):
                    raise self.error(elt, "unpacking assigns to plain names only")
                names.append(elt)
            self.expr(node.value)
            self.emit("UNPACK", len(names))
            for elt in reversed(names):
                self.emit("STORE", self._slot(elt, self._local_name(elt)))
            return
        self.assign(target, node.value)

    def _local_name(self, node: ast.Name) -> str:
        name = node.id
        if name in self.mod.constants or name in self.mod.functions or name in self.mod.records \
                or name in ("self", "ctx"):
            raise self.error(node, f"cannot assign to {name!r}: it is a constant, function, record or reserved")
        return name

    def assign(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.expr(value)
            self.emit("STORE", self._slot(target, self._local_name(target)))
        elif isinstance(target, ast.Subscript):
            slot = self._storage_of(target.value)
            if slot is not None:
                self._require_map(target, slot)
                self.key(target.slice)
                self.expr(value)
                self.emit("SPUT", slot.const)
                return
            if isinstance(target.slice, ast.Slice):
                raise self.error(target, "assignment to a slice is not supported")
            stored = self._load_for_update(target.value)
            self.expr(target.slice)
            self.expr(value)
            self.emit("SET_ITEM")
            self._write_back(stored)
        elif isinstance(target, ast.Attribute):
            slot = self._storage_of(target)
            if slot is not None:
                self._require_scalar(target, slot)
                self.emit("CONST", None)
                self.expr(value)
                self.emit("SPUT", slot.const)
                return
            self._no_ctx(target)
            stored = self._load_for_update(target.value)
            self.expr(value)
            self.emit("SET_FIELD", target.attr)
            self._write_back(stored)
        else:
            raise self.error(target, f"cannot assign to {type(target).__name__}")

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        op = BINOPS.get(type(node.op))
        if op is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not supported")
        t = node.target
        if isinstance(t, ast.Name):
            self.expr(t)
            self.expr(node.value)
            self.emit(op)
            self.emit("STORE", self._slot(t, self._local_name(t)))
        elif isinstance(t, ast.Subscript):
            slot = self._storage_of(t.value)
            if slot is not None:
                self._require_map(t, slot)
                self.key(t.slice)
                self.emit("DUP")
                self.emit("CONST", slot.const[2])
                self.emit("SGET_DEFAULT", slot.const)
                self.expr(node.value)
                self.emit(op)
                self.emit("SPUT", slot.const)
                return
            if isinstance(t.slice, ast.Slice):
                raise self.error(t, "assignment to a slice is not supported")
            stored = self._load_for_update(t.value)
            self.expr(t.slice)
            self.emit("DUP2")
            self.emit("GET_ITEM")
            self.expr(node.value)
            self.emit(op)
            self.emit("SET_ITEM")
            self._write_back(stored)
        elif isinstance(t, ast.Attribute):
            slot = self._storage_of(t)
            if slot is not None:
                self._require_scalar(t, slot)
                self.emit("CONST", None)
                self.emit("DUP")
                self.emit("SGET", slot.const)
                self.expr(node.value)
                self.emit(op)
                self.emit("SPUT", slot.const)
                return
            self._no_ctx(t)
            stored = self._load_for_update(t.value)
            self.emit("DUP")
            self.emit("GET_FIELD", t.attr)
            self.expr(node.value)
            self.emit(op)
            self.emit("SET_FIELD", t.attr)
            self._write_back(stored)
        else:
            raise self.error(t, f"cannot assign to {type(t).__name__}")

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None or not isinstance(node.target, ast.Name):
            raise self.error(node, "a local annotation needs a value: name: T = value")
        self.assign(node.target, node.value)

    def stmt_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if not isinstance(t, ast.Subscript) or isinstance(t.slice, ast.Slice):
                raise self.error(t, "del takes m[key] or self.m[key]")
            slot = self._storage_of(t.value)
            if slot is not None:
                self._require_map(t, slot)
                self.key(t.slice)
                self.emit("SDEL", slot.const)
            else:
                stored = self._load_for_update(t.value)
                self.expr(t.slice)
                self.emit("DEL_ITEM")
                self._write_back(stored)

    def stmt_If(self, node: ast.If) -> None:
        else_label, end = Label(), Label()
        self.expr(node.test)
        self.emit("JUMP_IF_FALSE", else_label)
        for s in node.body:
            self.stmt(s)
        if node.orelse:
            self.emit("JUMP", end)
        self.label(else_label)
        for s in node.orelse:
            self.stmt(s)
        self.label(end)

    def stmt_While(self, node: ast.While) -> None:
        if node.orelse:
            raise self.error(node, "while ... else is not supported")
        head, end = Label(), Label()
        self.label(head)
        self.expr(node.test)
        self.emit("JUMP_IF_FALSE", end)
        self._body(node.body, head, end)
        self.emit("JUMP", head)
        self.label(end)

    def _body(self, body: list, head: Label, end: Label) -> None:
        self.loops.append(_Loop(head, end))
        for s in body:
            self.stmt(s)
        self.loops.pop()

    def stmt_Break(self, node: ast.Break) -> None:
        if not self.loops:
            raise self.error(node, "break outside a loop")
        self.emit("JUMP", self.loops[-1].end)

    def stmt_Continue(self, node: ast.Continue) -> None:
        if not self.loops:
            raise self.error(node, "continue outside a loop")
        self.emit("JUMP", self.loops[-1].head)

    def stmt_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self.error(node, "for ... else is not supported")
        head, end = Label(), Label()
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
            if it.keywords or not 1 <= len(it.args) <= 3:
                raise self.error(it, "range takes 1 to 3 positional arguments")
            base = self._hidden(node, 4)
            start, stop, step = (([ast.Constant(0)] + it.args) if len(it.args) == 1 else it.args) + \
                [ast.Constant(1)] * (3 - max(len(it.args), 2))
            for i, e in enumerate((start, stop, step)):
                self.expr(e)
                self.emit("STORE", base + i)
            self.label(head)
            self.emit("FOR_RANGE", (base, end))
            item = base + 3
        else:
            base = self._hidden(node, 3)
            self.expr(it)
            self.emit("ITER_PREP")
            self.emit("STORE", base)
            self.emit("CONST", 0)
            self.emit("STORE", base + 1)
            self.label(head)
            self.emit("FOR_ITER", (base, end))
            item = base + 2
        self.emit("LOAD", item)
        self.store_target(node.target)
        self._body(node.body, head, end)
        self.emit("JUMP", head)
        self.label(end)

    def store_target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.emit("STORE", self._slot(target, self._local_name(target)))
        elif isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts):
            self.emit("UNPACK", len(target.elts))
            for elt in reversed(target.elts):
                self.emit("STORE", self._slot(elt, self._local_name(elt)))
        else:
            raise self.error(target, "a loop variable is a name or a tuple of names")

    # ---- storage ------------------------------------------------------------------

    def _storage_of(self, node: ast.expr):
        """The storage declaration ``node`` (self.name) refers to, or None."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            slot = self.mod.storage.get(node.attr)
            if slot is None:
                raise self.error(node, f"no storage named {node.attr!r} (declare `{node.attr}: Type` at module level)")
            return slot
        return None

    def _require_map(self, node: ast.AST, slot) -> None:
        if not slot.key_types:
            raise self.error(node, f"self.{slot.name} is a scalar, not a Map")

    def _require_scalar(self, node: ast.AST, slot) -> None:
        if slot.key_types:
            raise self.error(node, f"self.{slot.name} is a Map: use self.{slot.name}[key]")

    def key(self, node: ast.expr) -> None:
        if isinstance(node, ast.Tuple):
            for e in node.elts:
                self.expr(e)
            self.emit("BUILD_LIST", len(node.elts))
        else:
            self.expr(node)

    def _stored(self, node: ast.expr):
        """(slot, key node or None) when ``node`` reads one stored value: self.x or self.m[k]."""
        if isinstance(node, ast.Attribute):
            slot = self._storage_of(node)
            if slot is not None and not slot.key_types:
                return slot, None
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            slot = self._storage_of(node.value)
            if slot is not None and slot.key_types:
                return slot, node.slice
        return None

    def _reads_storage(self, node: ast.expr) -> bool:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if self._storage_of(node) is not None:
                return True
            node = node.value
        return False

    def _load_for_update(self, container: ast.expr):
        """Push the container an assignment modifies; for a stored value push [key, value, value]
        so that ``_write_back`` can store the modified value under the same key."""
        stored = self._stored(container)
        if stored is None:
            if self._reads_storage(container):
                raise self.error(container, "cannot modify a value nested this deep in storage: "
                                            "read it into a local, change it, and assign it back")
            self.expr(container)
            return None
        slot, key_node = stored
        if key_node is None:
            self.emit("CONST", None)
        else:
            self.key(key_node)
        self.emit("DUP")
        self.emit("SGET", slot.const)
        self.emit("DUP")
        return slot

    def _write_back(self, slot) -> None:
        if slot is not None:
            self.emit("SPUT", slot.const)

    def _no_ctx(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "ctx":
            raise self.error(node, "ctx fields are read-only")
