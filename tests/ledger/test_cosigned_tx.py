"""Co-signed transactions (cstx/1): canonical form, round trips, ids and refusals.

A transaction without co-signatures must stay the stx/1 bytes it always was; with
them it is ``[cstx/1, body, signature, [[key, sig], ...]]`` with 1..MAX_COSIGNATURES
pairs strictly ascending by key, none the sender's. The id is the body's hash either
way, each signature is checked, and blocks carry and commit to the exact bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import encoding
from ledger.crypto import SigningKey
from ledger.errors import DecodeError, ValidationError
from ledger.types import (MAX_COSIGNATURES, TAG_COSIGNED_TX, TAG_SIGNED_TX, Block, BlockHeader, SignedTx, TxBody,
                          ZERO_HASH, compute_tx_root)

SENDER = SigningKey.from_label("cosign-sender")
KEYS = [SigningKey.from_label(f"cosigner-{i}") for i in range(MAX_COSIGNATURES + 1)]


def body(nonce: int = 0) -> TxBody:
    return TxBody("cosign-test", SENDER.public_key, nonce, "ledger", "transfer", [b"\x02" * 32, 500], 50_000)


def raw_cosigned(tx: SignedTx, pairs: list) -> bytes:
    return encoding.encode([TAG_COSIGNED_TX, tx.body.to_list(), tx.signature, pairs])


def test_no_co_signature_keeps_the_stx1_bytes_and_the_id():
    plain = body().sign(SENDER)
    assert encoding.decode(plain.encode())[0] == TAG_SIGNED_TX
    assert SignedTx(plain.body, plain.signature).encode() == plain.encode()
    cosigned = plain.cosigned_by(KEYS[0])
    assert cosigned.tx_id == plain.tx_id == SignedTx.decode(cosigned.encode()).tx_id
    assert encoding.decode(cosigned.encode())[0] == TAG_COSIGNED_TX
    assert len(cosigned.encode()) > len(plain.encode())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(range(MAX_COSIGNATURES)), min_size=1, max_size=MAX_COSIGNATURES, unique=True))
def test_any_co_signer_set_round_trips_canonically_whatever_the_signing_order(picked):
    tx = body().sign(SENDER)
    for i in picked:
        tx = tx.cosigned_by(KEYS[i])
    raw = tx.encode()
    back = SignedTx.decode(raw)
    assert back.encode() == raw and back == tx and back.tx_id == tx.tx_id
    assert back.verify_signature() and back.bad_cosignature() is None
    assert list(back.cosigner_keys) == sorted(KEYS[i].public_key for i in picked)
    again = body().sign(SENDER)
    for i in reversed(picked):
        again = again.cosigned_by(KEYS[i])
    assert again.encode() == raw                     # the order of co-signing does not matter


def test_each_co_signature_is_checked_and_the_bad_one_named():
    tx = body().sign(SENDER).cosigned_by(KEYS[0]).cosigned_by(KEYS[1])
    k0, k1 = tx.cosigner_keys
    forged = SignedTx(tx.body, tx.signature, cosignatures=((k0, tx.cosignatures[0][1]), (k1, b"\x01" * 64)))
    decoded = SignedTx.decode(forged.encode())
    assert not decoded.verify_signature() and decoded.bad_cosignature() == k1
    other_body = body(nonce=1)
    wrong_body = SignedTx(tx.body, tx.signature, cosignatures=((k0, other_body.cosign(KEYS[0])),))
    assert not wrong_body.verify_signature()       # a co-signature covers exactly one body


@pytest.mark.parametrize("make, message", [
    (lambda tx, p: raw_cosigned(tx, []), "expected an array of 1..8"),
    (lambda tx, p: raw_cosigned(tx, [p[1], p[0]]), "strictly ascending"),
    (lambda tx, p: raw_cosigned(tx, [p[0], p[0]]), "strictly ascending"),
    (lambda tx, p: raw_cosigned(tx, [[SENDER.public_key, p[0][1]]]), "the key is the sender's own"),
    (lambda tx, p: raw_cosigned(tx, [[p[0][0][:31], p[0][1]]]), "expected 32 bytes"),
    (lambda tx, p: raw_cosigned(tx, [[p[0][0], p[0][1][:63]]]), "expected 64 bytes"),
    (lambda tx, p: raw_cosigned(tx, [p[0][0]]), "expected [key, signature]"),
    (lambda tx, p: raw_cosigned(tx, [[k.public_key, b"\x00" * 64] for k in sorted(KEYS, key=lambda k: k.public_key)]),
     "expected an array of 1..8 [key, signature] pairs, found 9 items"),
    (lambda tx, p: encoding.encode([TAG_COSIGNED_TX, tx.body.to_list(), tx.signature]), "expected 4 fields"),
    (lambda tx, p: encoding.encode([TAG_SIGNED_TX, tx.body.to_list(), tx.signature, p]), "expected 3 fields"),
])
def test_non_canonical_co_signatures_are_refused_at_decode(make, message):
    tx = body().sign(SENDER).cosigned_by(KEYS[0]).cosigned_by(KEYS[1])
    pairs = [[k, s] for k, s in tx.cosignatures]
    with pytest.raises(DecodeError) as info:
        SignedTx.decode(make(tx, pairs))
    assert message in str(info.value)


def test_adding_co_signatures_refuses_the_sender_a_repeat_and_one_too_many():
    tx = body().sign(SENDER)
    with pytest.raises(ValidationError, match="sender's own key"):
        tx.cosigned_by(SENDER)
    with pytest.raises(ValidationError, match="already co-signed"):
        tx.cosigned_by(KEYS[0]).cosigned_by(KEYS[0])
    for k in KEYS[:MAX_COSIGNATURES]:
        tx = tx.cosigned_by(k)
    with pytest.raises(ValidationError, match="at most 8 co-signatures"):
        tx.cosigned_by(KEYS[MAX_COSIGNATURES])


def test_blocks_carry_co_signed_transactions_and_their_root_commits_to_the_co_signatures():
    plain = body().sign(SENDER)
    cosigned = body(nonce=1).sign(SENDER).cosigned_by(KEYS[3])
    header = BlockHeader("cosign-test", 1, ZERO_HASH, 1, b"\x01" * 32, 0, compute_tx_root([plain, cosigned]),
                         ZERO_HASH, ZERO_HASH, ZERO_HASH, ZERO_HASH)
    block = Block(header, (plain, cosigned), None)
    back = Block.decode(block.encode())
    assert back.encode() == block.encode() and back.txs == (plain, cosigned)
    back.check_shape()
    assert back.txs[1].verify_signature() and back.txs[1].tx_id == cosigned.tx_id
    stripped = SignedTx(cosigned.body, cosigned.signature)
    assert compute_tx_root([plain, stripped]) != header.tx_root
