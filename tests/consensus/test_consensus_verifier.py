"""CachingVerifier: the same answers as verify_signed, with the math done once per valid signature."""

from __future__ import annotations

import pytest

from consensus import CachingVerifier, check_certificate
from consensus.certs import is_valid_vote
from ledger.crypto import DOMAIN_VOTE, verify_signed
from ledger.errors import ValidationError
from tests.helpers import CHAIN_ID, VALIDATORS, certify, make_block


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args) -> bool:
        self.calls += 1
        return verify_signed(*args)


def test_votes_seen_once_are_not_verified_again_inside_a_certificate():
    block, _ = make_block(1, None, None, [])
    cert = certify(block)
    counting = Counting()
    verify = CachingVerifier(counting)
    assert all(is_valid_vote(vote, CHAIN_ID, verify) for vote in cert.votes)
    assert counting.calls == 3
    check_certificate(cert, VALIDATORS, CHAIN_ID, verify, 1, block.block_hash)
    check_certificate(cert, VALIDATORS, CHAIN_ID, verify, 1, block.block_hash)
    assert counting.calls == 3 and verify.hits == 6


def test_invalid_signatures_are_never_remembered_and_always_refused():
    block, _ = make_block(1, None, None, [])
    vote = certify(block).votes[0]
    counting = Counting()
    verify = CachingVerifier(counting)
    forged = vote.signature[:-1] + bytes([vote.signature[-1] ^ 1])
    for _ in range(3):
        assert not verify(DOMAIN_VOTE, CHAIN_ID, vote.validator, vote.signed_body(), forged)
    assert counting.calls == 3 and verify.hits == 0
    other_chain = certify(block)
    with pytest.raises(ValidationError):  # a valid cached vote proves nothing for another block
        check_certificate(other_chain, VALIDATORS, CHAIN_ID, verify, 1, b"\x00" * 32)


def test_capacity_bounds_what_is_remembered():
    blocks = [make_block(h, None, None, [])[0] for h in range(1, 5)]
    votes = [v for b in blocks for v in certify(b).votes]  # 12 valid votes
    counting = Counting()
    verify = CachingVerifier(counting, capacity=5)
    for vote in votes:
        assert is_valid_vote(vote, CHAIN_ID, verify)
    assert all(is_valid_vote(vote, CHAIN_ID, verify) for vote in votes[-5:])
    assert counting.calls == 12  # the last five were remembered
    assert is_valid_vote(votes[0], CHAIN_ID, verify)
    assert counting.calls == 13  # the first was evicted long ago
