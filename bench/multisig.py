"""Benchmarks of signing policies: `python -m bench.multisig` (also run by `python -m bench.contracts`).

Prints one JSON object per line ({bench, metric, value, unit, baseline, ratio}), every
baseline measured in the same run on the same chain:
- gas and wall time of ``identity.set_signing_policy`` (two co-signers, each proof
  checked on chain), through the executor;
- a ledger transfer by an account with a policy, signed by its key alone below the
  limit (the executor's spend check) and co-signed to the threshold, each against the
  same transfer by an account without a policy (baseline);
- the signature check of admission and block validation for a transaction with one
  and with two co-signatures, against the plain stx/1 check (baseline).
Every transaction runs on an overlay of one genesis state through ``execute_tx`` (the
path a block takes, fees off), so the figures are the executor's, not the network's.
"""

from __future__ import annotations

import statistics
import time

from bench.contracts import _line
from contracts_vm.system import cosigner_proof_message
from ledger.crypto import SigningKey
from ledger.storage.kv import MemoryKV
from ledger.types import SignedTx, TxBody
from node.core.chain import Chain
from node.core.executor import execute_tx, read_nonce
from tests.sim.corenode import account_key, sim_genesis

#: Transfers timed per variant (interleaved, so drift hits every variant alike).
TRANSFERS = 300
#: Signature checks timed per variant.
VERIFIES = 2_000
#: Policy settings timed (each on a fresh account of the devnet consortium).
POLICY_SETS = 3
GAS = 2_000_000
LIMIT = 1_000_000


class Bench:
    """One overlay of the devnet genesis; signs and executes as its accounts."""

    def __init__(self) -> None:
        genesis = sim_genesis("bench-multisig", ("bench-multisig-validator",))
        self.chain_id = genesis.chain_id
        self.state = Chain(MemoryKV(), genesis).state.overlay()
        self.height, self.now = 1, genesis.genesis_time_ms

    def tx(self, key: SigningKey, contract: str, method: str, args: list, cosign: tuple = ()) -> SignedTx:
        tx = TxBody(self.chain_id, key.public_key, read_nonce(self.state, key.public_key), contract, method, args,
                    GAS).sign(key)
        for co in cosign:
            tx = tx.cosigned_by(co)
        return tx

    def run(self, tx: SignedTx) -> tuple[int, float]:
        self.height += 1
        self.now += 1000
        t0 = time.perf_counter()
        receipt = execute_tx(self.state, tx, self.height, self.now)
        dt = time.perf_counter() - t0
        assert receipt.status == 0, receipt.error
        return receipt.gas_used, dt * 1e6


def main() -> None:
    b = Bench()
    cosigners = [SigningKey.from_label(f"bench-cosigner-{i}") for i in range(2)]
    policy_gas, policy_us = [], []
    for name in ("merchant-acme", "buyer-2", "buyer-3")[:POLICY_SETS]:
        key = account_key(name)
        proofs = [c.sign_raw(cosigner_proof_message(b.chain_id, key.public_key, c.public_key)) for c in cosigners]
        gas, us = b.run(b.tx(key, "identity", "set_signing_policy",
                             [[c.public_key for c in cosigners], proofs, 2, LIMIT, 0]))
        policy_gas.append(gas)
        policy_us.append(us)
    _line("multisig", "policy_set_gas", statistics.median(policy_gas), "gas")
    _line("multisig", "policy_set", statistics.median(policy_us), "us/call")

    plain, policed = account_key("buyer-1"), account_key("merchant-acme")
    to = account_key("merchant-globex").public_key
    variants = {"baseline": (plain, ()), "under_limit_one_key": (policed, ()), "cosigned": (policed, (cosigners[0],))}
    samples: dict[str, list[tuple[int, float]]] = {v: [] for v in variants}
    for _ in range(TRANSFERS):
        for name, (key, cosign) in variants.items():
            samples[name].append(b.run(b.tx(key, "ledger", "transfer", [to, 10], cosign)))
    base_gas = statistics.median(g for g, _ in samples["baseline"])
    base_us = statistics.median(u for _, u in samples["baseline"])
    for name in ("under_limit_one_key", "cosigned"):
        gas = statistics.median(g for g, _ in samples[name])
        us = statistics.median(u for _, u in samples[name])
        _line("multisig", f"transfer_{name}_gas", gas, "gas", base_gas, gas / base_gas)
        _line("multisig", f"transfer_{name}", us, "us/tx", base_us, us / base_us)

    sender = account_key("buyer-1")
    single = b.tx(sender, "ledger", "transfer", [to, 10])
    checks = {"stx": single, "cstx_1": single.cosigned_by(cosigners[0]),
              "cstx_2": single.cosigned_by(cosigners[0]).cosigned_by(cosigners[1])}
    timings: dict[str, list[float]] = {k: [] for k in checks}
    for _ in range(VERIFIES):
        for name, tx in checks.items():
            t0 = time.perf_counter()
            assert tx.verify_signature()
            timings[name].append((time.perf_counter() - t0) * 1e6)
    base = statistics.median(timings["stx"])
    for name in ("cstx_1", "cstx_2"):
        us = statistics.median(timings[name])
        _line("multisig", f"verify_{name}", us, "us/tx", base, us / base)


if __name__ == "__main__":
    main()
