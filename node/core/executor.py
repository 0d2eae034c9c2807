"""Block execution: transactions in order, on an overlay of the committed state.

How it works: ``execute_block`` opens an overlay on the last committed state and runs
each transaction: its signing key (``body.sender``, whose signature is verified) is
first resolved to the account it signs for (``contracts_vm.system.resolve_signer``:
an account's id is the key it was registered with and survives key rotation); the
key must be the account's current key, the account active, and the nonce the
account's next one (else the transaction is included with a failed receipt naming
why, e.g. ``RotatedKey: key X was rotated out of account Y at height H``, and changes
nothing). Nonces are per account, so the sequence continues across a rotation and a
transaction signed before it cannot be replayed by the new key. The nonce is then
consumed, the fee is charged to the account, and the call runs in the VM with
ctx.sender = ctx.origin = the account id; the VM reverts its own changes when the call
fails. Fees (``node.core.fees``) wrap the call: the most it can cost is debited
before it runs, outside the call's checkpoint, and after it, failed or not, the
unused part is refunded and the fee due is paid to the collector; the receipt records
the fee. A chain without a fee schedule skips all of this and its roots are as
before. An account with a signing policy (identity: k of n+1 signatures) may, with fewer
signatures than k, move at most the policy's spend limit out of its balance
(``node.core.spend`` measures the balance around the call and reverts it past the
limit; ctx.cosigners tells the contracts which co-signer keys signed). Transactions
refused before the nonce is consumed (unregistered or rotated-out key, bad nonce) pay
nothing: the sender may never have signed them for this position (a
replayed copy), and admission keeps them out of honest blocks. The ``system``
pseudo-contract keeps the shapes of ``deploy`` (code) and ``set_fees`` (the fee
schedule), but no transaction sender may use them any more (issue 14): both changes
are proposals of the governance contract, which executes what the members passed
(through the ``install_code`` and ``set_fee_schedule`` host functions). The receipts, the state diff (not yet written) and the roots come back
together; the caller stores them in the block's single atomic batch if the block
commits, and simply drops them if it does not. Only the block's height, timestamp
and transactions feed execution, so every validator computes the same roots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts_vm.api import CallContext, CallResult, execute_call, execute_view
from contracts_vm.deploy import apply_deploy, decode_deploy
from contracts_vm.system import Signer, resolve_signer
from ledger import encoding
from ledger.errors import ChainError, DecodeError
from ledger.state import StateDiff, StateOverlay, StateStore
from ledger.types import STATUS_FAILED, STATUS_OK, Event, Receipt, SignedTx, compute_receipts_root
from node.core import spend
from node.core.fees import FREE, FeeSchedule, credit, debit, read_balance, read_fee_schedule

#: State key prefix of each account's next nonce (outside every contract's namespace).
NONCE_PREFIX = b"sys/nonce/"
#: Transactions to this pseudo-contract are governed code deploys and upgrades.
SYSTEM_CONTRACT = "system"
#: Gas a view called over RPC may use.
VIEW_GAS_LIMIT = 5_000_000
#: Gas charged for a refused fee schedule change (the governance path is named in the error).
SET_FEES_GAS = 5_000
#: Why ``system.set_fees`` is refused for every sender.
FEES_GOVERNED_MESSAGE = ("the fee schedule is governed: propose it to the governance contract "
                         "(governance.propose(\"fees\", [gas_price, byte_price, collector], description)); "
                         "no single key may change fees")
#: The system pseudo-contract's methods and their argument (name, type) lists.
SYSTEM_METHODS: dict[str, tuple[tuple[str, type], ...]] = {
    "deploy": (("payload", bytes),),
    "set_fees": (("gas_price", int), ("byte_price", int), ("collector", bytes)),
}

#: ``resolve(state, key)``: the account a signing key acts for, or why it may not sign.
Resolver = Callable[[object, bytes], Signer]


def nonce_key(account: bytes) -> bytes:
    """Where an account's next nonce lives, by account id (the same across its key rotations)."""
    return NONCE_PREFIX + account


def read_nonce(state: StateStore | StateOverlay, account: bytes) -> int:
    """The account's next nonce in this state (0 for a new account); ``account`` is an account id."""
    raw = state.get(nonce_key(account))
    if raw is None:
        return 0
    try:
        value = encoding.decode(raw)
    except DecodeError:
        return 0
    return value if type(value) is int else 0


@dataclass(frozen=True)
class BlockOutcome:
    receipts: list[Receipt]
    diff: StateDiff
    receipts_root: bytes
    gas_used: int

    @property
    def state_root(self) -> bytes:
        return self.diff.root


def _failed(tx: SignedTx, error: str) -> Receipt:
    return Receipt(tx.tx_id, STATUS_FAILED, 0, None, error, [])


def execute_tx(overlay: StateOverlay, tx: SignedTx, height: int, timestamp_ms: int,
               resolve: Resolver = resolve_signer, fees: FeeSchedule = FREE) -> Receipt:
    """Run one transaction on ``overlay`` and charge its fee; never raises for a bad transaction."""
    body = tx.body
    signer = resolve(overlay, body.sender)
    if signer.refusal is not None:
        return _failed(tx, f"{signer.refusal[0]}: {signer.refusal[1]}")
    account = signer.account
    expected = read_nonce(overlay, account)
    if body.nonce != expected:
        return _failed(tx, f"BadNonce: expected nonce {expected}, found {body.nonce}")
    overlay.put(nonce_key(account), encoding.encode(expected + 1))
    if fees.free:
        return _call(overlay, tx, account, height, timestamp_ms)
    size = len(tx.encode())
    held = fees.max_fee(body.gas_limit, size)
    balance = read_balance(overlay, account)
    if balance < held:
        paid = min(balance, fees.byte_fee(size))
        debit(overlay, account, paid)
        credit(overlay, fees.collector, paid)
        return Receipt(tx.tx_id, STATUS_FAILED, 0, None,
                       f"InsufficientFee: the sender's balance is {balance}, the fee may be up to {held} "
                       f"(gas limit {body.gas_limit}, {size} bytes); charged {paid} for the bytes", [], paid)
    debit(overlay, account, held)
    receipt = _call(overlay, tx, account, height, timestamp_ms)
    fee = fees.fee(receipt.gas_used, size)
    credit(overlay, account, held - fee)
    credit(overlay, fees.collector, fee)
    return Receipt(receipt.tx_id, receipt.status, receipt.gas_used, receipt.return_value, receipt.error,
                   receipt.events, fee)


def _call(overlay: StateOverlay, tx: SignedTx, account: bytes, height: int, timestamp_ms: int) -> Receipt:
    """The call, held to the account's signing policy when it carries fewer signatures than
    the policy's threshold (``node.core.spend``): a call that spends past the limit is
    reverted like a failed one, its gas still used."""
    limit = spend.guard(overlay, account, tx.cosigner_keys)
    if limit is None:
        return _run_call(overlay, tx, account, height, timestamp_ms)
    mark = overlay.checkpoint()
    receipt = _run_call(overlay, tx, account, height, timestamp_ms)
    if receipt.status != STATUS_OK:
        return receipt
    refusal = spend.check(overlay, limit, timestamp_ms)
    if refusal is None:
        return receipt
    overlay.revert(mark)
    return Receipt(tx.tx_id, STATUS_FAILED, receipt.gas_used, None, refusal, [])


def _run_call(overlay: StateOverlay, tx: SignedTx, account: bytes, height: int, timestamp_ms: int) -> Receipt:
    """The call itself, as the account; the VM reverts its own changes when it fails (the fee stays charged)."""
    body = tx.body
    ctx = CallContext(sender=account, height=height, timestamp_ms=timestamp_ms, chain_id=body.chain_id,
                      tx_id=tx.tx_id, origin=account, cosigners=tx.cosigner_keys)
    if body.contract == SYSTEM_CONTRACT:
        result = _system_call(overlay, body.method, body.args, ctx, body.gas_limit)
    else:
        result = execute_call(overlay, body.contract, body.method, body.args, ctx, body.gas_limit)
    if not result.ok:
        return Receipt(tx.tx_id, STATUS_FAILED, result.gas_used, None, f"{result.error}: {result.error_message}", [])
    events = [Event(contract, name, data) for contract, name, data in result.events]
    return Receipt(tx.tx_id, STATUS_OK, result.gas_used, result.return_value, None, events)


def system_call_shape(method: str, args: list) -> tuple[str, str] | None:
    """Why a call of the ``system`` pseudo-contract cannot run (VM error name, message), or None."""
    signature = SYSTEM_METHODS.get(method)
    if signature is None:
        return "UnknownMethod", f"contract 'system' has no public method {method!r}; its methods: {', '.join(SYSTEM_METHODS)}"
    names = [name for name, _ in signature]
    shown = f"({', '.join(f'{n}: {t.__name__}' for n, t in signature)})"
    if len(args) != len(signature):
        return "BadArguments", (f"system.{method} expects {len(signature)} argument{'s' if len(signature) != 1 else ''} "
                                f"{shown}, found {len(args)} arguments")
    for i, ((_, kind), arg) in enumerate(zip(signature, args)):
        if type(arg) is not kind:
            return "BadArguments", f"system.{method} argument {i} ({names[i]}) must be {kind.__name__} {shown}, found {type(arg).__name__}"
    return None


def _system_call(overlay: StateOverlay, method: str, args: list, ctx: CallContext, gas_limit: int) -> CallResult:
    """``system.deploy(payload)`` and ``system.set_fees``: checked for shape, then refused
    for every sender with a message naming the governance proposal to make instead."""
    shape = system_call_shape(method, args)
    if shape is not None:
        return CallResult("failed", 0, error="BadArguments", error_message=shape[1])
    if method == "set_fees":
        return _set_fees(overlay, args, ctx, gas_limit)
    try:
        deploy = decode_deploy(args[0])
    except ChainError as exc:
        return CallResult("failed", 0, error="BadArguments", error_message=str(exc))
    return apply_deploy(overlay, deploy, ctx, gas_limit)


def _set_fees(overlay: StateOverlay, args: list, ctx: CallContext, gas_limit: int) -> CallResult:
    """Refused: fee changes are governance proposals (kind "fees") executed by the contract."""
    if gas_limit < SET_FEES_GAS:
        return CallResult("failed", gas_limit, error="OutOfGas",
                          error_message=f"set_fees needs {SET_FEES_GAS} gas, limit {gas_limit}")
    return CallResult("failed", SET_FEES_GAS, error="PermissionDenied", error_message=FEES_GOVERNED_MESSAGE)


def execute_block(state: StateStore, height: int, timestamp_ms: int, txs: Sequence[SignedTx],
                  resolve: Resolver = resolve_signer) -> BlockOutcome:
    """Run a block's transactions on an overlay of ``state``; nothing is written.

    The fee schedule is read once, from the state the block starts on.
    """
    overlay = state.overlay()
    fees = read_fee_schedule(overlay)
    receipts = [execute_tx(overlay, tx, height, timestamp_ms, resolve, fees) for tx in txs]
    diff = overlay.commit()
    return BlockOutcome(receipts, diff, compute_receipts_root(receipts), sum(r.gas_used for r in receipts))


def call_view(state: StateStore, contract: str, method: str, args: list, height: int, chain_id: str,
              sender: bytes = b"\x00" * 32):
    """A read-only call against the committed state (RPC ``chain_call``).

    Every read is checked against the trie (``verify_reads``): an answer to a client
    must never come from a tampered flat table. Block execution does not need it,
    since a wrong value there changes the state root and the block is refused.
    """
    overlay = state.overlay(verify_reads=True)
    ctx = CallContext(sender=sender, height=height, chain_id=chain_id, origin=sender)
    return execute_view(overlay, contract, method, args, ctx, VIEW_GAS_LIMIT)
