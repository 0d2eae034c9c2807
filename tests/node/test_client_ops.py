"""The clients' I/O-free operations, driven with scripted node answers: retries re-send the same
signed bytes and never sign again, refusals that may mean "already have it" are settled by id,
and the sync and async drivers give the same results."""

from __future__ import annotations

import asyncio

import pytest

from ledger.crypto import SigningKey
from ledger.types import SignedTx
from node import client_ops as ops
from node.client_async import run_blocking
from node.client_ops import RpcFailure, SubmitUncertain

KEY = SigningKey.from_label("client-ops-buyer")
TO = b"\x07" * 32


class FakeNode:
    """Answers each method from a queue of scripted replies (an exception is raised, not returned)."""

    def __init__(self, **script: list) -> None:
        self.script = {method: list(replies) for method, replies in script.items()}
        self.calls: list[tuple[str, tuple]] = []

    def request(self, method: str, params: tuple):
        self.calls.append((method, params))
        reply = self.script[method].pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def arequest(self, method: str, params: tuple):
        await asyncio.sleep(0)
        return self.request(method, params)

    def sent(self) -> list[str]:
        return [params[0] for method, params in self.calls if method == "chain_sendRawTransaction"]


def state() -> ops.ClientState:
    return ops.ClientState("test-chain", nonces={KEY.public_key: 4})


def signed() -> bytes:
    return ops.drive_sync(ops.build(state(), KEY, "ledger", "transfer", [TO, 5]), FakeNode().request)


def unreachable() -> RpcFailure:
    return RpcFailure(ops.UNREACHABLE, "cannot reach http://node: connection reset")


def refused(reason: str) -> RpcFailure:
    return RpcFailure(-32000, f"refused: {reason}", {"reason": reason})


def no_sleep(seconds: float) -> None:
    pass


def test_build_signs_with_the_local_nonce_and_consumes_it():
    s = state()
    raw = ops.drive_sync(ops.build(s, KEY, "ledger", "transfer", [TO, 5]), FakeNode().request)
    tx = SignedTx.decode(raw)
    assert (tx.body.nonce, tx.body.chain_id, tx.verify_signature()) == (4, "test-chain", True)
    assert s.nonces[KEY.public_key] == 5


def test_a_lost_answer_resends_the_same_bytes_and_the_duplicate_is_recognised_by_id():
    raw = signed()
    tx_id = ops.tx_id_of(raw)
    node = FakeNode(chain_sendRawTransaction=[unreachable(), refused("duplicate")],
                    chain_getTransaction=[{"status": "pending"}])
    assert ops.drive_sync(ops.submit(state(), raw), node.request, no_sleep) == tx_id
    assert node.sent() == ["0x" + raw.hex()] * 2  # the same bytes twice; nothing signed again


def test_busy_answers_are_retried_with_back_off_until_admitted():
    raw = signed()
    pauses: list[float] = []
    node = FakeNode(chain_sendRawTransaction=[RpcFailure(503, "HTTP 503: busy"), refused("mempool_full"),
                                              ops.tx_id_of(raw)])
    assert ops.drive_sync(ops.submit(state(), raw), node.request, pauses.append) == ops.tx_id_of(raw)
    assert pauses == [ops.SUBMIT_BACKOFF_S, 2 * ops.SUBMIT_BACKOFF_S]


def test_a_nonce_taken_by_another_transaction_is_a_refusal_and_the_nonce_is_read_again():
    raw = signed()
    s = state()
    node = FakeNode(chain_sendRawTransaction=[refused("nonce_too_low")],
                    chain_getTransaction=[RpcFailure(ops.NOT_FOUND, "transaction not found")])
    with pytest.raises(RpcFailure) as caught:
        ops.drive_sync(ops.submit(s, raw), node.request, no_sleep)
    assert caught.value.reason == "nonce_too_low" and KEY.public_key not in s.nonces


def test_a_definite_refusal_is_not_retried():
    node = FakeNode(chain_sendRawTransaction=[refused("insufficient_fee")])
    with pytest.raises(RpcFailure):
        ops.drive_sync(ops.submit(state(), signed()), node.request, no_sleep)
    assert len(node.sent()) == 1


def test_an_outcome_still_unknown_after_the_last_attempt_carries_the_signed_bytes():
    raw = signed()
    node = FakeNode(chain_sendRawTransaction=[unreachable()] * ops.SUBMIT_ATTEMPTS)
    with pytest.raises(SubmitUncertain) as caught:
        ops.drive_sync(ops.submit(state(), raw), node.request, no_sleep)
    assert (caught.value.raw, caught.value.tx_id) == (raw, ops.tx_id_of(raw))
    assert len(node.sent()) == ops.SUBMIT_ATTEMPTS


def test_the_same_idempotency_key_gives_the_bytes_signed_the_first_time():
    s = state()
    first = ops.drive_sync(ops.signed_for(s, KEY, "ledger", "transfer", [TO, 5], 100_000, "order-77-pay"),
                           FakeNode().request)
    again = ops.drive_sync(ops.signed_for(s, KEY, "ledger", "transfer", [TO, 5], 100_000, "order-77-pay"),
                           FakeNode().request)
    other = ops.drive_sync(ops.signed_for(s, KEY, "ledger", "transfer", [TO, 5], 100_000, None), FakeNode().request)
    assert first == again and SignedTx.decode(other).body.nonce == 5  # one nonce spent by the repeat: none


def test_remembered_submissions_are_bounded():
    s = ops.ClientState("c")
    for i in range(ops.MAX_REMEMBERED_SUBMISSIONS + 5):
        s.remember(f"k{i}", b"x")
    assert len(s.remembered) == ops.MAX_REMEMBERED_SUBMISSIONS and "k0" not in s.remembered


def test_polling_waits_until_the_receipt_and_times_out_with_a_clear_error():
    now = [0.0]

    def clock() -> float:
        return now[0]

    def tick(seconds: float) -> None:
        now[0] += seconds

    missing = RpcFailure(ops.NOT_FOUND, "no receipt yet")
    node = FakeNode(chain_getReceipt=[missing, missing, {"status": "ok", "tx_id": "0x01"}])
    assert ops.drive_sync(ops.wait_poll("0x01", 5.0, clock), node.request, tick)["status"] == "ok"
    node = FakeNode(chain_getReceipt=[missing] * 100)
    with pytest.raises(TimeoutError, match="not committed within 1.0 s"):
        ops.drive_sync(ops.wait_poll("0x01", 1.0, clock), node.request, tick)


def test_the_async_driver_gives_the_same_result_and_lets_other_tasks_run_while_it_pauses():
    raw = signed()

    async def main():
        node = FakeNode(chain_sendRawTransaction=[unreachable(), ops.tx_id_of(raw)])
        ran = []

        async def other():
            ran.append("other")

        task = asyncio.ensure_future(other())
        result = await ops.drive_async(ops.submit(state(), raw), node.arequest)
        await task
        return result, ran

    result, ran = asyncio.run(main())
    assert result == ops.tx_id_of(raw) and ran == ["other"]


def test_run_blocking_works_outside_and_inside_a_running_loop():
    async def answer():
        await asyncio.sleep(0)
        return 42

    assert run_blocking(answer) == 42

    async def inside():
        return run_blocking(answer)  # asyncio.run here would raise "cannot be called from a running event loop"

    assert asyncio.run(inside()) == 42

    async def fails():
        raise TimeoutError("late")

    async def inside_failing():
        return run_blocking(fails)

    with pytest.raises(TimeoutError, match="late"):
        asyncio.run(inside_failing())


def test_storage_state_key_names_the_entry_the_vm_wrote():
    from ledger import encoding
    from ledger.errors import ValidationError
    from node.client import storage_state_key
    from tests.commerce_harness import Chain

    chain = Chain()
    buyer = chain.account("buyer1")
    raw = chain.state.get(storage_state_key("ledger", "balances", ["bytes"], buyer))
    assert raw is not None and encoding.decode(raw) == chain.balance("buyer1")
    assert chain.state.get(storage_state_key("ledger", "supply", [])) is not None
    with pytest.raises(ValidationError, match="takes 1 key part"):
        storage_state_key("ledger", "balances", ["bytes"])
    with pytest.raises(ValidationError, match="must be bytes, found int"):
        storage_state_key("ledger", "balances", ["bytes"], 7)


def test_a_busy_node_is_retried_after_the_wait_it_asks_for_within_the_cap():
    raw = signed()
    pauses: list[float] = []
    busy = [RpcFailure(-32000, "busy", {"reason": "busy", "retry_after_ms": ms}) for ms in (900, 60_000)]
    node = FakeNode(chain_sendRawTransaction=busy + [ops.tx_id_of(raw)])
    assert ops.drive_sync(ops.submit(state(), raw), node.request, pauses.append) == ops.tx_id_of(raw)
    # The node's hint when longer than the back-off, never more than the cap; the same bytes each time.
    assert pauses == [0.9, ops.SUBMIT_BACKOFF_CAP_S]
    assert node.sent() == ["0x" + raw.hex()] * 3
