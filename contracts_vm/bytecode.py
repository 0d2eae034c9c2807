"""The code container, instruction decoding, an assembler and a disassembler.

How it works: a contract's code is ``MAGIC || version byte || encode([constants,
functions, abi])`` where ``encode`` is the chain's canonical encoding, so the same
contract always has the same bytes and the same code hash (sha256 of those bytes).
Each function is ``[name, nparams, nlocals, instructions]``; an instruction is one
opcode byte followed by its immediate (see opcodes.py). Nothing here judges whether
code is safe to run: that is verifier.py. The assembler exists for conformance
vectors and tests: one instruction per line, ``label:`` lines, Python literals as
CONST immediates (pooled automatically), names for functions, builtins, host
functions and context fields, ``@N`` for a raw byte offset and ``#N`` for a raw
immediate, ``.byte N`` for a raw byte.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from contracts_vm import errors as E
from contracts_vm.builtins import BUILTIN_INDEX, BUILTINS, HOST_INDEX, HOSTS
from contracts_vm.errors import VerifyError
from contracts_vm.limits import MAX_CODE_BYTES, SUPPORTED_VERSIONS, VM_VERSION
from contracts_vm.opcodes import BY_NAME, CTX_FIELDS, OPCODES, imm_size
from ledger.crypto import sha256
from ledger.encoding import decode, encode
from ledger.errors import ChainError, DecodeError, EncodeError

MAGIC = b"SCVM"
HEADER_BYTES = len(MAGIC) + 1


@dataclass
class Container:
    version: int
    consts: list
    functions: list       # [name, nparams, nlocals, code bytes]
    abi: dict


def encode_container(consts: list, functions: list, abi: dict, version: int = VM_VERSION) -> bytes:
    return MAGIC + bytes([version]) + encode([consts, functions, abi])


def code_hash(code: bytes) -> bytes:
    return sha256(code)


def decode_container(code: bytes) -> Container:
    """Split the header and body; VerifyError for anything that is not a container."""
    if type(code) is not bytes or len(code) < HEADER_BYTES or code[:len(MAGIC)] != MAGIC:
        raise VerifyError(E.BAD_HEADER, f"code must start with {MAGIC!r} and a version byte")
    if len(code) > MAX_CODE_BYTES:
        raise VerifyError(E.CODE_TOO_LARGE, f"code of {len(code)} bytes exceeds {MAX_CODE_BYTES}")
    version = code[len(MAGIC)]
    if version not in SUPPORTED_VERSIONS:
        raise VerifyError(E.UNSUPPORTED_VERSION, f"code version {version}, this VM runs {SUPPORTED_VERSIONS}")
    try:
        body = decode(code[HEADER_BYTES:])
    except DecodeError as exc:
        raise VerifyError(E.MALFORMED_CODE, f"code body is not canonical: {exc}") from None
    if type(body) is not list or len(body) != 3 or type(body[0]) is not list or type(body[1]) is not list \
            or type(body[2]) is not dict:
        raise VerifyError(E.MALFORMED_CODE, "code body must be [constants, functions, abi]")
    for fn in body[1]:
        if (type(fn) is not list or len(fn) != 4 or type(fn[0]) is not str or type(fn[1]) is not int
                or type(fn[2]) is not int or type(fn[3]) is not bytes):
            raise VerifyError(E.MALFORMED_CODE, "each function must be [name, nparams, nlocals, code]")
    return Container(version, body[0], body[1], body[2])


def decode_instructions(code: bytes) -> list:
    """[(offset, opcode, immediate)]; immediate is None, an int or (int, int)."""
    out = []
    pc = 0
    n = len(code)
    while pc < n:
        op = OPCODES.get(code[pc])
        if op is None:
            raise VerifyError(E.INVALID_OPCODE, f"byte 0x{code[pc]:02x} at offset {pc} is not an opcode")
        size = imm_size(op)
        if pc + 1 + size > n:
            raise VerifyError(E.TRUNCATED_INSTRUCTION, f"{op.name} at offset {pc} needs {size} immediate bytes")
        if size == 0:
            imm = None
        elif size == 2:
            imm = int.from_bytes(code[pc + 1:pc + 3], "big")
        else:
            imm = (int.from_bytes(code[pc + 1:pc + 3], "big"), int.from_bytes(code[pc + 3:pc + 5], "big"))
        out.append((pc, op, imm))
        pc += 1 + size
    return out


# ---- disassembler ------------------------------------------------------------------

def _describe(op, imm, consts: list, functions: list) -> str:
    if imm is None:
        return op.name
    if op.imm == "loop":
        return f"{op.name} {imm[0]} @{imm[1]}"
    text = f"{op.name} {imm}" if op.imm != "target" else f"{op.name} @{imm}"
    try:
        if op.imm in ("const", "record", "field", "slot", "event"):
            text += f"    ; {consts[imm]!r}"
        elif op.imm == "fn":
            text += f"    ; {functions[imm][0]}"
        elif op.imm == "builtin":
            text += f"    ; {BUILTINS[imm][0]}"
        elif op.imm == "host":
            text += f"    ; {HOSTS[imm][0]}"
        elif op.imm == "ctx":
            text += f"    ; {CTX_FIELDS[imm]}"
    except (IndexError, TypeError):
        text += "    ; <out of range>"
    return text


def disassemble(code: bytes) -> str:
    """Readable listing of every function; works on unverified code (marks bad bytes)."""
    c = decode_container(code)
    lines = [f"; shopchain VM code, version {c.version}, {len(code)} bytes, hash {code_hash(code).hex()}"]
    for i, (name, nparams, nlocals, body) in enumerate(c.functions):
        lines.append(f"\nfunc {name}  ; index {i}, params {nparams}, locals {nlocals}, {len(body)} bytes")
        try:
            for pc, op, imm in decode_instructions(body):
                lines.append(f"  {pc:5d}  {_describe(op, imm, c.consts, c.functions)}")
        except VerifyError as exc:
            lines.append(f"  ; cannot decode further: {exc}")
    return "\n".join(lines) + "\n"


# ---- assembler ---------------------------------------------------------------------

@dataclass
class _AsmFunction:
    name: str
    nparams: int
    nlocals: int
    lines: list = field(default_factory=list)
    public: bool = True


class AsmError(ChainError, ValueError):
    """The assembly text is malformed (a test-authoring mistake, not a VM error)."""


def assemble(text: str, abi: dict | None = None) -> bytes:
    """Assemble ``func NAME NPARAMS NLOCALS`` blocks into a container.

    Unless ``abi`` is given, every function not marked ``.internal`` becomes a public
    method taking ``any`` arguments and returning ``any``.
    """
    functions: list[_AsmFunction] = []
    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("func "):
            parts = line.split()
            functions.append(_AsmFunction(parts[1], int(parts[2]), int(parts[3])))
        elif line == ".internal":
            functions[-1].public = False
        else:
            if not functions:
                raise AsmError(f"instruction outside a function: {line!r}")
            functions[-1].lines.append(line)
    consts: list = []
    index_of: dict = {}

    def pool(value: Any) -> int:
        key = encode(value)
        if key not in index_of:
            index_of[key] = len(consts)
            consts.append(value)
        return index_of[key]

    fn_index = {f.name: i for i, f in enumerate(functions)}
    out_functions = []
    for f in functions:
        out_functions.append([f.name, f.nparams, f.nlocals, _assemble_body(f, pool, fn_index)])
    if abi is None:
        abi = {"methods": [{"name": f.name, "function": i, "kind": "public", "requires": None,
                            "args": [[f"a{j}", "any"] for j in range(f.nparams)], "returns": "any"}
                           for i, f in enumerate(functions) if f.public],
               "records": {}, "events": [], "storage": []}
    try:
        return encode_container(consts, out_functions, abi)
    except EncodeError as exc:
        raise AsmError(str(exc)) from None


def _strip_comment(line: str) -> str:
    """Drop a ``;`` comment, ignoring semicolons inside quoted literals."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == ";":
            return line[:i]
        i += 1
    return line


def _assemble_body(f: _AsmFunction, pool, fn_index: dict) -> bytes:
    labels: dict[str, int] = {}
    pc = 0
    parsed = []
    for line in f.lines:
        if line.endswith(":") and " " not in line:
            labels[line[:-1]] = pc
            continue
        if line.startswith(".byte "):
            parsed.append((None, line.split()[1]))
            pc += 1
            continue
        name, _, rest = line.partition(" ")
        op = BY_NAME.get(name)
        if op is None:
            raise AsmError(f"unknown mnemonic {name!r} in {f.name}")
        parsed.append((op, rest.strip()))
        pc += 1 + imm_size(op)
    out = bytearray()
    for op, rest in parsed:
        if op is None:
            out.append(int(rest, 0))
            continue
        out.append(op.code)
        if op.imm == "none":
            continue
        if op.imm == "loop":
            base, target = rest.split()
            out += _u16(int(base)) + _u16(_target(target, labels))
            continue
        out += _u16(_immediate(op, rest, pool, fn_index, labels))
    return bytes(out)


def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _target(text: str, labels: dict) -> int:
    if text.startswith("@"):
        return int(text[1:])
    if text not in labels:
        raise AsmError(f"unknown label {text!r}")
    return labels[text]


def _immediate(op, rest: str, pool, fn_index: dict, labels: dict) -> int:
    if rest.startswith("#"):
        return int(rest[1:])
    kind = op.imm
    if kind == "target":
        return _target(rest, labels)
    if kind in ("local", "count"):
        return int(rest)
    if kind == "fn":
        return fn_index[rest]
    if kind == "builtin":
        return BUILTIN_INDEX[rest]
    if kind == "host":
        return HOST_INDEX[rest]
    if kind == "ctx":
        return CTX_FIELDS.index(rest)
    return pool(ast.literal_eval(rest))
