"""Superinstructions: one dispatch for a run of instructions, with the same gas and errors.

How it works: ``fuse`` takes a function's decoded code (``(handler, arg, gas)`` per
instruction, as program.py builds it) and groups it into straight-line runs that no
jump lands inside. A group is a *prefix* of simple instructions (LOAD, CONST, STORE,
POP, DUP, DUP2, SWAP, CTX: they cannot fail, since the verifier proved stack heights
and slots, and they charge no gas of their own) followed by at most one other
instruction X, and, when X is a comparison, by the JUMP_IF_FALSE/TRUE that tests it.
The group becomes one entry ``(closure, None, gas)`` whose gas is the sum over the
prefix and X, so the interpreter loop charges it at once before anything runs.

Why gas and errors stay exactly those of the unfused code:
- Up to and including X nothing observable differs: the prefix cannot fail, X's own
  charges (``m.charge`` inside a handler) see the same remaining gas, and an error
  in X aborts the whole call, so the prefix's stack pushes were never visible.
- If the loop's up-front charge leaves the gas below zero, the original would have
  run out at some instruction of the group. The loop then refunds the charge and
  continues this frame on the unfused code at the group's first instruction
  (``Fused.plain_index``), which runs out at the same instruction with the same
  message.
- The conditional jump after a comparison is charged inside the closure after the
  comparison, with the OutOfGas message of its own instruction index.
The only difference is the step count (one step per dispatch), which is not part of
any result, receipt or state.

Closures are specialised for the common shapes (a binary operator on two pushed
operands, a field read of a local, a ``require`` with a constant message, a
comparison feeding a branch); every other group runs its prefix with ``_run_prefix``
and calls X's handler. Fast paths cover ints and short scalars and hand anything
else to the original handler with the operands pushed as the unfused code would.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from contracts_vm import errors as E
from contracts_vm import opcodes as O
from contracts_vm.errors import VMError
from contracts_vm.limits import INT_MAX, INT_MIN

#: Prefix instruction kinds (the first element of a prefix item).
_LOAD, _CONST, _STORE, _POP, _DUP, _CTX, _DUP2, _SWAP = range(8)
#: Runs inside a compiled prefix: several CONSTs (one extend) or several LOADs (an itemgetter).
_CONSTS, _LOADS = 8, 9
_SIMPLE = {O.op_load: _LOAD, O.op_const: _CONST, O.op_store: _STORE, O.op_pop: _POP, O.op_dup: _DUP,
           O.op_ctx: _CTX, O.op_dup2: _DUP2, O.op_swap: _SWAP}
#: Handlers whose immediate is a jump target ("loop" ones: the second item).
_JUMPS = {O.op_jump, O.op_jump_if_false, O.op_jump_if_true}
_LOOPS = {O.op_for_iter, O.op_for_range}
_BRANCH_ON = {O.op_jump_if_false: False, O.op_jump_if_true: True}
#: Comparisons with an int fast path: handler -> Python operator.
_ORDERED = {O.op_lt: operator.lt, O.op_le: operator.le, O.op_gt: operator.gt, O.op_ge: operator.ge}
_EQUALITY = {O.op_eq: operator.eq, O.op_ne: operator.ne}
_ARITH = {O.op_add: operator.add, O.op_sub: operator.sub}
#: Shortest bytes/str that ``==`` charges gas for (see opcodes.BYTES_PER_COMPARE_GAS).
_CHARGED_COMPARE_LEN = O.BYTES_PER_COMPARE_GAS
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


def fuse(name: str, code: list) -> Fused:
    """Group ``code`` (unfused entries, jump arguments as indices into it) into fused entries."""
    targets = _targets(code)
    n = len(code)
    groups = []                     # (start, end exclusive, index of X or -1, has_branch)
    i = 0
    while i < n:
        start = i
        while i < n and code[i][0] in _SIMPLE and (i == start or i not in targets):
            i += 1
        x = -1
        branch = False
        if i < n and (i == start or i not in targets):
            x = i
            i += 1
            handler = code[x][0]
            if ((handler in _ORDERED or handler in _EQUALITY) and i < n and i not in targets
                    and code[i][0] in _BRANCH_ON):
                branch = True
                i += 1
        groups.append((start, i, x, branch))
    compact = {start: k for k, (start, _, _, _) in enumerate(groups)}
    out = []
    for start, end, x, branch in groups:
        out.append(_build(name, code, start, end, x, branch, compact))
    return Fused(out, [g[0] for g in groups])


def _remap(handler: Callable, arg: Any, compact: dict) -> Any:
    if handler in _JUMPS:
        return compact[arg]
    if handler in _LOOPS:
        return (arg[0], compact[arg[1]])
    return arg


def _build(name: str, code: list, start: int, end: int, x: int, branch: bool, compact: dict) -> tuple:
    if end - start == 1:
        handler, arg, gas = code[start]
        return (handler, _remap(handler, arg, compact), gas)
    prefix = [(_SIMPLE[h], a) for h, a, _ in code[start:(x if x >= 0 else end)]]
    gas = sum(g for _, _, g in code[start:(x + 1 if x >= 0 else end)])
    if x < 0:
        return (_prefix_only(tuple(prefix)), None, gas)
    handler, arg, _ = code[x]
    arg = _remap(handler, arg, compact)
    if branch:
        jump, target, jump_gas = code[x + 1]
        exhausted = f"ran out in {name} at instruction {x + 1}"
        return (_compare_branch(prefix, handler, _BRANCH_ON[jump], compact[target], jump_gas, exhausted), None, gas)
    if handler in _ARITH or handler in _ORDERED or handler in _EQUALITY:
        return (_binary(prefix, handler), None, gas)
    if handler is O.op_get_field and prefix and prefix[-1][0] == _LOAD:
        return (_load_field(tuple(prefix[:-1]), prefix[-1][1], arg), None, gas)
    if handler is O.op_require and prefix and prefix[-1][0] == _CONST:
        return (_require(tuple(prefix[:-1]), prefix[-1][1]), None, gas)
    return (_then(tuple(prefix), handler, arg), None, gas)


# ---- the prefix ---------------------------------------------------------------------

def _compile_prefix(prefix: tuple) -> tuple:
    """Merge runs of CONSTs and of LOADs so ``_run_prefix`` pushes each run with one call."""
    out: list = []
    for kind, a in prefix:
        if out and kind == _CONST and out[-1][0] in (_CONST, _CONSTS):
            last = out.pop()
            out.append((_CONSTS, (last[1],) + (a,) if last[0] == _CONST else last[1] + (a,)))
        elif out and kind == _LOAD and out[-1][0] in (_LOAD, _LOADS):
            last = out.pop()
            slots = (last[1], a) if last[0] == _LOAD else last[1] + (a,)
            out.append((_LOADS, slots))
        else:
            out.append((kind, a))
    return tuple((_LOADS, operator.itemgetter(*a)) if k == _LOADS else (k, a) for k, a in out)


def _run_prefix(m, s: list, prefix: tuple) -> None:
    for kind, a in prefix:
        if kind == _LOAD:
            s.append(s[a])
        elif kind == _CONST:
            s.append(a)
        elif kind == _LOADS:
            s.extend(a(s))
        elif kind == _CONSTS:
            s.extend(a)
        elif kind == _STORE:
            s[a] = s.pop()
        elif kind == _POP:
            s.pop()
        elif kind == _DUP:
            s.append(s[-1])
        elif kind == _CTX:
            s.append(getattr(m, a))
        elif kind == _DUP2:
            s.extend(s[-2:])
        else:
            s[-1], s[-2] = s[-2], s[-1]


def _prefix_only(prefix: tuple) -> Callable:
    prefix = _compile_prefix(prefix)

    def run(m, s, _):
        _run_prefix(m, s, prefix)
    return run


def _then(prefix: tuple, handler: Callable, arg: Any) -> Callable:
    if len(prefix) == 1 and prefix[0][0] == _LOAD:
        slot = prefix[0][1]

        def load_then(m, s, _):
            s.append(s[slot])
            return handler(m, s, arg)
        return load_then
    if len(prefix) == 1 and prefix[0][0] == _CONST:
        value = prefix[0][1]

        def const_then(m, s, _):
            s.append(value)
            return handler(m, s, arg)
        return const_then

    prefix = _compile_prefix(prefix)

    def prefix_then(m, s, _):
        _run_prefix(m, s, prefix)
        return handler(m, s, arg)
    return prefix_then


# ---- operands ------------------------------------------------------------------------

def _operands(prefix: list) -> tuple[tuple, Any, Any]:
    """Split off the pushes that feed a binary operator: (rest of prefix, x source, y source).

    A source is ("L", slot), ("C", value) or None for "already on the stack".
    """
    prefix = list(prefix)
    sources: list = []
    while prefix and len(sources) < 2 and prefix[-1][0] in (_LOAD, _CONST):
        kind, a = prefix.pop()
        sources.insert(0, ("L" if kind == _LOAD else "C", a))
    while len(sources) < 2:
        sources.insert(0, None)
    return tuple(prefix), sources[0], sources[1]


def _fetcher(src: Any) -> Callable:
    """How to read an operand, in the order the unfused code would push it."""
    if src is None:
        return None
    kind, a = src
    if kind == "L":
        return lambda s: s[a]
    return lambda s: a


def _binary(prefix: list, handler: Callable) -> Callable:
    rest, xs, ys = _operands(prefix)
    fast = _fast_binary(handler)
    if xs is None and ys is not None and ys[0] == "L" and not rest:
        slot = ys[1]

        def top_load(m, s, _):
            x = s[-1]
            y = s[slot]
            r = fast(x, y)
            if r is not _MISSING:
                s[-1] = r
                return None
            s.append(y)
            return handler(m, s, None)
        return top_load
    if xs is None and ys is not None and ys[0] == "C" and not rest:
        value = ys[1]

        def top_const(m, s, _):
            r = fast(s[-1], value)
            if r is not _MISSING:
                s[-1] = r
                return None
            s.append(value)
            return handler(m, s, None)
        return top_const
    if xs is not None and xs[0] == "L" and ys is not None and ys[0] == "L" and not rest:
        a, b = xs[1], ys[1]

        def load_load(m, s, _):
            x = s[a]
            y = s[b]
            r = fast(x, y)
            if r is not _MISSING:
                s.append(r)
                return None
            s.append(x)
            s.append(y)
            return handler(m, s, None)
        return load_load
    if xs is not None and xs[0] == "L" and ys is not None and ys[0] == "C" and not rest:
        a, value = xs[1], ys[1]

        def load_const(m, s, _):
            x = s[a]
            r = fast(x, value)
            if r is not _MISSING:
                s.append(r)
                return None
            s.append(x)
            s.append(value)
            return handler(m, s, None)
        return load_const
    return _then(tuple(prefix), handler, None)


def _fast_binary(handler: Callable) -> Callable:
    """``f(x, y)``: the operator's result where it is the plain int/scalar case with no gas
    of its own and no error, else _MISSING (then the original handler decides)."""
    if handler in _ARITH:
        op = _ARITH[handler]

        def arith(x, y):
            if type(x) is int and type(y) is int:
                r = op(x, y)
                if INT_MIN <= r <= INT_MAX:
                    return r
            return _MISSING
        return arith
    if handler in _ORDERED:
        op = _ORDERED[handler]

        def ordered(x, y):
            if type(x) is int and type(y) is int:
                return op(x, y)
            return _MISSING
        return ordered
    equal = handler is O.op_eq

    def equality(x, y):
        tx = type(x)
        if tx is int or tx is bool or tx is _NONE_TYPE or ((tx is bytes or tx is str) and len(x) < _CHARGED_COMPARE_LEN):
            return (x == y) is equal if tx is type(y) else not equal
        return _MISSING
    return equality


def _compare_branch(prefix: list, handler: Callable, jump_on: bool, target: int, jump_gas: int,
                    exhausted: str) -> Callable:
    """A comparison and the conditional jump that consumes it (charged after the comparison)."""
    rest, xs, ys = _operands(prefix)
    rest = _compile_prefix(rest)
    fast = _fast_binary(handler)
    get_x = _fetcher(xs)
    get_y = _fetcher(ys)

    def compare_branch(m, s, _):
        if rest:
            _run_prefix(m, s, rest)
        y = s.pop() if get_y is None else get_y(s)
        x = s.pop() if get_x is None else get_x(s)
        r = fast(x, y)
        if r is _MISSING:
            s.append(x)
            s.append(y)
            handler(m, s, None)
            r = s.pop()
        m.gas -= jump_gas
        if m.gas < 0:
            raise VMError(E.OUT_OF_GAS, exhausted)
        if r is jump_on:
            return target
        return None
    return compare_branch


def _load_field(prefix: tuple, slot: int, field: str) -> Callable:
    prefix = _compile_prefix(prefix)

    def load_field(m, s, _):
        if prefix:
            _run_prefix(m, s, prefix)
        obj = s[slot]
        if type(obj) is dict:
            value = obj.get(field, _MISSING)
            if value is not _MISSING:
                s.append(value)
                return None
        s.append(obj)
        return O.op_get_field(m, s, field)
    return load_field


def _require(prefix: tuple, message: Any) -> Callable:
    prefix = _compile_prefix(prefix)

    def require(m, s, _):
        if prefix:
            _run_prefix(m, s, prefix)
        if s[-1] is True:
            s.pop()
            return None
        s.append(message)
        return O.op_require(m, s, None)
    return require
