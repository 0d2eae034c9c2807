"""Ring-signed review arguments for tests: what a reviewer's client computes, in one place.

How it works: a reviewer holds the per-order review key (an ed25519 ``SigningKey``)
of one order; the other ring members' review public keys are the ones their buyers
announced (``reviews.announce_key``, read back with ``review_key_of``; tests pass
them in). ``publish_args`` sorts the ring by order id, signs ``review_message`` with
ledger.ring and returns the arguments of ``reviews.publish``; ``amend_args`` does the
same for ``reviews.amend`` over the ring stored with the review.
"""

from __future__ import annotations

from contracts_vm.system import review_message
from ledger import ring
from ledger.crypto import SigningKey

CHAIN_ID = "commerce-test"


def publish_args(signer: SigningKey, ring_keys: dict[int, bytes], line: int, scores: list[int], content_hash: bytes,
                 incentivised: bool = False, chain_id: str = CHAIN_ID, aux: bytes | None = b"test") -> list:
    """[ring, line, scores, content_hash, incentivised, key_image, signature] for publish."""
    ids = sorted(ring_keys)
    keys = [ring_keys[i] for i in ids]
    message = review_message(chain_id, ids, line, scores, content_hash, incentivised, 1)
    image, signature = ring.sign(ring.secret_scalar(signer.seed), keys, message, aux=aux)
    return [ids, line, scores, content_hash, incentivised, image, signature]


def amend_args(signer: SigningKey, prior: dict, ring_keys: dict[int, bytes], scores: list[int], content_hash: bytes,
               incentivised: bool = False, chain_id: str = CHAIN_ID) -> list:
    """[key_image, line, scores, content_hash, incentivised, signature] amending the review ``prior``."""
    message = review_message(chain_id, prior["ring"], prior["line"], scores, content_hash, incentivised,
                             prior["version"] + 1)
    keys = [ring_keys[i] for i in prior["ring"]]
    image, signature = ring.sign(ring.secret_scalar(signer.seed), keys, message, aux=b"test")
    assert image == prior["key_image"], "amending with another key than the review's"
    return [image, prior["line"], scores, content_hash, incentivised, signature]
