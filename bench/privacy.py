"""Benchmark: what keeping an order's personal data private costs, against a plain hash.

How it works: one order's delivery details (six fields) are committed and sealed as
``order place --ship-to`` does (salts derived by HMAC from the buyer's seed, one salted
leaf per field, the Merkle root, a sealed box to the merchant's X25519 key and a signed
mailbox envelope), then admitted by a node's mailbox (node/mailbox.py, on an in-memory
store), and one field's disclosure is verified. The baseline of each is the old way:
one unsalted SHA-256 of the shipping text. Each line is
``{"bench","metric","value","unit","baseline","ratio"}`` (bench/common.py).

Run: ``python -m bench.privacy [--seconds S]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os

from bench.common import emit, per_second, progress, result
from ledger.crypto import SigningKey
from ledger.mailbox import make_envelope
from ledger.privacy import commit_with_salts, derive_salts, encryption_public_key, seal, verify_disclosure
from ledger.storage.kv import MemoryKV
from node.mailbox import Mailbox

FIELDS = {"name": "J. Doe", "street": "1 Main St", "postcode": "10115", "city": "Berlin",
          "phone": "+49 30 1234567", "email": "j.doe@example.org"}
CHAIN = "bench-privacy"
BUYER, MERCHANT = SigningKey.from_label("bench/buyer"), SigningKey.from_label("bench/merchant")
MERCHANT_ENC = encryption_public_key(MERCHANT.seed)
NOW_MS = 1_800_000_000_000


def seal_and_commit(payload_hash: bytes, buyer: SigningKey = BUYER) -> bytes:
    """What the buyer's CLI does for one order: the root and the envelope to post."""
    commitment = commit_with_salts(FIELDS, derive_salts(buyer.seed, payload_hash, FIELDS))
    envelope = make_envelope(buyer, CHAIN, MERCHANT.public_key, MERCHANT_ENC, 1, "delivery", NOW_MS,
                             seal(MERCHANT_ENC, commitment.to_payload()))
    return envelope.encode()


def plain_hash() -> bytes:
    return hashlib.sha256(", ".join(FIELDS.values()).encode("utf-8")).digest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    baseline_us = 1e6 / per_second(plain_hash, args.seconds, batch=1000)

    progress("sealing and committing one order's details")
    sealed_us = 1e6 / per_second(lambda: seal_and_commit(os.urandom(32)), args.seconds)
    emit(result("privacy", "seal_and_commit_one_order", sealed_us, "us", baseline_us))

    progress("admitting envelopes into a mailbox")
    buyers = [SigningKey.from_label(f"bench/buyer-{i}") for i in range(200)]   # one post each: within the rate
    registered = {k.public_key: k.public_key for k in buyers}
    box = Mailbox(MemoryKV(), CHAIN, registered.get, {MERCHANT.public_key: MERCHANT_ENC}.get, lambda: NOW_MS, False)
    envelopes = [seal_and_commit(os.urandom(32), buyer) for buyer in buyers]
    it = iter(envelopes)
    admit_us = 1e6 / per_second(lambda: box.post(next(it)), min_seconds=0.0, batch=len(envelopes) - 1)
    emit(result("privacy", "mailbox_admit_one_envelope", admit_us, "us", baseline_us))

    commitment = commit_with_salts(FIELDS, derive_salts(BUYER.seed, b"\1" * 32, FIELDS))
    disclosure, root = commitment.disclose("postcode"), commitment.root
    verify_us = 1e6 / per_second(lambda: verify_disclosure(root, disclosure), args.seconds, batch=1000)
    emit(result("privacy", "verify_one_disclosure", verify_us, "us", baseline_us))


if __name__ == "__main__":
    main()
