"""Admission against the installed ABI, the argument and gas bounds and the fee, over JSON-RPC.

A real node (one validator, not started: no sockets) is built from a devnet home, and
raw transactions go through its JSON-RPC dispatcher exactly as a client's
``chain_sendRawTransaction`` does. Each bad shape must come back at once as a
MempoolError whose reason is its own and whose message names what was expected and
what was found, and each refusal must be counted in
shopchain_mempool_refusals_total{reason}.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from devnet.genesis import CONTRACT_SETTINGS as DEVNET_SETTINGS
from contracts_vm.compiler import compile_source
from contracts_vm.deploy import encode_deploy, make_deploy
from devnet.genesis import DEMO_ACCOUNTS, DEVNET_CHAIN_ID, Endpoint, write_consortium
from ledger.crypto import SigningKey, sha256
from ledger.storage.kv import MemoryKV
from ledger.types import PHASE_COMMIT, CommitCertificate, TxBody, Vote
from node.core.chain import Chain
from node.core.fees import GAS_PRICE_UNIT
from node.ops.home import read_key_file
from node.rpc.jsonrpc import CallContext
from node.core.mempool import MAX_TX_ARGS_BYTES, MIN_TX_GAS, Mempool, MempoolError
from node.service import Node

#: An account the genesis registers with no money at all.
PAUPER = "pauper"
#: An account that can afford one transaction at GAS but not two.
ONE_TX = "one-tx"
GAS = 200_000
#: A contract whose ``bump`` takes one argument in v1 and two in v2.
COUNTER_V1 = """
count: int

@public
def bump(by: int) -> int:
    self.count += by
    return self.count
"""
COUNTER_V2 = COUNTER_V1.replace("def bump(by: int)", "def bump(by: int, note: str)")

#: The devnet genesis timelock of governance proposals, in ms of block time.
TIMELOCK_MS = DEVNET_SETTINGS["governance"]["timelock_s"] * 1000


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("admission") / "net")
    # Enough for one transaction of GAS gas (fee <= GAS/1000 + ~300 bytes) but not two.
    accounts = DEMO_ACCOUNTS + [(PAUPER, "platform", ["BUYER"], 0), (ONE_TX, "platform", ["BUYER"], 700)]
    layout = write_consortium(root, DEVNET_CHAIN_ID, [Endpoint("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:2")],
                              "admission-abi", accounts, "test keys")
    node = Node(layout.node_homes[0])
    node.test_keys = {name: read_key_file(f"{layout.keys_dir}/{name}.json")
                      for name in ("buyer-1", "merchant-acme", "platform-admin", "merchant-globex", "carrier", PAUPER,
                                   ONE_TX)}
    yield node
    node.kv.close()


def send(node: Node, key: SigningKey, contract: str, method: str, args: list, gas: int = GAS,
         nonce: int = 0) -> tuple[str | None, dict | None]:
    raw = TxBody(DEVNET_CHAIN_ID, key.public_key, nonce, contract, method, args, gas).sign(key).encode()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_sendRawTransaction", "params": ["0x" + raw.hex()]})
    reply = json.loads(asyncio.run(node.rpc.dispatcher.handle(body, CallContext("http"))))
    return reply.get("result"), reply.get("error")


def refusal(node: Node, key: SigningKey, contract: str, method: str, args: list, **kw) -> tuple[str, str]:
    result, error = send(node, key, contract, method, args, **kw)
    assert result is None and error is not None, f"{contract}.{method} was admitted"
    assert error["code"] == -32000 and error["data"]["type"] == "MempoolError"
    return error["data"]["reason"], error["message"]


def refusals_metric(node: Node, reason: str) -> int:
    value = node.metrics.get_sample_value("shopchain_mempool_refusals_total", {"reason": reason})
    return 0 if value is None else int(value)


def test_unknown_contract_and_method_are_refused_naming_what_exists(node):
    buyer = node.test_keys["buyer-1"]
    reason, message = refusal(node, buyer, "nosuch", "transfer", [])
    assert reason == "unknown_contract" and "no contract named 'nosuch' is installed" in message
    reason, message = refusal(node, buyer, "ledger", "steal", [b"x"])
    assert reason == "unknown_method"
    assert "contract 'ledger' has no public method 'steal'" in message and "transfer" in message
    reason, message = refusal(node, buyer, "ledger", "lock", ["k", buyer.public_key, 1])
    assert reason == "method_not_callable" and "capability 'escrow'" in message
    reason, message = refusal(node, buyer, "system", "upgrade", [b""])
    assert reason == "unknown_method" and "its methods: deploy" in message
    assert refusals_metric(node, "unknown_contract") == 1 and refusals_metric(node, "unknown_method") == 2


def test_wrong_arity_and_types_show_the_expected_and_found_shape(node):
    buyer, merchant = node.test_keys["buyer-1"], node.test_keys["merchant-acme"]
    reason, message = refusal(node, buyer, "orders", "place", [merchant.public_key, sha256(b"sku"), 1])
    assert reason == "bad_arguments"
    assert message.startswith("orders.place expects 8 arguments (merchant: bytes, lines: list[list[any]], pii_root: bytes, ")
    assert message.endswith("found 3")
    reason, message = refusal(node, buyer, "ledger", "transfer", [merchant.public_key, "ten"])
    assert reason == "bad_arguments"
    assert message == "ledger.transfer argument 1 must be int (to: bytes, amount: int), found str"
    reason, message = refusal(node, buyer, "system", "deploy", [b"code", b"extra"])
    assert reason == "bad_arguments" and "system.deploy expects 1 argument (payload: bytes), found 2 arguments" in message
    assert refusals_metric(node, "bad_arguments") == 3


def test_oversized_arguments_and_gas_out_of_bounds_are_refused(node):
    buyer, merchant = node.test_keys["buyer-1"], node.test_keys["merchant-acme"]
    reason, message = refusal(node, buyer, "ledger", "transfer", [b"\x01" * 60_000, 1])
    assert reason == "args_too_large"
    assert f"the arguments encode to 60005 bytes, the limit is {MAX_TX_ARGS_BYTES}" in message
    reason, message = refusal(node, buyer, "ledger", "transfer", [merchant.public_key, 1], gas=MIN_TX_GAS - 1)
    assert reason == "gas_too_low" and f"below the minimum {MIN_TX_GAS}" in message
    assert refusals_metric(node, "args_too_large") == 1 and refusals_metric(node, "gas_too_low") == 1


def test_a_sender_who_cannot_pay_the_fee_is_refused_with_balance_and_fee(node):
    pauper, one, merchant = node.test_keys[PAUPER], node.test_keys[ONE_TX], node.test_keys["merchant-acme"]
    reason, message = refusal(node, pauper, "ledger", "transfer", [merchant.public_key, 1])
    assert reason == "insufficient_fee"
    assert message.startswith("the sender's balance is 0, the fee may be up to ")
    fee = int(message.split("may be up to ")[1].split()[0])
    assert fee > GAS // GAS_PRICE_UNIT  # the gas part plus the bytes
    # One transaction fits the balance; the second would need it twice.
    result, error = send(node, one, "ledger", "transfer", [merchant.public_key, 1])
    assert error is None and result.startswith("0x")
    reason, message = refusal(node, one, "ledger", "transfer", [merchant.public_key, 1], nonce=1)
    assert reason == "insufficient_fee" and "the sender's balance is 700" in message
    assert "for its pending transactions" in message
    assert refusals_metric(node, "insufficient_fee") == 2
    # Well-formed calls from a sender who can pay are still admitted.
    buyer = node.test_keys["buyer-1"]
    result, error = send(node, buyer, "ledger", "transfer", [merchant.public_key, 5])
    assert error is None and result.startswith("0x")
    admin = node.test_keys["platform-admin"]
    result, error = send(node, admin, "system", "deploy", [b"not a payload, but the shape is right"], gas=1_000_000)
    assert error is None  # admitted by shape; execution refuses every sender (code changes are governance proposals)



def test_a_call_admitted_before_an_upgrade_changed_its_abi_fails_in_execution_the_same_everywhere(node):
    """Admission answers on the committed ABI; execution re-checks on the ABI of its moment."""
    genesis = node.genesis
    keys = node.test_keys
    admin, buyer = keys["platform-admin"], keys["buyer-1"]
    node_key = node.key
    primary, backup = Chain(MemoryKV(), genesis), Chain(MemoryKV(), genesis)
    pool = Mempool(genesis.chain_id, primary.account_nonce, primary.signer, call_shape=primary.call_shape,
                   fees=primary.fee_schedule, balance_of=primary.account_balance)

    members = [keys[n] for n in ("platform-admin", "merchant-acme", "merchant-globex", "carrier")]  # 4 of 6 orgs
    nonces = {k.public_key: 0 for k in members}
    clock = [1_000]
    proposals = [0]

    def tx(signer, contract: str, method: str, args: list):
        nonce = nonces[signer.public_key]
        nonces[signer.public_key] += 1
        return TxBody(genesis.chain_id, signer.public_key, nonce, contract, method, args, 5_000_000).sign(signer)

    def commit_on_both(txs: list):
        clock[0] += 1_000
        block = primary.build_block(0, primary.height + 1, primary.head_hash(), primary.head_certificate(),
                                    node_key.public_key, txs, now_ms=clock[0])
        assert backup.check_block(block, now_ms=clock[0]) is None  # same roots on the backup
        cert = CommitCertificate.from_votes([Vote.create(node_key, genesis.chain_id, PHASE_COMMIT, 0, block.height,
                                                         block.block_hash)])
        receipts = primary.commit(block, cert).receipts
        backup.commit(block, cert)
        return receipts

    def deploy(action: str, source: str) -> list:
        """Code changes are governance proposals: propose, 4 of 6 organisations vote, the timelock passes."""
        payload = encode_deploy(make_deploy(action, "counter", compile_source(source).code))
        pid = proposals[0]
        proposals[0] += 1
        voted = commit_on_both([tx(members[0], "governance", "propose", ["code", [payload], action])]
                               + [tx(m, "governance", "vote", [pid, True]) for m in members])
        assert [r.status for r in voted] == [0] * 5, [r.error for r in voted]
        clock[0] += TIMELOCK_MS
        return [tx(admin, "governance", "execute", [pid, payload])]

    assert [r.status for r in commit_on_both(deploy("deploy", COUNTER_V1))] == [0]
    call = TxBody(genesis.chain_id, buyer.public_key, 0, "counter", "bump", [5], GAS).sign(buyer)
    pool.admit(call.encode())  # fits v1
    upgrade, stale = commit_on_both(deploy("upgrade", COUNTER_V2) + [call])
    assert upgrade.status == 0
    assert stale.status == 1 and stale.error == "BadArguments: counter.bump takes 2 arguments, found 1"
    assert stale.fee > 0  # the failure is not free
    with pytest.raises(MempoolError) as exc:  # and the pool now answers on v2
        pool.admit(TxBody(genesis.chain_id, buyer.public_key, 1, "counter", "bump", [5], GAS).sign(buyer).encode())
    assert exc.value.reason == "bad_arguments"
    assert str(exc.value) == "counter.bump expects 2 arguments (by: int, note: str), found 1"
