"""Small builders shared by tests: keys, transactions, chains of certified blocks."""

from __future__ import annotations

from ledger.crypto import SigningKey
from ledger.types import (
    PHASE_COMMIT,
    ZERO_HASH,
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    STATUS_OK,
    SignedTx,
    TxBody,
    Vote,
    compute_receipts_root,
    compute_tx_root,
    validator_set_hash,
)

CHAIN_ID = "test-chain"
VALIDATOR_KEYS = [SigningKey.from_label(f"validator-{i}") for i in range(4)]
VALIDATORS = [k.public_key for k in VALIDATOR_KEYS]


def make_tx(key: SigningKey, nonce: int, method: str = "transfer", args: list | None = None) -> SignedTx:
    body = TxBody(CHAIN_ID, key.public_key, nonce, "token", method, args if args is not None else [b"\x01" * 32, 5], 100_000)
    return SignedTx.decode(body.sign(key).encode())


def certify(block: Block, signers: list[SigningKey] = VALIDATOR_KEYS[:3], view: int = 0) -> CommitCertificate:
    votes = [Vote.create(k, CHAIN_ID, PHASE_COMMIT, view, block.height, block.block_hash) for k in signers]
    return CommitCertificate.from_votes(votes)


def make_block(height: int, prev: Block | None, prev_cert: CommitCertificate | None, txs: list[SignedTx],
               state_root: bytes = ZERO_HASH, view: int = 0) -> tuple[Block, list[Receipt]]:
    receipts = [Receipt(tx.tx_id, STATUS_OK, 21, None, None, []) for tx in txs]
    header = BlockHeader(
        CHAIN_ID, height, ZERO_HASH if prev is None else prev.block_hash, 1_000 * height, VALIDATORS[view % 4], view,
        compute_tx_root(txs), compute_receipts_root(receipts), state_root, validator_set_hash(VALIDATORS),
        ZERO_HASH if prev_cert is None else prev_cert.cert_hash,
    )
    return Block(header, tuple(txs), prev_cert), receipts
