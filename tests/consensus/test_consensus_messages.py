"""Encodings, signatures and evidence checks of the consensus messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import encoding
from ledger.crypto import SigningKey, verify_signed
from ledger.errors import DecodeError, ValidationError
from ledger.merkle import EMPTY_ROOT
from ledger.types import (PHASE_COMMIT, PHASE_PREPARE, ZERO_HASH, Block, BlockHeader, CommitCertificate, Vote,
                          verify_certificate)

from consensus.certs import (check_certificate, check_new_view, check_prepared, check_view_change,
                             compute_new_view_plan)
from consensus.messages import (BlockRequest, Blocks, NewView, PrePrepare, PreparedCert, ViewChange, decode_message,
                                encode_message)
from consensus.ready import RECORD_PREPARED, Record

CHAIN = "shopchain-test"
KEYS = [SigningKey.from_label(f"msg-test-{i}") for i in range(4)]
VALS = [k.public_key for k in KEYS]


def block(height: int = 1, view: int = 0, salt: int = 0, last: CommitCertificate | None = None) -> Block:
    proposer = VALS[view % 4]
    header = BlockHeader(CHAIN, height, ZERO_HASH, salt, proposer, view, EMPTY_ROOT, ZERO_HASH, ZERO_HASH, ZERO_HASH,
                         ZERO_HASH if last is None else last.cert_hash)
    return Block(header, (), last)


def votes(phase: int, view: int, height: int, digest: bytes, signers) -> list[Vote]:
    return [Vote.create(KEYS[i], CHAIN, phase, view, height, digest) for i in signers]


def cert(height: int, digest: bytes, view: int = 0, signers=(0, 1, 2)) -> CommitCertificate:
    return CommitCertificate.from_votes(votes(PHASE_COMMIT, view, height, digest, signers))


def prepared(view: int, b: Block) -> PreparedCert:
    pp = PrePrepare.create(KEYS[view % 4], CHAIN, view, b)
    backups = [i for i in range(4) if i != view % 4][:2]
    return PreparedCert.build(pp, votes(PHASE_PREPARE, view, b.height, b.block_hash, backups))


def view_change(i: int, new_view: int, committed: int = 0, pcs=(), blocks=()) -> ViewChange:
    c = cert(committed, block(committed).block_hash) if committed else None
    return ViewChange.create(KEYS[i], CHAIN, new_view, committed, c, tuple(pcs), tuple(blocks))


def all_messages():
    b1 = block(1)
    pc = prepared(0, b1)
    vc = view_change(1, 1, 0, [pc], [b1])
    nvb = block(1, view=1, salt=5)
    nv = NewView.create(KEYS[1], CHAIN, 1, [view_change(i, 1) for i in (0, 1, 2)], PrePrepare.create(KEYS[1], CHAIN, 1, nvb))
    return [PrePrepare.create(KEYS[0], CHAIN, 0, b1), votes(PHASE_PREPARE, 0, 1, b1.block_hash, [1])[0], vc, nv,
            BlockRequest(3, 10), Blocks(((b1, cert(1, b1.block_hash)),))]


@pytest.mark.parametrize("message", all_messages(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_canonical_bytes(message):
    raw = encode_message(message)
    again = decode_message(raw)
    assert again == message and encode_message(again) == raw
    assert type(message).decode(raw) == message if hasattr(type(message), "decode") else True


def test_decode_message_rejects_unknown_tags_and_garbage():
    with pytest.raises(DecodeError, match="expected one of the tags"):
        decode_message(encoding.encode(["nope/1", 1]))
    with pytest.raises(DecodeError):
        decode_message(b"\xc1")
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_message("text")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_decode_message_raises_only_decode_error(data):
    try:
        decode_message(data)
    except DecodeError:
        pass


def test_signatures_cover_the_signed_body_but_not_the_attachments():
    b1 = block(1)
    pp = PrePrepare.create(KEYS[0], CHAIN, 0, b1)
    assert pp.signed_body() == pp.without_block().signed_body()
    vc = view_change(1, 1, 0, [prepared(0, b1)], [b1])
    assert vc.signed_body() == vc.without_blocks().signed_body()
    from ledger.crypto import DOMAIN_CONSENSUS
    assert verify_signed(DOMAIN_CONSENSUS, CHAIN, VALS[1], vc.signed_body(), vc.signature)
    assert not verify_signed(DOMAIN_CONSENSUS, "other-chain", VALS[1], vc.signed_body(), vc.signature)


def test_record_round_trips():
    b1 = block(1)
    rec = Record(RECORD_PREPARED, 0, 1, PHASE_PREPARE, b1.block_hash, prepared(0, b1), b1)
    assert Record.decode(rec.encode()) == rec


@pytest.mark.parametrize("tamper", ["none", "few", "duplicate", "outsider", "bad_sig", "wrong_phase"])
def test_check_certificate_agrees_with_ledger_verify_certificate(tamper):
    digest = block(1).block_hash
    c = cert(1, digest)
    if tamper == "few":
        c = cert(1, digest, signers=(0, 1))
    elif tamper == "duplicate":
        c = CommitCertificate(1, 0, digest, c.votes[:2] + (c.votes[0],))
    elif tamper == "outsider":
        out = Vote.create(SigningKey.from_label("outsider"), CHAIN, PHASE_COMMIT, 0, 1, digest)
        c = CommitCertificate(1, 0, digest, c.votes[:2] + (out,))
    elif tamper == "bad_sig":
        v = c.votes[0]
        c = CommitCertificate(1, 0, digest, (Vote(v.phase, v.view, v.height, v.block_hash, v.validator, bytes(64)),) + c.votes[1:])
    elif tamper == "wrong_phase":
        c = CommitCertificate(1, 0, digest, tuple(votes(PHASE_PREPARE, 0, 1, digest, (0, 1, 2))))
    outcomes = []
    for check in (lambda: verify_certificate(c, VALS, CHAIN, 1, digest),
                  lambda: check_certificate(c, VALS, CHAIN, verify_signed, 1, digest)):
        try:
            check()
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("invalid")
    assert outcomes[0] == outcomes[1] == ("ok" if tamper == "none" else "invalid")


def test_prepared_certificate_needs_the_primary_and_2f_backups():
    b1 = block(1)
    check_prepared(prepared(0, b1), VALS, CHAIN, verify_signed)
    pp = PrePrepare.create(KEYS[0], CHAIN, 0, b1)
    with pytest.raises(ValidationError, match="2f"):
        check_prepared(PreparedCert.build(pp, votes(PHASE_PREPARE, 0, 1, b1.block_hash, [1])), VALS, CHAIN, verify_signed)
    with pytest.raises(ValidationError, match="distinct backup"):  # the primary's own PREPARE does not count
        check_prepared(PreparedCert.build(pp, votes(PHASE_PREPARE, 0, 1, b1.block_hash, [0, 1])), VALS, CHAIN, verify_signed)
    wrong = PrePrepare.create(KEYS[2], CHAIN, 0, b1)
    with pytest.raises(ValidationError, match="expected the primary"):
        check_prepared(PreparedCert.build(wrong, votes(PHASE_PREPARE, 0, 1, b1.block_hash, [1, 3])), VALS, CHAIN, verify_signed)


def test_view_change_claims_must_be_proven():
    b2 = block(2)
    check_view_change(view_change(0, 3, committed=1, pcs=[prepared(1, b2)], blocks=[b2]), VALS, CHAIN, verify_signed)
    with pytest.raises(ValidationError, match="expected a view below"):
        check_view_change(view_change(0, 1, committed=1, pcs=[prepared(1, b2)]), VALS, CHAIN, verify_signed)
    with pytest.raises(ValidationError, match="height above"):
        check_view_change(view_change(0, 3, committed=2, pcs=[prepared(1, b2)]), VALS, CHAIN, verify_signed)
    no_cert = ViewChange.create(KEYS[0], CHAIN, 1, 5, None, (), ())
    with pytest.raises(ValidationError, match="without a certificate"):
        check_view_change(no_cert, VALS, CHAIN, verify_signed)
    with pytest.raises(ValidationError, match="none of its prepared"):
        check_view_change(view_change(0, 3, committed=1, blocks=[b2]), VALS, CHAIN, verify_signed)


def test_new_view_plan_re_proposes_the_highest_view_prepared_block_4_4():
    low, high = block(1, view=0, salt=1), block(1, view=1, salt=2)
    vcs = [view_change(0, 2, pcs=[prepared(0, low)]), view_change(2, 2, pcs=[prepared(1, high)]), view_change(3, 2)]
    plan = compute_new_view_plan(vcs)
    assert plan.height == 1 and plan.selected.digest == high.block_hash
    good = NewView.create(KEYS[2], CHAIN, 2, vcs, PrePrepare.create(KEYS[2], CHAIN, 2, high))
    assert check_new_view(good, VALS, CHAIN, verify_signed).selected.digest == high.block_hash
    # A primary that ignores the prepared certificate and proposes its own block is caught by recomputation.
    fresh = NewView.create(KEYS[2], CHAIN, 2, vcs, PrePrepare.create(KEYS[2], CHAIN, 2, block(1, view=2, salt=9)))
    with pytest.raises(ValidationError, match="require the prepared"):
        check_new_view(fresh, VALS, CHAIN, verify_signed)


def test_new_view_without_prepared_blocks_takes_a_fresh_block_above_the_highest_checkpoint():
    vcs = [view_change(0, 1, committed=2), view_change(2, 1, committed=1), view_change(3, 1)]
    plan = compute_new_view_plan(vcs)
    assert plan.base_height == 2 and plan.height == 3 and plan.selected is None
    stale = NewView.create(KEYS[1], CHAIN, 1, vcs, PrePrepare.create(KEYS[1], CHAIN, 1, block(1, view=0)))
    with pytest.raises(ValidationError, match="expected view 1 height 3"):
        check_new_view(stale, VALS, CHAIN, verify_signed)
    too_few = NewView.create(KEYS[1], CHAIN, 1, vcs[:2], PrePrepare.create(KEYS[1], CHAIN, 1, block(3, view=1)))
    with pytest.raises(ValidationError, match="2f\\+1"):
        check_new_view(too_few, VALS, CHAIN, verify_signed)
    ok = NewView.create(KEYS[1], CHAIN, 1, vcs, PrePrepare.create(KEYS[1], CHAIN, 1, block(3, view=1)))
    check_new_view(ok, VALS, CHAIN, verify_signed)


def test_spliced_encodings_equal_plain_encodings():
    """PRE-PREPARE and Blocks reuse the block's bytes; the result must be the canonical encoding."""
    from ledger import encoding as enc
    from ledger.crypto import SigningKey
    from ledger.types import TxBody
    from tests.helpers import CHAIN_ID, certify, make_block

    key = SigningKey.from_label("splice")
    txs = [TxBody(CHAIN_ID, key.public_key, n, "ledger", "transfer", [b"x" * 32, n], 1000).sign(key) for n in range(20)]
    block, _ = make_block(1, None, None, txs)
    pp = PrePrepare.create(key, CHAIN_ID, 0, block)
    assert encode_message(pp) == enc.encode(pp.to_list())
    assert decode_message(encode_message(pp)).block.block_hash == block.block_hash
    blocks = Blocks(((block, certify(block)),))
    assert encode_message(blocks) == enc.encode(blocks.to_list())
    assert encode_message(PrePrepare(0, 1, block.block_hash, key.public_key, b"\x00" * 64)) == enc.encode(
        PrePrepare(0, 1, block.block_hash, key.public_key, b"\x00" * 64).to_list())


def test_record_encoding_is_canonical_with_a_block():
    from ledger import encoding as enc
    from ledger.crypto import SigningKey
    from ledger.types import TxBody
    from tests.helpers import CHAIN_ID, make_block

    key = SigningKey.from_label("record")
    txs = [TxBody(CHAIN_ID, key.public_key, n, "ledger", "transfer", [b"y" * 32, n], 1000).sign(key) for n in range(5)]
    block, _ = make_block(1, None, None, txs)
    pp = PrePrepare.create(key, CHAIN_ID, 0, block)
    record = Record(1, 0, 1, 0, block.block_hash, pp.without_block(), block)
    assert record.encode() == enc.encode(record.to_list())
    assert Record.decode(record.encode()).block.block_hash == block.block_hash
