"""Checks of signed consensus evidence, and the NEW-VIEW derivation.

How it works: every signature goes through one injectable ``Verifier`` with the
signature of ``ledger.crypto.verify_signed`` (the default), so a simulator can share a
verification cache across replicas while each replica still checks everything it
accepts. ``check_certificate`` applies exactly the rules of
``ledger.types.verify_certificate`` through that verifier (a test holds them equal).

``compute_new_view_plan`` is the paper's derivation of a NEW-VIEW from 2f+1
VIEW-CHANGEs (Castro & Liskov 2002, §4.4), adapted to a chain of blocks: min-s is the
highest committed height any VIEW-CHANGE proves with a certificate; the only height the
new primary must fill is min-s + 1 (a block needs its parent's certificate, so nothing
above it can be prepared by an honest replica). If some VIEW-CHANGE carries a prepared
certificate for min-s + 1, the one from the highest view wins and its block is
re-proposed; otherwise the primary proposes a fresh block. Backups run the same
function on the same VIEW-CHANGEs and accept the NEW-VIEW only if it matches.

Validator sets change by height (ledger/validator_set.py), so the checks of evidence
that spans heights take ``sets``, the keys in force per height: a certificate or a
prepared certificate is checked against the set of its own height, a VIEW-CHANGE's
signer must be in the set of the height it works on (its committed height + 1), and a
NEW-VIEW needs 2f+1 VIEW-CHANGEs from the set of the height it fills, whose primary of
the view must sign it. A plain key list is a set for every height.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Callable, Union

from ledger.crypto import DOMAIN_CONSENSUS, DOMAIN_VOTE, verify_signed
from ledger.errors import ChainError, ValidationError
from ledger.types import PHASE_PREPARE, CommitCertificate, Vote, quorum_size, verify_certificate

from consensus.messages import NewView, PrePrepare, PreparedCert, ViewChange

#: verify(domain, chain_id, public_key, payload, signature) -> bool
Verifier = Callable[[bytes, str, bytes, bytes, bytes], bool]

DEFAULT_VERIFIER: Verifier = verify_signed

#: sets(height) -> the ordered keys in force at that height (a ValidatorSchedule is one).
ValidatorsAt = Callable[[int], Sequence[bytes]]


def sets_of(validators: Union[ValidatorsAt, Sequence[bytes]]) -> ValidatorsAt:
    """Per-height sets from either per-height sets or one fixed key list."""
    if callable(validators):
        return validators
    fixed = tuple(validators)
    return lambda height: fixed

#: Valid signatures a CachingVerifier remembers (about two heights' votes of 256 validators).
MAX_CACHED_SIGNATURES = 4096


class CachingVerifier:
    """A Verifier that remembers signatures it found valid, most recent first.

    A replica sees the same vote twice: once on its own, and again inside the commit
    certificate the next PRE-PREPARE carries (and once more when that block commits).
    Only the math is saved: the same (domain, chain, key, payload, signature) is
    valid forever, so remembering it cannot change any result. Invalid ones are not
    remembered, so junk cannot evict anything useful for long.
    """

    def __init__(self, verify: Verifier = verify_signed, capacity: int = MAX_CACHED_SIGNATURES) -> None:
        self._verify = verify
        self._capacity = capacity
        self._valid: OrderedDict[tuple, None] = OrderedDict()
        self.hits = 0

    def __call__(self, domain: bytes, chain_id: str, public_key: bytes, payload: bytes, signature: bytes) -> bool:
        key = (domain, chain_id, public_key, payload, signature)
        if key in self._valid:
            self._valid.move_to_end(key)
            self.hits += 1
            return True
        if not self._verify(domain, chain_id, public_key, payload, signature):
            return False
        self._valid[key] = None
        if len(self._valid) > self._capacity:
            self._valid.popitem(last=False)
        return True


def primary_of(view: int, validators: list[bytes]) -> bytes:
    """Primary of view v is validator v mod n (paper §4.1)."""
    return validators[view % len(validators)]


def is_valid_vote(vote: Vote, chain_id: str, verify: Verifier) -> bool:
    return verify(DOMAIN_VOTE, chain_id, vote.validator, vote.signed_body(), vote.signature)


def is_valid_signed(message: PrePrepare | ViewChange | NewView, signer: bytes, chain_id: str, verify: Verifier) -> bool:
    try:
        body = message.signed_body()
    except (AttributeError, TypeError, ChainError):
        return False  # a malformed message (missing part, unencodable field) has no valid signature
    return verify(DOMAIN_CONSENSUS, chain_id, signer, body, message.signature)


def check_certificate(cert: CommitCertificate, validators: list[bytes], chain_id: str, verify: Verifier,
                      height: int | None = None, block_hash: bytes | None = None, quorum: int | None = None) -> None:
    """``ledger.types.verify_certificate`` with the replica's injectable verifier; raises ValidationError."""
    verify_certificate(cert, validators, chain_id, height, block_hash, verify, quorum)


def check_prepared(cert: PreparedCert, sets: ValidatorsAt | Sequence[bytes], chain_id: str, verify: Verifier) -> None:
    """A PRE-PREPARE signed by the primary of its view + 2f PREPAREs from distinct backups (§4.2)."""
    pp = cert.pre_prepare
    validators = sets_of(sets)(pp.height)
    primary = primary_of(pp.view, validators)
    if pp.primary != primary:
        raise ValidationError(f"prepared certificate for view {pp.view}: pre-prepare signed by {pp.primary.hex()[:16]}, "
                              f"expected the primary {primary.hex()[:16]}")
    if not is_valid_signed(pp, pp.primary, chain_id, verify):
        raise ValidationError(f"prepared certificate for view {pp.view} height {pp.height}: invalid pre-prepare signature")
    members = set(validators)
    seen: set[bytes] = set()
    for vote in cert.prepares:
        if vote.phase != PHASE_PREPARE or vote.view != pp.view or vote.height != pp.height or vote.block_hash != pp.digest:
            raise ValidationError("prepared certificate holds a prepare for a different view, height or digest")
        if vote.validator not in members or vote.validator == primary or vote.validator in seen:
            raise ValidationError(f"prepared certificate: prepare from {vote.validator.hex()[:16]} is not from a distinct backup")
        seen.add(vote.validator)
        if not is_valid_vote(vote, chain_id, verify):
            raise ValidationError(f"prepared certificate: prepare from {vote.validator.hex()[:16]} has an invalid signature")
    need = quorum_size(len(validators)) - 1  # 2f when n = 3f+1; with the pre-prepare, a quorum
    if len(seen) < need:
        raise ValidationError(f"prepared certificate has {len(seen)} prepares from backups, expected at least {need} (2f)")


def check_view_change(vc: ViewChange, sets: ValidatorsAt | Sequence[bytes], chain_id: str, verify: Verifier) -> None:
    """Everything a VIEW-CHANGE claims must be proven by the signatures it carries (§4.4)."""
    sets = sets_of(sets)
    if vc.replica not in sets(vc.committed_height + 1):
        raise ValidationError(f"view-change from {vc.replica.hex()[:16]}, which is not in the validator set")
    if not is_valid_signed(vc, vc.replica, chain_id, verify):
        raise ValidationError(f"view-change for view {vc.new_view} from {vc.replica.hex()[:16]}: invalid signature")
    if vc.committed_height == 0:
        if vc.committed_cert is not None:
            raise ValidationError("view-change at committed height 0 carries a certificate")
    else:
        if vc.committed_cert is None:
            raise ValidationError(f"view-change claims committed height {vc.committed_height} without a certificate")
        check_certificate(vc.committed_cert, sets(vc.committed_height), chain_id, verify, height=vc.committed_height)
    digests = set()
    for pc in vc.prepared:
        if pc.height <= vc.committed_height or pc.view >= vc.new_view:
            raise ValidationError(f"view-change carries a prepared certificate for view {pc.view} height {pc.height}, "
                                  f"expected a view below {vc.new_view} and a height above {vc.committed_height}")
        check_prepared(pc, sets, chain_id, verify)
        digests.add(pc.digest)
    for block in vc.blocks:
        if block.block_hash not in digests:
            raise ValidationError("view-change carries a block that none of its prepared certificates names")


@dataclass(frozen=True)
class NewViewPlan:
    """What a NEW-VIEW for these VIEW-CHANGEs must contain."""

    base_height: int  # min-s: highest committed height proven by the VIEW-CHANGEs
    base_cert: CommitCertificate | None  # its certificate (None at height 0)
    selected: PreparedCert | None  # re-propose this block at base_height + 1, else a fresh one

    @property
    def height(self) -> int:
        return self.base_height + 1


def compute_new_view_plan(view_changes: list[ViewChange]) -> NewViewPlan:
    """The paper's O computation (§4.4) for blocks; see the module docstring."""
    best = max(view_changes, key=lambda vc: (vc.committed_height, vc.replica))
    base = best.committed_height
    selected: PreparedCert | None = None
    for vc in view_changes:
        for pc in vc.prepared:
            if pc.height != base + 1:
                continue
            if selected is None or (pc.view, pc.digest) > (selected.view, selected.digest):
                selected = pc
    return NewViewPlan(base, best.committed_cert, selected)


def check_new_view(nv: NewView, sets: ValidatorsAt | Sequence[bytes], chain_id: str, verify: Verifier,
                   plan_of: Callable[[list[ViewChange]], NewViewPlan] = compute_new_view_plan) -> NewViewPlan:
    """Verify a NEW-VIEW by recomputing it from its VIEW-CHANGEs (§4.4); return the plan.

    The plan is computed first (cheap, no signatures): it names the height the NEW-VIEW
    fills, whose set says who the primary is and whose VIEW-CHANGEs count.
    """
    sets = sets_of(sets)
    for vc in nv.view_changes:
        if vc.new_view != nv.view:
            raise ValidationError(f"new-view for view {nv.view} holds a view-change for view {vc.new_view}")
    if not nv.view_changes:
        raise ValidationError(f"new-view for view {nv.view} carries no view-changes")
    plan = plan_of(list(nv.view_changes))
    validators = sets(plan.height)
    primary = primary_of(nv.view, validators)
    if nv.primary != primary:
        raise ValidationError(f"new-view for view {nv.view} from {nv.primary.hex()[:16]}, expected the primary {primary.hex()[:16]}")
    if not is_valid_signed(nv, nv.primary, chain_id, verify):
        raise ValidationError(f"new-view for view {nv.view}: invalid signature")
    members = set(validators)
    senders: set[bytes] = set()
    for vc in nv.view_changes:
        if vc.replica in senders:
            raise ValidationError(f"new-view counts the view-change of {vc.replica.hex()[:16]} twice")
        senders.add(vc.replica)
        check_view_change(vc, sets, chain_id, verify)
    need = quorum_size(len(validators))
    if len(senders & members) < need:
        raise ValidationError(f"new-view carries {len(senders & members)} view-changes from the set of height "
                              f"{plan.height}, expected at least {need} (2f+1)")
    pp = nv.pre_prepare
    if pp.view != nv.view or pp.primary != primary or pp.height != plan.height:
        raise ValidationError(f"new-view pre-prepare is for view {pp.view} height {pp.height}, "
                              f"expected view {nv.view} height {plan.height}")
    if not is_valid_signed(pp, primary, chain_id, verify):
        raise ValidationError("new-view pre-prepare has an invalid signature")
    if pp.block is None or pp.block.block_hash != pp.digest:
        raise ValidationError("new-view pre-prepare does not carry the block its digest names")
    if plan.selected is not None:
        if pp.digest != plan.selected.digest:
            raise ValidationError(f"new-view re-proposes {pp.digest.hex()[:16]}, the view-changes require the prepared "
                                  f"block {plan.selected.digest.hex()[:16]}")
    elif pp.block.header.view != nv.view or pp.block.header.proposer != primary:
        raise ValidationError("new-view proposes a block that is neither the prepared one nor fresh for this view")
    return plan
