"""What the Python clients do, written once and free of I/O (the sync and async clients drive it).

How it works: every client operation that needs more than one request, a retry or a
pause is a generator. It yields ``Call(method, params)`` when it needs a JSON-RPC
answer and ``Sleep(seconds)`` when it must pause, and receives the answer (or has the
``RpcFailure`` thrown into it) at the ``yield``; its return value is the result.
``drive_sync`` runs one with a blocking ``request`` function and ``time.sleep``;
``drive_async`` with a coroutine ``request`` and ``asyncio.sleep``, so the async client
never blocks its event loop and both clients behave identically (one copy of the
logic, tested once without a network by feeding answers).

Submitting is idempotent by transaction id. A transaction is signed once; the same
bytes are re-sent when the node could not be reached or was busy (a lost answer, a 503,
a full mempool), and a refusal that could mean "you sent this already" (``duplicate``,
``nonce_too_low``) is settled by asking the chain for the id: pending or committed means
it is ours and the submission succeeded. So a retry never signs a second transaction,
and never spends a second nonce. When the outcome stays unknown after the last attempt,
``SubmitUncertain`` carries the id and the signed bytes: resend those bytes
(``resubmit``) or wait for the id, never sign the call again. ``transact`` with an
``idempotency_key`` goes one step further: a repeat of the call with the same key, even
after the first raised, resubmits and waits for the transaction signed the first time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ledger.crypto import SigningKey
from ledger.errors import ChainError
from ledger.hexfmt import to_hex
from ledger.types import SignedTx, TxBody

#: Default gas limit of a transaction sent by the client.
DEFAULT_GAS = 2_000_000
#: Default time to wait for a receipt.
DEFAULT_WAIT_S = 30.0
#: Polling interval when no websocket is available.
POLL_INTERVAL_S = 0.2
#: Sends of one signed transaction before its outcome is reported unknown.
SUBMIT_ATTEMPTS = 5
#: Pause before the first re-send; doubles each time up to SUBMIT_BACKOFF_CAP_S.
SUBMIT_BACKOFF_S = 0.25
SUBMIT_BACKOFF_CAP_S = 2.0
#: Signed transactions remembered by idempotency key (oldest forgotten first).
MAX_REMEMBERED_SUBMISSIONS = 1024
#: JSON-RPC code of "no such transaction/receipt" (node.rpc.methods.NOT_FOUND).
NOT_FOUND = -32004
#: Code the clients give a request that never got an answer (refused connection, reset, timeout).
UNREACHABLE = -1
#: HTTP statuses that mean "busy or cut off, the request may not have been handled".
RETRY_HTTP_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Admission refusals that say nothing about the transaction itself: try the same bytes again.
RETRY_REASONS = frozenset({"mempool_full", "sender_full", "busy"})
#: Refusals that may mean the node already has these very bytes (or committed them).
MAYBE_OURS_REASONS = frozenset({"duplicate", "nonce_too_low"})

T = TypeVar("T")


class RpcFailure(ChainError):
    """The node answered with a JSON-RPC error (or, code -1 / an HTTP status, did not answer)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.rpc_message = message
        self.data = data

    @property
    def reason(self) -> str | None:
        return self.data.get("reason") if isinstance(self.data, dict) else None

    @property
    def retryable(self) -> bool:
        """True when the same request may simply be sent again (nothing was decided)."""
        return self.code == UNREACHABLE or self.code in RETRY_HTTP_STATUSES or self.reason in RETRY_REASONS


class TxFailed(ChainError):
    """A transaction was committed with a failed receipt."""

    def __init__(self, receipt: dict) -> None:
        super().__init__(f"transaction {receipt['tx_id']} failed: {receipt['error']}")
        self.receipt = receipt


class SubmitUncertain(ChainError):
    """A signed transaction's submission has no known outcome: it may or may not be admitted.

    Resend ``raw`` (``client.resubmit(raw)``) or wait for ``tx_id``; signing the call
    again would make a second transaction, which could pay twice.
    """

    def __init__(self, tx_id: str, raw: bytes, last: RpcFailure) -> None:
        super().__init__(f"transaction {tx_id} may or may not have been admitted after {SUBMIT_ATTEMPTS} "
                         f"attempts (last: {last}); resend the same bytes or wait for its id, do not sign it again")
        self.tx_id = tx_id
        self.raw = raw
        self.last = last


@dataclass(frozen=True)
class Call:
    """One JSON-RPC request an operation needs answered."""

    method: str
    params: tuple = ()


@dataclass(frozen=True)
class Sleep:
    """A pause an operation needs (polling, back-off)."""

    seconds: float


Op = Generator["Call | Sleep", Any, T]


@dataclass(frozen=True)
class _Done:
    value: Any


def _resume(op: Op, answer: Any = None, failure: RpcFailure | None = None) -> "Call | Sleep | _Done":
    """The operation's next step after an answer (or a failure thrown in), or _Done with its result."""
    try:
        return op.throw(failure) if failure is not None else op.send(answer)
    except StopIteration as done:
        return _Done(done.value)


def drive_sync(op: Op, request: Callable[[str, tuple], Any], sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run ``op`` to its result with a blocking transport."""
    step = _resume(op)
    while not isinstance(step, _Done):
        if isinstance(step, Sleep):
            sleep(step.seconds)
            step = _resume(op)
            continue
        try:
            answer = request(step.method, step.params)
        except RpcFailure as exc:
            step = _resume(op, failure=exc)
        else:
            step = _resume(op, answer)
    return step.value


async def drive_async(op: Op, request: Callable[[str, tuple], Awaitable[Any]]) -> Any:
    """Run ``op`` to its result with a coroutine transport; pauses never block the loop."""
    step = _resume(op)
    while not isinstance(step, _Done):
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            step = _resume(op)
            continue
        try:
            answer = await request(step.method, step.params)
        except RpcFailure as exc:
            step = _resume(op, failure=exc)
        else:
            step = _resume(op, answer)
    return step.value


@dataclass
class ClientState:
    """What a client remembers between calls: the chain id, local nonces and idempotent submissions."""

    chain_id: str | None = None
    nonces: dict[bytes, int] = field(default_factory=dict)
    remembered: "OrderedDict[str, bytes]" = field(default_factory=OrderedDict)

    def remember(self, key: str, raw: bytes) -> None:
        self.remembered[key] = raw
        self.remembered.move_to_end(key)
        while len(self.remembered) > MAX_REMEMBERED_SUBMISSIONS:
            self.remembered.popitem(last=False)


def status(state: ClientState) -> Op[dict]:
    answer = yield Call("chain_status")
    state.chain_id = state.chain_id or answer["chain_id"]
    return answer


def chain_id(state: ClientState) -> Op[str]:
    if state.chain_id is None:
        yield from status(state)
    return state.chain_id  # type: ignore[return-value]


def next_nonce(state: ClientState, sender: bytes) -> Op[int]:
    if sender not in state.nonces:
        state.nonces[sender] = (yield Call("account_get", (to_hex(sender),)))["nonce"]
    return state.nonces[sender]


def build(state: ClientState, key: SigningKey, contract: str, method: str, args: list, gas: int = DEFAULT_GAS,
          nonce: int | None = None) -> Op[bytes]:
    """The signed raw transaction (canonical bytes), consuming a local nonce when none is given."""
    cid = yield from chain_id(state)
    n = (yield from next_nonce(state, key.public_key)) if nonce is None else nonce
    raw = TxBody(cid, key.public_key, n, contract, method, list(args), gas).sign(key).encode()
    if nonce is None:
        state.nonces[key.public_key] = n + 1
    return raw


def tx_id_of(raw: bytes) -> str:
    return to_hex(SignedTx.decode(raw).tx_id)


def _or_none(method: str, tx_id: str) -> Op[dict | None]:
    """``method(tx_id)``'s answer, None when the node answers NotFound."""
    try:
        return (yield Call(method, (tx_id,)))
    except RpcFailure as exc:
        if exc.code == NOT_FOUND:
            return None
        raise


def find_tx(tx_id: str) -> Op[dict | None]:
    """``chain_getTransaction`` (pending or committed), None when the node knows no such id."""
    return (yield from _or_none("chain_getTransaction", tx_id))


def submit(state: ClientState, raw: bytes) -> Op[str]:
    """Send signed bytes until the node has them; returns the id. Never signs anything.

    A refusal that the node would also give for a second copy of these bytes is
    checked against the chain (see the module docstring); a definite refusal of a
    transaction the client signed with a local nonce makes the next call re-read it.
    """
    tx = SignedTx.decode(raw)
    tx_id = to_hex(tx.tx_id)
    delay = SUBMIT_BACKOFF_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return (yield Call("chain_sendRawTransaction", (to_hex(raw),)))
        except RpcFailure as exc:
            last = exc
        if last.reason in MAYBE_OURS_REASONS:
            try:
                found = yield from find_tx(tx_id)
            except RpcFailure as lookup:
                if not lookup.retryable:
                    raise
                last = lookup  # could not tell whose it is: send again
            else:
                if found is not None:
                    return tx_id
                state.nonces.pop(tx.body.sender, None)
                raise last  # the refusal was about another transaction with this nonce
        elif not last.retryable:
            state.nonces.pop(tx.body.sender, None)
            raise last
        if attempt == SUBMIT_ATTEMPTS:
            raise SubmitUncertain(tx_id, raw, last)
        yield Sleep(max(delay, retry_after_s(last)))
        delay = min(delay * 2, SUBMIT_BACKOFF_CAP_S)


def retry_after_s(failure: RpcFailure) -> float:
    """The wait a busy node asked for (data.retry_after_ms), within the client's back-off cap; 0 if none."""
    hint = failure.data.get("retry_after_ms") if isinstance(failure.data, dict) else None
    if not isinstance(hint, (int, float)) or isinstance(hint, bool) or hint <= 0:
        return 0.0
    return min(hint / 1000.0, SUBMIT_BACKOFF_CAP_S)


def try_receipt(tx_id: str) -> Op[dict | None]:
    """``chain_getReceipt``, None while the transaction is not committed."""
    return (yield from _or_none("chain_getReceipt", tx_id))


def wait_poll(tx_id: str, timeout: float, clock: Callable[[], float] = time.monotonic) -> Op[dict]:
    deadline = clock() + timeout
    while True:
        receipt = yield from try_receipt(tx_id)
        if receipt is not None:
            return receipt
        if clock() >= deadline:
            raise TimeoutError(f"transaction {tx_id} was not committed within {timeout:.1f} s")
        yield Sleep(POLL_INTERVAL_S)


def wait_for_height(state: ClientState, height: int, timeout: float,
                    clock: Callable[[], float] = time.monotonic) -> Op[dict]:
    deadline = clock() + timeout
    while True:
        answer = yield from status(state)
        if answer["height"] >= height:
            return answer
        if clock() >= deadline:
            raise TimeoutError(f"the chain did not reach height {height} within {timeout:.1f} s "
                               f"(it is at {answer['height']})")
        yield Sleep(POLL_INTERVAL_S)


def signed_for(state: ClientState, key: SigningKey, contract: str, method: str, args: list, gas: int,
               idempotency_key: str | None) -> Op[bytes]:
    """The bytes ``transact`` submits: those signed by an earlier call with the same key, else new ones."""
    if idempotency_key is not None and idempotency_key in state.remembered:
        return state.remembered[idempotency_key]
    raw = yield from build(state, key, contract, method, args, gas)
    if idempotency_key is not None:
        state.remember(idempotency_key, raw)
    return raw


def check_receipt(receipt: dict) -> dict:
    if receipt["status"] != "ok":
        raise TxFailed(receipt)
    return receipt


def json_arg(value: Any) -> Any:
    """A call argument as JSON-RPC carries it: bytes as 0x-hex, containers converted inside."""
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, list):
        return [json_arg(v) for v in value]
    if isinstance(value, dict):
        return {k: json_arg(v) for k, v in value.items()}
    return value
