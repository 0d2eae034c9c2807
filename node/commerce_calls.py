"""The shape of a typed commerce call, and the checks and decoders every helper shares.

How it works: a helper (node.commerce_ledger, node.commerce_orders, node.commerce_rewards,
node.commerce_aftersales) checks its typed Python inputs and returns a ``ContractCall``:
the contract, the method, the arguments in the types the contract's ABI takes, whether
it is a transaction or a view, and how to decode the answer (a receipt's
``return_value`` or a view's result) into a typed value. Building a call does no I/O,
so the helpers are written once and run by both ``Commerce`` (sync Client) and
``AsyncCommerce`` (AsyncClient) in node.client_commerce, and they are tested without a
node. The checks mirror the contracts' own ``require``s that can be decided from the
inputs alone, so a bad argument is refused before anything is signed (a failed
transaction still costs its nonce and fee), with what was expected and what was found.
``decode_record`` turns a view's JSON record (bytes as 0x-hex, integers beyond 2^53 as
decimal strings) into a dataclass by its type hints.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.errors import ValidationError

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=enum.Enum)

#: Hashes, commitments and account ids are 32 bytes.
HASH_BYTES = 32
#: The VM's integers are signed 64-bit.
VM_INT_MIN, VM_INT_MAX = -(2 ** 63), 2 ** 63 - 1
#: Basis points in a whole.
BPS = 10_000


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class ContractCall(Generic[T]):
    """One contract method call, checked and ready to sign (``view=False``) or to ask (``view=True``).

    ``decode`` turns the answer (the receipt's ``return_value`` for a transaction, the
    view's result) into the typed value the helper promises.
    """

    contract: str
    method: str
    args: tuple
    view: bool = False
    decode: Callable[[Any], T] = _same


def write(contract: str, method: str, *args: Any, decode: Callable[[Any], T] = _same) -> ContractCall[T]:
    return ContractCall(contract, method, tuple(args), False, decode)


def view(contract: str, method: str, *args: Any, decode: Callable[[Any], T] = _same) -> ContractCall[T]:
    return ContractCall(contract, method, tuple(args), True, decode)


# ---- input checks (raise ValidationError: what was expected, what was found) ---------

def bytes32(value: Any, what: str) -> bytes:
    """A 32-byte hash or account id, as bytes (bytes-like or 0x-hex accepted)."""
    raw = _as_bytes(value, what)
    if len(raw) != HASH_BYTES:
        raise ValidationError(f"{what} must be {HASH_BYTES} bytes (a SHA-256 hash or an account id), "
                              f"found {len(raw)} bytes")
    return raw


def bytes32_or_empty(value: Any, what: str) -> bytes:
    """32 bytes, or b"" / None for "none" (an optional referrer, voucher, unit)."""
    if value is None or value == b"" or value == "":
        return b""
    return bytes32(value, what + " (or empty for none)")


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ValidationError(f"{what} must be bytes (or 0x-hex), found {type(value).__name__} {value!r:.40}")


def some_bytes(value: Any, what: str, max_len: int = 4096) -> bytes:
    raw = _as_bytes(value, what)
    if len(raw) > max_len:
        raise ValidationError(f"{what} must be at most {max_len} bytes, found {len(raw)}")
    return raw


def integer(value: Any, what: str, low: int = VM_INT_MIN, high: int = VM_INT_MAX) -> int:
    """An int in low..high (bools are refused: True is not a quantity)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, found {type(value).__name__} {value!r:.40}")
    if not low <= value <= high:
        raise ValidationError(f"{what} must be {low}..{high}, found {value}")
    return value


def order_id(value: Any, what: str = "order_id") -> int:
    return integer(value, what, 1)


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be True or False, found {type(value).__name__} {value!r:.40}")
    return value


def text(value: Any, what: str, low: int = 0, high: int = 256) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, found {type(value).__name__} {value!r:.40}")
    if not low <= len(value) <= high:
        raise ValidationError(f"{what} must be {low}..{high} characters, found {len(value)}")
    return value


def choice(value: Any, kind: type[E], what: str) -> E:
    """A member of ``kind`` (the member, or its name as a str)."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise ValidationError(f"{what} must be one of {names}, found {value!r:.40}") from None


def hashes(values: Any, what: str, low: int = 1, high: int = 64) -> list[bytes]:
    if isinstance(values, (bytes, str)) or not isinstance(values, Sequence):
        raise ValidationError(f"{what} must be a list of 32-byte hashes, found {type(values).__name__}")
    if not low <= len(values) <= high:
        raise ValidationError(f"{what} must hold {low}..{high} hashes, found {len(values)}")
    return [bytes32(v, f"{what}[{i}]") for i, v in enumerate(values)]


# ---- decoding answers ---------------------------------------------------------------

def as_int(value: Any, what: str = "value") -> int:
    """A JSON integer: a number, or a decimal string beyond 2^53."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValidationError(f"{what}: expected an integer, found {value!r:.60}")


def as_bytes(value: Any, what: str = "value") -> bytes:
    """A JSON bytes value (0x-hex)."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ValidationError(f"{what}: expected 0x-hex bytes, found {value!r:.60}")


def as_ints(value: Any, what: str = "value") -> list[int]:
    if not isinstance(value, list):
        raise ValidationError(f"{what}: expected a list of integers, found {value!r:.60}")
    return [as_int(v, f"{what}[{i}]") for i, v in enumerate(value)]


def nothing(value: Any) -> None:
    return None


def decode_as(kind: Any, value: Any, what: str) -> Any:
    """``value`` (JSON) as the Python type ``kind``: bytes, int, str, bool, an Enum, a
    dataclass, ``list[X]`` or ``X | None``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else decode_as(members[0], value, what)
    if origin is list:
        if not isinstance(value, list):
            raise ValidationError(f"{what}: expected a list, found {value!r:.60}")
        (item,) = typing.get_args(kind)
        return [decode_as(item, v, f"{what}[{i}]") for i, v in enumerate(value)]
    if kind is bytes:
        return as_bytes(value, what)
    if kind is int:
        return as_int(value, what)
    if kind is bool or kind is str:
        if not isinstance(value, kind):
            raise ValidationError(f"{what}: expected {kind.__name__}, found {value!r:.60}")
        return value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            names = ", ".join(m.value for m in kind)
            raise ValidationError(f"{what}: unknown {kind.__name__} {value!r:.40} (expected one of {names})") from None
    if dataclasses.is_dataclass(kind):
        return decode_record(kind, value, what)
    raise TypeError(f"cannot decode {what} as {kind!r}")


def decode_record(cls: type[R], value: Any, what: str | None = None) -> R:
    """A contract record (a JSON object) as the dataclass ``cls``: every field must be present."""
    what = what or cls.__name__
    if not isinstance(value, dict):
        raise ValidationError(f"{what}: expected a record, found {value!r:.60}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        if f.name not in value:
            raise ValidationError(f"{what}: the node's record has no field {f.name!r} (has: {', '.join(sorted(value))})")
        values[f.name] = decode_as(hints[f.name], value[f.name], f"{what}.{f.name}")
    return cls(**values)


def record_or_none(cls: type[R]) -> Callable[[Any], R | None]:
    """A decoder for views that answer a record or null (``get_order`` of an unknown id)."""
    def decode(value: Any) -> R | None:
        return None if value is None else decode_record(cls, value)
    return decode


def records(cls: type[R]) -> Callable[[Any], list[R]]:
    def decode(value: Any) -> list[R]:
        return decode_as(list[cls], value, cls.__name__ + "s")  # type: ignore[valid-type]
    return decode


def bytes_or_none(value: Any) -> bytes | None:
    """A view's bytes answer where b"" means "none"."""
    raw = as_bytes(value)
    return raw or None
