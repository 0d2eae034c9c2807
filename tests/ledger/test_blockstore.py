"""Block store: atomic commits, lookups, integrity checks, on both backends."""

from __future__ import annotations

import pytest

from ledger.errors import CorruptionError, StorageError
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import MemoryKV
from ledger.storage.leveldb import LevelDBKV
from tests.helpers import certify, make_block, make_tx, VALIDATOR_KEYS

GENESIS_HASH = b"\x07" * 32


@pytest.fixture(params=["memory", "leveldb"])
def kv(request, tmp_path):
    store = MemoryKV() if request.param == "memory" else LevelDBKV(str(tmp_path / "db"))
    yield store
    store.close()


def build_chain(store: BlockStore, count: int, txs_per_block: int = 2):
    store.init_genesis(GENESIS_HASH, [(b"Vgenesis", b"1")], b"\x00" * 32)
    prev = prev_cert = None
    blocks = []
    for height in range(1, count + 1):
        txs = [make_tx(VALIDATOR_KEYS[3], height * 100 + i) for i in range(txs_per_block)]
        block, receipts = make_block(height, prev, prev_cert, txs)
        cert = certify(block)
        store.commit_block(block, cert, receipts, [(b"Vk%d" % height, b"v")])
        blocks.append(block)
        prev, prev_cert = block, cert
    return blocks


def test_commit_and_lookups(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 5)
    assert store.height == 5
    store.check_integrity()
    for block in blocks:
        assert store.get_block(block.height).block_hash == block.block_hash
        assert store.get_block_by_hash(block.block_hash).height == block.height
        assert store.get_certificate(block.height).block_hash == block.block_hash
        for index, tx in enumerate(block.txs):
            found, height, position = store.get_tx(tx.tx_id)
            assert (found.tx_id, height, position) == (tx.tx_id, block.height, index)
            receipt, _, _ = store.get_receipt(tx.tx_id)
            assert receipt.tx_id == tx.tx_id
    assert kv.get(b"Vk3") == b"v"
    assert store.get_tx(b"\x00" * 32) is None
    assert [b.height for b in store.iter_blocks(2, 10)] == [2, 3, 4, 5]
    # A fresh BlockStore over the same KV sees the same head.
    assert BlockStore(kv).height == 5


def test_refuses_out_of_order_and_mismatched_commits(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 2)
    block3, receipts = make_block(4, blocks[-1], certify(blocks[-1]), [])
    with pytest.raises(StorageError, match="out of order"):
        store.commit_block(block3, certify(block3), receipts, [])
    block3, receipts = make_block(3, blocks[-1], certify(blocks[-1]), [make_tx(VALIDATOR_KEYS[0], 1)])
    with pytest.raises(StorageError, match="certificate is for"):
        store.commit_block(block3, certify(blocks[0]), receipts, [])
    with pytest.raises(StorageError, match="receipts"):
        store.commit_block(block3, certify(block3), [], [])
    with pytest.raises(StorageError, match="genesis"):
        store.init_genesis(b"\x08" * 32, [], b"\x00" * 32)
    assert store.height == 2


@pytest.mark.parametrize("damage,message", [
    (lambda kv: kv.write([(schema.block_key(5), None)]), "block 5 is missing"),
    (lambda kv: kv.write([(schema.cert_key(4), None)]), "certificate of block 4 is missing"),
    (lambda kv: kv.write([(schema.cert_key(4), kv.get(schema.cert_key(3)))]), "certificate stored at height 4 is for another block"),
    (lambda kv: kv.write([(schema.receipts_key(5), None)]), "receipts of block 5"),
    (lambda kv: kv.write([(schema.state_root_key(3), b"\x09" * 32)]), "state root recorded for height 3"),
    (lambda kv: kv.write([(schema.block_key(3), kv.get(schema.block_key(2)))]), "says it is height 2"),
    (lambda kv: kv.write([(schema.block_key(4), b"\xc1garbage")]), "does not decode"),
    (lambda kv: kv.write([(schema.block_key(6), kv.get(schema.block_key(5)))]), "above the head"),
    (lambda kv: kv.write([(schema.GENESIS_HASH_KEY, None)]), "genesis hash is missing"),
])
def test_integrity_check_names_the_problem(kv, damage, message):
    store = BlockStore(kv)
    build_chain(store, 5)
    damage(kv)
    with pytest.raises(CorruptionError) as info:
        BlockStore(kv).check_integrity()
    assert message in str(info.value)
    assert "shopchain node verify" in str(info.value)


def test_broken_hash_chain_detected(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 3)
    # Replace block 3 by a certified block that does not link to block 2.
    stray, receipts = make_block(3, blocks[0], certify(blocks[0]), [])
    kv.write(BlockStore.block_batch(stray, certify(stray), receipts))
    with pytest.raises(CorruptionError, match="does not link"):
        BlockStore(kv).check_integrity()


def test_leveldb_open_errors(tmp_path):
    path = str(tmp_path / "db")
    first = LevelDBKV(path)
    with pytest.raises(StorageError, match="another shopchain process"):
        LevelDBKV(path)
    first.close()
    with pytest.raises(StorageError, match="closed"):
        first.get(b"x")
    with pytest.raises(StorageError):
        LevelDBKV(str(tmp_path / "absent"), create=False)
    with pytest.raises(StorageError, match="batch key"):
        MemoryKV().write([(b"", b"x")])


def test_store_written_with_snappy_reads_back_uncompressed(tmp_path):
    """Stores created before compression was turned off hold snappy tables; they must stay readable."""
    import plyvel

    path = str(tmp_path / "db")
    old = plyvel.DB(path, create_if_missing=True, compression="snappy")
    rows = {f"key-{i:05d}".encode(): (b"order record %d " % i) * 20 for i in range(3000)}
    with old.write_batch() as wb:
        for key, value in rows.items():
            wb.put(key, value)
    old.compact_range()  # into table files, snappy-compressed
    old.close()
    kv = LevelDBKV(path)
    assert all(kv.get(key) == value for key, value in rows.items())
    kv.write([(b"key-new", b"x" * 4000)])
    assert dict(kv.iterate(prefix=b"key-")) == {**rows, b"key-new": b"x" * 4000}
    kv.close()


def test_reads_refuse_what_the_commit_did_not_write(kv):
    """Each read checks its value against what was committed beside it (issue 13, item 9)."""
    store = BlockStore(kv)
    blocks = build_chain(store, 5)
    tx = blocks[1].txs[0]
    kv.write([(schema.tx_index_key(tx.tx_id), kv.get(schema.tx_index_key(blocks[2].txs[0].tx_id)))])
    with pytest.raises(CorruptionError, match="which holds transaction"):
        store.get_tx(tx.tx_id)
    with pytest.raises(CorruptionError, match="which is the receipt of"):
        store.get_receipt(tx.tx_id)
    kv.write([(schema.receipts_key(2), kv.get(schema.receipts_key(3)))])
    with pytest.raises(CorruptionError, match="do not hash to the receipts root of block 2"):
        store.get_receipts(2)
    kv.write([(schema.cert_key(2), kv.get(schema.cert_key(3)))])
    with pytest.raises(CorruptionError, match="certificate stored at height 2 is for another block"):
        store.get_certificate(2)
    kv.write([(schema.block_hash_key(blocks[0].block_hash), schema.encode_height(4))])
    with pytest.raises(CorruptionError, match="maps block .* to height 4, which holds another block"):
        store.get_block_by_hash(blocks[0].block_hash)
    reported: list[CorruptionError] = []
    store.on_corruption = reported.append
    with pytest.raises(CorruptionError):
        store.get_certificate(2)
    assert len(reported) == 1 and "height 2" in str(reported[0])


def test_an_older_store_gets_its_header_index_at_first_open(kv):
    store = BlockStore(kv)
    blocks = build_chain(store, 5)
    kv.write([(schema.header_key(h), None) for h in range(1, 6)])  # as written before the index existed
    assert store.get_block(3).block_hash == blocks[2].block_hash  # readable meanwhile, via the hash index
    BlockStore(kv).check_integrity()
    assert [kv.get(schema.header_key(b.height)) for b in blocks] == [b.header.encode() for b in blocks]
    kv.write([(schema.header_key(h), None) for h in range(1, 6)])
    raw = kv.get(schema.block_key(2))
    signature = blocks[1].txs[0].signature
    at = raw.index(signature)
    kv.write([(schema.block_key(2), raw[:at] + bytes([signature[0] ^ 1]) + raw[at + 1:])])
    with pytest.raises(CorruptionError, match="block 2 .* its transactions do not hash to its tx_root"):
        BlockStore(kv).check_integrity()
    assert kv.get(schema.header_key(2)) is None  # nothing derived from a block that failed its check
