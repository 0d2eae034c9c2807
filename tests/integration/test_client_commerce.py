"""The typed commerce helpers against the run's shared devnet, as an application uses them: the
sync facade takes an order from placement to completion, then a return is refunded and a
warranty claim fulfilled; the async facade does the same lifecycle with a partial refund.

Accounts: merchant-globex sells (under a named terms set of this module's own, so the
default terms other modules publish and read stay theirs), buyer-3 (sync) and buyer-2
(async) buy; every balance is read when the test starts and compared with itself."""

from __future__ import annotations

import asyncio
import time

import pytest

from ledger.crypto import sha256
from node.client import AsyncClient, AsyncCommerce, Client, Commerce
from node.client_commerce import (CaseState, ClaimState, OrderItem, OrderState, Terms, accept_order, activate_warranty,
                                  balance_of, bond_of, confirm_order, decide_claim, deliver_order, deposit_bond, fulfil_claim,
                                  get_case, get_claim, get_order, get_passport, named_terms_hash, open_claim,
                                  order_count, place_order, refund_return, register_unit, reply_case, request_refund,
                                  request_return, return_received, return_shipped, set_named_terms, ship_order,
                                  under_warranty, unit_id, withdraw_bond)

pytestmark = pytest.mark.integration

DAY = 86_400


def h(text: str) -> bytes:
    return sha256(text.encode("utf-8"))


@pytest.fixture(scope="module")
def net(shared_devnet):
    return shared_devnet


def _terms(net, return_days: int) -> Terms:
    # Distinct return windows give each test its own terms hash (a set is offered under one name only).
    return Terms(2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, return_days * DAY, 1000, 365 * DAY, net.keys["arbiter"].public_key)


def test_an_order_its_return_and_a_warranty_claim_through_the_sync_helpers(net):
    merchant, buyer, carrier = net.keys["merchant-globex"], net.keys["buyer-3"], net.keys["carrier"]
    shop = Commerce(Client(net.urls[2]))
    quoted = _terms(net, 20)
    assert shop.send(merchant, set_named_terms("pyclient-sync", quoted)).value == quoted.terms_hash()
    assert shop.read(named_terms_hash(merchant.public_key, "pyclient-sync")) == quoted.terms_hash()

    paid_before = shop.read(balance_of(buyer.public_key))
    call = place_order(merchant.public_key, [OrderItem(h("globex:headphones"), 2, 4_000, quoted.terms_hash())],
                       h("pii"), h("payload"), h("review-key"))
    placed = shop.send(buyer, call, idempotency_key="pyclient-sync-order")
    count = shop.read(order_count())
    again = shop.send(buyer, call, idempotency_key="pyclient-sync-order")  # a retry: the same transaction, no 2nd order
    assert (again.tx_id, again.value) == (placed.tx_id, placed.value) and shop.read(order_count()) == count
    oid = placed.value
    order = shop.read(get_order(oid))
    assert order.state is OrderState.PLACED and order.amount == 8_000 and order.buyer == buyer.public_key
    assert shop.read(balance_of(buyer.public_key)) == paid_before - 8_000 - placed.receipt["fee"]

    shop.send(merchant, accept_order(oid, carrier.public_key, h("label")))
    shop.send(carrier, ship_order(oid, h("tracking")))
    assert shop.read(get_order(oid)).state is OrderState.SHIPPED
    shop.send(carrier, deliver_order(oid, h("pod")))
    assert shop.read(get_order(oid)).state is OrderState.DELIVERED
    shop.send(buyer, confirm_order(oid))
    assert shop.read(get_order(oid)).state is OrderState.COMPLETED

    # One of the two goes back: the refund past the holdback draws on a bond deposited for it.
    bond_before = shop.read(bond_of(merchant.public_key))
    shop.send(merchant, deposit_bond(5_000))
    case_id = shop.send(buyer, request_return(oid, 0, 1, 4_000, h("one is enough"))).value
    assert shop.read(get_case(case_id)).state is CaseState.REQUESTED
    shop.send(merchant, reply_case(case_id, True))
    shop.send(buyer, return_shipped(case_id, h("return-tracking")))
    shop.send(merchant, return_received(case_id))
    before = shop.read(balance_of(buyer.public_key))
    shop.send(merchant, refund_return(case_id, 200))
    assert shop.read(get_case(case_id)).state is CaseState.REFUNDED
    assert shop.read(balance_of(buyer.public_key)) == before + 3_800
    assert shop.read(get_order(oid)).refunded == 3_800
    left = shop.read(bond_of(merchant.public_key)) - bond_before
    assert left == 5_000 - (3_800 - 800)  # the escrow's holdback (10% of 8,000) paid 800 of the refund
    shop.send(merchant, withdraw_bond(left))

    # The pair kept carries the line's warranty.
    unit = unit_id(f"globex:PYCLIENT-{time.time_ns()}")
    shop.send(merchant, register_unit(unit, h("globex:headphones")))
    shop.send(buyer, activate_warranty(unit, oid, 0))
    assert shop.read(get_passport(unit)).owner == buyer.public_key and shop.read(under_warranty(unit)) is True
    claim = shop.send(buyer, open_claim(unit, h("left side is silent"))).value
    shop.send(merchant, decide_claim(claim, True))
    shop.send(merchant, fulfil_claim(claim, "REPLACE", h("new pair sent")))
    decided = shop.read(get_claim(claim))
    assert decided.state is ClaimState.FULFILLED and decided.remedy == "REPLACE"


def test_an_order_and_a_partial_refund_through_the_async_helpers(net):
    merchant, buyer, carrier = net.keys["merchant-globex"], net.keys["buyer-2"], net.keys["carrier"]

    async def main():
        async with AsyncClient(net.urls[1]) as client:
            shop = AsyncCommerce(client)
            quoted = _terms(net, 21)
            terms_hash = (await shop.send(merchant, set_named_terms("pyclient-async", quoted))).value
            oid = (await shop.send(buyer, place_order(merchant.public_key,
                                                      [OrderItem(h("globex:cable"), 1, 25_000, terms_hash)],
                                                      h("pii"), h("payload"), h("review-key")))).value
            states = [(await shop.read(get_order(oid))).state]
            await shop.send(merchant, accept_order(oid, carrier.public_key, h("label")))
            await shop.send(carrier, ship_order(oid, h("tracking")))
            await shop.send(carrier, deliver_order(oid, h("pod")))
            await shop.send(buyer, confirm_order(oid))
            states.append((await shop.read(get_order(oid))).state)
            before = await shop.read(balance_of(buyer.public_key))
            opened = await shop.send(buyer, request_refund(oid, 0, 1_000, h("scuffed")))
            await shop.send(merchant, reply_case(opened.value, True))  # within the holdback: no bond needed
            after = await shop.read(balance_of(buyer.public_key))
            return states, after - before + opened.receipt["fee"], await shop.read(get_case(opened.value)), \
                await shop.read(get_order(oid))

    states, refunded, case, order = asyncio.run(main())
    assert states == [OrderState.PLACED, OrderState.COMPLETED]
    assert case.state is CaseState.REFUNDED and refunded == 1_000 and order.refunded == 1_000
