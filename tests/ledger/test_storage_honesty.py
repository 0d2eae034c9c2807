"""The store never serves what it cannot vouch for (issue 13, item 9).

Each test damages a real LevelDB home written by a real ``Chain`` the way an unlucky
operator (a flipped bit on disk) or someone with access to the disk (a value
rewritten through plyvel) would, and checks the damage is refused everywhere it
could leak out: reads raise CorruptionError naming the key and height, the node
refuses to open the store and says how to recover, an RPC read answers an error and
halts the node, and ``shopchain node verify`` names the first bad state key. The
damaged height is old (well below ``INTEGRITY_CHECK_DEPTH`` from the head), where
the open check used to look at nothing.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys

import plyvel
import pytest
from click.testing import CliRunner

from cli.main import main
from cli.output import EXIT_VERIFY
from ledger.errors import CorruptionError
from ledger.state import StateStore
from ledger.storage import schema
from ledger.storage.blockstore import INTEGRITY_CHECK_DEPTH, BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.types import Block
from node.core.chain import Chain
from node.ops.config import load_config
from node.ops.home import read_key_file
from node.rpc.jsonrpc import CallContext
from node.service import Node
from tests.conftest import PROJECT_ROOT
from tests.helpers import devnet_home_with_blocks

BLOCKS = INTEGRITY_CHECK_DEPTH + 36
OLD = 10  # a height the old open check (newest INTEGRITY_CHECK_DEPTH blocks) never looked at
RECOVERY_WORDS = ("shopchain node verify", "shopchain node import")
#: Longest a refused `shopchain node start` may take (it must fail at open, not run).
START_LIMIT_S = 60


def data_dir(home: str) -> str:
    return load_config(home).path("node", "data_dir")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A devnet node home holding BLOCKS committed blocks with transfers (built once, copied per test)."""
    root = str(tmp_path_factory.mktemp("honesty") / "devnet")
    return devnet_home_with_blocks(root, "storage-honesty", BLOCKS, lambda height: 1 + height % 2, sync=False)


@pytest.fixture
def home(pristine, tmp_path):
    """A private copy of the pristine home (the layout's other files stay shared and untouched)."""
    layout, source = pristine
    copy = str(tmp_path / "node")
    shutil.copytree(source, copy)
    return layout, copy


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def rewrite_with_plyvel(path: str, key: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """Rewrite one value directly through plyvel, as someone with access to the files could; returns the old value."""
    db = plyvel.DB(path)
    try:
        old = db.get(key)
        db.put(key, change(old), sync=True)
        return old
    finally:
        db.close()


def assert_names_recovery(message: str) -> None:
    for words in RECOVERY_WORDS:
        assert words in message, message


def stored_block(path: str, height: int) -> Block:
    kv = LevelDBKV(path, create=False)
    try:
        return Block.decode(kv.get(schema.block_key(height)))
    finally:
        kv.close()


# --- a block value rewritten through the API -----------------------------------------------

def _flip_header(raw: bytes, block: Block) -> bytes:
    return flip(raw, raw.index(block.header.state_root))


def _flip_tx_signature(raw: bytes, block: Block) -> bytes:
    return flip(raw, raw.index(block.txs[0].signature) + 5)


def _flip_tx_argument(raw: bytes, block: Block) -> bytes:
    # The transfer amount's low byte: the block still decodes, only the payload differs.
    return flip(raw, raw.index(block.txs[0].body.encode()) + len(block.txs[0].body.encode()) - 12)


@pytest.mark.parametrize("damage", [_flip_header, _flip_tx_signature, _flip_tx_argument],
                         ids=["header", "tx-signature", "tx-payload"])
def test_a_block_rewritten_through_plyvel_is_never_served(home, damage):
    layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    rewrite_with_plyvel(path, schema.block_key(OLD), lambda raw: damage(raw, block))
    kv = LevelDBKV(path, create=False)
    try:
        store = BlockStore(kv)
        with pytest.raises(CorruptionError) as read:
            store.get_block(OLD)
        assert f"block {OLD}" in str(read.value) and schema.block_key(OLD).hex() in str(read.value)
        assert_names_recovery(str(read.value))
        with pytest.raises(CorruptionError):
            store.get_tx(block.txs[0].tx_id)
        # The open check walks the header index, not old block bodies, so the node opens;
        # its block store still refuses the block (a running node then halts, see the RPC test).
        chain = Chain(kv, layout.genesis)
        with pytest.raises(CorruptionError, match=f"block {OLD}"):
            chain.blocks.get_block(OLD)
        assert chain.blocks.get_block(OLD + 1).height == OLD + 1
    finally:
        kv.close()


@pytest.mark.parametrize("where", ["header-index", "hash-index"])
def test_a_rewritten_header_chain_refuses_to_open(home, where):
    layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    if where == "header-index":
        rewrite_with_plyvel(path, schema.header_key(OLD), lambda raw: _flip_header(raw, block))
    else:
        rewrite_with_plyvel(path, schema.block_hash_key(block.block_hash), lambda raw: (OLD + 1).to_bytes(8, "big"))
    kv = LevelDBKV(path, create=False)
    try:
        with pytest.raises(CorruptionError) as opened:
            Chain(kv, layout.genesis)
        assert f"block {OLD}" in str(opened.value)
        assert_names_recovery(str(opened.value))
    finally:
        kv.close()


@pytest.mark.integration  # runs `shopchain node start` as a process
def test_node_start_refuses_a_store_with_a_broken_header_chain(home):
    """Through the real command: exit status 1, the height and the recovery commands on stderr."""
    _layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    rewrite_with_plyvel(path, schema.block_hash_key(block.block_hash), lambda raw: (OLD + 1).to_bytes(8, "big"))
    started = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "node", "start",
                              "--home", node_home], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=START_LIMIT_S)
    assert started.returncode == 1, started
    assert "store is corrupted" in started.stderr and f"block {OLD}" in started.stderr, started.stderr
    assert_names_recovery(started.stderr)
    assert f"shopchain node verify --home {node_home}" in started.stderr, started.stderr


def test_the_tx_index_pointing_at_another_transaction_is_refused(home):
    _layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    other = stored_block(path, OLD + 1)
    rewrite_with_plyvel(path, schema.tx_index_key(block.txs[0].tx_id),
                        lambda _old: (OLD + 1).to_bytes(8, "big") + (0).to_bytes(4, "big"))
    kv = LevelDBKV(path, create=False)
    try:
        with pytest.raises(CorruptionError, match=f"block {OLD + 1} position 0, which holds transaction "
                                                  f"{other.txs[0].tx_id.hex()}"):
            BlockStore(kv).get_tx(block.txs[0].tx_id)
    finally:
        kv.close()


def test_a_head_certificate_with_a_bad_signature_is_refused_at_open(home):
    layout, node_home = home
    path = data_dir(node_home)
    rewrite_with_plyvel(path, schema.cert_key(BLOCKS), lambda raw: flip(raw, len(raw) - 3))
    kv = LevelDBKV(path, create=False)
    try:
        with pytest.raises(CorruptionError, match=f"certificate of the head block {BLOCKS} does not verify") as info:
            Chain(kv, layout.genesis)
        assert_names_recovery(str(info.value))
    finally:
        kv.close()


# --- a byte flipped inside a table file on disk ---------------------------------------------

def compact_and_flip_on_disk(path: str, needle: bytes, every: bool = False) -> list[str]:
    """Compact everything into .ldb tables, then flip the middle byte of ``needle`` where it lies on disk.

    The first occurrence only, or ``every`` one (a header lies both in its block and
    in the header index). Returns the table files changed.
    """
    db = plyvel.DB(path)
    db.compact_range()
    db.close()
    changed = []
    for table in sorted(glob.glob(os.path.join(path, "*.ldb"))):
        with open(table, "rb") as fh:
            data = bytearray(fh.read())
        at = data.find(needle)
        while at >= 0:
            data[at + len(needle) // 2] ^= 0x01
            if table not in changed:
                changed.append(table)
            at = data.find(needle, at + 1) if every else -1
        if table in changed:
            with open(table, "wb") as fh:
                fh.write(data)
            if not every:
                return changed
    assert changed, f"{needle.hex()[:16]} is in no table file under {path}"
    return changed


@pytest.mark.parametrize("verify_checksums", [True, False], ids=["leveldb-crc", "hash-checks-only"])
def test_a_byte_flipped_in_a_table_file_is_never_served(home, verify_checksums):
    """With LevelDB's CRCs on (the default) they catch it; with them off, the block store's hash checks do."""
    layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    compact_and_flip_on_disk(path, block.txs[0].signature)
    kv = LevelDBKV(path, create=False) if verify_checksums else LevelDBKV(path, create=False, verify_checksums=False)
    try:
        with pytest.raises(CorruptionError) as read:
            BlockStore(kv).get_block(OLD)
        assert_names_recovery(str(read.value))
        if verify_checksums:
            assert "checksum" in str(read.value) and schema.block_key(OLD).hex() in str(read.value)
        else:
            assert f"block {OLD}" in str(read.value)
        chain = Chain(kv, layout.genesis)  # the header chain is intact: old bodies are checked when read
        with pytest.raises(CorruptionError):
            chain.blocks.get_block(OLD)
    finally:
        kv.close()


def test_a_header_flipped_in_the_table_files_refuses_to_open(home):
    """The open check's iterator reads the header index with CRCs on: a flipped header byte stops the open."""
    layout, node_home = home
    path = data_dir(node_home)
    block = stored_block(path, OLD)
    flipped = compact_and_flip_on_disk(path, block.header.encode(), every=True)
    assert len(flipped) >= 1
    kv = LevelDBKV(path, create=False)
    try:
        with pytest.raises(CorruptionError) as opened:
            Chain(kv, layout.genesis)
        assert_names_recovery(str(opened.value))
    finally:
        kv.close()


# --- RPC: an error to the client and the node halted ---------------------------------------

def rpc(node, method: str, params: list) -> dict:  # type: ignore[no-untyped-def]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return json.loads(asyncio.run(node.rpc.dispatcher.handle(body, CallContext("http"))))


def test_rpc_get_block_of_a_tampered_height_answers_an_error_and_halts_the_node(home):
    _layout, node_home = home
    node = Node(node_home)
    try:
        assert rpc(node, "chain_getBlock", [OLD])["result"]["header"]["height"] == OLD
        raw = node.kv.get(schema.block_key(OLD))
        block = Block.decode(raw)
        node.kv.write([(schema.block_key(OLD), _flip_tx_argument(raw, block))])  # while the node runs
        answer = rpc(node, "chain_getBlock", [OLD])
        assert "result" not in answer, answer
        assert f"block {OLD}" in answer["error"]["message"] and answer["error"]["data"]["type"] == "CorruptionError"
        assert node.halted is not None and f"block {OLD}" in node.halted
        assert_names_recovery(node.halted)
        assert rpc(node, "chain_getTransaction", ["0x" + block.txs[0].tx_id.hex()]).get("result") is None
    finally:
        node.kv.close()


def test_rpc_proof_over_a_damaged_state_node_answers_an_error_and_halts_the_node(home):
    from ledger.state_proof import compute_leaf_hash

    _layout, node_home = home
    node = Node(node_home)
    try:
        key, _value = next(node.kv.iterate(prefix=schema.STATE_VALUE_PREFIX))
        state_key = key[len(schema.STATE_VALUE_PREFIX):]
        leaf = node.chain.state.prove(state_key)[-1]  # [0, key, sha256(value)]
        leaf_key = schema.state_node_key(compute_leaf_hash(leaf[1], leaf[2]))
        stored = node.kv.get(leaf_key)
        node.kv.write([(leaf_key, flip(stored, len(stored) - 1))])  # leaves are read from disk, never cached
        answer = rpc(node, "chain_getProof", ["0x" + state_key.hex()])
        assert "result" not in answer, answer
        assert answer["error"]["data"]["type"] == "CorruptionError", answer
        assert node.halted is not None and "state leaf" in node.halted
        assert_names_recovery(node.halted)
    finally:
        node.kv.close()


def test_rpc_call_over_a_tampered_flat_balance_answers_an_error_and_halts_the_node(home):
    """chain_call reads through the flat table; a forged balance there must never reach a client."""
    from contracts_vm.values import encode_key
    from ledger import encoding
    from node.core.fees import BALANCES_PREFIX

    layout, node_home = home
    node = Node(node_home)
    try:
        account = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json")).public_key
        honest = rpc(node, "chain_call", ["ledger", "balance_of", ["0x" + account.hex()]])["result"]
        key = schema.state_value_key(BALANCES_PREFIX + encode_key(account, ["bytes"]))
        assert node.kv.get(key) is not None
        node.kv.write([(key, encoding.encode(10**15))])  # while the node runs
        answer = rpc(node, "chain_call", ["ledger", "balance_of", ["0x" + account.hex()]])
        assert answer.get("result") in (None, honest) and "error" in answer, answer
        assert node.halted is not None and "flat state entry" in node.halted
        assert_names_recovery(node.halted)
    finally:
        node.kv.close()


# --- the flat state table against the trie ----------------------------------------------------

def flat_entry(path: str, contract_prefix: bytes) -> tuple[bytes, bytes]:
    """Some flat-table entry whose state key starts with ``contract_prefix``."""
    kv = LevelDBKV(path, create=False)
    try:
        for key, value in kv.iterate(prefix=schema.state_value_key(contract_prefix)):
            return key, value
    finally:
        kv.close()
    raise AssertionError(f"no state key starts with {contract_prefix!r}")


def first_flat_entry(path: str) -> tuple[bytes, bytes]:
    return flat_entry(path, b"")


@pytest.mark.parametrize("damage", ["value", "deleted", "added"])
def test_node_verify_names_the_first_bad_flat_state_key(home, damage):
    _layout, node_home = home
    path = data_dir(node_home)
    key, value = first_flat_entry(path)
    db = plyvel.DB(path)
    if damage == "value":
        db.put(key, flip(value, len(value) - 1))
        bad = key
    elif damage == "deleted":
        db.delete(key)
        bad = key
    else:
        bad = key + b"\x00forged"
        db.put(bad, b"1000000")
    db.close()
    result = CliRunner().invoke(main, ["node", "verify", "--home", node_home, "--json"])
    assert result.exit_code == EXIT_VERIFY, result.output
    report = json.loads(result.stdout)
    state_key = bad[len(schema.STATE_VALUE_PREFIX):]
    assert report["bad_state_key"] == "0x" + state_key.hex(), report
    assert report["checked_blocks"] == BLOCKS and state_key.hex() in report["problem"]
    human = CliRunner().invoke(main, ["node", "verify", "--home", node_home])
    assert human.exit_code == EXIT_VERIFY and state_key.hex() in human.output


def test_node_verify_passes_and_counts_the_state_of_a_healthy_home(home):
    _layout, node_home = home
    result = CliRunner().invoke(main, ["node", "verify", "--home", node_home, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["checked_blocks"] == BLOCKS and report["state_entries"] > 0


def test_a_tampered_flat_value_is_refused_by_verified_reads(home):
    _layout, node_home = home
    path = data_dir(node_home)
    key, value = first_flat_entry(path)
    state_key = key[len(schema.STATE_VALUE_PREFIX):]
    kv = LevelDBKV(path, create=False)
    try:
        root = BlockStore(kv).get_state_root(BLOCKS)
        assert StateStore(kv, root).get_verified(state_key) == value
        kv.write([(key, flip(value, len(value) - 1))])
        store = StateStore(kv, root)
        with pytest.raises(CorruptionError, match=f"flat state entry {state_key.hex()}"):
            store.get_verified(state_key)
        with pytest.raises(CorruptionError, match=f"flat state entry {state_key.hex()}"):
            store.overlay(verify_reads=True).get(state_key)
        with pytest.raises(CorruptionError, match=f"flat state entry {state_key.hex()}"):
            store.check_flat_table()
    finally:
        kv.close()
