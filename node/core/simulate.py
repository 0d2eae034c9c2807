"""Simulation: the receipt a transaction would get in the next block, with nothing kept.

Why: a mistake used to cost a nonce and a fee (``order confirm`` on a completed order
was committed as a failed transaction). Simulating first answers the same receipt the
block would give, so a wallet or the CLI can refuse to send what would fail.

How it works: a simulation runs exactly the code a block runs, on a throwaway overlay.
``Simulation`` opens an overlay of the committed state (reads checked against the trie,
since the answer goes to a client), reads the fee schedule from it as ``execute_block``
does, and calls the executor's own ``execute_tx`` (signer resolution, nonce, fee debit
and refund, the VM call) at the next block's height and timestamp; the overlay is never
committed, so the store, the state root and the mempool are untouched. A transaction
whose nonce is ahead of the account's next one first replays the sender's own pending
transactions in front of it (``ahead``, in nonce order, as the primary would reap them),
so a script of ``--no-wait`` commands simulates each step on the state the earlier steps
leave. The caller drives the work one transaction at a time (``steps``) so an RPC handler
can yield to the event loop and charge its work budget between them; ``stale`` says the
committed state moved meanwhile (a block committed), and the caller starts again.

Admission is not repeated here: the caller first runs the mempool's own checks on the
same bytes (``Mempool.check``), so a simulation can only answer what the node would
actually admit, and the signature is the only check an unsigned call skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from contracts_vm.system import resolve_signer
from ledger.errors import ChainError, InvariantError
from ledger.state import StateStore
from ledger.types import Receipt, SignedTx, TxBody
from node.core.executor import Resolver, execute_tx
from node.core.fees import read_fee_schedule

#: Most of the sender's pending transactions replayed in front of a simulated one: a
#: nonce further ahead is refused, naming the limit (each replay is a whole execution).
MAX_SIMULATED_AHEAD = 64
#: Signature bytes an unsigned call is encoded with: the same length as a real ed25519
#: signature, so size and fee are those of the signed transaction.
UNSIGNED_SIGNATURE = b"\x00" * 64


class SimulationError(ChainError):
    """A transaction the node would admit but cannot simulate as asked; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: SimulationError reasons.
NONCE_TOO_FAR = "nonce_too_far"
NONCE_GAP = "nonce_gap"


def check_ahead(nonce: int, next_nonce: int,
                pending_run: Callable[[int, int], Sequence[SignedTx] | None]) -> list[SignedTx]:
    """The pending transactions to replay before a transaction with ``nonce``, or why it cannot run.

    ``pending_run(start, stop)`` is the sender's pending run of nonces ``start..stop-1``, None
    when one of them is missing (``Mempool.pending_before``); it is asked only within the limit.
    """
    gap = nonce - next_nonce
    if gap > MAX_SIMULATED_AHEAD:
        raise SimulationError(NONCE_TOO_FAR, (
            f"nonce {nonce} is {gap} past the account's next nonce {next_nonce}; a simulation replays at most "
            f"{MAX_SIMULATED_AHEAD} pending transactions before it (MAX_SIMULATED_AHEAD)"))
    ahead = pending_run(next_nonce, nonce) if gap > 0 else []
    if ahead is None:
        raise SimulationError(NONCE_GAP, (
            f"nonce {nonce} is ahead of the account's next nonce {next_nonce} and the sender has no pending "
            f"transaction for every nonce in between: a block would not include it yet; "
            f"simulate with nonce {next_nonce} (or omit it)"))
    return list(ahead)


@dataclass(frozen=True)
class SimulatedReceipt:
    """What ``Simulation`` answers: the receipt and where it was computed."""

    receipt: Receipt
    height: int          # the next block's height
    timestamp_ms: int    # the next block's timestamp (max(now, head + 1))
    base_root: bytes     # the committed state root it ran on
    ahead: int           # pending transactions of the sender replayed before it


def unsigned(body: TxBody) -> SignedTx:
    """A call a wallet has not signed yet, shaped like the signed transaction (same id and size)."""
    return SignedTx(body, UNSIGNED_SIGNATURE)


class Simulation:
    """One transaction (after ``ahead``) on a throwaway overlay of ``state``; see the module docstring."""

    def __init__(self, state: StateStore, tx: SignedTx, ahead: Sequence[SignedTx], height: int, timestamp_ms: int,
                 resolve: Resolver = resolve_signer) -> None:
        if len(ahead) > MAX_SIMULATED_AHEAD:
            raise ValueError(f"at most {MAX_SIMULATED_AHEAD} pending transactions are replayed, found {len(ahead)}")
        self.state, self.tx, self.ahead = state, tx, list(ahead)
        self.height, self.timestamp_ms, self.resolve = height, timestamp_ms, resolve
        self.result: SimulatedReceipt | None = None
        self._base_root = state.root

    @property
    def stale(self) -> bool:
        """True once the committed state moved since the simulation started (its reads mix two states)."""
        return self.state.root != self._base_root

    def steps(self) -> Iterator[int]:
        """Run the replayed transactions, then the simulated one; yields after each (its index).

        ``result`` is set when the iterator ends. Nothing is written: the overlay is dropped.
        """
        self._base_root = self.state.root
        overlay = self.state.overlay(verify_reads=True)
        fees = read_fee_schedule(overlay)   # as execute_block: the schedule of the state the block starts on
        for index, pending in enumerate(self.ahead):
            execute_tx(overlay, pending, self.height, self.timestamp_ms, self.resolve, fees)
            yield index
        receipt = execute_tx(overlay, self.tx, self.height, self.timestamp_ms, self.resolve, fees)
        self.result = SimulatedReceipt(receipt, self.height, self.timestamp_ms, self._base_root, len(self.ahead))
        yield len(self.ahead)

    def run(self) -> SimulatedReceipt:
        """All steps at once (tests, benches, callers with no event loop to share)."""
        for _ in self.steps():
            pass
        if self.result is None:  # steps() sets it on its last step, always
            raise InvariantError("a simulation ended without a receipt")
        return self.result
