"""Privacy helpers: salted commitments, single-field disclosure, sealed payloads."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ledger.encoding import encode
from ledger.errors import ValidationError
from ledger.privacy import (
    Disclosure,
    PiiCommitment,
    commit_pii,
    new_encryption_key,
    open_and_check,
    open_sealed,
    payload_hash,
    seal,
    verify_disclosure,
)

FIELDS = {"name": "Ada Lovelace", "street": "12 Analytical Row", "city": "London", "phone": "+44 20 0000 0000"}


def test_disclose_one_field_without_the_others():
    commitment = commit_pii(FIELDS)
    proof = commitment.disclose("city")
    assert verify_disclosure(commitment.root, proof)
    # The proof carries only the city and hashes: no other value appears in it.
    blob = repr(proof.to_list())
    assert "London" in blob and "Ada" not in blob and "Analytical" not in blob
    assert Disclosure.from_list(proof.to_list()) == proof


def test_forged_disclosures_fail():
    commitment = commit_pii(FIELDS)
    proof = commitment.disclose("name")
    for forged in (
        Disclosure(proof.field, "Someone Else", proof.salt, proof.index, proof.size, proof.path),
        Disclosure("city", proof.value, proof.salt, proof.index, proof.size, proof.path),
        Disclosure(proof.field, proof.value, b"\x00" * 32, proof.index, proof.size, proof.path),
        Disclosure(proof.field, proof.value, proof.salt, proof.index + 1, proof.size, proof.path),
        Disclosure(proof.field, proof.value, proof.salt, proof.index, proof.size, proof.path[:-1]),
        Disclosure(proof.field, proof.value, b"short", proof.index, proof.size, proof.path),
        Disclosure(proof.field, 5, proof.salt, proof.index, proof.size, proof.path),  # type: ignore[arg-type]
    ):
        assert not verify_disclosure(commitment.root, forged)
    assert not verify_disclosure(commit_pii(FIELDS).root, proof)  # fresh salts, different root


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=30), min_size=1, max_size=8))
def test_every_field_discloses(fields):
    commitment = commit_pii(fields)
    for name in fields:
        assert verify_disclosure(commitment.root, commitment.disclose(name))


def test_sealed_payload_round_trip_and_commitment_check():
    merchant = new_encryption_key()
    commitment = commit_pii(FIELDS)
    ciphertext = seal(bytes(merchant.public_key), commitment.to_payload())
    stored_hash = payload_hash(ciphertext)
    opened = open_and_check(merchant, ciphertext, stored_hash, commitment.root)
    assert opened.fields == FIELDS
    with pytest.raises(ValidationError, match="payload hash"):
        open_and_check(merchant, ciphertext + b"x", stored_hash, commitment.root)
    with pytest.raises(ValidationError, match="cannot be opened"):
        open_sealed(new_encryption_key(), ciphertext)
    other = seal(bytes(merchant.public_key), commit_pii(FIELDS).to_payload())
    with pytest.raises(ValidationError, match="PII commitment"):
        open_and_check(merchant, other, payload_hash(other), commitment.root)


def test_bad_inputs_are_clear():
    with pytest.raises(ValidationError, match="personal fields"):
        commit_pii({})
    with pytest.raises(ValidationError, match="no personal field"):
        commit_pii(FIELDS).disclose("email")
    with pytest.raises(ValidationError, match="32 bytes"):
        seal(b"short", b"data")
    with pytest.raises(ValidationError, match="same field names"):
        PiiCommitment.from_payload(encode(["pii/1", {"a": "b"}, {}]))
