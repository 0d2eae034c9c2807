"""The Python clients against the run's shared devnet: the async client end to end, the sync
client called from inside a running event loop, and idempotent submission (a re-send or a
repeated call never makes a second transaction)."""

from __future__ import annotations

import asyncio

import pytest

from ledger.errors import ValidationError
from node.client import AsyncClient, Client, storage_state_key, verify_receipt, verify_state_proof

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(shared_devnet):
    return shared_devnet


def _validators(net) -> list[bytes]:
    return [v.public_key for v in net.genesis.validators]


def test_the_async_client_transacts_waits_on_the_websocket_and_the_receipt_proves(net):
    buyer, merchant = net.keys["buyer-2"], net.keys["merchant-globex"].public_key

    async def main():
        async with AsyncClient(net.urls[1]) as client:
            before = await client.call("ledger", "balance_of", merchant)
            receipt = await client.transact(buyer, "ledger", "transfer", merchant, 7)
            after = await client.call("ledger", "balance_of", merchant)
            return before, receipt, after, (await client.receipt(receipt["tx_id"]))

    before, receipt, after, proven = asyncio.run(main())
    assert receipt["status"] == "ok" and after == before + 7
    assert verify_receipt(proven, _validators(net), net.genesis.chain_id).tx_id.hex() == receipt["tx_id"][2:]


def test_the_sync_client_works_from_inside_a_running_event_loop(net):
    buyer, merchant = net.keys["buyer-2"], net.keys["merchant-globex"].public_key
    client = Client(net.urls[0])

    async def handler():  # e.g. a web shop's async request handler using the sync client
        return client.transact(buyer, "ledger", "transfer", merchant, 3)

    assert asyncio.run(handler())["status"] == "ok"


def test_resending_signed_bytes_and_repeating_a_call_with_its_key_never_pay_twice(net):
    buyer, merchant = net.keys["buyer-2"], net.keys["merchant-globex"].public_key
    client = Client(net.urls[2])
    before = client.call("ledger", "balance_of", merchant)
    raw = client.build(buyer, "ledger", "transfer", [merchant, 11])
    first = client.send_raw(raw)  # say its answer was lost: the application sends the bytes again
    assert client.resubmit(raw) == first
    client.wait(first)
    assert client.resubmit(raw) == first  # even once committed
    receipt = client.transact(buyer, "ledger", "transfer", merchant, 13, idempotency_key="invoice-7")
    again = client.transact(buyer, "ledger", "transfer", merchant, 13, idempotency_key="invoice-7")
    assert again["tx_id"] == receipt["tx_id"]
    assert client.call("ledger", "balance_of", merchant) == before + 11 + 13
    assert client.transaction(first)["status"] == "committed"


def test_a_storage_entry_is_proven_against_the_certified_root_by_its_abi_key(net):
    client = Client(net.urls[3])
    merchant = net.keys["merchant-globex"].public_key
    proven = client.proven_storage("ledger", "balances", merchant)
    # Nothing in this module moves the balance between the two reads (views run on the latest state).
    assert proven["value"] == client.call("ledger", "balance_of", merchant)
    assert client.proven_storage("ledger", "balances", b"\x09" * 32)["value"] is None  # absence, proven


def test_a_valid_proof_of_another_key_height_or_transaction_is_refused(net):
    """A node answering a different (correctly proven) entry than the one asked for is caught."""
    client = Client(net.urls[0])
    status = client.status()
    validators = _validators(net)
    asked = storage_state_key("ledger", "balances", ["bytes"], net.keys["merchant-globex"].public_key)
    other = storage_state_key("ledger", "balances", ["bytes"], net.keys["buyer-2"].public_key)
    answer = client.request("chain_getProof", "0x" + other.hex(), status["height"])
    assert verify_state_proof(answer, validators, status["chain_id"], key=other, height=status["height"]) is not None
    with pytest.raises(ValidationError, match="not the one asked for"):
        verify_state_proof(answer, validators, status["chain_id"], key=asked)
    with pytest.raises(ValidationError, match="not the one asked for"):
        verify_state_proof(answer, validators, status["chain_id"], key=other, height=status["height"] - 1)

    class Lying(Client):
        def request(self, method, *params):
            if method == "chain_getProof":
                return answer  # always the proof of `other`
            return super().request(method, *params)

    with pytest.raises(ValidationError, match="not the one asked for"):
        Lying(net.urls[0]).proven_value(asked, status["height"], validators)
    receipt = client.transact(net.keys["buyer-2"], "ledger", "transfer", net.keys["merchant-globex"].public_key, 1)
    proof = client.receipt(receipt["tx_id"])
    assert verify_receipt(proof, validators, status["chain_id"], tx_id=receipt["tx_id"])
    with pytest.raises(ValidationError, match="not the one asked for"):
        verify_receipt(proof, validators, status["chain_id"], tx_id="0x" + "00" * 32)
