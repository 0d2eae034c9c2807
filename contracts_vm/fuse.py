"""Superinstructions: each basic block of a function runs as one generated Python function.

How it works: ``fuse`` takes a function's decoded code (``(handler, arg, gas)`` per
instruction, as program.py builds it) and cuts it into *groups*: a run of simple
instructions (LOAD, CONST, STORE, POP, DUP, DUP2, SWAP, CTX: they cannot fail, since
the verifier proved stack heights and slots, and they charge no gas of their own)
followed by one other instruction X, or a run of simple instructions alone. A group's
gas is the sum over its instructions, charged before any of it runs. Groups that no
jump lands between form a *block*, which ends at a jump, loop, return or before a
jump target. ``fuse`` writes each block as the source of one Python function with the
groups one after another (jump targets renumbered to block indices) and compiles it,
so the interpreter loop dispatches once per block instead of once per instruction.

Inside a block, values pushed by simple instructions live in Python locals until
something needs the real stack (the "pending" values below): ``a + 1`` after two
pushes is computed on the locals, with an int fast path; anything else (other types,
overflow, errors) pushes the operands as the unfused code would and calls the
original handler, which decides. A comparison's result feeds a following conditional
jump directly. Field reads of records and ``require`` with a constant message have
fast paths too; every other instruction calls its usual handler.

Why gas, results and errors stay exactly those of the unfused code:
- Before X runs, every instruction before it in the group has been charged, as in
  the unfused code, and none of them can fail or charge; X's own charges
  (``m.charge`` in a handler) see the same remaining gas. An error in X aborts the
  call, so the state of the Python stack at that point is never observed.
- The loop charges a block's first group; the block charges each later group when it
  reaches it. If a charge does not fit, the block refunds it, writes its pending
  values to the stack and returns ``-(i + 2)`` where i is the index of the group's
  first instruction; the loop then continues the frame on the unfused code at i
  (``Fused.plain_index`` does the same for the first group), and that code runs out
  at the same instruction with the same message as it always did.
The only difference is the step count (one step per dispatch), which is not part of
any result, receipt or state.

The generated source contains only integers, our own identifiers and names bound in
the namespace passed to ``exec`` (constants, handlers, arguments): no text from a
contract ever becomes source.
"""

from __future__ import annotations

from typing import Any, Callable

from contracts_vm import errors as E
from contracts_vm import opcodes as O
from contracts_vm.builtins import mismatch
from contracts_vm.errors import VMError
from contracts_vm.limits import BYTES_PER_COMPARE_GAS, INT_MAX, INT_MIN

_SIMPLE = {O.op_load, O.op_const, O.op_store, O.op_pop, O.op_dup, O.op_ctx, O.op_dup2, O.op_swap}
#: Handlers whose immediate is a jump target ("loop" ones: the second item).
_JUMPS = {O.op_jump, O.op_jump_if_false, O.op_jump_if_true}
_LOOPS = {O.op_for_iter, O.op_for_range}
#: Instructions after which a block ends (they may leave the straight line).
_CONTROL = _JUMPS | _LOOPS | {O.op_ret}
#: Binary operators compiled inline for ints: handler -> (Python operator, produces bool).
_INLINE_BINARY = {O.op_add: ("+", False), O.op_sub: ("-", False), O.op_lt: ("<", True), O.op_le: ("<=", True),
                  O.op_gt: (">", True), O.op_ge: (">=", True)}
_EQUALITY = {O.op_eq: "==", O.op_ne: "!="}
_NONE_TYPE = type(None)
_MISSING = object()


class Fused:
    """The fused code of one function and, per entry, where it starts in the unfused code."""

    __slots__ = ("code", "plain_index")

    def __init__(self, code: list, plain_index: list) -> None:
        self.code = code
        self.plain_index = plain_index


def _targets(code: list) -> set:
    out = {0}
    for handler, arg, _ in code:
        if handler in _JUMPS:
            out.add(arg)
        elif handler in _LOOPS:
            out.add(arg[1])
    return out


def _groups(code: list, targets: set) -> list[tuple[int, int]]:
    """[(start, end)]: simple instructions then at most one other, never across a target."""
    out = []
    n = len(code)
    i = 0
    while i < n:
        start = i
        while i < n and code[i][0] in _SIMPLE and (i == start or i not in targets):
            i += 1
        if i < n and (i == start or i not in targets) and code[i][0] not in _SIMPLE:
            i += 1
        out.append((start, i))
    return out


def _blocks(code: list, targets: set) -> list[list[tuple[int, int]]]:
    blocks: list = []
    for start, end in _groups(code, targets):
        if blocks and start not in targets and code[blocks[-1][-1][1] - 1][0] not in _CONTROL:
            blocks[-1].append((start, end))
        else:
            blocks.append([(start, end)])
    return blocks


def fuse(name: str, code: list) -> Fused:
    """Compile ``code`` (unfused entries, jump arguments as indices into it) into blocks."""
    targets = _targets(code)
    blocks = _blocks(code, targets)
    compact = {b[0][0]: k for k, b in enumerate(blocks)}
    ns: dict = {"VMError": VMError, "E": E, "mismatch": mismatch, "MISSING": _MISSING, "INT_MIN": INT_MIN,
                "INT_MAX": INT_MAX, "NONE": _NONE_TYPE, "get_field": O.op_get_field, "require": O.op_require}
    sources = []
    entries = []
    for k, groups in enumerate(blocks):
        writer = _BlockWriter(code, compact, ns, f"b{k}_")
        sources.append(writer.write(f"block{k}", groups))
        entries.append(sum(g for _, _, g in code[groups[0][0]:groups[0][1]]))
    exec(compile("\n".join(sources), f"<fused {name}>", "exec"), ns)  # noqa: S102 - see module docstring
    out = [(ns[f"block{k}"], None, gas) for k, gas in enumerate(entries)]
    return Fused(out, [b[0][0] for b in blocks])


class _BlockWriter:
    """Writes the source of one block; ``pending`` holds expressions not yet on the stack."""

    def __init__(self, code: list, compact: dict, ns: dict, tag: str) -> None:
        self.code = code
        self.compact = compact
        self.ns = ns
        self.tag = tag
        self.lines: list[str] = []
        self.pending: list[str] = []
        self.temps = 0

    # -- helpers --------------------------------------------------------------------------

    def bind(self, value: Any) -> str:
        """A namespace name for ``value`` (constants, handlers, immediates)."""
        name = f"{self.tag}{len(self.ns)}"
        self.ns[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)

    def flush_code(self, indent: int = 1) -> None:
        """Write the pending values to the stack (without forgetting them: for exits)."""
        if len(self.pending) == 1:
            self.emit(f"s.append({self.pending[0]})", indent)
        elif self.pending:
            self.emit(f"s.extend(({', '.join(self.pending)},))", indent)

    def flush(self) -> None:
        self.flush_code()
        self.pending = []

    def take(self) -> str:
        """The top operand as an expression (popping the real stack if nothing is pending)."""
        if self.pending:
            return self.pending.pop()
        t = self.temp()
        self.emit(f"{t} = s.pop()")
        return t

    # -- a block --------------------------------------------------------------------------

    def write(self, fname: str, groups: list) -> str:
        self.emit(f"def {fname}(m, s, _):", 0)
        for n, (start, end) in enumerate(groups):
            if n:
                gas = sum(g for _, _, g in self.code[start:end])
                self.emit(f"m.gas -= {gas}")
                self.emit("if m.gas < 0:")
                self.emit(f"m.gas += {gas}", 2)
                self.flush_code(2)
                self.emit(f"return {-(start + 2)}", 2)
            for i in range(start, end):
                self.instruction(i)
        last = self.code[groups[-1][1] - 1][0]
        if last not in _CONTROL:
            self.flush()
        return "\n".join(self.lines) + "\n"

    def instruction(self, i: int) -> None:
        handler, arg, _ = self.code[i]
        if handler is O.op_load:
            t = self.temp()
            self.emit(f"{t} = s[{int(arg)}]")
            self.pending.append(t)
        elif handler is O.op_const:
            self.pending.append(self.bind(arg))
        elif handler is O.op_store:
            self.emit(f"s[{int(arg)}] = {self.take()}")
        elif handler is O.op_pop:
            if self.pending:
                self.pending.pop()
            else:
                self.emit("del s[-1]")
        elif handler is O.op_dup:
            if self.pending:
                self.pending.append(self.pending[-1])
            else:                               # the original stays on the stack
                t = self.temp()
                self.emit(f"{t} = s[-1]")
                self.pending.append(t)
        elif handler is O.op_ctx:
            t = self.temp()
            self.emit(f"{t} = getattr(m, {self.bind(arg)})")
            self.pending.append(t)
        elif handler is O.op_dup2 or handler is O.op_swap:
            self.flush()
            self.emit(f"{self.bind(handler)}(m, s, None)")
        elif handler in _INLINE_BINARY or handler in _EQUALITY:
            self.binary(handler)
        elif handler is O.op_jump_if_false or handler is O.op_jump_if_true:
            self.branch(handler, arg)
        elif handler is O.op_jump:
            self.flush()
            self.emit(f"return {self.compact[arg]}")
        elif handler is O.op_ret:
            self.flush()
            self.emit("return -1")
        elif handler is O.op_get_field:
            self.get_field(arg)
        elif handler is O.op_require and self.pending:
            self.require()
        else:
            self.call(handler, arg)

    def call(self, handler: Callable, arg: Any) -> None:
        self.flush()
        if handler in _JUMPS:
            arg = self.compact[arg]
        elif handler in _LOOPS:
            arg = (arg[0], self.compact[arg[1]])
        call = f"{self.bind(handler)}(m, s, {self.bind(arg)})"
        self.emit(f"return {call}" if handler in _CONTROL else call)

    def fallback(self, x: str, y: str, handler: Callable, result: str) -> None:
        """The general case of a binary operator: the original handler on the operands.

        Here and in the other fast paths the pending values stay in locals: these handlers
        look only at their own operands on top of the stack."""
        self.emit("else:")
        self.emit(f"s.extend(({x}, {y}))", 2)
        self.emit(f"{self.bind(handler)}(m, s, None)", 2)
        self.emit(f"{result} = s.pop()", 2)

    def binary(self, handler: Callable) -> None:
        y = self.take()
        x = self.take()
        r = self.temp()
        if handler in _INLINE_BINARY:
            op, boolean = _INLINE_BINARY[handler]
            self.emit(f"if type({x}) is int and type({y}) is int:")
            self.emit(f"{r} = {x} {op} {y}", 2)
            if not boolean:  # + and - may overflow: the handler raises exactly as unfused code does
                self.emit(f"if {r} > INT_MAX or {r} < INT_MIN:", 2)
                self.emit(f"s.extend(({x}, {y}))", 3)
                self.emit(f"{self.bind(handler)}(m, s, None)", 3)
                self.emit(f"{r} = s.pop()", 3)
        else:
            op = _EQUALITY[handler]
            tx = self.temp()
            self.emit(f"{tx} = type({x})")
            self.emit(f"if {tx} is int or {tx} is bool or {tx} is NONE or "
                      f"(({tx} is bytes or {tx} is str) and len({x}) < {BYTES_PER_COMPARE_GAS}):")
            self.emit(f"{r} = ({x} {op} {y}) if {tx} is type({y}) else {op == '!='}", 2)
        self.fallback(x, y, handler, r)
        self.pending.append(r)

    def branch(self, handler: Callable, target: int) -> None:
        c = self.take()
        self.flush()
        jump_on = handler is O.op_jump_if_true
        self.emit(f"if {c} is {jump_on}:")
        self.emit(f"return {self.compact[target]}", 2)
        self.emit(f"if {c} is not {not jump_on}:")
        self.emit(f"raise mismatch('condition', {c})", 2)
        self.emit("return None")

    def get_field(self, field: str) -> None:
        obj = self.take()
        f = self.bind(field)
        r = self.temp()
        self.emit(f"{r} = {obj}.get({f}, MISSING) if type({obj}) is dict else MISSING")
        self.emit(f"if {r} is MISSING:")
        self.emit(f"s.append({obj})", 2)
        self.emit(f"get_field(m, s, {f})", 2)
        self.emit(f"{r} = s.pop()", 2)
        self.pending.append(r)

    def require(self) -> None:
        message = self.take()
        cond = self.take()
        self.emit(f"if {cond} is not True:")
        self.emit(f"s.extend(({cond}, {message}))", 2)
        self.emit("require(m, s, None)", 2)
