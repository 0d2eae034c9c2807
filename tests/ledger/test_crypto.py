"""Strict ed25519: RFC 8032 vectors, Wycheproof, speccheck edge cases, domain separation."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, strategies as st

from ledger.crypto import (
    DOMAIN_TX,
    DOMAIN_VOTE,
    SigningKey,
    sha256,
    signing_payload,
    verify_ed25519,
    verify_signed,
)
from ledger.errors import ValidationError

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors")
L = 2**252 + 27742317777372353535851937790883648493

# RFC 8032 section 7.1, TEST 1-3: (secret seed, public key, message, signature).
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize("seed,public,message,signature", RFC8032)
def test_rfc8032_vectors(seed, public, message, signature):
    key = SigningKey(bytes.fromhex(seed))
    assert key.public_key.hex() == public
    assert key.sign_raw(bytes.fromhex(message)).hex() == signature
    assert verify_ed25519(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


def test_wycheproof_agrees_on_every_case():
    with open(os.path.join(VECTORS, "wycheproof_ed25519_test.json")) as fh:
        suite = json.load(fh)
    count = 0
    for group in suite["testGroups"]:
        public = bytes.fromhex(group["publicKey"]["pk"])
        for case in group["tests"]:
            got = verify_ed25519(public, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
            assert got == (case["result"] == "valid"), f"tcId {case['tcId']}: {case['comment']}"
            count += 1
    assert count == 151


def test_speccheck_accepts_only_case_3():
    with open(os.path.join(VECTORS, "ed25519_speccheck_cases.json")) as fh:
        cases = json.load(fh)
    accepted = [i for i, c in enumerate(cases)
                if verify_ed25519(bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"]))]
    assert accepted == [3]


def test_malleable_s_plus_l_rejected():
    seed, public, message, signature = RFC8032[1]
    sig = bytes.fromhex(signature)
    s = int.from_bytes(sig[32:], "little")
    forged = sig[:32] + (s + L).to_bytes(32, "little")
    assert not verify_ed25519(bytes.fromhex(public), bytes.fromhex(message), forged)


def test_small_order_key_and_r_rejected():
    identity = (1).to_bytes(32, "little")  # the neutral point, order 1
    # With A and R both the identity, the cofactorless equation holds for S = 0.
    assert not verify_ed25519(identity, b"msg", identity + bytes(32))
    key = SigningKey.from_label("x")
    assert not verify_ed25519(key.public_key, b"msg", identity + bytes(32))


@given(st.binary(max_size=40), st.binary(max_size=40), st.binary(max_size=80))
def test_verify_never_raises(public, message, signature):
    assert verify_ed25519(public, message, signature) in (False, True)


def test_verify_rejects_wrong_types():
    key = SigningKey.from_label("a")
    sig = key.sign_raw(b"m")
    assert verify_ed25519(key.public_key, b"m", sig)
    assert not verify_ed25519(bytearray(key.public_key), b"m", sig)  # type: ignore[arg-type]
    assert not verify_ed25519(key.public_key, "m", sig)  # type: ignore[arg-type]
    assert not verify_ed25519(None, b"m", sig)  # type: ignore[arg-type]


def test_signature_bound_to_domain_and_chain():
    key = SigningKey.from_label("alice")
    sig = key.sign(DOMAIN_TX, "chain-a", b"payload")
    assert verify_signed(DOMAIN_TX, "chain-a", key.public_key, b"payload", sig)
    assert not verify_signed(DOMAIN_TX, "chain-b", key.public_key, b"payload", sig)
    assert not verify_signed(DOMAIN_VOTE, "chain-a", key.public_key, b"payload", sig)
    assert not verify_signed(DOMAIN_TX, "chain-a", key.public_key, b"payload!", sig)
    # The chain id is length-prefixed, so moving bytes between chain id and payload changes the message.
    assert signing_payload(DOMAIN_TX, "ab", b"c") != signing_payload(DOMAIN_TX, "a", b"bc")


def test_bad_seed_and_chain_id_are_clear_errors():
    with pytest.raises(ValidationError, match="32 bytes"):
        SigningKey(b"short")
    with pytest.raises(ValidationError, match="chain id"):
        signing_payload(DOMAIN_TX, "", b"x")
    assert not verify_signed(DOMAIN_TX, "", SigningKey.from_label("a").public_key, b"x", bytes(64))


def test_keys_are_fresh_and_deterministic_by_label():
    assert SigningKey.generate().public_key != SigningKey.generate().public_key
    assert SigningKey.from_label("v0").public_key == SigningKey.from_label("v0").public_key
    assert sha256(b"abc").hex().startswith("ba7816bf")
