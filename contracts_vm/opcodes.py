"""The opcode table (data) and one small handler per opcode.

How it works: ``OPCODES`` is the single source of truth, in the style of go-algorand's
opcodes.go: code byte, name, immediate kind, stack effect (pops, pushes), base gas
and the VM version that introduced it. The base gas is version 1's; a later version
reprices an opcode in its gas schedule (limits.GAS_SCHEDULES, ``opcode_gas``), and
``opcode_gas(op, version)`` is the price a program of that version is decoded with.
The verifier reads the stack effects, the assembler and disassembler read names and
immediate kinds, and the interpreter loop (Machine.run, machine.py) reads only
``(handler, decoded immediate, gas)``: it charges the gas, calls the handler and
moves on. A handler's signature is ``handler(m, stack, arg)``;
``m`` is the running Machine, ``stack`` the frame's list (locals first, operands
after), ``arg`` the immediate decoded once per code hash. A handler returns None to
fall through, an instruction index to jump, or -1 to return from the function.
Work proportional to the size of values is charged by the handler, through
``m.charge``, before it is done.

Immediate encodings: "none" has no bytes; every other kind is one big-endian u16;
"loop" is two u16 (base local slot, exit target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from contracts_vm import builtins as B
from contracts_vm.builtins import mismatch as _mismatch
from contracts_vm import errors as E
from contracts_vm.errors import VMError
from contracts_vm.limits import (BYTES_PER_COMPARE_GAS, BYTES_PER_GAS, GAS_SCHEDULES, INT_MAX, INT_MIN,
                                 MAX_CONTAINER_ITEMS, MAX_ITEM_BYTES, MAX_POW_EXPONENT)
from contracts_vm.values import check_int, strict_eq, type_name, walk_cost


@dataclass(frozen=True)
class Op:
    code: int
    name: str
    imm: str          # immediate kind (see module docstring)
    pops: Any         # int, or "imm" / "imm2" / "fn" / "record" / "event" / "builtin" / "host" / "call"
    pushes: Any       # int, or "imm"
    gas: int          # charged before the handler runs
    version: int      # first VM version with this opcode
    handler: Callable


# ---- stack and locals ----------------------------------------------------------

def op_const(m, s, a):
    s.append(a)


def op_load(m, s, a):
    s.append(s[a])


def op_store(m, s, a):
    s[a] = s.pop()


def op_pop(m, s, a):
    s.pop()


def op_dup(m, s, a):
    s.append(s[-1])


def op_dup2(m, s, a):
    s.extend(s[-2:])


def op_swap(m, s, a):
    s[-1], s[-2] = s[-2], s[-1]


# ---- arithmetic ----------------------------------------------------------------

def _sized(m, value):
    t = type(value)
    if t is list:
        if len(value) > MAX_CONTAINER_ITEMS:
            raise VMError(E.VALUE_TOO_LARGE, f"list of {len(value)} items exceeds {MAX_CONTAINER_ITEMS}")
        m.charge(len(value))
    elif len(value) > MAX_ITEM_BYTES:
        raise VMError(E.VALUE_TOO_LARGE, f"{t.__name__} of {len(value)} bytes exceeds {MAX_ITEM_BYTES}")
    else:
        m.charge(len(value) // BYTES_PER_GAS)
    return value


def op_add(m, s, a):
    y = s.pop()
    x = s[-1]
    tx = type(x)
    if tx is int and type(y) is int:
        r = x + y
        if r > INT_MAX or r < INT_MIN:
            check_int(r)
        s[-1] = r
    elif tx is type(y) and (tx is bytes or tx is str or tx is list):
        if len(x) + len(y) > (MAX_CONTAINER_ITEMS if tx is list else MAX_ITEM_BYTES):
            raise VMError(E.VALUE_TOO_LARGE, f"concatenation of {len(x) + len(y)} exceeds the item limit")
        m.charge((len(x) + len(y)) // BYTES_PER_GAS if tx is not list else len(x) + len(y))
        s[-1] = x + y
    else:
        raise _mismatch("+", x, y)


def _ints(name, s):
    y = s.pop()
    x = s[-1]
    if type(x) is not int or type(y) is not int:
        raise _mismatch(name, x, y)
    return x, y


def op_sub(m, s, a):
    x, y = _ints("-", s)
    r = x - y
    if r > INT_MAX or r < INT_MIN:
        check_int(r)
    s[-1] = r


def op_mul(m, s, a):
    y = s.pop()
    x = s[-1]
    if type(x) is int and type(y) is int:
        s[-1] = check_int(x * y)
    elif type(y) is int and type(x) in (bytes, str, list):
        if y < 0 or len(x) * y > (MAX_CONTAINER_ITEMS if type(x) is list else MAX_ITEM_BYTES):
            raise VMError(E.VALUE_TOO_LARGE, f"repetition {y} of a {type_name(x)} of {len(x)} is out of bounds")
        s[-1] = _sized(m, x * y)
    else:
        raise _mismatch("*", x, y)


def op_floordiv(m, s, a):
    x, y = _ints("//", s)
    if y == 0:
        raise VMError(E.DIVISION_BY_ZERO, f"{x} // 0")
    s[-1] = check_int(x // y)


def op_mod(m, s, a):
    x, y = _ints("%", s)
    if y == 0:
        raise VMError(E.DIVISION_BY_ZERO, f"{x} % 0")
    s[-1] = x % y


def op_pow(m, s, a):
    x, y = _ints("**", s)
    if y < 0 or y > MAX_POW_EXPONENT:
        raise VMError(E.INTEGER_OVERFLOW, f"exponent must be 0..{MAX_POW_EXPONENT}, found {y}")
    if x not in (0, 1, -1) and y > 64:
        raise VMError(E.INTEGER_OVERFLOW, f"{x} ** {y} exceeds the integer range")
    s[-1] = check_int(x ** y)


def op_neg(m, s, a):
    x = s[-1]
    if type(x) is not int:
        raise _mismatch("unary -", x)
    s[-1] = check_int(-x)


# ---- comparison and logic ------------------------------------------------------

def _eq(m, x, y):
    tx = type(x)
    if tx is list or tx is dict:
        m.charge(walk_cost(x, m.gas) + walk_cost(y, m.gas))
    elif (tx is bytes or tx is str) and len(x) >= BYTES_PER_COMPARE_GAS:
        m.charge(len(x) // BYTES_PER_COMPARE_GAS)
    return strict_eq(x, y)


def op_eq(m, s, a):
    y = s.pop()
    s[-1] = _eq(m, s[-1], y)


def op_ne(m, s, a):
    y = s.pop()
    s[-1] = not _eq(m, s[-1], y)


def _ordered(m, name, s):
    y = s.pop()
    x = s[-1]
    tx = type(x)
    if tx is not type(y) or tx not in (int, bytes, str):
        raise _mismatch(name, x, y)
    if tx is not int and len(x) >= BYTES_PER_COMPARE_GAS:
        m.charge(len(x) // BYTES_PER_COMPARE_GAS)
    return x, y


def op_lt(m, s, a):
    x, y = _ordered(m, "<", s)
    s[-1] = x < y


def op_le(m, s, a):
    x, y = _ordered(m, "<=", s)
    s[-1] = x <= y


def op_gt(m, s, a):
    x, y = _ordered(m, ">", s)
    s[-1] = x > y


def op_ge(m, s, a):
    x, y = _ordered(m, ">=", s)
    s[-1] = x >= y


def op_not(m, s, a):
    x = s[-1]
    if type(x) is not bool:
        raise _mismatch("not", x)
    s[-1] = not x


def op_in(m, s, a):
    container = s.pop()
    item = s[-1]
    s[-1] = B.contains(m, container, item)


# ---- control flow --------------------------------------------------------------

def op_jump(m, s, a):
    return a


def op_jump_if_false(m, s, a):
    c = s.pop()
    if c is False:
        return a
    if c is not True:
        raise _mismatch("condition", c)


def op_jump_if_true(m, s, a):
    c = s.pop()
    if c is True:
        return a
    if c is not False:
        raise _mismatch("condition", c)


def op_call(m, s, fn):
    n = fn.nparams
    if n:
        args = s[-n:]
        del s[-n:]
    else:
        args = []
    s.append(m.run(fn, args))


def op_ret(m, s, a):
    return -1


def op_iter_prep(m, s, a):
    s[-1] = B.iteration_list(m, s[-1])


def op_for_iter(m, s, a):
    base, target = a
    seq = s[base]
    i = s[base + 1]
    if type(seq) is not list or type(i) is not int:
        raise _mismatch("for", seq, i)
    if i < 0:
        raise VMError(E.INDEX_OUT_OF_RANGE, f"loop index {i} is negative")
    if i >= len(seq):
        return target
    s[base + 2] = seq[i]
    s[base + 1] = i + 1


def op_for_range(m, s, a):
    base, target = a
    cur = s[base]
    stop = s[base + 1]
    step = s[base + 2]
    if type(cur) is not int or type(stop) is not int or type(step) is not int:
        raise _mismatch("range", cur, stop, step)
    if step == 0:
        raise VMError(E.INDEX_OUT_OF_RANGE, "range step must not be zero")
    if (step > 0 and cur >= stop) or (step < 0 and cur <= stop):
        return target
    s[base + 3] = cur
    s[base] = check_int(cur + step)


def op_require(m, s, a):
    msg = s.pop()
    cond = s.pop()
    if cond is True:
        return
    if cond is not False:
        raise _mismatch("require condition", cond)
    raise VMError(E.REQUIRE_FAILED, msg if type(msg) is str else type_name(msg))


# ---- containers ----------------------------------------------------------------

def op_build_list(m, s, n):
    if n:
        items = s[-n:]
        del s[-n:]
    else:
        items = []
    m.charge(n)
    s.append(items)


def op_build_map(m, s, n):
    m.charge(n)
    items = s[len(s) - 2 * n:] if n else []
    if n:
        del s[-2 * n:]
    out = {}
    for i in range(0, 2 * n, 2):
        B.check_map_key(items[i])
        out[items[i]] = items[i + 1]
    s.append(out)


def op_build_record(m, s, fields):
    n = len(fields)
    m.charge(n)
    values = s[-n:] if n else []
    if n:
        del s[-n:]
    s.append(dict(zip(fields, values)))


def op_unpack(m, s, n):
    seq = s.pop()
    if type(seq) is not list or len(seq) != n:
        raise VMError(E.TYPE_MISMATCH, f"cannot unpack {type_name(seq)} into {n} names"
                      + (f" (it has {len(seq)} items)" if type(seq) is list else ""))
    s.extend(seq)


def op_get_item(m, s, a):
    key = s.pop()
    s[-1] = B.get_item(m, s[-1], key)


def op_set_item(m, s, a):
    value = s.pop()
    key = s.pop()
    B.set_item(m, s.pop(), key, value)


def op_del_item(m, s, a):
    key = s.pop()
    B.del_item(s.pop(), key)


def op_get_field(m, s, name):
    obj = s[-1]
    if type(obj) is not dict:
        raise _mismatch(f".{name}", obj)
    try:
        s[-1] = obj[name]
    except KeyError:
        raise VMError(E.KEY_NOT_FOUND, f"record has no field {name!r}") from None


def op_set_field(m, s, name):
    value = s.pop()
    obj = s.pop()
    if type(obj) is not dict:
        raise _mismatch(f".{name} =", obj)
    if name not in obj:
        raise VMError(E.KEY_NOT_FOUND, f"record has no field {name!r}")
    obj[name] = value


def op_len(m, s, a):
    x = s[-1]
    if type(x) not in (bytes, str, list, dict):
        raise _mismatch("len", x)
    s[-1] = len(x)


def op_slice(m, s, a):
    stop = s.pop()
    start = s.pop()
    s[-1] = B.slice_of(m, s[-1], start, stop)


def op_append(m, s, a):
    value = s.pop()
    lst = s.pop()
    if type(lst) is not list:
        raise _mismatch("append", lst)
    if len(lst) >= MAX_CONTAINER_ITEMS:
        raise VMError(E.VALUE_TOO_LARGE, f"list already has {MAX_CONTAINER_ITEMS} items")
    lst.append(value)


def op_builtin(m, s, a):
    fn, n = a
    args = s[-n:]
    del s[-n:]
    s.append(fn(m, *args))


# ---- storage, events, context, calls, host --------------------------------------

def op_sget(m, s, slot):
    s[-1] = m.storage_get(slot, s[-1], False, None)


def op_sget_default(m, s, slot):
    default = s.pop()
    s[-1] = m.storage_get(slot, s[-1], True, default)


def op_sput(m, s, slot):
    value = s.pop()
    m.storage_put(slot, s.pop(), value)


def op_sdel(m, s, slot):
    m.storage_delete(slot, s.pop())


def op_shas(m, s, slot):
    s[-1] = m.storage_has(slot, s[-1])


def op_siter_items(m, s, slot):
    limit = s.pop()
    s[-1] = m.storage_iterate(slot, s[-1], limit, True)


def op_siter_keys(m, s, slot):
    limit = s.pop()
    s[-1] = m.storage_iterate(slot, s[-1], limit, False)


def op_emit(m, s, event):
    name, fields = event
    n = len(fields)
    values = s[-n:] if n else []
    if n:
        del s[-n:]
    m.emit(name, dict(zip(fields, values)))


def op_ctx(m, s, attr):
    s.append(getattr(m, attr))


def op_call_contract(m, s, n):
    args = s[-n:] if n else []
    if n:
        del s[-n:]
    method = s.pop()
    contract = s.pop()
    s.append(m.call_contract(contract, method, args))


def op_host(m, s, a):
    fn, n = a
    args = s[-n:] if n else []
    if n:
        del s[-n:]
    s.append(fn(m, *args))


# BUILTIN and HOST with the arity known when the program is decoded (program.py picks
# these; the argument is the same (callable, arity) pair, the effect the same as above).

def op_apply0(m, s, a):
    s.append(a[0](m))


def op_apply1(m, s, a):
    s[-1] = a[0](m, s[-1])


def op_apply2(m, s, a):
    y = s.pop()
    s[-1] = a[0](m, s[-1], y)


#: Arity-specialised handlers for BUILTIN/HOST (arities not listed use the general ones).
APPLY_BY_ARITY = {0: op_apply0, 1: op_apply1, 2: op_apply2}


_TABLE = [
    # code, name, imm, pops, pushes, gas, version, handler
    (0x01, "CONST", "const", 0, 1, 1, 1, op_const),
    (0x02, "LOAD", "local", 0, 1, 1, 1, op_load),
    (0x03, "STORE", "local", 1, 0, 1, 1, op_store),
    (0x04, "POP", "none", 1, 0, 1, 1, op_pop),
    (0x05, "DUP", "none", 1, 2, 1, 1, op_dup),
    (0x06, "DUP2", "none", 2, 4, 1, 1, op_dup2),
    (0x07, "SWAP", "none", 2, 2, 1, 1, op_swap),
    (0x10, "ADD", "none", 2, 1, 2, 1, op_add),
    (0x11, "SUB", "none", 2, 1, 2, 1, op_sub),
    (0x12, "MUL", "none", 2, 1, 3, 1, op_mul),
    (0x13, "FLOORDIV", "none", 2, 1, 3, 1, op_floordiv),
    (0x14, "MOD", "none", 2, 1, 3, 1, op_mod),
    (0x15, "POW", "none", 2, 1, 10, 1, op_pow),
    (0x16, "NEG", "none", 1, 1, 2, 1, op_neg),
    (0x20, "EQ", "none", 2, 1, 2, 1, op_eq),
    (0x21, "NE", "none", 2, 1, 2, 1, op_ne),
    (0x22, "LT", "none", 2, 1, 2, 1, op_lt),
    (0x23, "LE", "none", 2, 1, 2, 1, op_le),
    (0x24, "GT", "none", 2, 1, 2, 1, op_gt),
    (0x25, "GE", "none", 2, 1, 2, 1, op_ge),
    (0x26, "NOT", "none", 1, 1, 1, 1, op_not),
    (0x27, "IN", "none", 2, 1, 3, 1, op_in),
    (0x30, "JUMP", "target", 0, 0, 1, 1, op_jump),
    (0x31, "JUMP_IF_FALSE", "target", 1, 0, 1, 1, op_jump_if_false),
    (0x32, "JUMP_IF_TRUE", "target", 1, 0, 1, 1, op_jump_if_true),
    (0x33, "CALL", "fn", "fn", 1, 10, 1, op_call),
    (0x34, "RET", "none", 1, 0, 1, 1, op_ret),
    (0x35, "ITER_PREP", "none", 1, 1, 3, 1, op_iter_prep),
    (0x36, "FOR_ITER", "loop", 0, 0, 2, 1, op_for_iter),
    (0x37, "FOR_RANGE", "loop", 0, 0, 2, 1, op_for_range),
    (0x38, "REQUIRE", "none", 2, 0, 1, 1, op_require),
    (0x40, "BUILD_LIST", "count", "imm", 1, 2, 1, op_build_list),
    (0x41, "BUILD_MAP", "count", "imm2", 1, 3, 1, op_build_map),
    (0x42, "BUILD_RECORD", "record", "record", 1, 3, 1, op_build_record),
    (0x43, "UNPACK", "count", 1, "imm", 2, 1, op_unpack),
    (0x44, "GET_ITEM", "none", 2, 1, 2, 1, op_get_item),
    (0x45, "SET_ITEM", "none", 3, 0, 3, 1, op_set_item),
    (0x46, "DEL_ITEM", "none", 2, 0, 3, 1, op_del_item),
    (0x47, "GET_FIELD", "field", 1, 1, 1, 1, op_get_field),
    (0x48, "SET_FIELD", "field", 2, 0, 2, 1, op_set_field),
    (0x49, "LEN", "none", 1, 1, 1, 1, op_len),
    (0x4A, "SLICE", "none", 3, 1, 3, 1, op_slice),
    (0x4B, "APPEND", "none", 2, 0, 2, 1, op_append),
    (0x4C, "BUILTIN", "builtin", "builtin", 1, 3, 1, op_builtin),
    (0x60, "SGET", "slot", 1, 1, 40, 1, op_sget),
    (0x61, "SGET_DEFAULT", "slot", 2, 1, 40, 1, op_sget_default),
    (0x62, "SPUT", "slot", 2, 0, 100, 1, op_sput),
    (0x63, "SDEL", "slot", 1, 0, 60, 1, op_sdel),
    (0x64, "SHAS", "slot", 1, 1, 30, 1, op_shas),
    (0x65, "SITER_ITEMS", "slot", 2, 1, 60, 1, op_siter_items),
    (0x66, "SITER_KEYS", "slot", 2, 1, 60, 1, op_siter_keys),
    (0x68, "EMIT", "event", "event", 0, 40, 1, op_emit),
    (0x69, "CTX", "ctx", 0, 1, 1, 1, op_ctx),
    (0x6A, "CALL_CONTRACT", "count", "call", 1, 200, 1, op_call_contract),
    (0x6B, "HOST", "host", "host", 1, 5, 1, op_host),
]

OPCODES: dict[int, Op] = {row[0]: Op(*row) for row in _TABLE}
BY_NAME: dict[str, Op] = {op.name: op for op in OPCODES.values()}


def opcode_gas(op: Op, version: int) -> int:
    """Base gas of ``op`` in code of VM ``version``: the table's, unless that version's
    gas schedule (limits.GAS_SCHEDULES) reprices it."""
    return GAS_SCHEDULES[version].opcode_gas.get(op.name, op.gas)


def base_gas_table(version: int) -> dict[int, int]:
    """Opcode code -> base gas for ``version`` (program.py looks it up once per decoded
    instruction, so the interpreter loop never consults a schedule)."""
    return {code: opcode_gas(op, version) for code, op in OPCODES.items()}

#: Opcodes after which execution never falls through to the next instruction.
TERMINATORS = frozenset({BY_NAME["JUMP"].code, BY_NAME["RET"].code})
#: Opcodes whose immediate is a jump target (for "loop", the second u16).
BRANCHES = frozenset({BY_NAME[n].code for n in ("JUMP", "JUMP_IF_FALSE", "JUMP_IF_TRUE", "FOR_ITER", "FOR_RANGE")})

#: Context fields readable with CTX, in immediate order (Machine attribute names).
CTX_FIELDS = ("sender", "origin", "caller_contract", "contract", "self_address",
              "height", "timestamp_ms", "chain_id", "tx_id", "cosigners")

#: Most arguments of one contract call (CALL_CONTRACT immediate).
MAX_CALL_ARGS = 16


def imm_size(op: Op) -> int:
    return 0 if op.imm == "none" else (4 if op.imm == "loop" else 2)
