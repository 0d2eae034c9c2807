"""Parameter types of the JSON-RPC route table, and the JSON conventions for values.

How it works: a ``ParamType`` knows three things about one kind of JSON value: a short
human ``description`` (used in invalid-params messages: "expected 0x-hex of 32 bytes,
found string "0x12""), a JSON ``schema`` (copied into the OpenRPC document) and
``convert(value)``, which checks the decoded JSON value and returns what the handler
receives (bytes for hex, int for big integers), raising ``ParamTypeError`` otherwise.

Conventions (DESIGN.md §8): binary values travel as 0x-prefixed hex; integers that may
exceed 2^53 (amounts) travel as decimal strings, since JavaScript clients lose
precision above that. ``BigInt`` accepts both an int and a decimal string so that
small values typed by hand still work; ``encode_bigint`` always emits the string.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ledger.errors import ChainError
from ledger.hexfmt import to_hex

#: Longest bytes value accepted as a hex param (a raw transaction, at most 64 KiB,
#: fits with room; the request body limit bounds it anyway).
MAX_HEX_BYTES = 512 * 1024
#: Longest string param.
MAX_STR_LEN = 64 * 1024
#: Most items in an array param.
MAX_ARRAY_LEN = 10_000
#: Most decimal digits of a big-integer string (2^256 has 78).
MAX_BIGINT_DIGITS = 80
#: How much of an offending value an error message quotes.
MAX_QUOTE_CHARS = 40
#: Largest integer a JSON number can carry exactly in every client (2^53 - 1).
MAX_SAFE_JSON_INT = 2**53 - 1

_HEX_RE = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
_DECIMAL_RE = re.compile(r"^-?(?:0|[1-9][0-9]*)$")


class ParamTypeError(ChainError, ValueError):
    """A JSON value is not of the expected kind; ``expected`` says what would be."""

    def __init__(self, expected: str, found: Any, found_text: str | None = None) -> None:
        self.expected = expected
        self.found = found_text if found_text is not None else describe_value(found)
        super().__init__(f"expected {expected}, found {self.found}")


def describe_value(value: Any) -> str:
    """A short JSON-flavoured description of a value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean " + ("true" if value else "false")
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**MAX_QUOTE_CHARS else f"of {len(str(abs(value)))} digits"
        return f"integer {text}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        quoted = value if len(value) <= MAX_QUOTE_CHARS else value[:MAX_QUOTE_CHARS] + "..."
        return f"string {quoted!r} ({len(value)} chars)" if len(value) > MAX_QUOTE_CHARS else f"string {quoted!r}"
    if isinstance(value, list):
        return f"array of {len(value)} items"
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:5])
        return f"object with keys {{{keys}}}" if value else "empty object"
    if isinstance(value, (bytes, bytearray)):
        return f"bytes of length {len(value)}"
    return type(value).__name__


def hex_encode(data: bytes) -> str:
    """Bytes as the JSON 0x-hex convention (lowercase)."""
    return to_hex(bytes(data))


def hex_decode(text: Any, length: int | None = None, max_len: int = MAX_HEX_BYTES) -> bytes:
    """Parse 0x-hex; ``length`` (bytes) if given must match exactly."""
    expected = f"0x-hex of {length} bytes" if length is not None else "0x-prefixed hex with an even number of digits"
    if not isinstance(text, str) or not _HEX_RE.match(text):
        raise ParamTypeError(expected, text)
    n = (len(text) - 2) // 2
    if length is not None and n != length:
        raise ParamTypeError(expected, text, f"0x-hex of {n} bytes")
    if n > max_len:
        raise ParamTypeError(f"0x-hex of at most {max_len} bytes", text, f"0x-hex of {n} bytes")
    return bytes.fromhex(text[2:])


def encode_bigint(value: int) -> str:
    """Integers that may exceed 2^53 go out as decimal strings."""
    return str(int(value))


def json_default(value: Any) -> Any:
    """json.dumps hook: binary values become 0x-hex; anything else is a bug."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hex_encode(bytes(value))
    if isinstance(value, (tuple, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


class ParamType:
    """Base: accepts anything. Subclasses narrow ``convert`` and ``schema``."""

    description = "any JSON value"

    @property
    def schema(self) -> dict[str, Any]:
        return {}

    def convert(self, value: Any) -> Any:
        return value


class Int(ParamType):
    """A JSON integer (never a boolean, never 1.0), optionally bounded.

    Always within the exactly representable range of JSON numbers (±(2^53-1)); values
    that may be larger belong in a ``BigInt`` param.
    """

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = max(minimum, -MAX_SAFE_JSON_INT) if minimum is not None else -MAX_SAFE_JSON_INT
        self.maximum = min(maximum, MAX_SAFE_JSON_INT) if maximum is not None else MAX_SAFE_JSON_INT
        self.description = "integer" + _bounds_text(minimum, maximum)

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}

    def convert(self, value: Any) -> int:
        if type(value) is not int:
            raise ParamTypeError(self.description, value)
        if abs(value) > MAX_SAFE_JSON_INT:
            raise ParamTypeError(f"{self.description} within ±(2^53-1) (larger values lose precision in JSON)", value)
        _check_bounds(value, self.minimum, self.maximum, self.description)
        return value


class BigInt(ParamType):
    """An integer given as a JSON number or a decimal string (for values above 2^53)."""

    def __init__(self, minimum: int | None = 0, maximum: int | None = 2**256 - 1) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.description = "integer or decimal string" + _bounds_text(minimum, maximum)

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "integer"},
                {"type": "string", "pattern": _DECIMAL_RE.pattern, "maxLength": MAX_BIGINT_DIGITS + 1},
            ]
        }

    def convert(self, value: Any) -> int:
        if type(value) is int:
            number = value
        elif isinstance(value, str) and len(value) <= MAX_BIGINT_DIGITS + 1 and _DECIMAL_RE.match(value):
            number = int(value)
        else:
            raise ParamTypeError(self.description, value)
        _check_bounds(number, self.minimum, self.maximum, self.description)
        return number


class Str(ParamType):
    """A string, optionally one of a fixed set or matching a pattern."""

    def __init__(self, max_len: int = MAX_STR_LEN, enum: Sequence[str] | None = None, pattern: str | None = None) -> None:
        self.max_len = max_len
        self.enum = tuple(enum) if enum is not None else None
        self.pattern = re.compile(pattern) if pattern is not None else None
        if self.enum is not None:
            self.description = "one of " + ", ".join(repr(e) for e in self.enum)
        elif self.pattern is not None:
            self.description = f"string matching {pattern}"
        else:
            self.description = f"string of at most {max_len} chars"

    @property
    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "maxLength": self.max_len}
        if self.enum is not None:
            s["enum"] = list(self.enum)
        if self.pattern is not None:
            s["pattern"] = self.pattern.pattern
        return s

    def convert(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise ParamTypeError(self.description, value)
        if self.enum is not None and value not in self.enum:
            raise ParamTypeError(self.description, value)
        if self.pattern is not None and not self.pattern.match(value):
            raise ParamTypeError(self.description, value)
        return value


class Bool(ParamType):
    description = "boolean"

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def convert(self, value: Any) -> bool:
        if type(value) is not bool:
            raise ParamTypeError(self.description, value)
        return value


class Hex(ParamType):
    """Binary data as 0x-hex; the handler receives bytes."""

    def __init__(self, length: int | None = None, max_len: int = MAX_HEX_BYTES) -> None:
        self.length, self.max_len = length, max_len
        self.description = f"0x-hex of {length} bytes" if length is not None else "0x-prefixed hex"

    @property
    def schema(self) -> dict[str, Any]:
        if self.length is not None:
            return {"type": "string", "pattern": f"^0x[0-9a-fA-F]{{{2 * self.length}}}$"}
        return {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})*$", "maxLength": 2 + 2 * self.max_len}

    def convert(self, value: Any) -> bytes:
        return hex_decode(value, self.length, self.max_len)


class Object(ParamType):
    description = "object"

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def convert(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ParamTypeError(self.description, value)
        return value


class Array(ParamType):
    """An array whose items all have one type."""

    def __init__(self, items: ParamType | None = None, max_len: int = MAX_ARRAY_LEN) -> None:
        self.items = items if items is not None else ParamType()
        self.max_len = max_len
        self.description = f"array of at most {max_len} items ({self.items.description})"

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.items.schema, "maxItems": self.max_len}

    def convert(self, value: Any) -> list[Any]:
        if not isinstance(value, list) or len(value) > self.max_len:
            raise ParamTypeError(self.description, value)
        out = []
        for i, item in enumerate(value):
            try:
                out.append(self.items.convert(item))
            except ParamTypeError as exc:
                raise ParamTypeError(f"{self.description}; item {i}: {exc.expected}", item, f"{exc.found} at item {i}") from None
        return out


def _bounds_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _check_bounds(value: int, minimum: int | None, maximum: int | None, expected: str) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParamTypeError(expected, value)


ANY = ParamType()
INTEGER = Int()
UINT = Int(minimum=0)
BIGINT = BigInt()
STRING = Str()
BOOLEAN = Bool()
HEX = Hex()
HASH32 = Hex(32)
OBJECT = Object()
