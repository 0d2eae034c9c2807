"""Static verification: the gate every piece of code passes before it is installed.

How it works: ``verify(code)`` decodes the container and then, per function, decodes
every instruction (valid opcode for the code's version, complete immediate), checks
every immediate against what it refers to (constant of the right shape, local slot,
function, builtin, host function, context field, jump target on an instruction
boundary), and runs an abstract interpretation of stack heights over the control-flow
graph: each instruction has a fixed effect, so each reachable instruction must be
reached with one height only, never pop below the frame's operand base, never push
beyond MAX_STACK, and never fall off the end of the function. Finally the ABI must
name existing functions with matching arity and parseable types. Only code that
passes is installed, so the interpreter can skip these checks at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts_vm import errors as E
from contracts_vm.builtins import BUILTINS, HOSTS
from contracts_vm.bytecode import Container, decode_container, decode_instructions
from contracts_vm.errors import VerifyError
from contracts_vm.limits import (INT_MAX, INT_MIN, MAX_CONSTANTS, MAX_CONTAINER_ITEMS, MAX_FUNCTION_CODE_BYTES,
                                 MAX_FUNCTIONS, MAX_LOCALS, MAX_STACK)
from contracts_vm.opcodes import BRANCHES, CTX_FIELDS, MAX_CALL_ARGS, TERMINATORS
from contracts_vm.values import parse_type

_KEY_TYPE_NAMES = ("int", "bytes", "str")


@dataclass
class VerifiedCode:
    container: Container
    instructions: list    # per function: [(offset, op, imm)]
    max_heights: list     # per function: deepest operand stack reached


def _is_scalar(v: Any) -> bool:
    t = type(v)
    return (t is int and INT_MIN <= v <= INT_MAX) or t in (bytes, str, bool) or v is None


def _str_list(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v) and len(set(v)) == len(v)


def _const_ok(kind: str, v: Any) -> bool:
    if kind == "const":
        return _is_scalar(v)
    if kind == "field":
        return type(v) is str
    if kind == "record":
        return _str_list(v) and 0 < len(v) <= 255
    if kind == "event":
        return type(v) is list and len(v) == 2 and type(v[0]) is str and _str_list(v[1]) and len(v[1]) <= 64
    if kind == "slot":
        return (type(v) is list and len(v) == 3 and type(v[0]) is str and type(v[1]) is list
                and len(v[1]) <= 8 and all(t in _KEY_TYPE_NAMES for t in v[1]) and _is_scalar(v[2]))
    return False


def verify(code: bytes) -> VerifiedCode:
    c = decode_container(code)
    if not 0 < len(c.functions) <= MAX_FUNCTIONS:
        raise VerifyError(E.CODE_TOO_LARGE, f"expected 1..{MAX_FUNCTIONS} functions, found {len(c.functions)}")
    if len(c.consts) > MAX_CONSTANTS:
        raise VerifyError(E.CODE_TOO_LARGE, f"{len(c.consts)} constants exceed {MAX_CONSTANTS}")
    instructions = []
    heights = []
    for index, fn in enumerate(c.functions):
        instrs = _check_function(c, index, fn)
        heights.append(_check_stack(c, fn, instrs))
        instructions.append(instrs)
    _check_abi(c)
    return VerifiedCode(c, instructions, heights)


def _check_function(c: Container, index: int, fn: list) -> list:
    name, nparams, nlocals, body = fn
    where = f"function {index} ({name!r})"
    if not 0 <= nparams <= nlocals <= MAX_LOCALS:
        raise VerifyError(E.MALFORMED_CODE, f"{where}: need 0 <= params <= locals <= {MAX_LOCALS}, found {nparams}, {nlocals}")
    if not body:
        raise VerifyError(E.FALLS_OFF_END, f"{where}: empty code")
    if len(body) > MAX_FUNCTION_CODE_BYTES:
        raise VerifyError(E.CODE_TOO_LARGE, f"{where}: {len(body)} bytes exceed {MAX_FUNCTION_CODE_BYTES}")
    instrs = decode_instructions(body)
    boundaries = {pc for pc, _, _ in instrs}
    for pc, op, imm in instrs:
        _check_immediate(c, nlocals, boundaries, where, pc, op, imm)
    return instrs


def _check_immediate(c: Container, nlocals: int, boundaries: set, where: str, pc: int, op, imm) -> None:
    kind = op.imm

    def bad(expected: str) -> VerifyError:
        return VerifyError(E.BAD_IMMEDIATE, f"{where} offset {pc}: {op.name} immediate {imm} must be {expected}")

    if kind == "none":
        return
    if kind == "loop":
        base, target = imm
        need = 3 if op.name == "FOR_ITER" else 4
        if base + need > nlocals:
            raise bad(f"a local base with {need} slots below {nlocals}")
        if target not in boundaries:
            raise VerifyError(E.BAD_JUMP_TARGET, f"{where} offset {pc}: target {target} is not an instruction start")
        return
    if kind == "target":
        if imm not in boundaries:
            raise VerifyError(E.BAD_JUMP_TARGET, f"{where} offset {pc}: target {imm} is not an instruction start")
    elif kind == "local":
        if imm >= nlocals:
            raise bad(f"a local slot below {nlocals}")
    elif kind == "count":
        limit = MAX_CALL_ARGS if op.name == "CALL_CONTRACT" else MAX_CONTAINER_ITEMS
        if imm > limit:
            raise bad(f"at most {limit}")
    elif kind == "fn":
        if imm >= len(c.functions):
            raise bad(f"a function index below {len(c.functions)}")
    elif kind == "builtin":
        if imm >= len(BUILTINS):
            raise bad(f"a builtin index below {len(BUILTINS)}")
    elif kind == "host":
        if imm >= len(HOSTS):
            raise bad(f"a host function index below {len(HOSTS)}")
    elif kind == "ctx":
        if imm >= len(CTX_FIELDS):
            raise bad(f"a context field index below {len(CTX_FIELDS)}")
    else:
        if imm >= len(c.consts) or not _const_ok(kind, c.consts[imm]):
            raise bad(f"a constant index of a valid {kind}")


def stack_effect(c: Container, op, imm) -> tuple[int, int]:
    pops, pushes = op.pops, op.pushes
    if type(pops) is str:
        pops = {
            "imm": lambda: imm,
            "imm2": lambda: 2 * imm,
            "fn": lambda: c.functions[imm][1],
            "record": lambda: len(c.consts[imm]),
            "event": lambda: len(c.consts[imm][1]),
            "builtin": lambda: BUILTINS[imm][1],
            "host": lambda: HOSTS[imm][1],
            "call": lambda: imm + 2,
        }[pops]()
    if pushes == "imm":
        pushes = imm
    return pops, pushes


def _check_stack(c: Container, fn: list, instrs: list) -> int:
    name, _, nlocals, body = fn
    limit = MAX_STACK - nlocals
    index_of = {pc: i for i, (pc, _, _) in enumerate(instrs)}
    height_at: dict[int, int] = {0: 0}
    todo = [0]
    deepest = 0
    while todo:
        i = todo.pop()
        pc, op, imm = instrs[i]
        h = height_at[i]
        pops, pushes = stack_effect(c, op, imm)
        if h < pops:
            raise VerifyError(E.STACK_UNDERFLOW, f"function {name!r} offset {pc}: {op.name} pops {pops}, stack has {h}")
        h = h - pops + pushes
        if h > limit:
            raise VerifyError(E.STACK_TOO_DEEP, f"function {name!r} offset {pc}: stack of {h} + {nlocals} locals exceeds {MAX_STACK}")
        deepest = max(deepest, h)
        successors = []
        if op.code in BRANCHES:
            target = imm[1] if op.imm == "loop" else imm
            successors.append(index_of[target])
        if op.code not in TERMINATORS:
            if i + 1 >= len(instrs):
                raise VerifyError(E.FALLS_OFF_END, f"function {name!r}: execution can run past the last instruction")
            successors.append(i + 1)
        for j in successors:
            seen = height_at.get(j)
            if seen is None:
                height_at[j] = h
                todo.append(j)
            elif seen != h:
                raise VerifyError(E.STACK_HEIGHT_MISMATCH,
                                  f"function {name!r} offset {instrs[j][0]}: reached with stack {seen} and {h}")
    return deepest


def _check_abi(c: Container) -> None:
    abi = c.abi

    def bad(msg: str) -> VerifyError:
        return VerifyError(E.BAD_ABI, msg)

    if set(abi) != {"methods", "records", "events", "storage"}:
        raise bad(f"ABI keys must be methods, records, events, storage; found {sorted(abi)}")
    records = abi["records"]
    if type(records) is not dict or type(abi["events"]) is not list or type(abi["storage"]) is not list:
        raise bad("ABI records must be a map, events and storage lists")
    for rname, fields in records.items():
        if type(fields) is not list or not all(type(f) is list and len(f) == 2 and type(f[0]) is str
                                                and type(f[1]) is str for f in fields):
            raise bad(f"record {rname!r} must list [field, type] pairs")
    names = set()
    if type(abi["methods"]) is not list:
        raise bad("ABI methods must be a list")
    for m in abi["methods"]:
        if type(m) is not dict or set(m) != {"name", "function", "kind", "requires", "args", "returns"}:
            raise bad(f"method entry must have name, function, kind, requires, args, returns: {m!r:.200}")
        if type(m["name"]) is not str or m["name"] in names:
            raise bad(f"method name {m['name']!r} is not a unique str")
        names.add(m["name"])
        fi = m["function"]
        if type(fi) is not int or not 0 <= fi < len(c.functions):
            raise bad(f"method {m['name']!r} names function {fi!r}, which does not exist")
        if m["kind"] not in ("public", "view") or (m["requires"] is not None and type(m["requires"]) is not str):
            raise bad(f"method {m['name']!r}: kind must be public/view, requires None or a str")
        args = m["args"]
        if type(args) is not list or len(args) != c.functions[fi][1]:
            raise bad(f"method {m['name']!r}: {c.functions[fi][1]} parameters but ABI lists {args!r:.100}")
        for a in args + [["return", m["returns"]]]:
            if type(a) is not list or len(a) != 2 or type(a[0]) is not str or type(a[1]) is not str:
                raise bad(f"method {m['name']!r}: argument entries must be [name, type]")
            try:
                parse_type(a[1], records)
            except (ValueError, RecursionError):
                raise bad(f"method {m['name']!r}: unknown type {a[1]!r}") from None
