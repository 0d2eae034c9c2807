"""The node's chain: build on the primary, validate on backups, commit identically."""

from __future__ import annotations

import dataclasses

import pytest

from devnet.genesis import create_devnet
from ledger.crypto import SigningKey
from ledger.storage.kv import MemoryKV
from ledger.types import PHASE_COMMIT, Block, CommitCertificate, TxBody, Vote
from node.core.chain import MAX_FUTURE_DRIFT_MS, MAX_PAST_DRIFT_MS, Chain, DivergenceError
from node.core.executor import call_view
from node.ops.home import read_key_file


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    root = tmp_path_factory.mktemp("devnet")
    layout = create_devnet(str(root / "d"), validators=4, seed="chain-test")
    node_keys = [read_key_file(f"{home}/node_key.json") for home in layout.node_homes]
    accounts = {name: read_key_file(f"{layout.keys_dir}/{name}.json") for name in ("buyer-1", "merchant-acme", "buyer-2")}
    return layout.genesis, node_keys, accounts


def certify(block: Block, keys: list[SigningKey], chain_id: str) -> CommitCertificate:
    return CommitCertificate.from_votes([Vote.create(k, chain_id, PHASE_COMMIT, block.header.view, block.height,
                                                     block.block_hash) for k in keys[:3]])


def transfer(chain: Chain, key: SigningKey, to: bytes, amount: int, nonce: int):
    return TxBody(chain.chain_id, key.public_key, nonce, "ledger", "transfer", [to, amount], 1_000_000).sign(key)


def balance(chain: Chain, who: bytes) -> int:
    result = call_view(chain.state, "ledger", "balance_of", [who], chain.height, chain.chain_id)
    assert result.ok, result.error_message
    return result.return_value


def test_primary_builds_backup_validates_both_commit_the_same(devnet):
    genesis, node_keys, accounts = devnet
    primary, backup = Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis)
    assert primary.state.root == backup.state.root
    buyer, merchant = accounts["buyer-1"], accounts["merchant-acme"]
    assert primary.is_registered(buyer.public_key) and primary.nonce(buyer.public_key) == 0
    start = balance(primary, merchant.public_key)
    txs = [transfer(primary, buyer, merchant.public_key, 100 + i, i) for i in range(3)]
    block = primary.build_block(0, 1, primary.head_hash(), None, node_keys[0].public_key, txs, now_ms=10_000)
    assert backup.check_block(block, now_ms=10_000) is None
    cert = certify(block, node_keys, genesis.chain_id)
    out_primary = primary.commit(block, cert)
    out_backup = backup.commit(block, cert)
    assert [r.status for r in out_primary.receipts] == [0, 0, 0]
    assert primary.state.root == backup.state.root == block.header.state_root
    assert balance(backup, merchant.public_key) == start + 303
    assert primary.nonce(buyer.public_key) == 3
    # A replayed nonce is included with a failed receipt and changes nothing.
    block2 = primary.build_block(0, 2, primary.head_hash(), cert, node_keys[0].public_key, [txs[0]], now_ms=10_001)
    receipt = primary.commit(block2, certify(block2, node_keys, genesis.chain_id)).receipts[0]
    assert receipt.status == 1 and "BadNonce" in receipt.error
    assert balance(primary, merchant.public_key) == start + 303


def test_block_time_rules_monotonic_bounded_drift_checked_by_backups(devnet):
    """The timestamp every commerce deadline is compared with: after the previous block's,
    at most 30 s ahead of a backup's clock, and for a fresh proposal at most 60 s behind it,
    so a hostile primary can neither run the clock ahead nor stop it."""
    genesis, node_keys, _ = devnet
    primary, backup = Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis)
    now = genesis.genesis_time_ms + 3_600_000
    block = primary.build_block(0, 1, primary.head_hash(), None, node_keys[0].public_key, [], now_ms=now)
    assert block.header.timestamp_ms == now
    assert backup.check_block(block, now, live=True) is None
    assert "ahead of this node's clock" in backup.check_block(block, now - MAX_FUTURE_DRIFT_MS - 1, live=True)
    assert backup.check_block(block, now - MAX_FUTURE_DRIFT_MS, live=True) is None
    lagging = now + MAX_PAST_DRIFT_MS + 1
    assert "behind this node's clock" in backup.check_block(block, lagging, live=True)
    assert backup.check_block(block, lagging, live=False) is None     # carried over by a NEW-VIEW: its old time stands
    assert backup.check_block(block, None) is None                     # replaying certified blocks: no clock
    backup.commit(block, certify(block, node_keys, genesis.chain_id))
    # Monotonic: the next block's time is after this one's, whatever the proposer's clock says.
    stale = Block(dataclasses.replace(block.header, height=2, prev_hash=block.block_hash), (), None)
    assert "is not after the previous block's" in backup.check_block(stale, now, live=True)
    assert backup.next_timestamp(now - 5_000) == now + 1


def test_backup_rejects_bad_blocks_with_a_reason(devnet):
    genesis, node_keys, accounts = devnet
    primary, backup = Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis)
    tx = transfer(primary, accounts["buyer-2"], accounts["merchant-acme"].public_key, 5, 0)
    block = primary.build_block(0, 1, primary.head_hash(), None, node_keys[0].public_key, [tx], now_ms=5_000)
    lying = Block(dataclasses.replace(block.header, state_root=b"\x01" * 32), block.txs, None)
    assert "state_root" in backup.check_block(lying, now_ms=5_000)
    assert "height" in backup.check_block(Block(dataclasses.replace(block.header, height=2), block.txs, None), 5_000)
    assert "ahead of this node's clock" in backup.check_block(block, now_ms=-60_000)
    outsider = Block(dataclasses.replace(block.header, proposer=accounts["buyer-2"].public_key), block.txs, None)
    assert "proposer" in backup.check_block(outsider, 5_000)
    forged_tx = dataclasses.replace(tx, signature=b"\x00" * 64, _raw=None)
    assert "tx_root" in backup.check_block(Block(block.header, (forged_tx,), None), 5_000)
    with pytest.raises(DivergenceError, match="stop it"):
        backup.commit(lying, certify(lying, node_keys, genesis.chain_id))


def test_restart_resumes_from_the_store(devnet):
    genesis, node_keys, accounts = devnet
    kv = MemoryKV()
    chain = Chain(kv, genesis)
    tx = transfer(chain, accounts["buyer-1"], accounts["buyer-2"].public_key, 7, 0)
    block = chain.build_block(0, 1, chain.head_hash(), None, node_keys[0].public_key, [tx], now_ms=1)
    chain.commit(block, certify(block, node_keys, genesis.chain_id))
    again = Chain(kv, genesis)
    assert again.height == 1 and again.state.root == chain.state.root and again.head_hash() == block.block_hash


def test_a_previewed_block_is_executed_once_before_its_pre_prepare(devnet, monkeypatch):
    import node.core.chain as chain_module

    genesis, node_keys, accounts = devnet
    primary, backup, other = Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis)
    buyer, merchant = accounts["buyer-1"], accounts["merchant-acme"]
    txs = [transfer(primary, buyer, merchant.public_key, 10 + i, i) for i in range(4)]
    timestamp = primary.next_timestamp(20_000)
    assert backup.speculate(1, timestamp, txs) and not backup.speculate(1, timestamp, txs)
    assert not backup.speculate(2, timestamp, txs)  # not the next height: nothing to gain
    assert other.speculate(1, timestamp + 5, txs) and other.speculate(1, timestamp, txs[:3])  # inputs the block lacks

    runs = []
    real = chain_module.execute_block
    monkeypatch.setattr(chain_module, "execute_block", lambda *a, **k: runs.append(a[1]) or real(*a, **k))
    block = primary.build_block(0, 1, primary.head_hash(), None, node_keys[0].public_key, txs, timestamp)
    assert len(runs) == 1  # the primary's own build
    assert backup.check_block(block, timestamp) is None and len(runs) == 1 and backup.speculation_hits == 1
    # Outcomes of other inputs are never taken for this block: it is executed and still valid.
    assert other.check_block(block, timestamp) is None and len(runs) == 2 and other.speculation_hits == 0
    cert = certify(block, node_keys, genesis.chain_id)
    assert backup.commit(block, cert).state_root == primary.commit(block, cert).state_root == other.commit(block, cert).state_root
    assert len(runs) == 2 and not backup._speculative and not other._speculative
