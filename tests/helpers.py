"""Small builders shared by tests: keys, transactions, chains of certified blocks."""

from __future__ import annotations

from typing import Callable

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


def devnet_home_with_blocks(root: str, seed: str, blocks: int, txs_at: Callable[[int], int], sync: bool = True,
                            **devnet_options):
    """A devnet layout whose first node's store holds ``blocks`` committed, certified blocks
    of buyer-1 -> merchant-acme transfers (``txs_at(height)`` of them at each height): a real
    LevelDB store to export, damage or verify. Returns (layout, home); the store is closed.
    ``devnet_options`` go to create_devnet (ports, config overrides)."""
    import os

    from devnet.genesis import create_devnet
    from ledger.storage.leveldb import LevelDBKV
    from ledger.types import PHASE_COMMIT, TxBody, Vote
    from node.core.chain import Chain
    from node.ops.config import load_config
    from node.ops.home import read_key_file

    layout = create_devnet(root, validators=4, seed=seed, **devnet_options)
    node_keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes]
    buyer = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json"))
    merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))
    home = layout.node_homes[0]
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        chain = Chain(kv, layout.genesis, sync=sync)
        cert, nonce = None, 0
        for height in range(1, blocks + 1):
            txs = []
            for _ in range(txs_at(height)):
                txs.append(TxBody(chain.chain_id, buyer.public_key, nonce, "ledger", "transfer",
                                  [merchant.public_key, 100 + nonce], 1_000_000).sign(buyer))
                nonce += 1
            block = chain.build_block(0, height, chain.head_hash(), cert, node_keys[0].public_key, txs,
                                      now_ms=layout.genesis.genesis_time_ms + 1_000 * height)
            cert = CommitCertificate.from_votes([Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, height, block.block_hash)
                                                 for k in node_keys[:3]])
            chain.commit(block, cert)
    finally:
        kv.close()
    return layout, home


def walk_state(kv, root: bytes) -> int:  # type: ignore[no-untyped-def]
    """Nodes under ``root``, each loaded and checked against its hash (AssertionError if one is gone)."""
    from ledger.state_proof import EMPTY_ROOT
    from ledger.state_trie import Branch, decode_node, node_payload
    from ledger.storage import schema

    count, stack = 0, ([] if root == EMPTY_ROOT else [root])
    while stack:
        node_hash = stack.pop()
        data = kv.get(schema.state_node_key(node_hash))
        assert data is not None, f"state node {node_hash.hex()} of a retained root is gone"
        node = decode_node(node_hash, node_payload(data))
        count += 1
        if type(node) is Branch:
            stack.extend([c for c in node.children if c] + ([node.here] if node.here else []))
    return count
