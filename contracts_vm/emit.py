"""Lay out compiled functions into a code container: labels, constant pool, bytes.

How it works: the compiler produces, per function, a list of (mnemonic, immediate)
pairs where jump immediates are Label objects and constant-like immediates are the
Python values themselves. ``build_container`` pools constants in order of first use
(keyed by their canonical encoding, so 1, True and b"1" stay distinct), computes
every instruction's byte offset, resolves labels, and encodes the container. The
order of everything follows the source, so output is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts_vm.builtins import BUILTIN_INDEX, HOST_INDEX
from contracts_vm.bytecode import encode_container
from contracts_vm.opcodes import BY_NAME, CTX_FIELDS, imm_size
from ledger.encoding import encode

_POOLED = ("const", "record", "field", "slot", "event")


class Label:
    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset: int | None = None


@dataclass
class FunctionCode:
    name: str
    nparams: int
    nlocals: int = 0
    instrs: list = field(default_factory=list)   # (mnemonic, imm) or ("LABEL", Label)


def build_container(functions: list[FunctionCode], abi: dict) -> bytes:
    consts: list = []
    index_of: dict[bytes, int] = {}

    def pool(value: Any) -> int:
        key = encode(value)
        i = index_of.get(key)
        if i is None:
            i = index_of[key] = len(consts)
            consts.append(value)
        return i

    out_functions = []
    for f in functions:
        pc = 0
        for name, imm in f.instrs:
            if name == "LABEL":
                imm.offset = pc
            else:
                pc += 1 + imm_size(BY_NAME[name])
        body = bytearray()
        for name, imm in f.instrs:
            if name == "LABEL":
                continue
            op = BY_NAME[name]
            body.append(op.code)
            kind = op.imm
            if kind == "none":
                continue
            if kind == "loop":
                body += imm[0].to_bytes(2, "big") + imm[1].offset.to_bytes(2, "big")
                continue
            if kind == "target":
                n = imm.offset
            elif kind in _POOLED:
                n = pool(imm)
            elif kind == "builtin":
                n = BUILTIN_INDEX[imm]
            elif kind == "host":
                n = HOST_INDEX[imm]
            elif kind == "ctx":
                n = CTX_FIELDS.index(imm)
            else:
                n = imm
            body += n.to_bytes(2, "big")
        out_functions.append([f.name, f.nparams, f.nlocals, bytes(body)])
    return encode_container(consts, out_functions, abi)
