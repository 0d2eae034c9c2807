"""Mempool admission cost per transaction, as a node's mempool is wired.

Run: ``python -m bench.admission``. A chain is opened in memory on a seeded devnet
genesis and a mempool wired to it as ``node.service`` does (with the ABI check, the
fee schedule and balances where this version of the code has them). It times
``Mempool.check`` (every admission check, nothing added) on a signed ledger transfer
and an order placement: once with the real signature check, and once with the
signature check replaced, so the cost of everything else (where the ABI and fee
checks live) shows on its own. Baseline: the signature verification alone. Then, in
the same process and interleaved (the machine may be shared, so figures are the
fastest of several rounds), the signature-free check with and without the ABI and
fee hooks: the difference is what they cost per transaction.

Last, the price of asking first (issue 15): ``chain_simulate`` of the same signed
transactions through the JSON-RPC dispatcher as a node serves it (admission checks,
then the executor on a throwaway overlay, then the JSON answer), against a
``chain_call`` of ``ledger.balance_of`` through the same dispatcher as the baseline.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import tempfile
import timeit
from types import SimpleNamespace

from bench.common import emit, per_second, progress, result
from devnet.genesis import create_devnet
from ledger.crypto import sha256
from ledger.hexfmt import to_hex
from ledger.storage.kv import MemoryKV
from ledger.types import SignedTx, TxBody
from node.core.chain import Chain
from node.ops.home import read_key_file
from node.core.mempool import Mempool
from node.reads import NodeReads
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcServer

#: Gas limit of the benchmarked transactions (what a client typically asks for).
BENCH_GAS = 500_000
#: Interleaved rounds of the hooks-on / hooks-off comparison, and checks per round.
ROUNDS = 7
CHECKS_PER_ROUND = 5_000


def wired_pool(chain: Chain, verify) -> Mempool:
    """A mempool on ``chain`` with whatever admission hooks this version of Mempool takes."""
    kwargs = {}
    params = inspect.signature(Mempool).parameters
    if "call_shape" in params:
        kwargs = {"call_shape": chain.call_shape, "fees": chain.fee_schedule, "balance_of": chain.account_balance}
    return Mempool(chain.chain_id, chain.account_nonce, chain.signer, verify=verify, **kwargs)


def bare_pool(chain: Chain) -> Mempool:
    """A mempool with only the checks that need no contract state (no ABI, no fees)."""
    return Mempool(chain.chain_id, chain.account_nonce, chain.signer, verify=lambda tx: True)


def hook_cost_us(chain: Chain, raw: bytes) -> tuple[float, float]:
    """(us per signature-free check without hooks, with hooks): fastest of ROUNDS interleaved rounds."""
    bare, hooked = bare_pool(chain), wired_pool(chain, lambda tx: True)
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS):
        for i, pool in enumerate((bare, hooked)):
            best[i] = min(best[i], timeit.timeit(lambda: pool.check(raw), number=CHECKS_PER_ROUND))
    return best[0] * 1e6 / CHECKS_PER_ROUND, best[1] * 1e6 / CHECKS_PER_ROUND


def rpc_us(server: RpcServer, method: str, params: list, rounds: int = ROUNDS, calls: int = 200) -> float:
    """Microseconds per call of ``method`` through the dispatcher: fastest of ``rounds`` rounds."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    if "error" in reply:
        raise SystemExit(f"{method} failed, the figures would measure an error: {reply['error']}")

    async def batch() -> None:
        for _ in range(calls):
            await server.dispatcher.handle(body, CallContext("http"))

    return min(timeit.timeit(lambda: asyncio.run(batch()), number=1) for _ in range(rounds)) * 1e6 / calls


def simulate_lines(chain: Chain, raws: dict[str, bytes], reader: bytes) -> None:
    """chain_simulate of each transaction vs chain_call of a balance, as a node serves both."""
    pool = wired_pool(chain, SignedTx.verify_signature)

    async def refuse(raw: bytes) -> SignedTx:
        raise RuntimeError("the bench submits nothing")

    replica = SimpleNamespace(me=b"\x00" * 32)   # NodeReads reads only the key of a replica here
    reads = NodeReads(chain.genesis, "bench", chain, pool, replica, lambda: [], lambda: None, refuse)  # type: ignore[arg-type]
    server = RpcServer(make_routes(reads))
    call_us = rpc_us(server, "chain_call", ["ledger", "balance_of", [to_hex(reader)], "latest"])
    for kind, raw in raws.items():
        simulate_us = rpc_us(server, "chain_simulate", [to_hex(raw)])
        status = reads.simulation(raw).run().receipt.error or "ok"
        progress(f"{kind}: chain_simulate {simulate_us:.0f} us (would be: {status:.60}), "
                 f"chain_call of a balance {call_us:.0f} us")
        emit(result("admission", f"{kind}_simulate_us", simulate_us, "us/call", call_us))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layout = create_devnet(tmp + "/d", validators=4, seed="bench-admission")
        buyer = read_key_file(f"{layout.keys_dir}/buyer-1.json")
        merchant = read_key_file(f"{layout.keys_dir}/merchant-acme.json")
    chain = Chain(MemoryKV(), layout.genesis, sync=False)
    calls = {
        "transfer": ("ledger", "transfer", [merchant.public_key, 1]),
        "order": ("orders", "place", [merchant.public_key, [[sha256(b"sku"), 1, 25_000, sha256(b"terms")]],
                                      sha256(b"pii"), sha256(b"payload"), sha256(b"review"), b"", b"", b""]),
    }
    raws: dict[str, bytes] = {}
    for kind, (contract, method, args) in calls.items():
        raw = raws[kind] = TxBody(chain.chain_id, buyer.public_key, 0, contract, method, args,
                                  BENCH_GAS).sign(buyer).encode()
        full = wired_pool(chain, SignedTx.verify_signature)
        no_sig = wired_pool(chain, lambda tx: True)
        full.check(raw)  # the shape must be admissible, else the figures measure a refusal
        with_sig = per_second(lambda: full.check(raw))
        without_sig = per_second(lambda: no_sig.check(raw))
        tx = SignedTx.decode(raw)
        sig_only = per_second(lambda: tx.verify_signature())
        progress(f"{kind}: {1e6 / with_sig:.1f} us per admission, {1e6 / without_sig:.1f} us without the signature")
        emit(result("admission", f"{kind}_check_us", 1e6 / with_sig, "us/tx", 1e6 / sig_only))
        emit(result("admission", f"{kind}_check_without_signature_us", 1e6 / without_sig, "us/tx", None))
        bare_us, hooked_us = hook_cost_us(chain, raw)
        progress(f"{kind}: {bare_us:.2f} us without the ABI and fee hooks, {hooked_us:.2f} us with them")
        emit(result("admission", f"{kind}_check_with_hooks_us", hooked_us, "us/tx", bare_us))
    simulate_lines(chain, raws, buyer.public_key)


if __name__ == "__main__":
    main()
