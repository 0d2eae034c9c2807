"""Fees: failed transactions pay for their gas and bytes, inside the state root.

A test chain (in memory) on the seeded devnet genesis, whose fee schedule is
DEVNET_GAS_PRICE per 1,000 gas and DEVNET_BYTE_PRICE per byte, paid to the treasury.
Balances are read through the ledger contract's own ``balance_of`` view, so the
executor's direct storage writes are checked against the contract's idea of a balance.
"""

from __future__ import annotations

import dataclasses

import pytest

from devnet.genesis import CONTRACT_SETTINGS as DEVNET_SETTINGS
from devnet.genesis import DEVNET_BYTE_PRICE, DEVNET_GAS_PRICE, create_devnet
from ledger.crypto import SigningKey
from ledger.errors import GenesisError
from ledger.genesis import GenesisAccount, parse_genesis
from ledger.storage.kv import MemoryKV
from ledger.types import PHASE_COMMIT, TAG_RECEIPT, TAG_RECEIPT_FEE, CommitCertificate, Receipt, TxBody, Vote
from node.core.chain import Chain
from node.core.executor import call_view
from node.core.fees import FEES_KEY, GAS_PRICE_UNIT, read_fee_schedule
from node.ops.home import read_key_file

GAS = 300_000
#: The opening balance of an account that can pay for a transfer of 400 and its fee, and then not the next fee.
SHORT = 900

#: The devnet genesis timelock of governance proposals, in ms of block time.
TIMELOCK_MS = DEVNET_SETTINGS["governance"]["timelock_s"] * 1000


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    layout = create_devnet(str(tmp_path_factory.mktemp("fees") / "d"), validators=4, seed="fees-test")
    node_keys = [read_key_file(f"{home}/node_key.json") for home in layout.node_homes]
    names = ("buyer-1", "buyer-2", "buyer-3", "merchant-acme", "treasury", "platform-admin", "merchant-globex",
             "carrier")
    keys = {name: read_key_file(f"{layout.keys_dir}/{name}.json") for name in names}
    short = SigningKey.from_label("fees-test/short")
    keys["short"] = short
    genesis = dataclasses.replace(layout.genesis, accounts=layout.genesis.accounts + (
        GenesisAccount(short.public_key, "platform", ("BUYER",), SHORT, None),))
    return genesis, node_keys, keys


def commit(chain: Chain, node_keys: list[SigningKey], txs: list, now_ms: int | None = None) -> list[Receipt]:
    now_ms = 10_000 + chain.height if now_ms is None else now_ms
    block = chain.build_block(0, chain.height + 1, chain.head_hash(), chain.head_certificate(),
                              node_keys[0].public_key, txs, now_ms=now_ms)
    votes = [Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, block.height, block.block_hash) for k in node_keys[:3]]
    return chain.commit(block, CommitCertificate.from_votes(votes)).receipts


def balance(chain: Chain, who: bytes) -> int:
    result = call_view(chain.state, "ledger", "balance_of", [who], chain.height, chain.chain_id)
    assert result.ok, result.error_message
    assert chain.balance(who) == result.return_value  # the executor's direct read agrees with the contract
    return result.return_value


def signed(chain: Chain, key: SigningKey, method: str, args: list, nonce: int, contract: str = "ledger"):
    return TxBody(chain.chain_id, key.public_key, nonce, contract, method, args, GAS).sign(key)


def expected_fee(gas_used: int, tx) -> int:
    return -(-gas_used * DEVNET_GAS_PRICE // GAS_PRICE_UNIT) + len(tx.encode()) * DEVNET_BYTE_PRICE


def test_a_failing_transaction_pays_exactly_its_fee_to_the_collector(devnet):
    genesis, node_keys, keys = devnet
    chain = Chain(MemoryKV(), genesis)
    buyer, merchant, treasury = keys["buyer-1"], keys["merchant-acme"].public_key, keys["treasury"].public_key
    before = {who: balance(chain, who) for who in (buyer.public_key, merchant, treasury)}
    supply = call_view(chain.state, "ledger", "total_supply", [], 0, chain.chain_id).return_value
    too_much = signed(chain, buyer, "transfer", [merchant, before[buyer.public_key] + 1], 0)
    receipt, = commit(chain, node_keys, [too_much])
    assert receipt.status == 1 and "insufficient balance" in receipt.error
    assert receipt.gas_used > 0 and receipt.fee == expected_fee(receipt.gas_used, too_much)
    assert balance(chain, buyer.public_key) == before[buyer.public_key] - receipt.fee
    assert balance(chain, treasury) == before[treasury] + receipt.fee
    assert balance(chain, merchant) == before[merchant]
    assert chain.nonce(buyer.public_key) == 1  # consumed: the same bytes cannot be charged twice
    # A call whose shape no longer fits (as after an upgrade between admission and
    # execution) fails deterministically in execution and pays as well.
    stale = signed(chain, buyer, "transfer", [merchant], 1)
    ok = signed(chain, buyer, "transfer", [merchant, 100], 2)
    failed, done = commit(chain, node_keys, [stale, ok])
    assert failed.status == 1 and failed.error.startswith("BadArguments: ledger.transfer takes 2 arguments")
    assert failed.fee == expected_fee(failed.gas_used, stale) and done.status == 0
    assert done.fee == expected_fee(done.gas_used, ok)
    paid = receipt.fee + failed.fee + done.fee
    assert balance(chain, buyer.public_key) == before[buyer.public_key] - paid - 100
    assert balance(chain, treasury) == before[treasury] + paid
    assert balance(chain, merchant) == before[merchant] + 100
    assert call_view(chain.state, "ledger", "total_supply", [], 0, chain.chain_id).return_value == supply


def test_a_sender_short_of_the_fee_at_execution_pays_only_what_it_has_for_the_bytes(devnet):
    genesis, node_keys, keys = devnet
    chain = Chain(MemoryKV(), genesis)
    short, merchant, treasury = keys["short"], keys["merchant-acme"].public_key, keys["treasury"].public_key
    start = balance(chain, treasury)
    first = signed(chain, short, "transfer", [merchant, 400], 0)  # leaves too little to cover the next one's gas limit
    second = signed(chain, short, "transfer", [merchant, 1], 1)
    r1, r2 = commit(chain, node_keys, [first, second])
    assert r1.status == 0
    left = SHORT - 400 - r1.fee
    assert r2.status == 1 and r2.error.startswith(f"InsufficientFee: the sender's balance is {left}, the fee may be up to")
    assert r2.gas_used == 0 and r2.fee == min(left, len(second.encode()) * DEVNET_BYTE_PRICE)
    assert balance(chain, short.public_key) == left - r2.fee
    assert balance(chain, treasury) == start + r1.fee + r2.fee
    assert chain.nonce(short.public_key) == 2


def test_receipts_show_the_fee_and_a_chain_without_fees_keeps_its_old_encoding(devnet):
    genesis, node_keys, keys = devnet
    charged = Receipt(b"\x01" * 32, 1, 500, None, "RequireFailed: no", [], 321)
    assert charged.to_list()[0] == TAG_RECEIPT_FEE and Receipt.decode(charged.encode()) == charged
    free_genesis = dataclasses.replace(genesis, fees=None)
    assert len(free_genesis.to_canonical()) == 7 and free_genesis.genesis_hash != genesis.genesis_hash
    chain = Chain(MemoryKV(), free_genesis)
    assert chain.state.get(FEES_KEY) is None and read_fee_schedule(chain.state).free
    buyer, merchant = keys["buyer-2"], keys["merchant-acme"].public_key
    start = balance(chain, buyer.public_key)
    receipt, = commit(chain, node_keys, [signed(chain, buyer, "transfer", [merchant, 7], 0)])
    assert receipt.fee == 0 and receipt.to_list()[0] == TAG_RECEIPT and len(receipt.to_list()) == 7
    assert balance(chain, buyer.public_key) == start - 7


def test_the_genesis_fee_section_is_checked_and_defaults_to_the_treasury(devnet):
    genesis, _, keys = devnet
    doc = genesis.to_json()
    assert doc["fees"] == {"gas_price": DEVNET_GAS_PRICE, "byte_price": DEVNET_BYTE_PRICE,
                           "collector": "0x" + keys["treasury"].public_key.hex()}
    assert parse_genesis(doc) == genesis
    del doc["fees"]["collector"]
    assert parse_genesis(doc).fees.collector == keys["treasury"].public_key
    with pytest.raises(GenesisError, match=r"fees.gas_price: expected an integer price in minor units, 0..1000000000"):
        parse_genesis({**doc, "fees": {"gas_price": -1, "byte_price": 0}})
    with pytest.raises(GenesisError, match="fees.collector: .* is not one of the genesis accounts"):
        parse_genesis({**doc, "fees": {"gas_price": 1, "byte_price": 0, "collector": "0x" + "ab" * 32}})


def test_fees_change_only_by_governance_from_the_next_block(devnet):
    """Issue 14: no key (the former platform admin included) sets fees; a passed proposal does."""
    genesis, node_keys, keys = devnet
    chain = Chain(MemoryKV(), genesis)
    admin, buyer, merchant = keys["platform-admin"], keys["buyer-3"], keys["merchant-acme"].public_key
    treasury = keys["treasury"].public_key
    for who in (buyer, admin):
        refused, = commit(chain, node_keys, [signed(chain, who, "set_fees", [0, 0, treasury], 0, "system")])
        assert refused.status == 1 and "the fee schedule is governed" in refused.error
        assert refused.fee == expected_fee(refused.gas_used, signed(chain, who, "set_fees", [0, 0, treasury], 0, "system"))
    members = [admin, keys["merchant-acme"], keys["merchant-globex"], keys["carrier"]]   # 4 of the 6 organisations
    nonce = {m.public_key: 1 if m is admin else 0 for m in members}

    def gov(who, method, args):
        tx = signed(chain, who, method, args, nonce[who.public_key], "governance")
        nonce[who.public_key] += 1
        return tx

    t = 20_000
    voted = commit(chain, node_keys, [gov(admin, "propose", ["fees", [0, 0, treasury], "fees off"])]
                   + [gov(m, "vote", [0, True]) for m in members], now_ms=t)
    assert [r.status for r in voted] == [0] * 5, [r.error for r in voted]
    early, = commit(chain, node_keys, [gov(admin, "execute", [0, b""])], now_ms=t + 1_000)
    assert early.status == 1 and "timelocked" in early.error          # the devnet's timelock of block time first
    change = gov(admin, "execute", [0, b""])
    same_block = signed(chain, buyer, "transfer", [merchant, 1], 1)
    changed, still_charged = commit(chain, node_keys, [change, same_block], now_ms=t + TIMELOCK_MS)
    assert changed.status == 0 and "FeesChanged" in [e.name for e in changed.events]
    assert still_charged.fee == expected_fee(still_charged.gas_used, same_block)  # this block keeps the old schedule
    assert chain.fee_schedule().free and chain.state.get(FEES_KEY) is None
    start = balance(chain, buyer.public_key)
    free, = commit(chain, node_keys, [signed(chain, buyer, "transfer", [merchant, 1], 2)], now_ms=t + TIMELOCK_MS + 1_000)
    assert free.fee == 0 and balance(chain, buyer.public_key) == start - 1


#: How an unanticipated fault may be worded: CPython 3.11's text, another version's, or
#: another exception class altogether.
FAULT_WORDINGS = [
    (TypeError, "unsupported operand type(s) for +: 'int' and 'NoneType'"),
    (TypeError, "unsupported operand type(s) for +: 'int' and 'None'"),
    (KeyError, "b'\\x00'"),
]


def test_a_vm_fault_receipt_does_not_depend_on_the_python_exception_text(devnet, monkeypatch):
    """Receipt bytes are consensus: validators on different Python versions must agree on a
    fault the VM did not anticipate, so the receipt names it in words we wrote."""
    from contracts_vm.api import VM_FAULT_MESSAGE
    from contracts_vm.machine import Machine
    genesis, node_keys, keys = devnet
    buyer, merchant = keys["buyer-1"], keys["merchant-acme"].public_key
    outcomes = set()
    for exc_class, text in FAULT_WORDINGS:
        def faulty_enter(self, *args, exc_class=exc_class, text=text, **kwargs):
            raise exc_class(text)
        monkeypatch.undo()  # genesis runs the real VM
        chain = Chain(MemoryKV(), genesis)
        tx = signed(chain, buyer, "transfer", [merchant, 5], 0)
        monkeypatch.setattr(Machine, "enter", faulty_enter)
        receipt, = commit(chain, node_keys, [tx])
        assert receipt.status == 1 and receipt.error == f"VMFault: {VM_FAULT_MESSAGE}"
        assert text not in receipt.error and exc_class.__name__ not in receipt.error
        assert receipt.fee == expected_fee(receipt.gas_used, tx)  # a fault still pays
        outcomes.add((receipt.encode(), chain.state.root))
    assert len(outcomes) == 1, "receipt bytes or state root differ with the exception's wording"
