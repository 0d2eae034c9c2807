"""Each validator verifies each transaction's signatures once (issue 19: verifications per
committed transaction per node <= 1.05).

A fault-free simulation on the production node core (tests/sim/corenode.py): the
workload's transfers are gossiped to every validator, admitted (and verified) there,
and later arrive again inside proposed blocks. Validating a block must not verify a
transaction its mempool already verified, so per node the signatures checked by
admission plus those checked by block validation stay within 5% of the transactions
committed; a node that had not seen a transaction (none here) would verify it in the
block instead, once.
"""

from __future__ import annotations

from tests.sim.cluster import HEALED, Simulation
from tests.sim.scenarios import Scenario

#: Ticks of simulated time (50 ms each) the workload runs for.
TICKS = 600


def test_each_node_verifies_each_committed_transaction_once():
    sim = Simulation(3, 4, real_core=True, scenario=Scenario(HEALED, [], heal_tick=1))
    for _ in range(TICKS):
        sim.tick_once()
    assert not sim.violations
    for node in sim.nodes:
        chain = node.core.chain
        txs = sum(len(chain.blocks.get_block(h).txs) for h in range(1, chain.height + 1))
        verifications = node.core.mempool.verified + chain.block_tx_verifications
        assert txs > 100, f"node {node.index} committed only {txs} transactions"
        assert txs <= verifications <= 1.05 * txs, (node.index, verifications, txs)
