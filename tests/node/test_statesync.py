"""State sync without a network: a served snapshot fetched chunk by chunk into an empty store.

The source is a real LevelDB devnet home with certified blocks of transfers
(tests.helpers.devnet_home_with_blocks); the newcomer's store is in memory. Peers are
just keys: the test carries each request to a ``SnapshotServer`` and back.
"""

from __future__ import annotations

import pytest

from ledger.errors import StorageError
from ledger.state import StateStore
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import MemoryKV
from ledger.storage.leveldb import LevelDBKV
from node.core.chain import Chain
from node.ops.config import load_config
from node.ops.verify import verify_store
from node.statesync.fetch import REASON_BAD_NODE, REASON_TOO_MANY, REASON_UNSOLICITED, StateFetcher, StateSyncError
from node.statesync.serve import REASON_NODE_BUDGET, REASON_OFFER_BUDGET, SnapshotServer, snapshot_height
from node.statesync.wire import (
    MAX_NODES_ANSWER_BYTES,
    MAX_NODES_MESSAGE_BYTES,
    MAX_NODES_PER_REQUEST,
    Nodes,
    NodesRequest,
    Offer,
    OfferRequest,
    SyncProtocolError,
    decode_message,
    verify_offer,
)
from p2p.limits import TransportLimits
from tests.helpers import devnet_home_with_blocks

BLOCKS = 14
INTERVAL = 5
PEERS = [bytes([i]) * 32 for i in range(1, 4)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("statesync") / "devnet")
    layout, home = devnet_home_with_blocks(root, "statesync-test", BLOCKS, lambda height: 2 + height % 3, sync=False)
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    chain = Chain(kv, layout.genesis, sync=False)
    yield layout.genesis, kv, chain
    kv.close()


def server_of(chain: Chain, limits: TransportLimits | None = None, clock=lambda: 0.0) -> SnapshotServer:
    return SnapshotServer(limits or TransportLimits(), chain.kv, chain.blocks, chain.schedule, INTERVAL, clock=clock)


def roundtrip(message):
    """Through the wire encoding, as the transport would carry it."""
    return decode_message(message.encode())


def offer_of(server: SnapshotServer, peer: bytes = PEERS[0]) -> Offer:
    offer, refused = server.offer(peer)
    assert refused == "" and offer is not None
    return roundtrip(offer)


def begun(server: SnapshotServer, genesis, kv: MemoryKV | None = None) -> StateFetcher:
    """A newcomer's fetcher on ``kv`` (a fresh store by default) that took ``server``'s verified offer."""
    fetcher = StateFetcher(kv if kv is not None else MemoryKV(), genesis)
    fetcher.begin(verify_offer(offer_of(server), genesis))
    return fetcher


def run_fetch(fetcher: StateFetcher, server: SnapshotServer, peers=PEERS, rounds: int | None = None,
              tamper=None) -> list[str]:
    """Carry requests to the server and answers back until done (or ``rounds``); returns refusals."""
    refusals, now, count = [], 0.0, 0
    while not fetcher.done and (rounds is None or count < rounds):
        count += 1
        for peer, request in fetcher.requests(list(peers), now):
            answer, refused = server.answer_nodes(peer, roundtrip(request).hashes)
            assert refused == "", refused
            answer = roundtrip(answer)
            if tamper is not None:
                answer = tamper(peer, answer)
            reason = fetcher.on_nodes(peer, answer)
            if reason:
                refusals.append(reason)
        assert count < 10_000
    return refusals


def test_snapshot_height_is_the_latest_multiple_of_the_interval():
    assert [snapshot_height(h, 5) for h in (0, 4, 5, 9, 14)] == [0, 0, 5, 5, 10]


def test_a_newcomer_fetches_the_certified_state_and_continues_with_block_sync(source):
    genesis, kv, chain = source
    server = server_of(chain)
    verified = verify_offer(offer_of(server), genesis)
    assert verified.height == 10 and verified.state_root == chain.blocks.get_state_root(10)
    mem = MemoryKV()
    fetcher = StateFetcher(mem, genesis)
    fetcher.begin(verified)
    assert run_fetch(fetcher, server) == []
    fetcher.finish()
    assert mem.get(schema.STATESYNC_KEY) is None
    newcomer = Chain(mem, genesis, sync=False)
    assert (newcomer.height, newcomer.blocks.base, newcomer.state.root) == (10, 10, verified.state_root)
    assert newcomer.state.check_flat_table() == sum(1 for _ in StateStore(kv, chain.state.root).iter_leaf_hashes(verified.state_root))
    for height in range(11, BLOCKS + 1):  # ordinary block sync from the base on
        newcomer.commit(chain.blocks.get_block(height), chain.blocks.get_certificate(height))
    assert newcomer.state.root == chain.state.root
    assert newcomer.blocks.get_block(9) is None and "oldest height held is 10" in newcomer.blocks.below_base(9)
    assert newcomer.blocks.below_base(10) is None
    report = verify_store(mem, genesis)
    assert report.ok, report.problem
    assert (report.base, report.checked) == (10, BLOCKS - 10)


def test_a_bad_node_is_refused_its_peer_excluded_and_the_chunk_asked_elsewhere(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    fetcher = begun(server, genesis)
    liar = PEERS[0]

    def tamper(peer, answer):
        if peer != liar:
            return answer
        items = list(answer.items)
        items[-1] = items[-1][:-1] + bytes([items[-1][-1] ^ 1])
        return Nodes(tuple(items))

    refusals = run_fetch(fetcher, server, tamper=tamper)
    assert refusals == [REASON_BAD_NODE]
    assert fetcher.excluded == {liar: REASON_BAD_NODE} and fetcher.stats.refused_answers == 1
    fetcher.finish()  # the honest peers served everything, each node checked


def test_unasked_and_overlong_answers_are_refused(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    fetcher = begun(server, genesis)
    assert fetcher.on_nodes(PEERS[0], Nodes((b"x",))) == REASON_UNSOLICITED
    (peer, request), = fetcher.requests([PEERS[1]], 0.0)
    answer, _ = server.answer_nodes(peer, request.hashes)
    assert fetcher.on_nodes(peer, Nodes(answer.items + (answer.items[0],))) == REASON_TOO_MANY
    assert set(fetcher.excluded) == {PEERS[0], PEERS[1]}
    assert run_fetch(fetcher, server, peers=[PEERS[2]]) == []  # the refused request went back to the frontier
    fetcher.finish()


def test_oversize_messages_are_refused_before_use():
    big = Nodes((b"\x00" * (MAX_NODES_MESSAGE_BYTES // 2),) * 3).encode()
    with pytest.raises(SyncProtocolError, match="exceeds"):
        decode_message(big)
    with pytest.raises(SyncProtocolError, match=f"at most {MAX_NODES_PER_REQUEST}"):
        decode_message(NodesRequest((b"\x01" * 32,) * (MAX_NODES_PER_REQUEST + 1)).encode())
    with pytest.raises(SyncProtocolError, match="32-byte hashes"):
        decode_message(NodesRequest((b"\x01" * 31,)).encode())
    assert decode_message(OfferRequest().encode()) == OfferRequest()


def test_answers_stay_within_the_size_limit_and_the_serving_budget(source):
    genesis, kv, chain = source
    every = [k[1:] for k, _ in kv.iterate(prefix=schema.STATE_NODE_PREFIX)][:MAX_NODES_PER_REQUEST]
    answer, _ = server_of(chain).answer_nodes(PEERS[0], tuple(every))
    assert sum(map(len, answer.items)) <= MAX_NODES_ANSWER_BYTES
    tight = TransportLimits(serve_bytes_per_second=65_536.0, serve_byte_burst=2_000.0)
    server = server_of(chain, tight)
    first, _ = server.answer_nodes(PEERS[0], tuple(every))
    assert 0 < len(first.items) < len(every)  # cut short by the budget, not refused outright
    assert server.answer_nodes(PEERS[0], tuple(every)) == (None, REASON_NODE_BUDGET)
    assert not server.may_serve_nodes(PEERS[0]) and server.may_serve_nodes(PEERS[1])
    for _ in range(4):
        server.offer(PEERS[1])
    assert server.offer(PEERS[1]) == (None, REASON_OFFER_BUDGET)


def test_a_crash_mid_fetch_resumes_and_a_half_state_is_never_opened(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    mem = MemoryKV()
    fetcher = begun(server, genesis, mem)
    run_fetch(fetcher, server, rounds=2)
    assert not fetcher.done and fetcher.stats.nodes > 0
    with pytest.raises(StorageError, match="state sync that has not finished"):
        Chain(mem, genesis)  # a node refuses the partial store instead of writing genesis over it
    with pytest.raises(StateSyncError, match="before every node"):
        fetcher.finish()
    again = StateFetcher(mem, genesis)  # the process restarted: only the store survives
    assert again.resume() and again.target.height == 10
    assert len(again.frontier) > 0
    assert run_fetch(again, server) == []
    again.finish()
    assert Chain(mem, genesis).state.root == chain.blocks.get_state_root(10)
    assert StateFetcher(mem, genesis).resume() is False


def test_a_damaged_node_on_disk_is_fetched_again_on_resume(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    mem = MemoryKV()
    fetcher = StateFetcher(mem, genesis)
    verified = verify_offer(offer_of(server), genesis)
    fetcher.begin(verified)
    run_fetch(fetcher, server, rounds=1)
    mem.write([(schema.state_node_key(verified.state_root), b"damaged")], sync=False)
    again = StateFetcher(mem, genesis)
    assert again.resume() and again.frontier == [verified.state_root]
    run_fetch(again, server)
    again.finish()


def test_an_offer_that_does_not_prove_from_genesis_is_refused(source, tmp_path):
    genesis, _kv, chain = source
    offer = offer_of(server_of(chain))
    other = chain.blocks.get_stored_pair(9)
    with pytest.raises(SyncProtocolError, match="does not verify"):
        verify_offer(Offer(10, offer.block, other[1], offer.receipts, offer.set_proofs), genesis)
    with pytest.raises(SyncProtocolError, match="does not verify"):
        verify_offer(Offer(10, offer.block, offer.cert, chain.kv.get(schema.receipts_key(9)), ()), genesis)
    with pytest.raises(SyncProtocolError, match="expected height 9"):
        verify_offer(Offer(9, offer.block, offer.cert, offer.receipts, ()), genesis)
    from devnet.genesis import create_devnet
    stranger = create_devnet(str(tmp_path / "other"), validators=4, seed="another-network").genesis
    with pytest.raises(SyncProtocolError):
        verify_offer(offer, stranger)


def test_a_store_with_a_base_passes_the_open_checks_and_serves_offers_itself(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    mem = MemoryKV()
    fetcher = begun(server, genesis, mem)
    run_fetch(fetcher, server)
    fetcher.finish()
    newcomer = Chain(mem, genesis, sync=False)
    for height in range(11, BLOCKS + 1):
        newcomer.commit(chain.blocks.get_block(height), chain.blocks.get_certificate(height))
    BlockStore(mem).check_integrity()
    # The state-synced node serves the next newcomer the same snapshot.
    second = server_of(newcomer)
    offer = offer_of(second)
    assert verify_offer(offer, genesis).height == 10
    later = StateFetcher(MemoryKV(), genesis)
    later.begin(verify_offer(offer, genesis))
    run_fetch(later, second)
    later.finish()


def test_a_peer_that_lacks_nodes_is_asked_again_later_but_a_liar_never(source):
    genesis, _kv, chain = source
    server = server_of(chain)
    fetcher = begun(server, genesis)
    (peer, request), = fetcher.requests([PEERS[0]], 0.0)
    assert fetcher.on_nodes(peer, Nodes((b"",) * len(request.hashes))) == ""  # honest, but behind
    (liar, request), = fetcher.requests([PEERS[1]], 0.0)
    fetcher.on_nodes(liar, Nodes((b"\x00" * 40,) * len(request.hashes)))
    assert fetcher.usable(PEERS[:2]) == [] and fetcher.forgive() == 1
    assert fetcher.usable(PEERS[:2]) == [PEERS[0]] and fetcher.excluded == {liar: REASON_BAD_NODE}
    assert run_fetch(fetcher, server, peers=[PEERS[0]]) == []
    fetcher.finish()


def test_a_state_synced_home_exports_and_imports_as_a_snapshot(source, tmp_path):
    from node.ops.home import init_home
    from node.ops.snapshot import export_snapshot, import_snapshot
    from ledger.crypto import SigningKey

    genesis, _kv, chain = source
    homes = []
    for name in ("synced", "copy"):
        homes.append(str(tmp_path / name))
        init_home(homes[-1], genesis, SigningKey.generate())
    store = LevelDBKV(load_config(homes[0]).path("node", "data_dir"))
    try:
        fetcher = StateFetcher(store, genesis)
        fetcher.begin(verify_offer(offer_of(server_of(chain)), genesis))
        run_fetch(fetcher, server_of(chain))
        fetcher.finish()
        synced = Chain(store, genesis, sync=False)
        synced.commit(chain.blocks.get_block(11), chain.blocks.get_certificate(11))
    finally:
        store.close()
    out = str(tmp_path / "synced.snap")
    assert export_snapshot(homes[0], out).height == 11
    assert import_snapshot(homes[1], out).height == 11
    copied = LevelDBKV(load_config(homes[1]).path("node", "data_dir"))
    try:
        assert Chain(copied, genesis).blocks.base == 10
        assert verify_store(copied, genesis).ok
    finally:
        copied.close()
