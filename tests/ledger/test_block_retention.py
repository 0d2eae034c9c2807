"""Block pruning in the block store: the base moves up in atomic, bounded batches."""

from __future__ import annotations

import pytest

from ledger.errors import CorruptionError, StorageError
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import MemoryKV
from ledger.storage.leveldb import LevelDBKV
from tests.ledger.test_blockstore import build_chain


@pytest.fixture(params=["memory", "leveldb"])
def kv(request, tmp_path):
    store = MemoryKV() if request.param == "memory" else LevelDBKV(str(tmp_path / "db"))
    yield store
    store.close()


def keys_of(kv, prefix: bytes) -> list[bytes]:
    return [k for k, _ in kv.iterate(prefix=prefix)]


def test_prune_deletes_everything_a_block_indexed_and_moves_the_base(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 20)
    assert store.prune_to(11) == 11
    assert store.base == 11 and BlockStore(kv).base == 11 and store.pruned()
    for block in blocks[:10]:
        h = block.height
        assert store.get_block(h) is None and store.get_certificate(h) is None and store.get_receipts(h) is None
        assert store.get_block_by_hash(block.block_hash) is None
        assert kv.get(schema.header_key(h)) is None
        for tx in block.txs:
            assert store.get_tx(tx.tx_id) is None and store.get_receipt(tx.tx_id) is None
            assert kv.get(schema.tx_index_key(tx.tx_id)) is None
    for block in blocks[10:]:
        assert store.get_block(block.height).block_hash == block.block_hash
        assert store.get_tx(block.txs[0].tx_id)[1] == block.height
    # Exactly the pruned heights' keys are gone from each namespace; state roots stay (the state layer's).
    assert keys_of(kv, schema.BLOCK) == [schema.block_key(h) for h in range(11, 21)]
    assert keys_of(kv, schema.HEADER) == [schema.header_key(h) for h in range(11, 21)]
    assert len(keys_of(kv, schema.TX_INDEX)) == 2 * 10 and len(keys_of(kv, schema.BLOCK_HASH)) == 10
    assert len(keys_of(kv, schema.STATE_ROOT)) == 21
    store.check_integrity()
    BlockStore(kv).check_integrity()


def test_pruned_heights_say_why_and_name_the_oldest_height(kv):
    store = BlockStore(kv)
    build_chain(store, 6)
    assert store.below_base(3) is None
    store.prune_to(4)
    reason = store.below_base(3)
    assert "retain_blocks" in reason and "the oldest height held is 4" in reason
    assert "state sync" not in reason and store.below_base(4) is None


def test_prune_is_bounded_per_call_and_resumes(kv):
    store = BlockStore(kv)
    build_chain(store, 30, txs_per_block=1)
    bases = []
    while store.base < 25:
        bases.append(store.prune_to(25, max_blocks=7))
        store.check_integrity()
    assert bases == [8, 15, 22, 25]
    assert store.prune_to(25) == 25 and store.prune_to(10) == 25  # never moves back, nothing to do


def test_prune_batch_is_also_bounded_by_its_key_count(kv, monkeypatch):
    from ledger.storage import pruning

    monkeypatch.setattr(pruning, "PRUNE_BATCH_KEYS", 20)
    store = BlockStore(kv)
    build_chain(store, 10, txs_per_block=3)  # 5 keys + 3 tx index entries a block
    assert store.prune_to(10) == 4  # stops after the block that reaches 20 deletions


def test_prune_refuses_the_head_and_bad_batches(kv):
    store = BlockStore(kv)
    build_chain(store, 5)
    with pytest.raises(StorageError, match="head is 5"):
        store.prune_to(6)
    with pytest.raises(StorageError, match="at least 1 block"):
        store.prune_to(3, max_blocks=0)
    assert store.prune_to(5) == 5 and store.get_block(5) is not None  # the head alone is a valid store
    store.check_integrity()


def test_set_changes_keep_their_header_and_certificate(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 12)
    before = {h: (blocks[h - 1].header.encode(), store.get_certificate(h).encode()) for h in (3, 7)}
    store.prune_to(10, set_changes=[3, 7])
    assert keys_of(kv, schema.SET_PROOF) == [schema.set_proof_key(3), schema.set_proof_key(7)]
    assert store.get_set_proof(3) == before[3] and store.get_set_proof(7) == before[7]
    assert store.get_set_proof(5) is None
    assert store.get_set_proof(11)[0] == blocks[10].header.encode()  # held heights: read live


def test_a_header_naming_a_new_next_set_is_kept_even_unlisted(kv):
    from ledger.types import Block, BlockHeader
    from tests.helpers import certify, make_block, make_tx, VALIDATOR_KEYS

    store = BlockStore(kv)
    store.init_genesis(b"\x07" * 32, [], b"\x00" * 32)
    prev = prev_cert = None
    for height in range(1, 6):
        block, receipts = make_block(height, prev, prev_cert, [make_tx(VALIDATOR_KEYS[3], height)])
        h = block.header
        next_set = h.validator_set_hash if height != 2 else b"\x09" * 32
        header = BlockHeader(h.chain_id, h.height, h.prev_hash, h.timestamp_ms, h.proposer, h.view, h.tx_root,
                             h.receipts_root, h.state_root, h.validator_set_hash, h.last_commit_hash, next_set)
        block = Block(header, block.txs, block.last_commit)
        cert = certify(block)
        store.commit_block(block, cert, receipts, [])
        prev, prev_cert = block, cert
    store.prune_to(5)
    assert keys_of(kv, schema.SET_PROOF) == [schema.set_proof_key(2)]


def test_a_stale_tx_index_entry_below_the_base_reads_as_pruned_not_corrupt(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 6)
    store.prune_to(4)
    tx = blocks[0].txs[0]
    kv.write([(schema.tx_index_key(tx.tx_id), schema.encode_height(1) + b"\x00" * 4)])
    assert store.get_tx(tx.tx_id) is None and store.get_receipt(tx.tx_id) is None


def test_damaged_receipts_of_a_block_to_prune_are_reported(kv):
    store = BlockStore(kv)
    build_chain(store, 6)
    kv.write([(schema.receipts_key(2), b"\xc1")])
    seen = []
    store.on_corruption = seen.append
    with pytest.raises(CorruptionError, match="receipts 2"):
        store.prune_to(4)
    assert seen and store.base == 0 and store.get_block(1) is not None  # nothing of the failed batch applied


def test_a_state_synced_store_prunes_from_its_base(kv):
    store = BlockStore(kv)
    build_chain(store, 12)
    kv.write([(schema.BASE_KEY, schema.encode_height(5))])  # as a state sync at 5 leaves it (blocks below: absent)
    store = BlockStore(kv)
    assert "state sync" in store.below_base(4)
    assert store.prune_to(9) == 9
    assert store.get_block(8) is None and store.get_block(5) is None and store.get_block(9) is not None
    store.check_integrity()
