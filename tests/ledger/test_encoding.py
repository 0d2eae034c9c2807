"""Canonical encoding: round trips both ways, every non-canonical form rejected."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, strategies as st

from ledger.encoding import MAX_CONTAINER_LEN, MAX_DEPTH, MAX_INT, MIN_INT, decode, encode
from ledger.errors import ChainError, DecodeError, EncodeError

scalars = st.one_of(
    st.integers(min_value=MIN_INT, max_value=MAX_INT),
    st.binary(max_size=64),
    st.text(max_size=32),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=8), children, max_size=6),
    ),
    max_leaves=40,
)


@given(values)
def test_decode_of_encode_is_identity(value):
    assert decode(encode(value)) == value


@given(values)
def test_encode_of_decode_is_identity(value):
    data = encode(value)
    assert encode(decode(data)) == data


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 9), min_size=2, max_size=6))
def test_map_order_does_not_change_the_encoding(mapping):
    reordered = dict(reversed(list(mapping.items())))
    assert encode(reordered) == encode(mapping)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_decode_error(data):
    try:
        value = decode(data)
    except DecodeError:
        return
    assert encode(value) == data


@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_rejected(value, extra):
    with pytest.raises(DecodeError, match="trailing"):
        decode(encode(value) + extra)


@given(st.integers(min_value=0, max_value=127))
def test_non_minimal_integers_rejected(n):
    for form in (b"\xcc" + bytes([n]), b"\xcd" + struct.pack(">H", n), b"\xce" + struct.pack(">I", n),
                 b"\xcf" + struct.pack(">Q", n), b"\xd0" + struct.pack(">b", n)):
        with pytest.raises(DecodeError, match="non-canonical"):
            decode(form)


def test_non_minimal_lengths_rejected():
    with pytest.raises(DecodeError):
        decode(b"\xd9\x01a")  # str8 for a 1-char string (fixstr is minimal)
    with pytest.raises(DecodeError):
        decode(b"\xdc\x00\x01\x01")  # array16 of one item
    with pytest.raises(DecodeError):
        decode(b"\xde\x00\x01\xa1a\x01")  # map16 of one entry


def test_unsorted_and_duplicate_keys_rejected():
    with pytest.raises(DecodeError, match="non-canonical"):
        decode(b"\x82\xa1b\x01\xa1a\x02")
    with pytest.raises(DecodeError):
        decode(b"\x82\xa1a\x01\xa1a\x02")


def test_floats_ext_and_non_str_keys_rejected():
    for data in (msgpack.packb(1.5), msgpack.packb(1.5, use_single_float=True),
                 msgpack.packb(msgpack.ExtType(1, b"x")), b"\x81\x01\x02", b"\x81\xc4\x01a\x01", b"\xc1"):
        with pytest.raises(DecodeError):
            decode(data)
    with pytest.raises(EncodeError, match="floats"):
        encode(1.0)
    with pytest.raises(EncodeError, match="map keys must be str"):
        encode({1: 2})
    with pytest.raises(EncodeError, match="cannot be encoded"):
        encode(object())


def test_depth_and_size_limits():
    deep = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(EncodeError, match="deeper"):
        encode(deep)
    with pytest.raises(DecodeError):
        decode(b"\x91" * (MAX_DEPTH + 2) + b"\x90")
    with pytest.raises(DecodeError):
        decode(b"\x91" * 100_000)
    with pytest.raises(EncodeError, match="exceeds"):
        encode([0] * (MAX_CONTAINER_LEN + 1))
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode(b"\x00" * 100, max_size=10)
    with pytest.raises(EncodeError, match="range"):
        encode(MAX_INT + 1)
    with pytest.raises(DecodeError):
        decode(b"\xdd\xff\xff\xff\xff")  # array32 claiming 4 billion items


def test_errors_share_the_root_and_name_the_problem():
    with pytest.raises(ChainError) as info:
        decode(b"")
    assert "empty" in str(info.value)
    with pytest.raises(DecodeError, match="UTF-8"):
        decode(b"\xa2\xff\xfe")
    with pytest.raises(DecodeError, match="expected bytes"):
        decode("text")  # type: ignore[arg-type]


def test_the_text_limit_counts_utf8_bytes_on_both_sides():
    """Found writing docs/protocol.md: the encoder counted characters and the decoder bytes, so
    5 Mi two-byte characters encoded (10 MiB) and then did not decode."""
    from ledger.encoding import MAX_ITEM_BYTES
    within = "é" * (MAX_ITEM_BYTES // 2)
    assert decode(encode([within])) == [within]
    with pytest.raises(EncodeError, match="UTF-8 bytes exceeds"):
        encode("é" * (MAX_ITEM_BYTES // 2 + 1))
    with pytest.raises(EncodeError, match="UTF-8 bytes exceeds"):
        encode({"k": ["é" * (MAX_ITEM_BYTES // 2 + 1)]})
