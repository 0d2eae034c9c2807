"""The state-sync runner over real sockets: one honest peer, one that corrupts every chunk.

Two in-process transports serve a real LevelDB chain (tests.helpers.devnet_home_with_blocks)
with ``SnapshotServer``, one of them flipping a byte in every node it sends. A fresh
home with ``[statesync] enable`` runs ``StateSyncRunner``: it must refuse the liar's
chunks, report the liar to its transport, fetch everything from the honest peer, and
leave a store a ``Chain`` opens at the snapshot height with the certified state root.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from devnet.launcher import free_base_port
from ledger.crypto import SigningKey
from ledger.storage.leveldb import LevelDBKV
from node.core.chain import Chain
from node.envelopes import ENVELOPE_CLASSES, ENVELOPE_CONSENSUS, ENVELOPE_STATESYNC
from node.catchup import frame_class
from node.ops.config import load_config
from node.ops.home import init_home, read_key_file
from node.statesync.fetch import REASON_BAD_NODE
from node.statesync.run import StateSyncRunner, needs_state_sync
from node.statesync.serve import SnapshotServer
from node.statesync.wire import Nodes, NodesRequest, OfferRequest, decode_message
from p2p.limits import TransportLimits
from p2p.transport import Transport
from tests.helpers import devnet_home_with_blocks

pytestmark = pytest.mark.integration

BLOCKS = 12
INTERVAL = 5
FAST = dict(handshake_timeout_seconds=2.0, connect_timeout_seconds=2.0, backoff_base_seconds=0.02,
            backoff_cap_seconds=0.2)


class ServingPeer:
    """A transport answering state-sync requests from one store; ``lie`` flips a byte in every node."""

    def __init__(self, key: SigningKey, chain_id: str, server: SnapshotServer, lie: bool) -> None:
        self.key, self.server, self.lie = key, server, lie
        self.nodes_sent = 0
        self.transport = Transport(key, chain_id, "127.0.0.1", 0, {}, self.on_message,
                                   limits=TransportLimits(**FAST),
                                   classify=lambda data: frame_class(data, ENVELOPE_CLASSES, ENVELOPE_CONSENSUS))

    def on_message(self, sender: bytes, data: bytes) -> None:
        if data[:1] != bytes([ENVELOPE_STATESYNC]):
            return
        message = decode_message(data[1:])
        if isinstance(message, OfferRequest):
            answer, _ = self.server.offer(sender)
        elif isinstance(message, NodesRequest):
            answer, _ = self.server.answer_nodes(sender, message.hashes)
            if self.lie:
                answer = Nodes(tuple(item[:-1] + bytes([item[-1] ^ 1]) for item in answer.items))
            self.nodes_sent += len(answer.items)
        else:
            return
        self.transport.send(sender, bytes([ENVELOPE_STATESYNC]) + answer.encode())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("runner") / "devnet")
    layout, home = devnet_home_with_blocks(root, "statesync-runner", BLOCKS, lambda height: 1 + height % 2, sync=False)
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    yield layout, kv, Chain(kv, layout.genesis, sync=False)
    kv.close()


def test_the_runner_refuses_a_lying_peer_and_syncs_from_the_honest_one(source, tmp_path):
    layout, kv, chain = source
    keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes[:2]]
    liar_key = min(keys, key=lambda k: k.public_key)  # asked first: peers are taken in key order
    peers = [ServingPeer(k, layout.genesis.chain_id, SnapshotServer(TransportLimits(), kv, chain.blocks, chain.schedule, INTERVAL),
                         lie=k is liar_key) for k in keys]
    newcomer_key = SigningKey.generate()
    home = str(tmp_path / "newcomer")
    port = free_base_port(2)

    async def scenario() -> None:
        for peer in peers:
            await peer.transport.start()
        init_home(home, layout.genesis, newcomer_key, {
            ("statesync", "enable"): True, ("statesync", "discovery_timeout_ms"): 500,
            ("statesync", "request_timeout_ms"): 1000, ("node", "observer"): True,
            ("p2p", "listen"): f"127.0.0.1:{port}", ("rpc", "listen"): f"127.0.0.1:{port + 1}",
            ("p2p", "peer_addresses"): [f"0x{p.key.public_key.hex()}@127.0.0.1:{p.transport.listen_port}"
                                        for p in peers]})
        for peer in peers:
            peer.transport.set_peers({newcomer_key.public_key: f"127.0.0.1:{port}"})
        config = load_config(home)
        assert needs_state_sync(config)
        runner = StateSyncRunner(config, newcomer_key, layout.genesis)
        try:
            async with asyncio.timeout(60):
                target = await runner.run()
        finally:
            for peer in peers:
                await peer.transport.stop()
        assert target is not None and target.height == 10
        assert runner.fetcher.excluded.get(liar_key.public_key) == REASON_BAD_NODE
        assert runner.fetcher.stats.refused_answers >= 1
        assert not needs_state_sync(config)

    asyncio.run(scenario())
    liar = next(p for p in peers if p.key is liar_key)
    assert liar.nodes_sent > 0  # it was asked, and none of what it sent was taken
    store = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        synced = Chain(store, layout.genesis, sync=False)
        assert (synced.height, synced.blocks.base) == (10, 10)
        assert synced.state.root == chain.blocks.get_state_root(10)
    finally:
        store.close()
