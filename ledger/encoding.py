"""Canonical encoding: the only bytes shopchain ever hashes or signs.

How it works: values are a restricted msgpack. ``encode`` walks the value once,
rejecting anything outside the allowed types (int in [-2**63, 2**64), bytes, str,
bool, None, list/tuple, dict with str keys) and putting map keys in sorted order,
then lets msgpack emit the smallest form of every item (msgpack always does). ``decode``
unpacks with hard size limits and then re-encodes: the input is accepted only if the
re-encoding is byte-identical. That single comparison rejects every non-canonical
form at once (non-minimal integers or lengths, unsorted or duplicate keys, floats,
ext types, non-str keys) without a second hand-written parser to keep in sync.

So for every accepted ``b``: ``encode(decode(b)) == b``, and for every encodable
``x`` built from lists: ``decode(encode(x)) == x``. Tuples encode as arrays and decode
as lists.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ledger.errors import DecodeError, EncodeError

#: Largest encoded value accepted anywhere (a block with its transactions fits).
MAX_ENCODED_BYTES = 16 * 1024 * 1024
#: Deepest nesting of arrays/maps. Contract values and messages stay far below this.
MAX_DEPTH = 32
#: Longest bytes or str item.
MAX_ITEM_BYTES = 8 * 1024 * 1024
#: Most elements in one array or entries in one map.
MAX_CONTAINER_LEN = 100_000
#: Integer range: msgpack's native range, so every integer has one minimal form.
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1

#: Text strings this short are within MAX_ITEM_BYTES whatever their characters (4 UTF-8
#: bytes at most each), so only longer ones are measured in bytes.
_STR_FAST_CHARS = MAX_ITEM_BYTES // 4

_packer_options = {"use_bin_type": True, "strict_types": True, "autoreset": True}


def _normalize(obj: Any, depth: int) -> Any:
    """Check types and limits; return the value with maps in sorted-key order.

    Containers check their scalar items inline (the common case: records of ints and
    hashes) and recurse only for nested containers or items that fail the inline
    check; the recursion then raises exactly the error the item-by-item walk would.
    """
    if depth > MAX_DEPTH:
        raise EncodeError(f"value nested deeper than {MAX_DEPTH} levels")
    t = type(obj)
    if t is bool or obj is None:
        return obj
    if t is int:
        if obj < MIN_INT or obj > MAX_INT:
            raise EncodeError(f"integer {obj} outside the range [{MIN_INT}, {MAX_INT}]")
        return obj
    if t is bytes:
        if len(obj) > MAX_ITEM_BYTES:
            raise EncodeError(f"bytes item of {len(obj)} bytes exceeds {MAX_ITEM_BYTES}")
        return obj
    if t is str:
        # The limit is on UTF-8 bytes, as the decoder counts them (a code point is 1..4 bytes).
        if len(obj) > _STR_FAST_CHARS and len(obj.encode("utf-8")) > MAX_ITEM_BYTES:
            raise EncodeError(f"str item of {len(obj.encode('utf-8'))} UTF-8 bytes exceeds {MAX_ITEM_BYTES}")
        return obj
    if t is list or t is tuple:
        if len(obj) > MAX_CONTAINER_LEN:
            raise EncodeError(f"array of {len(obj)} items exceeds {MAX_CONTAINER_LEN}")
        if depth >= MAX_DEPTH:
            return [_normalize(item, depth + 1) for item in obj]
        out = []
        append = out.append
        for item in obj:
            ti = type(item)
            if ti is int:
                if MIN_INT <= item <= MAX_INT:
                    append(item)
                    continue
            elif ti is bytes or ti is str:
                if len(item) <= _STR_FAST_CHARS:
                    append(item)
                    continue
            elif ti is bool or item is None:
                append(item)
                continue
            append(_normalize(item, depth + 1))
        return out
    if t is dict:
        if len(obj) > MAX_CONTAINER_LEN:
            raise EncodeError(f"map of {len(obj)} entries exceeds {MAX_CONTAINER_LEN}")
        for key in obj:
            if type(key) is not str:
                raise EncodeError(f"map keys must be str, found {type(key).__name__} {key!r}")
        if depth >= MAX_DEPTH:
            return {key: _normalize(obj[key], depth + 1) for key in sorted(obj)}
        result = {}
        for key in sorted(obj):
            item = obj[key]
            ti = type(item)
            if ti is int:
                if MIN_INT <= item <= MAX_INT:
                    result[key] = item
                    continue
            elif ti is bytes or ti is str:
                if len(item) <= _STR_FAST_CHARS:
                    result[key] = item
                    continue
            elif ti is bool or item is None:
                result[key] = item
                continue
            result[key] = _normalize(item, depth + 1)
        return result
    if isinstance(obj, (bytearray, memoryview)):
        return _normalize(bytes(obj), depth)
    if t is float:
        raise EncodeError(f"floats are not allowed (found {obj!r}); use integers in minor units")
    raise EncodeError(f"type {t.__name__} cannot be encoded (expected int, bytes, str, bool, None, list or dict)")


def encode(obj: Any) -> bytes:
    """Return the canonical bytes of ``obj``; raise EncodeError if it has none."""
    data = msgpack.packb(_normalize(obj, 0), **_packer_options)
    if len(data) > MAX_ENCODED_BYTES:
        raise EncodeError(f"encoded value of {len(data)} bytes exceeds {MAX_ENCODED_BYTES}")
    return data


def encode_array_of_encoded(items: list[bytes]) -> bytes:
    """Canonical encoding of an array whose items are already canonically encoded.

    An array's encoding is its length header followed by its items' encodings, so a
    block can reuse the bytes its transactions arrived in instead of re-encoding them.
    """
    n = len(items)
    if n > MAX_CONTAINER_LEN:
        raise EncodeError(f"array of {n} items exceeds {MAX_CONTAINER_LEN}")
    if n < 16:
        header = bytes([0x90 | n])
    elif n < 0x10000:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(items)


class Encoded(bytes):
    """Bytes that already are a canonical encoding, for ``encode_array`` to splice in as is."""


def encode_array(items: list) -> bytes:
    """Canonical encoding of an array, reusing the bytes of items wrapped in ``Encoded``."""
    return encode_array_of_encoded([item if isinstance(item, Encoded) else encode(item) for item in items])


def decode(data: bytes, max_size: int = MAX_ENCODED_BYTES) -> Any:
    """Return the value whose canonical encoding is exactly ``data``.

    Raises DecodeError (and nothing else) for any input that is not canonical.
    """
    if type(data) is not bytes:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        else:
            raise DecodeError(f"expected bytes to decode, found {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"input of {len(data)} bytes exceeds the limit of {max_size}")
    if not data:
        raise DecodeError("expected an encoded value, found empty input")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=MAX_ITEM_BYTES,
            max_bin_len=MAX_ITEM_BYTES,
            max_array_len=MAX_CONTAINER_LEN,
            max_map_len=MAX_CONTAINER_LEN,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError(f"trailing bytes after the value ({len(exc.extra)} extra)") from None
    except msgpack.StackError:
        raise DecodeError(f"value nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"str item is not valid UTF-8 ({exc.reason})") from None
    except ValueError as exc:
        raise DecodeError(f"not a complete msgpack value: {exc}") from None
    except Exception as exc:  # msgpack raises assorted types for garbage (FormatError, TypeError)
        raise DecodeError(f"not valid msgpack: {type(exc).__name__}: {exc}") from None
    try:
        again = encode(value)
    except EncodeError as exc:
        raise DecodeError(f"value is not canonical: {exc}") from None
    except RecursionError:
        raise DecodeError(f"value nested deeper than {MAX_DEPTH} levels") from None
    if again != data:
        raise DecodeError(_explain_mismatch(data, again))
    return value


def decode_known_canonical(data: bytes) -> Any:
    """The value of ``data`` that the caller already knows ``decode`` accepts.

    For callers that remember which bytes passed ``decode`` (or came out of
    ``encode``): unpacking with the same options yields the same value, and skipping
    the re-encoding comparison is what makes a repeated read cheap. Never use this on
    bytes that have not been checked.
    """
    return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)


def _explain_mismatch(data: bytes, canonical: bytes) -> str:
    """Name the first differing byte so a client author can find the bug."""
    limit = min(len(data), len(canonical))
    index = next((i for i in range(limit) if data[i] != canonical[i]), limit)
    return (
        f"non-canonical encoding at byte {index}: expected 0x{canonical[index:index + 1].hex() or 'end'}, "
        f"found 0x{data[index:index + 1].hex() or 'end'} (non-minimal int or length, unsorted or "
        f"duplicate map keys, or an ext/float type)"
    )


def reencode_decoded(value: Any) -> bytes:
    """Canonical bytes of a part of a value that ``decode`` returned.

    ``decode`` accepted the whole input only because it is canonical, so every part of
    it already has canonical types, limits and map order; msgpack alone reproduces its
    bytes without the checking walk of ``encode``. Never use this on other values.
    """
    return msgpack.packb(value, **_packer_options)
