"""VM values: strict equality, bounded encoding, storage keys and ABI type checks.

How it works: VM values are plain Python objects of exactly these types: int (within
INT_MIN..INT_MAX), bytes, str, bool, None, list and dict. Every helper here checks
types with ``type(x) is T`` (so True is never an int) and charges gas through the
machine for work proportional to the size of a value *before* doing it, so a value
built from shared references (a list holding the same big list 4096 times) cannot
make one opcode run for long. Storage keys use an order-preserving, self-delimiting
encoding (a type tag per component, 0x00 escaped in strings), so prefix iteration in
state key order is iteration in VM key order.
"""

from __future__ import annotations

from typing import Any, Callable

from contracts_vm import errors as E
from contracts_vm.errors import VMError
from contracts_vm.limits import BYTES_PER_GAS, GAS_PER_NODE, INT_MAX, INT_MIN, MAX_STORAGE_KEY_BYTES
from ledger.encoding import MAX_DEPTH, decode, decode_known_canonical, encode
from ledger.errors import CorruptionError, DecodeError, EncodeError


_SCALARS = (int, bytes, str, bool, type(None))


def type_name(value: Any) -> str:
    t = type(value)
    return "None" if value is None else t.__name__


def check_int(value: int) -> int:
    if value > INT_MAX or value < INT_MIN:
        raise VMError(E.INTEGER_OVERFLOW, f"result {value} outside [{INT_MIN}, {INT_MAX}]")
    return value


def walk_cost(value: Any, budget: int) -> int:
    """Gas to visit every node and byte of ``value``; stops early once above ``budget``.

    Raises NotEncodable for values nested deeper than the encoding allows (which also
    catches a list that contains itself). The answer (also the partial total returned
    once above the budget, which an OutOfGas message shows) is that of the node-by-node
    walk in ``_walk_exact``; ``_walk_fast`` only finds it sooner when the whole value
    fits in the budget and nests legally, and hands over to the exact walk otherwise.
    """
    t = type(value)
    if t is bytes or t is str:
        return GAS_PER_NODE + len(value) // BYTES_PER_GAS
    if t is not list and t is not dict:
        return GAS_PER_NODE
    total = _walk_fast(value, 0, budget)
    if total >= 0:
        return total
    return _walk_exact(value, budget)


def _walk_fast(value: Any, depth: int, budget: int) -> int:
    """walk_cost of a list or dict, or -1 when it exceeds ``budget`` or nests past
    MAX_DEPTH (the caller then runs the exact walk, which decides what to report).
    The sum is order-independent, so visiting recursively gives the exact walk's total.
    The budget is checked per container, not per item: a container's own items are
    bounded by the container limits, and nested ones are checked as they return."""
    if depth >= MAX_DEPTH:
        return -1
    total = GAS_PER_NODE
    if type(value) is dict:
        for k in value:
            if type(k) is str or type(k) is bytes:
                total += GAS_PER_NODE + len(k) // BYTES_PER_GAS
            else:
                total += GAS_PER_NODE
        items = value.values()
    else:
        items = value
    for v in items:
        tv = type(v)
        if tv is bytes or tv is str:
            total += GAS_PER_NODE + len(v) // BYTES_PER_GAS
        elif tv is list or tv is dict:
            sub = _walk_fast(v, depth + 1, budget - total)
            if sub < 0:
                return -1
            total += sub
        else:
            total += GAS_PER_NODE
    return total if total <= budget else -1


def _walk_exact(value: Any, budget: int) -> int:
    """The reference walk: one node at a time, depth-first, returning as soon as the
    running total exceeds ``budget``."""
    total = 0
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        t = type(item)
        total += GAS_PER_NODE
        if t is bytes or t is str:
            total += len(item) // BYTES_PER_GAS
        elif t is list or t is dict:
            if depth >= MAX_DEPTH:
                raise VMError(E.NOT_ENCODABLE, f"value nested deeper than {MAX_DEPTH} levels")
            if t is dict:
                for k, v in item.items():
                    todo.append((k, depth + 1))
                    todo.append((v, depth + 1))
            else:
                for v in item:
                    todo.append((v, depth + 1))
        if total > budget:
            return total
    return total


def strict_eq(a: Any, b: Any) -> bool:
    """Equality without Python's cross-type coercions (1 != True, [1] != [True])."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is list:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if not strict_eq(x, y):
                return False
        return True
    if ta is dict:
        if len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not strict_eq(v, b[k]):
                return False
        return True
    return a == b


_U = {1: b"\xcc", 2: b"\xcd", 4: b"\xce", 8: b"\xcf"}
_S = {1: b"\xd0", 2: b"\xd1", 4: b"\xd2", 8: b"\xd3"}


def _encode_scalar(value: Any) -> bytes | None:
    """Canonical bytes of an int/bytes/str/bool/None without the general encoder, or None.

    Produces exactly what ledger.encoding.encode produces (tests check this); it exists
    because storage reads and writes of scalars are the VM's hottest host path.
    """
    t = type(value)
    if t is int:
        if 0 <= value < 128:
            return bytes((value,))
        if -32 <= value < 0:
            return bytes((value & 0xFF,))
        if value > 0:
            for n in (1, 2, 4, 8):
                if value < 1 << (8 * n):
                    return _U[n] + value.to_bytes(n, "big")
            return None
        for n in (1, 2, 4, 8):
            if value >= -(1 << (8 * n - 1)):
                return _S[n] + value.to_bytes(n, "big", signed=True)
        return None
    if t is bytes:
        n = len(value)
        if n < 256:
            return b"\xc4" + bytes((n,)) + value
        if n < 65536:
            return b"\xc5" + n.to_bytes(2, "big") + value
        return None
    if t is str:
        data = value.encode("utf-8")
        n = len(data)
        if n < 32:
            return bytes((0xA0 | n,)) + data
        if n < 256:
            return b"\xd9" + bytes((n,)) + data
        if n < 65536:
            return b"\xda" + n.to_bytes(2, "big") + data
        return None
    if value is None:
        return b"\xc0"
    if t is bool:
        return b"\xc3" if value else b"\xc2"
    return None


def _decode_scalar(data: bytes) -> tuple[bool, Any]:
    """(True, value) when ``data`` is the canonical form of a scalar; (False, None) otherwise."""
    if not data:
        return False, None
    b0 = data[0]
    if b0 < 0x80 or b0 >= 0xE0:
        value = b0 if b0 < 0x80 else b0 - 256
    elif 0xCC <= b0 <= 0xCF:
        value = int.from_bytes(data[1:], "big")
    elif 0xD0 <= b0 <= 0xD3:
        value = int.from_bytes(data[1:], "big", signed=True)
    elif b0 == 0xC4 or b0 == 0xC5:
        value = data[2 if b0 == 0xC4 else 3:]
    elif 0xA0 <= b0 <= 0xBF or 0xD9 <= b0 <= 0xDA:
        try:
            value = data[1 if b0 < 0xC0 else (2 if b0 == 0xD9 else 3):].decode("utf-8")
        except UnicodeDecodeError:
            return False, None
    elif b0 == 0xC0:
        value = None
    elif b0 == 0xC2 or b0 == 0xC3:
        value = b0 == 0xC3
    else:
        return False, None
    # accept only the one canonical form (right length, minimal width)
    return (_encode_scalar(value) == data), value


#: Stored encodings already known to be canonical, because ``decode`` accepted them or
#: an encoder produced them (keyed by the bytes; a cache, not consensus state). For a
#: scalar the entry is its value (immutable, so it is returned as is); for a container
#: it is ``_CONTAINER`` and a read just unpacks, skipping the re-encoding check of
#: ``decode`` that costs several times the unpacking itself. The same account, terms
#: or balance read again by the next transaction then costs a dict lookup.
_canonical: dict[bytes, Any] = {}
_CONTAINER = object()
_UNSEEN = object()
#: Most encodings remembered in ``_canonical`` (cleared when full).
CANONICAL_CACHE_SIZE = 4096


def remember_canonical(data: bytes, value: Any) -> None:
    """Record that ``data`` is the canonical encoding of the scalar ``value`` (or, with
    ``_CONTAINER``, of some container)."""
    if len(_canonical) >= CANONICAL_CACHE_SIZE:
        _canonical.clear()
    _canonical[data] = value


#: Public name of the scalar encoder, for the storage hot path in machine.py.
encode_scalar = _encode_scalar


def to_bytes(value: Any, what: str) -> bytes:
    """Canonical bytes of a VM value, or NotEncodable naming ``what`` (the storage slot,
    event or result) it was for; the name is only formatted when the encoding fails."""
    fast = _encode_scalar(value)
    if fast is not None:
        return fast
    try:
        data = encode(value)
    except EncodeError as exc:
        raise VMError(E.NOT_ENCODABLE, f"{what} cannot be encoded: {exc}") from None
    except RecursionError:
        raise VMError(E.NOT_ENCODABLE, f"{what} is nested too deeply") from None
    if type(value) is list or type(value) is dict:
        remember_canonical(data, _CONTAINER)
    return data


def from_bytes(data: bytes) -> Any:
    known = _canonical.get(data, _UNSEEN)
    if known is not _UNSEEN:
        return decode_known_canonical(data) if known is _CONTAINER else known
    ok, value = _decode_scalar(data)
    if ok:
        remember_canonical(data, value)
        return value
    try:
        value = decode(data)
    except DecodeError as exc:
        # Contracts only ever store canonical encodings, so this is the node's store failing,
        # not a contract outcome: it must halt the node, never become a receipt.
        raise CorruptionError(f"a stored contract value does not decode: {exc}") from None
    remember_canonical(data, _CONTAINER)
    return value


def copy_value(value: Any) -> Any:
    """An independent copy (containers are copied, scalars shared)."""
    t = type(value)
    if t is list:
        return [v if (tv := type(v)) is not list and tv is not dict else copy_value(v) for v in value]
    if t is dict:
        return {k: v if (tv := type(v)) is not list and tv is not dict else copy_value(v) for k, v in value.items()}
    return value


# ---- storage keys --------------------------------------------------------------

_TAG_INT = b"\x02"
_TAG_BYTES = b"\x03"
_TAG_STR = b"\x04"
_INT_BIAS = 2**63


def _escape(data: bytes) -> bytes:
    """0x00 becomes 00 FF and the part ends with 00 01: order-preserving, and no part's
    encoding is a prefix of another's (so a key prefix selects exact leading parts)."""
    return data.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def encode_key_part(part: Any, expected: str) -> bytes:
    t = type(part)
    if t is bytes and expected == "bytes":
        return _TAG_BYTES + part.replace(b"\x00", b"\x00\xff") + b"\x00\x01"
    if t is int and expected == "int":
        return _TAG_INT + (part + _INT_BIAS).to_bytes(8, "big")
    if t is str and expected == "str":
        return _TAG_STR + _escape(part.encode("utf-8"))
    raise VMError(E.TYPE_MISMATCH, f"storage key part must be {expected}, found {type_name(part)}")


def encode_key(key: Any, key_types: list) -> bytes:
    """Order-preserving key bytes; a tuple key is a list with one part per key type."""
    if len(key_types) == 1:
        out = encode_key_part(key, key_types[0])
    else:
        if type(key) is not list or len(key) != len(key_types):
            raise VMError(E.TYPE_MISMATCH, f"storage key must be a tuple of {len(key_types)} parts, found {type_name(key)}")
        out = b""
        for p, t in zip(key, key_types):
            out += encode_key_part(p, t)
    if len(out) > MAX_STORAGE_KEY_BYTES:
        raise VMError(E.VALUE_TOO_LARGE, f"storage key of {len(out)} bytes exceeds {MAX_STORAGE_KEY_BYTES}")
    return out


def encode_key_prefix(prefix: Any, key_types: list) -> bytes:
    if type(prefix) is not list or len(prefix) > len(key_types) or (len(key_types) > 1 and len(prefix) == len(key_types)):
        raise VMError(E.TYPE_MISMATCH, f"key prefix must be a tuple of fewer than {max(len(key_types), 2)} parts, found {type_name(prefix)}")
    return b"".join([encode_key_part(p, t) for p, t in zip(prefix, key_types)])


def decode_key(data: bytes, key_types: list) -> Any:
    parts = []
    i = 0
    n = len(data)
    while i < n:
        tag = data[i:i + 1]
        i += 1
        if tag == _TAG_INT:
            parts.append(int.from_bytes(data[i:i + 8], "big") - _INT_BIAS)
            i += 8
            continue
        out = bytearray()
        while i < n:
            c = data[i]
            if c == 0:
                if i + 1 < n and data[i + 1] == 0xFF:
                    out.append(0)
                    i += 2
                    continue
                i += 2
                break
            out.append(c)
            i += 1
        parts.append(bytes(out) if tag == _TAG_BYTES else bytes(out).decode("utf-8"))
    return parts[0] if len(key_types) == 1 else parts


# ---- ABI types -----------------------------------------------------------------

Checker = Callable[[Any], bool]


def parse_type(text: str, records: dict) -> Checker:
    """A predicate for an ABI type string ("int", "list[bytes]", "dict[str,int]", "Order")."""
    text = text.replace(" ", "")
    simple = {"int": _is_int, "bytes": _is(bytes), "str": _is(str), "bool": _is(bool),
              "None": _is(type(None)), "any": lambda v: True}
    if text in simple:
        return simple[text]
    if text.startswith("list[") and text.endswith("]"):
        inner = parse_type(text[5:-1], records)
        return lambda v: type(v) is list and all(inner(x) for x in v)
    if text.startswith("dict[") and text.endswith("]"):
        key_text, _, value_text = text[5:-1].partition(",")
        key_check = parse_type(key_text, records)
        value_check = parse_type(value_text, records)
        return lambda v: type(v) is dict and all(key_check(k) and value_check(x) for k, x in v.items())
    if text in records:
        fields = records[text]
        checks: dict = {}

        def check_record(v: Any) -> bool:
            # field checkers are built on first use, so records may refer to themselves
            if not checks:
                for name, ftype in fields:
                    checks[name] = parse_type(ftype, records)
            return (type(v) is dict and len(v) == len(checks)
                    and all(k in v and checks[k](v[k]) for k in checks))
        return check_record
    raise ValueError(f"unknown type {text!r}")


def _is_int(v: Any) -> bool:
    return type(v) is int and INT_MIN <= v <= INT_MAX


def _is(t: type) -> Checker:
    return lambda v: type(v) is t


def default_of(type_text: str) -> Any:
    """Value of a storage scalar never written."""
    return {"int": 0, "bytes": b"", "str": "", "bool": False}.get(type_text.replace(" ", ""))
