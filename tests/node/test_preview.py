"""Proposal previews: the wire form a backup decodes from its primary, and its limits."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ledger import encoding
from ledger.errors import DecodeError
from node.core.preview import MAX_PREVIEW_TXS, Preview

HASHES = st.binary(min_size=32, max_size=32)


@given(st.integers(0, 2**63), st.integers(0, 2**63), HASHES, st.integers(0, 2**63), st.lists(HASHES, max_size=50))
def test_preview_round_trips(view, height, prev_hash, timestamp, ids):
    preview = Preview(view, height, prev_hash, timestamp, tuple(ids))
    assert Preview.decode(preview.encode()) == preview


@pytest.mark.parametrize("fields, message", [
    (["block", 0, 1, b"\x00" * 32, 5, []], "expected a preview"),
    (["preview", 0, 1, b"\x00" * 32, 5], "expected a preview"),
    (["preview", -1, 1, b"\x00" * 32, 5, []], "view: expected a non-negative integer"),
    (["preview", 0, "1", b"\x00" * 32, 5, []], "height: expected a non-negative integer"),
    (["preview", 0, 1, b"\x00" * 31, 5, []], "prev_hash: expected 32 bytes"),
    (["preview", 0, 1, b"\x00" * 32, 5, [b"\x01" * 31]], "tx_ids: expected 32-byte ids"),
    (["preview", 0, 1, b"\x00" * 32, 5, [b"\x01" * 32] * (MAX_PREVIEW_TXS + 1)], "at most 10000 ids"),
])
def test_bad_previews_are_refused_with_what_was_expected(fields, message):
    with pytest.raises(DecodeError, match=message):
        Preview.decode(encoding.encode(fields))


def test_non_canonical_bytes_are_refused():
    with pytest.raises(DecodeError):
        Preview.decode(b"\xc1")
