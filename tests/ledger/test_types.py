"""Types: canonical round trips, stable ids, field errors, certificates, Merkle proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ledger import encoding
from ledger.crypto import SigningKey
from ledger.errors import DecodeError, ValidationError
from ledger.merkle import EMPTY_ROOT, merkle_proof, merkle_root, verify_inclusion
from ledger.types import (
    PHASE_COMMIT,
    PHASE_PREPARE,
    Block,
    CommitCertificate,
    Receipt,
    Event,
    SignedTx,
    TxBody,
    Vote,
    quorum_size,
    max_faulty,
    verify_certificate,
)
from tests.helpers import CHAIN_ID, VALIDATOR_KEYS, VALIDATORS, certify, make_block, make_tx

ALICE = SigningKey.from_label("alice")


def test_tx_round_trip_id_and_signature():
    tx = make_tx(ALICE, 7)
    again = SignedTx.decode(tx.encode())
    assert again == tx and again.tx_id == tx.tx_id and again.verify_signature()
    # The id covers the body only: a second valid signature would not change it.
    assert tx.tx_id == tx.body.tx_id


def test_tx_signature_fails_on_tamper_and_other_chain():
    tx = make_tx(ALICE, 1)
    other_body = TxBody("other-chain", *tx.body.to_list()[2:])
    assert not SignedTx(other_body, tx.signature).verify_signature()
    tampered = TxBody(CHAIN_ID, ALICE.public_key, 2, "token", "transfer", tx.body.args, tx.body.gas_limit)
    assert not SignedTx(tampered, tx.signature).verify_signature()


def test_tx_decode_names_the_bad_field():
    body = make_tx(ALICE, 1).body.to_list()
    body[2] = b"short"
    with pytest.raises(DecodeError, match="transaction sender: expected 32 bytes, found 5"):
        SignedTx.decode(encoding.encode(["stx/1", body, b"\x00" * 64]))
    body = make_tx(ALICE, 1).body.to_list()
    body[7] = 0
    with pytest.raises(DecodeError, match="gas_limit"):
        SignedTx.decode(encoding.encode(["stx/1", body, b"\x00" * 64]))
    with pytest.raises(DecodeError, match="expected tag"):
        SignedTx.decode(encoding.encode(["blk/1", body, b"\x00" * 64]))
    with pytest.raises(DecodeError, match="exceeds the limit"):
        SignedTx.decode(b"\x00" * 70_000)
    with pytest.raises(ValidationError, match="does not match"):
        TxBody(CHAIN_ID, ALICE.public_key, 0, "c", "m", [], 1).sign(SigningKey.from_label("bob"))


@given(st.integers(0, 2**32), st.text(min_size=1, max_size=10), st.lists(st.integers(0, 1000), max_size=5))
def test_tx_round_trip_property(nonce, method, args):
    tx = TxBody(CHAIN_ID, ALICE.public_key, nonce, "orders", method, args, 1000).sign(ALICE)
    assert SignedTx.decode(tx.encode()).tx_id == tx.tx_id


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.binary(max_size=300)
                    | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12))
def test_decoded_tx_reuses_its_body_bytes(arg):
    # Decoding slices what was signed out of the raw bytes instead of encoding the body
    # again; the slice must be exactly the body's canonical encoding for any arguments.
    tx = TxBody(CHAIN_ID, ALICE.public_key, 3, "orders", "place", [arg], 1000).sign(ALICE)
    again = SignedTx.decode(tx.encode())
    assert again._body_raw == tx.body.encode()
    assert again.tx_id == tx.tx_id and again.verify_signature()
    block, _ = make_block(1, None, None, [tx, make_tx(ALICE, 4)])
    for decoded, original in zip(Block.decode(block.encode()).txs, block.txs):
        assert decoded.encode() == original.encode() and decoded._body_raw == original.body.encode()


def test_block_round_trip_and_shape_checks():
    b1, r1 = make_block(1, None, None, [make_tx(ALICE, 0), make_tx(ALICE, 1)])
    c1 = certify(b1)
    b2, _ = make_block(2, b1, c1, [make_tx(ALICE, 2)])
    again = Block.decode(b2.encode())
    assert again.block_hash == b2.block_hash
    again.check_shape()
    forged = Block(b2.header, b2.txs[:0], b2.last_commit)
    with pytest.raises(ValidationError, match="tx_root"):
        forged.check_shape()
    with pytest.raises(ValidationError, match="last_commit_hash"):
        Block(b2.header, b2.txs, certify(b2)).check_shape()


def test_receipt_round_trip():
    r = Receipt(b"\x01" * 32, 1, 500, {"x": 1}, "OutOfGas: needed 10", [Event("orders", "OrderPlaced", {"id": b"\x02"})])
    assert Receipt.decode(r.encode()) == r


def test_quorum_sizes():
    assert [(n, max_faulty(n), quorum_size(n)) for n in (1, 4, 5, 7, 10, 16)] == [
        (1, 0, 1), (4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7), (16, 5, 11)]


def test_certificate_verification():
    block, _ = make_block(1, None, None, [])
    cert = certify(block)
    verify_certificate(CommitCertificate.decode(cert.encode()), VALIDATORS, CHAIN_ID, 1, block.block_hash)
    with pytest.raises(ValidationError, match="quorum of 3"):
        verify_certificate(certify(block, VALIDATOR_KEYS[:2]), VALIDATORS, CHAIN_ID)
    with pytest.raises(ValidationError, match="twice"):
        verify_certificate(CommitCertificate(1, 0, block.block_hash, cert.votes[:2] + cert.votes[:1]), VALIDATORS, CHAIN_ID)
    outsider = SigningKey.from_label("outsider")
    with pytest.raises(ValidationError, match="not in the validator set"):
        verify_certificate(certify(block, VALIDATOR_KEYS[:2] + [outsider]), VALIDATORS, CHAIN_ID)
    with pytest.raises(ValidationError, match="invalid signature"):
        verify_certificate(cert, VALIDATORS, "another-chain")
    with pytest.raises(ValidationError, match="height 1, expected 2"):
        verify_certificate(cert, VALIDATORS, CHAIN_ID, height=2)
    with pytest.raises(ValidationError, match="expected"):
        verify_certificate(cert, VALIDATORS, CHAIN_ID, block_hash=b"\x00" * 32)
    prepare = Vote.create(VALIDATOR_KEYS[3], CHAIN_ID, PHASE_PREPARE, 0, 1, block.block_hash)
    mixed = CommitCertificate(1, 0, block.block_hash, cert.votes[:2] + (prepare,))
    with pytest.raises(ValidationError):
        verify_certificate(mixed, VALIDATORS, CHAIN_ID)


def test_vote_round_trip_and_signature():
    vote = Vote.create(VALIDATOR_KEYS[0], CHAIN_ID, PHASE_COMMIT, 3, 9, b"\x05" * 32)
    again = Vote.from_list(encoding.decode(encoding.encode(vote.to_list())))
    assert again == vote and again.verify(CHAIN_ID) and not again.verify("x")
    with pytest.raises(DecodeError, match="phase"):
        Vote.from_list(["vote/1", 9, 0, 0, b"\x00" * 32, b"\x00" * 32, b"\x00" * 64])


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=70), st.data())
def test_merkle_proofs_verify_and_tampering_fails(items, data):
    root = merkle_root(items)
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle_proof(items, index)
    assert verify_inclusion(root, index, len(items), items[index], proof)
    assert not verify_inclusion(root, index, len(items), items[index] + b"!", proof)
    if proof:
        bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
        assert not verify_inclusion(root, index, len(items), items[index], bad)
        assert not verify_inclusion(root, index, len(items), items[index], proof[:-1])


def test_merkle_known_shapes():
    assert merkle_root([]) == EMPTY_ROOT
    # A leaf and a node with the same bytes hash differently (domain separation).
    a, b = b"a", b"b"
    assert merkle_root([a, b]) != merkle_root([merkle_root([a]) + merkle_root([b])])
    assert not verify_inclusion(merkle_root([a]), 0, 1, a, ["x"])  # type: ignore[list-item]


@given(st.integers(0, 40))
def test_block_encoding_by_concatenation_equals_plain_encoding(count):
    txs = [make_tx(ALICE, i) for i in range(count)]
    block, _ = make_block(1, None, None, txs)
    assert block.encode() == encoding.encode(block.to_list())
    assert Block.decode(block.encode()).encode() == block.encode()


def test_array_of_encoded_headers():
    for n in (0, 15, 16, 65535, 65536):
        items = [encoding.encode(i % 3) for i in range(n)]
        assert encoding.encode_array_of_encoded(items) == encoding.encode([i % 3 for i in range(n)])
