"""What a running node shows: the RPC wing's NodeView and the node's metric probes.

How it works: ``NodeReads`` implements ``node.rpc.nodeview.NodeView`` over the node's
parts (chain, mempool, consensus replica, the transport's peer list), so RPC handlers
read committed data, pending transactions and status without holding the service
object, and ``attach_metrics`` binds the gauge probes declared in
``node.ops.metric_defs`` to the same parts. Everything here only reads; the one write,
``submit_transaction``, is the service's own (it journals and gossips) and is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from consensus import Replica
from contracts_vm.api import get_contract_info
from ledger.errors import ChainError
from ledger.genesis import ROLES, Genesis
from ledger.types import SignedTx
from node.core.chain import Chain
from node.core.executor import call_view
from node.core.mempool import Mempool
from node.core.simulate import Simulation, check_ahead
from node.ops.metric_defs import NODE_METRICS
from node.ops.metric_defs import register as register_metrics
from node.ops.metrics import Family, build_info_labels
from node.rpc.views import hx, value_to_json
from ledger.validator_set import ValidatorSchedule


class NodeReads:
    """The NodeView of one node; ``connected`` and ``halted`` are read at call time."""

    def __init__(self, genesis: Genesis, node_id: str, chain: Chain, mempool: Mempool, replica: Replica,
                 connected: Callable[[], list[bytes]], halted: Callable[[], str | None],
                 submit: Callable[[bytes], Awaitable[SignedTx]],
                 now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.genesis, self.node_id, self.chain, self.mempool, self.replica = genesis, node_id, chain, mempool, replica
        self.blocks = chain.blocks
        self.me = replica.me
        self._connected, self._halted, self.submit_transaction = connected, halted, submit
        self._now_ms = now_ms  # only the simulated timestamp reads it (the next block's: max(now, head + 1))
        #: The in-node indexer (node.indexer.runner.Indexer) chain_getEvents reads, or None when [indexer] is off.
        self.event_index: Any = None

    @property
    def syncing(self) -> bool:
        return self.replica.known_height > self.chain.height + 1

    def validator_schedule(self) -> ValidatorSchedule:
        return self.chain.schedule()

    def status(self) -> dict:
        head = self.chain.head()
        return {"chain_id": self.genesis.chain_id, "node": self.node_id, "validator": hx(self.me),
                "height": self.chain.height, "latest_block_hash": hx(self.chain.head_hash()),
                "latest_block_time_ms": head.header.timestamp_ms if head else self.genesis.genesis_time_ms,
                "state_root": hx(self.chain.state.root), "genesis_hash": hx(self.genesis.genesis_hash),
                "syncing": self.syncing, "mempool_size": len(self.mempool), "base_height": self.chain.blocks.base}

    def consensus_status(self) -> dict:
        r = self.replica
        return {"view": r.view, "mode": r.mode, "height": r.height, "committed_height": r.committed_height,
                "primary": hx(r.primary), "primary_name": self._names().get(r.primary),
                "is_primary": r.primary == self.me, "validators": len(r.validators), "quorum": r.quorum,
                "voting": r.voting,
                "known_height": r.known_height, "counters": dict(r.counters)}

    def _names(self) -> dict[bytes, str]:
        return {key: info["name"] for key, info in self.chain.validator_directory().items()}

    def peers(self) -> list[dict]:
        """The validators of the next height and every later scheduled one, connected or not."""
        connected, directory = set(self._connected()), self.chain.validator_directory()
        return [{"name": directory.get(key, {}).get("name"), "public_key": hx(key),
                 "address": directory.get(key, {}).get("p2p_address"), "connected": key in connected}
                for key in sorted(self.chain.peer_keys()) if key != self.me]

    def health(self) -> dict:
        connected = len(self._connected())
        needed = self.replica.quorum - 1
        halted = self._halted()
        return {"healthy": halted is None and connected >= needed, "height": self.chain.height, "peers": connected,
                "peers_needed": needed, "syncing": self.syncing, "halted": halted}

    def contract_abi(self, contract: str, height: int) -> dict | None:
        info = get_contract_info(self.chain.state.overlay(verify_reads=True), contract)
        return None if info is None else info["abi"]

    def call_view(self, contract: str, method: str, args: list, height: int) -> Any:
        if height != self.chain.height:
            raise ChainError(f"views run on the latest state (height {self.chain.height}); "
                             f"for older heights use chain_getProof, which reads any retained state root")
        return call_view(self.chain.state, contract, method, args, height, self.genesis.chain_id)

    def simulation(self, raw: bytes, signed: bool = True) -> Simulation:
        """A ready-to-run simulation of ``raw`` in the next block (node.core.simulate).

        The mempool's own admission checks run first on the same bytes (MempoolError says
        what admission would refuse; only the signature is skipped for an unsigned call and
        no refusal is counted), then the sender's pending transactions before its nonce are
        taken to replay. Nothing is added to the pool.
        """
        tx = self.mempool.check(raw, signed=signed, counted=False)
        sender, nonce = tx.body.sender, tx.body.nonce
        next_nonce = self.chain.nonce(sender)
        ahead = check_ahead(nonce, next_nonce, lambda start, stop: self.mempool.pending_before(sender, start, stop))
        chain = self.chain
        return Simulation(chain.state, tx, ahead, chain.height + 1, chain.next_timestamp(self._now_ms()))

    def next_free_nonce(self, key: bytes) -> int:
        """The nonce after ``key``'s run of pending transactions (its account's next one if none is pending)."""
        nonce = self.chain.nonce(key)
        while self.mempool.pending_before(key, nonce, nonce + 1):
            nonce += 1
        return nonce

    def state_proof(self, key: bytes, root: bytes) -> tuple[bytes | None, list]:
        return self.chain.state.get_at(root, key), self.chain.state.prove(key, root)

    def check_state_retained(self, height: int) -> None:
        """PrunedStateError if ``[storage] retain_states`` has pruned the state at ``height``."""
        self.chain.state_pruner.check_retained(height)

    # --- the mailbox (node/mailbox.py): the service attaches it and what to do with new envelopes

    def attach_mailbox(self, mailbox: Any, on_new: Callable[[bytes], None], on_refusal: Callable[[str], None]) -> None:
        self._mailbox, self._on_new_envelope, self._on_mailbox_refusal = mailbox, on_new, on_refusal

    def mailbox_post(self, raw: bytes) -> tuple[Any, bool, int]:
        """Admit a client's envelope; a new one is handed on (gossiped to the other validators)."""
        from node.mailbox import MAILBOX_TTL_MS, MailboxError

        try:
            env, new = self._mailbox.post(raw)
        except MailboxError as exc:
            self._on_mailbox_refusal(exc.reason)
            raise
        if new:
            self._on_new_envelope(raw)
        return env, new, env.created_ms + MAILBOX_TTL_MS

    def mailbox_fetch(self, raw: bytes) -> list:
        return self._mailbox.fetch(raw)

    def signer_account(self, key: bytes) -> bytes | None:
        """The account ``key`` may sign for now, or None."""
        signer = self.chain.signer(key)
        return (signer.account or key) if signer.ok else None

    def enc_key_of(self, account: bytes) -> bytes | None:
        """The registered X25519 key of an active account (None: unknown, inactive or none registered)."""
        result = call_view(self.chain.state, "identity", "get_account", [account], self.chain.height,
                           self.genesis.chain_id)
        entry = result.return_value if result.ok else None
        if not entry or not entry.get("active"):
            return None
        return entry.get("enc_key") or None

    def account_info(self, address: bytes) -> dict:
        """An account by its id or any of its signing keys: nonce, roles and balance are the account's;
        ``registered`` says whether ``address`` itself may sign now."""
        chain, chain_id = self.chain, self.genesis.chain_id
        signer = chain.signer(address)
        account = signer.account or address
        info: dict[str, Any] = {"address": hx(address), "account": hx(account), "nonce": chain.nonce(address),
                                "registered": signer.ok}
        keys = call_view(chain.state, "identity", "account_of", [address], chain.height, chain_id)
        entry = keys.return_value if keys.ok else None
        info["signing_key"] = hx(entry[1]) if entry else None
        info["key_retired_at"] = entry[2] if entry else None
        roles = []
        for role in ROLES:
            result = call_view(chain.state, "identity", "has_role", [account, role], chain.height, chain_id)
            if result.ok and result.return_value is True:
                roles.append(role)
        info["roles"] = roles
        balance = call_view(chain.state, "ledger", "balance_of", [account], chain.height, chain_id)
        info["balance"] = value_to_json(balance.return_value) if balance.ok else None
        info["pending_txs"] = sum(1 for tx in self.mempool.pending_txs() if tx.body.sender == address)
        return info


def _indexed(reads: NodeReads) -> int | None:
    """The in-node indexer's height (None: no indexer, or it has not opened its database yet)."""
    index = reads.event_index
    return None if index is None else index.height


def attach_metrics(registry: CollectorRegistry, reads: NodeReads, transport_stats: Callable[[], dict],
                   transport_counters: Callable[[], dict]) -> dict[str, Family]:
    """Register the node's metric families with their scrape-time probes (the values the
    parts keep themselves: the replica's view changes and the chain's preview hits are
    running counts, so counters) and set the build info; returns the event-driven
    families by name."""
    replica, chain = reads.replica, reads.chain
    probes = {
        "shopchain_height": lambda: chain.height,
        "shopchain_view": lambda: replica.view,
        "shopchain_view_changes_total": lambda: replica.counters.get("view_changes", 0),
        "shopchain_mempool_size": lambda: len(reads.mempool),
        "shopchain_peers": lambda: len(reads._connected()),
        "shopchain_syncing": lambda: 1 if reads.syncing else 0,
        "shopchain_p2p_events_total": transport_counters,
        "shopchain_p2p_unauthenticated_connections": lambda: transport_stats().get("unauthenticated_connections", 0),
        "shopchain_preview_hits_total": lambda: chain.speculation_hits,
        "shopchain_tx_signature_verifications_total": lambda: reads.mempool.verified + chain.block_tx_verifications,
        "shopchain_mailbox_envelopes": lambda: getattr(getattr(reads, "_mailbox", None), "count", 0),
        "shopchain_indexer_height": lambda: _indexed(reads) or 0,
        "shopchain_indexer_lag_blocks": lambda: 0 if _indexed(reads) is None else max(0, chain.height - _indexed(reads)),
    }
    f = register_metrics(registry, NODE_METRICS, probes)
    f["shopchain_build_info"].labels(**build_info_labels(reads.genesis.chain_id)).set(1)  # type: ignore[union-attr]
    return f
