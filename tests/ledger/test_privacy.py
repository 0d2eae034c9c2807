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


# --- derived salts, keys, labels, tracking numbers and disclosures as JSON ------------

from ledger.privacy import (  # noqa: E402
    commit_tracking,
    commit_with_salts,
    derive_salts,
    disclosure_from_json,
    disclosure_to_json,
    encryption_key_from_seed,
    encryption_public_key,
    label_from_payload,
    label_hash,
    label_payload,
)

SEED = bytes(range(32))
PAYLOAD_HASH = b"\x11" * 32


def test_derived_salts_rebuild_the_same_commitment_and_differ_per_order_and_field():
    salts = derive_salts(SEED, PAYLOAD_HASH, FIELDS)
    assert salts == derive_salts(SEED, PAYLOAD_HASH, FIELDS)
    assert len(set(salts.values())) == len(FIELDS) and all(len(s) == 32 for s in salts.values())
    other_order = derive_salts(SEED, b"\x22" * 32, FIELDS)
    assert not set(salts.values()) & set(other_order.values())
    assert derive_salts(bytes(32), PAYLOAD_HASH, FIELDS) != salts      # another buyer's seed
    a, b = commit_with_salts(FIELDS, salts), commit_with_salts(FIELDS, other_order)
    assert a.root == commit_with_salts(dict(FIELDS), salts).root and a.root != b.root


def test_encryption_key_is_derived_from_the_seed_and_opens_what_is_sealed_to_it():
    assert encryption_public_key(SEED) == bytes(encryption_key_from_seed(SEED).public_key)
    assert encryption_public_key(SEED) != encryption_public_key(bytes(32))
    sealed = seal(encryption_public_key(SEED), b"J. Doe")
    assert b"J. Doe" not in sealed and open_sealed(encryption_key_from_seed(SEED), sealed) == b"J. Doe"


def test_label_discloses_only_its_fields_and_checks_against_pii_root():
    commitment = commit_with_salts(FIELDS, derive_salts(SEED, PAYLOAD_HASH, FIELDS))
    label = [commitment.disclose(n) for n in ("name", "street", "city")]
    payload = label_payload(label)
    assert b"+44" not in payload                                        # the phone stays with the merchant
    assert label_from_payload(payload, commitment.root) == label
    assert label_hash(label) != label_hash(label[:2])
    with pytest.raises(ValidationError, match="does not match the order's pii_root"):
        label_from_payload(payload, commit_pii(FIELDS).root)


def test_tracking_commitment_is_salted():
    a, b = commit_tracking("TRACK-77"), commit_tracking("TRACK-77")
    assert a.root != b.root and verify_disclosure(a.root, a.disclose("tracking"))
    with pytest.raises(ValidationError, match="cannot be empty"):
        commit_tracking("")


def test_disclosure_json_round_trip_and_tampering_is_detected():
    commitment = commit_pii(FIELDS)
    doc = disclosure_to_json(7, "pii_root", commitment.disclose("city"))
    order, name, d = disclosure_from_json(doc)
    assert (order, name) == (7, "pii_root") and verify_disclosure(commitment.root, d)
    for key, value in [("value", "Paris"), ("salt", "0x" + "00" * 32), ("index", 3), ("field", "name")]:
        _, _, forged = disclosure_from_json({**doc, key: value})
        assert not verify_disclosure(commitment.root, forged), key
    for key, value, message in [("type", "x", "disclosure type"), ("commitment", "label_hash", "commitment"),
                                ("salt", "0x12", "salt"), ("order", 0, "order"), ("path", ["zz"], "path")]:
        with pytest.raises(ValidationError, match=message):
            disclosure_from_json({**doc, key: value})
    with pytest.raises(ValidationError, match="keys"):
        disclosure_from_json({k: v for k, v in doc.items() if k != "salt"})


def test_free_texts_are_committed_with_a_salt_only_their_author_derives():
    from ledger.crypto import sha256 as _sha256
    from ledger.privacy import TEXT_FIELD, commit_text, commit_with_salts
    a, b = b"\x01" * 32, b"\x02" * 32
    text = "signed by Jane Q. Doe"
    mine = commit_text(a, text)
    assert mine.root == commit_text(a, text).root                      # the author rebuilds it any time
    assert mine.root != commit_text(b, text).root                      # another author, another salt
    assert mine.root != commit_text(a, text + ".").root
    assert mine.root not in (_sha256(text.encode()), _sha256(text.encode()).hex().encode())
    assert commit_with_salts({TEXT_FIELD: text}, mine.salts).root == mine.root   # what `commitment check` does
    with pytest.raises(ValidationError):
        commit_text(a, "")
