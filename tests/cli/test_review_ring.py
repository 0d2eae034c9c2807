"""How `review post` picks its ring (cli/review_cmds.py choose_ring), against a fake node."""

from __future__ import annotations

import random

import pytest

from cli.output import CliError
from cli.review_cmds import choose_ring, parse_scores
from ledger.crypto import SigningKey

MERCHANT = "0x" + "aa" * 32
OTHER_SHOP = "0x" + "bb" * 32
TENT, STOVE = "0x" + "01" * 32, "0x" + "02" * 32


def buyer(n: int) -> str:
    return "0x" + f"{n:02x}" * 32


class FakeNode:
    """The views choose_ring reads: orders (id -> record), announced keys, what is reviewable."""

    def __init__(self, orders: dict[int, dict], announced: set[int]) -> None:
        self.orders = orders
        self.keys = {oid: SigningKey.from_label(f"ring-choice-{oid}").public_key for oid in orders}
        self.announced = announced
        self.calls: list[tuple] = []

    def view(self, contract: str, method: str, *args):
        self.calls.append((contract, method) + args)
        if method == "order_count":
            return max(self.orders)
        if method == "get_order":
            return self.orders.get(args[0])
        if method == "review_key_of":
            return "0x" + self.keys[args[0]].hex() if args[0] in self.announced else "0x"
        if method == "reviewable_orders":
            merchant, below, scan = args
            return [i for i in range(below - 1, max(0, below - 1 - scan), -1)
                    if i in self.orders and self.orders[i]["merchant"] == merchant and i in self.announced]
        raise AssertionError(method)


def order(b: int, product: str = TENT, merchant: str = MERCHANT, disputed: bool = False, lines: int = 1) -> dict:
    return {"buyer": buyer(b), "merchant": merchant, "lines": [{"product": product}] * lines,
            "prev_state": "ACCEPTED" if disputed else ""}


def pick(node: FakeNode, mine: int, size: int, excluded: set[str] = frozenset(), seed: int = 1, line: int = 0):
    o = node.orders[mine]
    return choose_ring(node, mine, o, line, node.keys[mine], {o["buyer"], *excluded}, size, random.Random(seed))


def test_ring_holds_the_order_other_buyers_and_the_same_product_when_enough():
    orders = {1: order(1), 2: order(2), 3: order(3), 4: order(4, STOVE), 5: order(5), 6: order(6, merchant=OTHER_SHOP)}
    node = FakeNode(orders, set(orders))
    choice = pick(node, 1, 4)
    assert choice.ids[0] == 1 and choice.ids == sorted(choice.ids) and len(choice.ids) == 4
    assert choice.same_product and 4 not in choice.ids and 6 not in choice.ids and choice.notes == []
    assert choice.keys == [node.keys[i] for i in choice.ids]


def test_decoys_exclude_own_orders_the_relayer_disputed_ones_and_repeat_buyers():
    orders = {1: order(1), 2: order(1), 3: order(9), 4: order(4, disputed=True), 5: order(5), 6: order(5),
              7: order(7, merchant=OTHER_SHOP), 8: order(8)}
    node = FakeNode(orders, set(orders) - {8})
    for seed in range(20):
        choice = pick(node, 1, 8, excluded={buyer(9)}, seed=seed)
        assert choice.ids in ([1, 5], [1, 6])            # buyer 5 once; 2 is the buyer's, 3 the relayer's
        assert "only 2 orders can form the ring (asked for 8)" in choice.notes[-1]


def test_too_few_of_the_product_mixes_and_says_the_product_rating_is_skipped():
    orders = {1: order(1), 2: order(2, STOVE), 3: order(3, STOVE)}
    choice = pick(FakeNode(orders, set(orders)), 1, 3)
    assert choice.ids == [1, 2, 3] and not choice.same_product
    assert "counts for the merchant's rating, not the product's" in choice.notes[0]


def test_a_later_line_takes_decoys_that_have_that_line():
    orders = {1: order(1, lines=3), 2: order(2, lines=1), 3: order(3, lines=3), 4: order(4, lines=2)}
    choice = pick(FakeNode(orders, set(orders)), 1, 8, line=2)
    assert choice.ids == [1, 3]
    with pytest.raises(CliError, match="order 2 has no line 1"):
        pick(FakeNode(orders, set(orders)), 2, 8, line=1)


def test_no_candidate_is_an_anonymity_error_not_a_ring_of_one():
    orders = {1: order(1), 2: order(1), 3: order(3)}
    with pytest.raises(CliError, match="anonymity set too small"):
        pick(FakeNode(orders, {1, 2}), 1, 8)


def test_the_draw_is_random_among_candidates():
    orders = {i: order(i) for i in range(1, 12)}
    node = FakeNode(orders, set(orders))
    seen = {tuple(pick(node, 1, 3, seed=s).ids) for s in range(30)}
    assert len(seen) > 5 and all(ids[0] == 1 for ids in seen)


def test_scores_parse_strictly():
    assert parse_scores("5,4,5,5,4") == [5, 4, 5, 5, 4]
    for bad in ("5,4,5,5", "6,4,5,5,4", "a,b,c,d,e"):
        with pytest.raises(CliError, match="expected 5 comma-separated scores"):
            parse_scores(bad)
