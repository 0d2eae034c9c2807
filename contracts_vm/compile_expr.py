"""Compile expressions and calls; mixed into the function compiler.

How it works: each ``expr_<NodeType>`` method leaves exactly one value on the operand
stack. ``call`` handles every call form (language statements such as require/emit,
builtins, host functions, record constructors, internal functions, contract calls,
storage and value methods) and reports whether it pushed a value, so a call used as
a statement is followed by POP only when needed. Unsupported forms raise
CompileError at the node, with a hint where one helps.
"""

from __future__ import annotations

import ast

from contracts_vm.builtins import HOSTS, HOST_INDEX
from contracts_vm.compile_model import BINOPS, CMPOPS, FUNCS, METHODS, check_const_int
from contracts_vm.emit import Label
from contracts_vm.limits import MAX_CONTAINER_ITEMS
from contracts_vm.opcodes import CTX_FIELDS, MAX_CALL_ARGS

_UNSUPPORTED_EXPR = {
    ast.Lambda: "lambda is not supported: define an internal function",
    ast.ListComp: "comprehensions are not supported: use a for loop",
    ast.SetComp: "comprehensions are not supported: use a for loop",
    ast.DictComp: "comprehensions are not supported: use a for loop",
    ast.GeneratorExp: "generators are not supported: use a for loop",
    ast.JoinedStr: "f-strings are not supported: concatenate with + and str()",
    ast.Set: "sets are not supported: use a map",
    ast.Starred: "* unpacking is not supported",
    ast.Await: "await is not supported",
    ast.Yield: "yield is not supported",
    ast.YieldFrom: "yield is not supported",
    ast.NamedExpr: "the := operator is not supported",
}


class ExprCompiler:
    def expr(self, node: ast.expr) -> None:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, _UNSUPPORTED_EXPR.get(type(node), f"{type(node).__name__} is not supported"))
        method(node)

    def expr_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if type(v) not in (int, str, bytes, bool) and v is not None:
            raise self.error(node, f"{type(v).__name__} literals are not supported (use integers in minor units)")
        self.emit("CONST", check_const_int(self.mod, node, v))

    def expr_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in self.slots:
            self.emit("LOAD", self.slots[name])
        elif name in self.mod.constants:
            self.emit("CONST", self.mod.constants[name])
        elif name in self.mod.functions or name in self.mod.records:
            raise self.error(node, f"{name!r} can only be called, not used as a value")
        else:
            raise self.error(node, f"unknown name {name!r} (not a local assigned before, parameter or constant)")

    def expr_BinOp(self, node: ast.BinOp) -> None:
        op = BINOPS.get(type(node.op))
        if op is None:
            if isinstance(node.op, ast.Div):
                raise self.error(node, "/ is not supported: use // (floor division) and %")
            raise self.error(node, f"operator {type(node.op).__name__} is not supported")
        self.expr(node.left)
        self.expr(node.right)
        self.emit(op)

    def expr_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.USub):
            if isinstance(node.operand, ast.Constant) and type(node.operand.value) is int:
                self.emit("CONST", check_const_int(self.mod, node, -node.operand.value))
                return
            self.expr(node.operand)
            self.emit("NEG")
        elif isinstance(node.op, ast.Not):
            self.expr(node.operand)
            self.emit("NOT")
        else:
            raise self.error(node, f"unary {type(node.op).__name__} is not supported")

    def expr_BoolOp(self, node: ast.BoolOp) -> None:
        end = Label()
        jump = "JUMP_IF_FALSE" if isinstance(node.op, ast.And) else "JUMP_IF_TRUE"
        for i, value in enumerate(node.values):
            self.expr(value)
            if i < len(node.values) - 1:
                self.emit("DUP")
                self.emit(jump, end)
                self.emit("POP")
        self.label(end)

    def expr_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            raise self.error(node, "chained comparisons are not supported: use and")
        op, right = node.ops[0], node.comparators[0]
        if isinstance(op, (ast.In, ast.NotIn)):
            slot = self._storage_of(right)
            if slot is not None:
                self._require_map(right, slot)
                self.key(node.left)
                self.emit("SHAS", slot.const)
            else:
                self.expr(node.left)
                self.expr(right)
                self.emit("IN")
            if isinstance(op, ast.NotIn):
                self.emit("NOT")
            return
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise self.error(node, "`is` compares with None only; use == otherwise")
            self.expr(node.left)
            self.emit("CONST", None)
            self.emit("EQ" if isinstance(op, ast.Is) else "NE")
            return
        self.expr(node.left)
        self.expr(right)
        self.emit(CMPOPS[type(op)])

    def expr_IfExp(self, node: ast.IfExp) -> None:
        other, end = Label(), Label()
        self.expr(node.test)
        self.emit("JUMP_IF_FALSE", other)
        self.expr(node.body)
        self.emit("JUMP", end)
        self.label(other)
        self.expr(node.orelse)
        self.label(end)

    def expr_List(self, node: ast.List) -> None:
        if len(node.elts) > MAX_CONTAINER_ITEMS:
            raise self.error(node, f"a literal of more than {MAX_CONTAINER_ITEMS} items")
        for e in node.elts:
            self.expr(e)
        self.emit("BUILD_LIST", len(node.elts))

    expr_Tuple = expr_List

    def expr_Dict(self, node: ast.Dict) -> None:
        if len(node.keys) > MAX_CONTAINER_ITEMS:
            raise self.error(node, f"a literal of more than {MAX_CONTAINER_ITEMS} items")
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise self.error(v, "** unpacking is not supported")
            self.expr(k)
            self.expr(v)
        self.emit("BUILD_MAP", len(node.keys))

    def expr_Subscript(self, node: ast.Subscript) -> None:
        slot = self._storage_of(node.value)
        if slot is not None:
            self._require_map(node, slot)
            self.key(node.slice)
            self.emit("SGET", slot.const)
            return
        self.expr(node.value)
        if isinstance(node.slice, ast.Slice):
            if node.slice.step is not None:
                raise self.error(node, "slices with a step are not supported")
            for bound in (node.slice.lower, node.slice.upper):
                if bound is None:
                    self.emit("CONST", None)
                else:
                    self.expr(bound)
            self.emit("SLICE")
        else:
            self.expr(node.slice)
            self.emit("GET_ITEM")

    def expr_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "ctx":
            if node.attr not in CTX_FIELDS:
                raise self.error(node, f"ctx has no field {node.attr!r} (fields: {', '.join(CTX_FIELDS)})")
            self.emit("CTX", node.attr)
            return
        slot = self._storage_of(node)
        if slot is not None:
            self._require_scalar(node, slot)
            self.emit("CONST", None)
            self.emit("SGET", slot.const)
            return
        self.expr(node.value)
        self.emit("GET_FIELD", node.attr)

    def expr_Call(self, node: ast.Call) -> None:
        if not self.call(node, statement=False):
            raise self.error(node, "this call returns nothing and cannot be used as a value")

    # ---- calls ----------------------------------------------------------------------

    def _args(self, node: ast.Call, count: int | tuple, what: str) -> None:
        if node.keywords:
            raise self.error(node, f"{what} takes no keyword arguments")
        lo, hi = (count, count) if isinstance(count, int) else count
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(node, f"{what} takes {want} arguments, found {len(node.args)}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.error(a, "* unpacking is not supported")

    def call(self, node: ast.Call, statement: bool) -> bool:
        f = node.func
        if isinstance(f, ast.Name):
            return self._call_name(node, f.id, statement)
        if isinstance(f, ast.Attribute):
            return self._call_method(node, f, statement)
        raise self.error(node, "only named functions and methods can be called")

    def _statement_only(self, node: ast.Call, name: str, statement: bool) -> None:
        if not statement:
            raise self.error(node, f"{name}(...) is a statement, not a value")

    def _call_name(self, node: ast.Call, name: str, statement: bool) -> bool:
        if name == "require":
            self._statement_only(node, name, statement)
            self._args(node, (1, 2), "require")
            self.expr(node.args[0])
            if len(node.args) == 2:
                self.expr(node.args[1])
            else:
                self.emit("CONST", "requirement failed")
            self.emit("REQUIRE")
            return False
        if name == "revert":
            self._statement_only(node, name, statement)
            self._args(node, 1, "revert")
            self.emit("CONST", False)
            self.expr(node.args[0])
            self.emit("REQUIRE")
            return False
        if name == "emit":
            self._statement_only(node, name, statement)
            self._emit_event(node)
            return False
        if name == "len":
            self._args(node, 1, "len")
            if self._storage_of(node.args[0]) is not None:
                raise self.error(node, "len() of storage is not available: keep a counter in storage")
            self.expr(node.args[0])
            self.emit("LEN")
            return True
        if name == "range":
            raise self.error(node, "range(...) is only allowed as the iterable of a for loop")
        if name == "call":
            if node.keywords or len(node.args) < 2 or len(node.args) > MAX_CALL_ARGS + 2:
                raise self.error(node, f"call(contract, method, arg, ...) takes 2 to {MAX_CALL_ARGS + 2} positional arguments")
            self._args(node, (2, MAX_CALL_ARGS + 2), "call")
            for a in node.args:
                self.expr(a)
            self.emit("CALL_CONTRACT", len(node.args) - 2)
            return True
        if name in FUNCS:
            self._args(node, FUNCS[name], name)
            for a in node.args:
                self.expr(a)
            self.emit("BUILTIN", name)
            return True
        if name in HOST_INDEX:
            self._args(node, HOSTS[HOST_INDEX[name]][1], name)
            for a in node.args:
                self.expr(a)
            self.emit("HOST", name)
            return True
        if name in self.mod.records:
            return self._construct(node, name)
        if name in self.mod.functions:
            target = self.mod.functions[name]
            self._args(node, len(target.node.args.args), name)
            for a in node.args:
                self.expr(a)
            self.emit("CALL", target.index)
            return True
        raise self.error(node, f"unknown function {name!r}")

    def _construct(self, node: ast.Call, name: str) -> bool:
        fields = [f for f, _ in self.mod.records[name]]
        if node.args:
            raise self.error(node, f"record {name} takes keyword arguments only: {name}({fields[0]}=...)")
        given = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(kw.value, "** unpacking is not supported")
            if kw.arg not in fields:
                raise self.error(kw.value, f"record {name} has no field {kw.arg!r}")
            given[kw.arg] = kw.value
        missing = [f for f in fields if f not in given]
        if missing:
            raise self.error(node, f"record {name} needs every field; missing {', '.join(missing)}")
        for f in fields:
            self.expr(given[f])
        self.emit("BUILD_RECORD", fields)
        return True

    def _emit_event(self, node: ast.Call) -> None:
        if len(node.args) != 1:
            raise self.error(node, "emit(EventName, field=value, ...) takes the event name and keyword fields")
        ev = node.args[0]
        if isinstance(ev, ast.Name):
            name = ev.id
        elif isinstance(ev, ast.Constant) and isinstance(ev.value, str):
            name = ev.value
        else:
            raise self.error(ev, "the event name is an identifier: emit(Transfer, ...)")
        fields = []
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(kw.value, "** unpacking is not supported")
            fields.append(kw.arg)
            self.expr(kw.value)
        known = self.mod.events.get(name)
        if known is not None and sorted(known) != sorted(fields):
            raise self.error(node, f"event {name} was emitted elsewhere with fields {known}, here {fields}")
        self.mod.events.setdefault(name, sorted(fields))
        self.emit("EMIT", [name, fields])

    def _call_method(self, node: ast.Call, f: ast.Attribute, statement: bool) -> bool:
        attr = f.attr
        slot = self._storage_of(f.value)
        if slot is not None:
            self._require_map(f, slot)
            if attr == "get":
                self._args(node, (1, 2), f"self.{slot.name}.get")
                self.key(node.args[0])
                if len(node.args) == 2:
                    self.expr(node.args[1])
                else:
                    self.emit("CONST", None)
                self.emit("SGET_DEFAULT", slot.const)
                return True
            if attr in ("items", "keys"):
                self._args(node, 2, f"self.{slot.name}.{attr}(prefix, limit)")
                self.expr(node.args[0])
                self.expr(node.args[1])
                self.emit("SITER_ITEMS" if attr == "items" else "SITER_KEYS", slot.const)
                return True
            raise self.error(node, f"storage maps have get, items and keys; not {attr!r}")
        if isinstance(f.value, ast.Name) and f.value.id == "ctx":
            raise self.error(node, "ctx has fields, not methods")
        if attr in ("append", "pop") and self._reads_storage(f.value):
            raise self.error(node, f"{attr}() on a stored value would change a copy: read it into a local, "
                                   f"change it, and assign it back")
        if attr == "append":
            self._args(node, 1, "append")
            self.expr(f.value)
            self.expr(node.args[0])
            self.emit("APPEND")
            if not statement:
                raise self.error(node, "append(...) returns nothing and cannot be used as a value")
            return False
        if attr == "get":
            self._args(node, (1, 2), "get")
            self.expr(f.value)
            self.expr(node.args[0])
            if len(node.args) == 2:
                self.expr(node.args[1])
            else:
                self.emit("CONST", None)
            self.emit("BUILTIN", "get")
            return True
        if attr in METHODS:
            builtin, arity = METHODS[attr]
            self._args(node, arity - 1, attr)
            self.expr(f.value)
            for a in node.args:
                self.expr(a)
            self.emit("BUILTIN", builtin)
            return True
        raise self.error(node, f"unknown method {attr!r}")
