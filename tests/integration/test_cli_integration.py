"""The `shopchain` command against a real 4-validator devnet, verb by verb, like a user.

One network serves the whole module (starting processes is the expensive part). The
tests run in file order: the order story leaves a completed order that the warranty,
review, ticket and provenance stories use; the snapshot test comes last because it
stops and restarts one validator.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from cli.main import main
from cli.output import EXIT_NODE, EXIT_TX_FAILED, EXIT_USAGE, EXIT_USER
from devnet import launcher
from ledger.crypto import SigningKey, sha256
from ledger.mailbox import make_envelope
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV
from node.client import RpcFailure
from tests.consortium import Cli

pytestmark = pytest.mark.integration

PRODUCT = "acme:tent-2p"
UNIT = "acme:SN-0001"
#: The buyer's personal data in the order story: none of it, nor its plain hash, may reach the chain.
SHIP_TO = {"name": "Jane Q. Doe", "street": "221B Baker Street", "postcode": "NW1 6XE", "city": "London",
           "phone": "+44 20 7946 0991", "email": "jane.doe@example.org"}
SHIP_TO_ARGS = [arg for field, value in SHIP_TO.items() for arg in ("--ship-to", f"{field}={value}")]
TRACKING = "SWX-7Q4K-2X9Z"
#: Free texts of the story that name the buyer: committed salted, so no guessable hash of them on chain either.
PROOF_OF_DELIVERY = f"signed by {SHIP_TO['name']}"
TICKET_MESSAGE = f"please call me on {SHIP_TO['phone']}"


def read_details(cli, order_id: int, key: str, node: int, until=lambda details: True) -> dict:
    """`order details` as KEY from validator NODE, once the sealed envelope has been gossiped there."""
    found: dict = {}

    def arrived() -> bool:
        result = cli.runner.invoke(main, ["order", "details", str(order_id), "--key", key, "--json",
                                          "--node", cli.net.urls[node]], env=cli.env, catch_exceptions=False)
        if result.exit_code == 0:
            found.update(json.loads(result.stdout))
        return result.exit_code == 0 and bool(until(found))

    try:
        cli.net.wait_for(f"order {order_id}'s details readable by {key} at node {node}", arrived, timeout=20)
    except AssertionError:
        last = cli.runner.invoke(main, ["order", "details", str(order_id), "--key", key, "--node", cli.net.urls[node]],
                                 env=cli.env, catch_exceptions=False)
        raise AssertionError(f"order details as {key} at node {node}: {last.output}") from None
    return found


@pytest.fixture(scope="module")
def net(shared_devnet):
    """The run's shared devnet (tests/integration/conftest.py)."""
    return shared_devnet


@pytest.fixture(scope="module")
def cli(net, tmp_path_factory):
    runner = Cli(net, str(tmp_path_factory.mktemp("keystore") / "keys"))
    for name in ("buyer-1", "buyer-2", "merchant-acme", "merchant-globex", "carrier", "arbiter", "issuer"):
        runner("keys", "import", name, runner.key_file(name))
    return runner


@pytest.fixture(scope="module")
def story(cli):
    """Shared facts between the stories of this module."""
    return {}


def test_node_block_account_tx_and_call_verbs(cli, net):
    status = cli.json("node", "status")
    assert status["chain_id"] == net.genesis.chain_id and status["consensus"]["validators"] == 4
    assert "height" in cli("node", "status").stdout
    peers = cli.json("node", "peers")
    assert len(peers) == 3
    net.wait_for("all peers connected", lambda: all(p["connected"] for p in cli.json("node", "peers")))
    latest = cli.json("block", "latest")
    assert latest["height"] >= 1
    assert cli.json("block", "get", "1")["height"] == 1
    assert cli.json("block", "get", latest["hash"])["hash"] == latest["hash"]
    watched = cli("block", "watch", "--count", "2", "--json").stdout.strip().splitlines()
    heights = [json.loads(line)["height"] for line in watched]
    assert len(heights) == 2 and heights[1] == heights[0] + 1
    account = cli.json("account", "show", "buyer-1")
    assert account["registered"] and account["roles"] == ["BUYER"]
    merchant = cli.json("keys", "show", "merchant-acme")["public_key"]
    sent = cli.json("tx", "send", "ledger", "transfer", merchant, "250", "--key-file", cli.key_file("buyer-1"))
    assert sent["status"] == "ok"
    assert cli.json("tx", "get", sent["tx_id"])["status"] == "committed"
    assert cli.json("tx", "receipt", sent["tx_id"])["height"] == sent["height"]
    assert cli.json("tx", "wait", sent["tx_id"])["status"] == "ok"
    # Back-to-back --no-wait sends from one key take consecutive nonces (pending ones are counted).
    queued = [cli.json("tx", "send", "ledger", "transfer", merchant, "1", "--no-wait", "--key", "buyer-2")["tx_id"]
              for _ in range(3)]
    assert len(set(queued)) == 3
    assert all(cli.json("tx", "wait", tx_id)["status"] == "ok" for tx_id in queued)
    balance = cli.json("call", "ledger", "balance_of", merchant)
    assert isinstance(balance, int) and balance >= 250
    human = cli("account", "show", merchant).stdout
    assert "MERCHANT" in human and "balance" in human


def test_order_story_place_accept_ship_deliver_confirm_show(cli, story):
    cli("order", "terms", "--arbiter", "arbiter", "--warranty", "365d", "--returns", "14d", "--accept", "36h",
        "--key", "merchant-acme")
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "12.50",
                      "--details", "1x tent, green", *SHIP_TO_ARGS, "--key", "buyer-1")
    order_id = placed["return_value"]
    story["order"] = order_id
    # The merchant reads the sealed details from another validator than the one they were posted to (gossip).
    merchant_view = read_details(cli, order_id, "merchant-acme", node=2)
    assert merchant_view["role"] == "merchant" and merchant_view["fields"] == SHIP_TO
    shown = cli.json("order", "show", str(order_id))
    assert shown["state"] == "PLACED" and shown["amount"] == 1250
    assert shown["accept_by"] == shown["placed_at"] + 36 * 3600          # seconds of block time
    placed_human = cli("order", "show", str(order_id)).stdout
    assert "accept by" in placed_human and "(in 1 day 1" in placed_human and "accept within 1 day 12 hours" in placed_human
    cli("order", "accept", str(order_id), "--carrier", "carrier", "--key", "merchant-acme", "--node", cli.net.urls[2])
    label = read_details(cli, order_id, "carrier", node=1)
    assert label["fields"] == {k: SHIP_TO[k] for k in ("name", "street", "postcode", "city")}   # no phone, no email
    cli("order", "ship", str(order_id), "--tracking", TRACKING, "--key", "carrier", "--node", cli.net.urls[1])
    mine = read_details(cli, order_id, "buyer-1", node=0, until=lambda d: d.get("tracking"))
    assert mine["fields"] == SHIP_TO and mine["tracking"] == TRACKING
    cli("order", "deliver", str(order_id), "--proof", PROOF_OF_DELIVERY, "--key", "carrier")
    # The carrier can show what it committed to (text and salt) and anyone can check it against the chain.
    opened = cli.json("commitment", "open", PROOF_OF_DELIVERY, "--key", "carrier")
    assert opened["commitment"] == cli.json("order", "show", str(order_id))["pod_hash"]
    cli("commitment", "check", PROOF_OF_DELIVERY, "--salt", opened["salt"], "--commitment", opened["commitment"])
    wrong = cli("commitment", "check", "signed by someone", "--salt", opened["salt"], "--commitment",
                opened["commitment"], expect=EXIT_USER)
    assert "not " + opened["commitment"] in wrong.stderr
    confirmed = cli("order", "confirm", str(order_id), "--key", "buyer-1").stdout
    assert f"order {order_id} confirmed" in confirmed and "ReceiptConfirmed" in confirmed
    final = cli.json("order", "show", str(order_id))
    assert final["state"] == "COMPLETED" and final["refunded"] == 0
    human = cli("order", "show", str(order_id)).stdout
    assert "COMPLETED" in human and "12.50" in human and "buyer-1" in human
    assert "accept by" not in human and "returns close at" in human
    assert "(in 14 days)" in human or "(in 13 days 23 hours)" in human      # from the latest block's time
    listed = cli.json("order", "list", "--buyer", "buyer-1")
    assert any(row["id"] == order_id and row["state"] == "COMPLETED" for row in listed)


def test_order_errors_wrong_key_unknown_order_bad_amount_unreachable_node(cli, story):
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "5",
                      "--key", "buyer-2")
    other = str(placed["return_value"])
    story["second_order"] = placed["return_value"]
    wrong = cli("order", "accept", other, "--carrier", "carrier", "--key", "merchant-globex", expect=EXIT_TX_FAILED)
    assert "only the order's merchant accepts" in wrong.stderr and "next:" in wrong.stderr
    unknown = cli("order", "show", "99999", expect=EXIT_USER)
    assert "no order 99999" in unknown.stderr
    bad = cli("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "12.345",
              "--key", "buyer-1", expect=EXIT_USER)
    assert "more than 2 decimals" in bad.stderr
    dead = cli("order", "show", other, "--node", "http://127.0.0.1:9", expect=EXIT_NODE)
    assert "cannot reach" in dead.stderr
    cli("keys", "new", "stranger")
    refused = cli("order", "confirm", other, "--key", "stranger", expect=EXIT_TX_FAILED)
    assert "not a registered account" in refused.stderr


def test_case_refund_before_shipping(cli, story):
    order_id = str(story["second_order"])
    opened = cli.json("case", "open", order_id, "--kind", "refund-only", "--amount", "5.00", "--reason", "changed mind",
                      "--key", "buyer-2")
    case_id = str(opened["return_value"])
    assert cli.json("case", "show", case_id)["state"] == "REQUESTED"
    cli("case", "reply", case_id, "--agree", "--key", "merchant-acme")
    assert cli.json("case", "show", case_id)["state"] == "REFUNDED"
    order = cli.json("order", "show", order_id)
    assert order["state"] == "CANCELLED" and order["refunded"] == 500


def test_dispute_ruled_by_the_arbiter_in_currency_units(cli):
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "5.00",
                      "--key", "buyer-1")
    order_id = str(placed["return_value"])
    # No delivery details were sealed (nothing ships): the merchant names a label made elsewhere by its hash.
    cli("order", "accept", order_id, "--carrier", "carrier", "--label", "0x" + "3a" * 32, "--key", "merchant-acme")
    cli("order", "dispute", order_id, "--evidence", "item never left the warehouse", "--key", "buyer-1")
    uneven = cli("order", "rule", order_id, "--to-buyer", "3.00", "--to-merchant", "1.00", "--key", "arbiter",
                 expect=EXIT_TX_FAILED)
    assert "sum exactly to the escrow of 500" in uneven.stderr
    cli("order", "rule", order_id, "--to-buyer", "3.00", "--to-merchant", "1.50", "--fee", "0.50", "--key", "arbiter")
    ruled = cli.json("order", "show", order_id)
    assert ruled["state"] == "RESOLVED" and ruled["refunded"] == 300


def test_cart_with_two_terms_sets_a_line_return_and_a_line_warranty(cli):
    cli("order", "terms", "--name", "gadgets", "--arbiter", "arbiter", "--returns", "30d", "--restocking", "5%",
        "--warranty", "366d", "--key", "merchant-acme")
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--line", f"{PRODUCT}:1:12.00",
                      "--line", "acme:lamp:2:2.50:gadgets", "--key", "buyer-1")
    order_id = str(placed["return_value"])
    shown = cli.json("order", "show", order_id)
    assert shown["amount"] == 1700 and [(ln["quantity"], ln["amount"]) for ln in shown["lines"]] == [(1, 1200), (2, 500)]
    assert shown["terms"]["return_seconds"] == 30 * 86400           # the longest line's window
    assert "1: 0x" in cli("order", "show", order_id).stdout and "2 x 2.50" in cli("order", "show", order_id).stdout
    cli("order", "accept", order_id, "--carrier", "carrier", "--label", "0x" + "4b" * 32, "--key", "merchant-acme")
    cli("order", "ship", order_id, "--tracking", "TRACK-CART", "--key", "merchant-acme")
    cli("order", "deliver", order_id, "--proof", "left at the door", "--key", "carrier")
    which = cli("case", "open", order_id, "--kind", "return", "--amount", "2.50", "--reason", "one too many",
                "--key", "buyer-1", expect=EXIT_USER)
    assert "has 2 lines; say which with --line 0..1" in which.stderr
    opened = cli.json("case", "open", order_id, "--kind", "return", "--line", "1", "--quantity", "1", "--amount", "2.50",
                      "--reason", "one too many", "--key", "buyer-1")
    case = cli.json("case", "show", str(opened["return_value"]))
    assert (case["line"], case["quantity"], case["restock_bps"]) == (1, 1, 500)
    cli("case", "withdraw", str(opened["return_value"]), "--key", "buyer-1")
    cli("order", "confirm", order_id, "--key", "buyer-1")
    cli("warranty", "register", "acme:LAMP-0001", "--product", "acme:lamp", "--key", "merchant-acme")
    cli("warranty", "activate", "acme:LAMP-0001", "--order", order_id, "--key", "buyer-1")   # finds line 1
    passport = cli.json("warranty", "show", "acme:LAMP-0001")
    delivered = cli.json("order", "show", order_id)["delivered_at"]
    assert passport["line"] == 1 and passport["warranty_end"] == delivered + 366 * 86400


def test_warranty_story_register_activate_service_transfer_claim(cli, story):
    order_id = str(story["order"])
    cli("warranty", "register", UNIT, "--product", PRODUCT, "--key", "merchant-acme")
    cli("warranty", "activate", UNIT, "--order", order_id, "--key", "buyer-1")
    passport = cli.json("warranty", "show", UNIT)
    buyer1 = cli.json("keys", "show", "buyer-1")["public_key"]
    assert passport["owner"] == buyer1 and passport["under_warranty"] is True
    cli("warranty", "service", UNIT, "--kind", "inspect", "--report", "all good", "--key", "merchant-acme")
    history = cli.json("warranty", "history", UNIT)
    assert [r["kind"] for r in history] == ["INSPECT"]
    short = cli("warranty", "transfer", UNIT, "--code", "gift-4242", "--key", "buyer-1", expect=EXIT_USAGE)
    assert "at least 10 characters" in short.stderr
    cli("warranty", "transfer", UNIT, "--code", "gift-4242-x", "--key", "buyer-1")
    wrong_code = cli("warranty", "receive", UNIT, "--code", "guess", "--key", "buyer-2", expect=EXIT_TX_FAILED)
    assert "claim code does not match" in wrong_code.stderr
    cli("warranty", "receive", UNIT, "--code", "gift-4242-x", "--key", "buyer-2")
    assert cli.json("warranty", "show", UNIT)["owner"] == cli.json("keys", "show", "buyer-2")["public_key"]
    claim = cli.json("warranty", "claim", UNIT, "--issue", "zip broken", "--key", "buyer-2")["return_value"]
    cli("warranty", "decide", str(claim), "--accept", "--key", "merchant-acme")
    cli("warranty", "fulfil", str(claim), "--remedy", "repair", "--report", "new zip", "--key", "merchant-acme")
    assert cli.json("warranty", "claim-show", str(claim))["state"] == "FULFILLED"
    assert "under warranty yes" in cli("warranty", "show", UNIT).stdout


def test_review_enroll_post_via_relayer_amend_list(cli, story):
    """A review hidden in a ring of two buyers' orders, sent by a relayer: nothing on chain names the buyer."""
    mine = str(story["order"])
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "3.00",
                      "--key", "buyer-2")
    other = str(placed["return_value"])
    cli("order", "accept", other, "--carrier", "carrier", "--label", "0x" + "5c" * 32, "--key", "merchant-acme")
    cli("order", "ship", other, "--tracking", "TRACK-R", "--key", "merchant-acme")
    cli("order", "deliver", other, "--proof", "left at door", "--key", "carrier")
    cli("order", "confirm", other, "--key", "buyer-2")
    relay = cli.key_file("auditor")
    post = ("review", "post", mine, "--scores", "4,4,5,3,4", "--text", "Solid tent", "--key", "buyer-1")
    unenrolled = cli(*post, "--relayer", relay, expect=EXIT_USER)
    assert "is not enrolled" in unenrolled.stderr and "review enroll" in unenrolled.stderr
    cli("review", "enroll", mine, "--key", "buyer-1")
    cli("review", "enroll", other, "--key", "buyer-2")
    not_buyer = cli("review", "post", mine, "--scores", "5,5,5,5,5", "--text", "fake", "--key", "buyer-2",
                    "--relayer", relay, expect=EXIT_USER)
    assert "not the buyer" in not_buyer.stderr
    assert "needs a relayer" in cli(*post, expect=EXIT_USAGE).stderr
    own = cli(*post, "--relayer", cli.key_file("buyer-1"), expect=EXIT_USAGE)
    assert "refusing to post a review from the buyer's own account" in own.stderr
    posted = cli(*post, "--relayer", relay, "--json")
    assert "only 2 orders can form the ring (asked for 8)" in posted.stderr
    receipt = json.loads(posted.stdout)
    review_id = str(receipt["return_value"])
    shown = cli.json("review", "show", review_id)
    assert shown["ring"] == sorted([int(mine), int(other)]) and shown["scores"] == [4, 4, 5, 3, 4]
    # on chain: the relayer sent it; the buyer's account and any order id beyond the ring appear nowhere
    tx = cli.json("tx", "get", receipt["tx_id"])
    buyer1 = cli.json("keys", "show", "buyer-1")["public_key"]
    assert tx["sender"] == cli.net.keys["auditor"].public_key.hex().join(["0x", ""])
    assert tx["args"][0] == shown["ring"]                               # the ring is all that names orders
    on_chain = json.dumps([tx, receipt, shown]).lower()
    assert buyer1[2:].lower() not in on_chain
    assert not any("order" in e["data"] for e in receipt["events"]) and "order" not in shown
    human = cli("review", "show", review_id).stdout
    assert "ring of 2" in human and "order" not in human.split("\n")[0]
    cli("review", "amend", mine, "--scores", "5,4,5,4,5", "--text", "Solid tent, great support", "--key", "buyer-1",
        "--relayer", relay)
    listed = cli.json("review", "list", "--merchant", "merchant-acme")
    assert [r["version"] for r in listed["reviews"]] == [2]
    assert listed["merchant_rating"]["count"] == 1
    assert "overall 5.00" in cli("review", "list", "--merchant", "merchant-acme").stdout


def test_ticket_provenance_points_and_voucher(cli, story):
    order_id = str(story["order"])
    ticket = cli.json("ticket", "open", "--order", order_id, "--message", TICKET_MESSAGE, "--key",
                      "buyer-1")["return_value"]
    cli("ticket", "resolve", str(ticket), "--resolution", "sent the PDF", "--key", "merchant-acme")
    assert cli.json("ticket", "show", str(ticket))["state"] == "RESOLVED"
    event = cli.json("provenance", "post", "--step", "packing", "--item", "acme:SN-0002", "--location", "acme-wh-1",
                     "--document", "packing list 7", "--action", "ADD", "--key", "merchant-acme")["return_value"]
    assert cli.json("provenance", "show", str(event))["biz_step"] == "packing"
    assert [e["id"] for e in cli.json("provenance", "history", "acme:SN-0002")["events"]] == [event]
    # Demo merchants hold ISSUER: they run their own points and vouchers with the demo keys.
    cli("points", "create-program", "acme-rewards", "--rate", "1%", "--expiry", "365d", "--key", "merchant-acme")
    cli("points", "set-value", "acme-rewards", "--point-value", "0.01", "--max-share", "20%", "--key", "merchant-acme")
    program = cli.json("points", "program", "acme-rewards")
    assert program["rate_bps"] == 100 and program["point_value"] == 1 and program["max_pay_bps"] == 2000
    assert cli.json("points", "balance", "acme-rewards", "buyer-1")["points"] == 0
    cli("voucher", "create", "SPRING", "--code", "SPRING10", "--discount", "2.00", "--valid-for", "30d",
        "--max-uses", "10", "--key", "merchant-acme")
    assert cli.json("voucher", "show", "SPRING")["value"] == 200
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", PRODUCT, "--price", "10.00",
                      "--voucher", "SPRING", "--voucher-code", "SPRING10", "--key", "buyer-1")
    assert cli.json("order", "show", str(placed["return_value"]))["amount"] == 800


def test_account_rotate_key_keeps_the_account_and_refuses_the_old_key(cli):
    """The auditor (no other test signs with it) moves to a fresh key: same account id, balance
    and nonce sequence; the old key is refused with the rotation named; the new one pays."""
    cli("keys", "import", "auditor", cli.key_file("auditor"))
    before = cli.json("account", "show", "auditor")
    cli("keys", "new", "auditor-rotated")
    rotated = cli.json("account", "rotate-key", "auditor-rotated", "--key", "auditor")
    assert rotated["status"] == "ok"
    after = cli.json("account", "show", "auditor-rotated")
    assert after["account"] == before["account"] and after["registered"] and after["roles"] == ["AUDITOR"]
    assert after["signing_key"] == cli.json("keys", "show", "auditor-rotated")["public_key"]
    assert after["nonce"] == before["nonce"] + 1   # nonces are per account: the sequence continues
    old = cli.json("account", "show", "auditor")
    assert not old["registered"] and old["key_retired_at"] == rotated["height"]
    merchant = cli.json("keys", "show", "merchant-acme")["public_key"]
    refused = cli("tx", "send", "ledger", "transfer", merchant, "1", "--key", "auditor", expect=EXIT_TX_FAILED)
    assert "was rotated out of account" in refused.stderr and "account's current key" in refused.stderr
    sent = cli.json("tx", "send", "ledger", "transfer", merchant, "1", "--key", "auditor-rotated")
    assert sent["status"] == "ok"
    assert int(cli.json("account", "show", "auditor")["balance"]) == int(after["balance"]) - 1 - sent["fee"]


def test_disclose_one_field_and_anyone_verifies_it(cli, story, tmp_path):
    order_id = str(story["order"])
    doc = cli.json("order", "disclose", order_id, "--field", "postcode", "--key", "buyer-1")
    assert doc["value"] == SHIP_TO["postcode"] and doc["commitment"] == "pii_root"
    assert not any(v in json.dumps(doc) for k, v in SHIP_TO.items() if k != "postcode")
    # The salts are derived from the buyer's key: retyping the fields rebuilds the same disclosure.
    assert cli.json("order", "disclose", order_id, "--field", "postcode", *SHIP_TO_ARGS, "--key", "buyer-1") == doc
    path = tmp_path / "postcode.json"
    path.write_text(json.dumps(doc))
    assert cli.json("order", "verify-disclosure", str(path)) == {
        "verified": True, "order": int(order_id), "commitment": "pii_root", "field": "postcode",
        "value": SHIP_TO["postcode"]}
    for forged in ({**doc, "value": "NW1 6XF"}, {**doc, "order": story["second_order"]}):
        path.write_text(json.dumps(forged))
        refused = cli("order", "verify-disclosure", str(path), expect=EXIT_USER)
        assert "does NOT match" in refused.stderr
    # Sealed to the arbiter through the mailbox; the arbiter reads it at its own node.
    cli("order", "disclose", order_id, "--field", "postcode", "--to", "arbiter", "--key", "buyer-1")
    assert read_details(cli, int(order_id), "arbiter", node=3)["fields"] == {"postcode": SHIP_TO["postcode"]}
    # The tracking number is disclosed the same way (its salt came to the buyer sealed).
    tracking = cli.json("order", "disclose", order_id, "--field", "tracking", "--key", "buyer-1")
    path.write_text(json.dumps(tracking))
    assert cli.json("order", "verify-disclosure", str(path))["value"] == TRACKING


def test_nothing_is_sealed_to_an_account_without_an_encryption_key(cli, story):
    order_id = str(story["order"])
    unknown = cli("order", "disclose", order_id, "--field", "postcode", "--to", "stranger", "--key", "buyer-1",
                  expect=EXIT_USER)
    assert "not a registered account, so nothing can be sealed to it" in unknown.stderr
    cli("keys", "new", "acme-clerk")
    cli("account", "register", "acme-clerk", "--role", "BUYER", "--key", "merchant-acme")
    cli("ledger", "transfer", "acme-clerk", "50.00", "--key", "merchant-acme")     # its fees
    none = cli("order", "disclose", order_id, "--field", "postcode", "--to", "acme-clerk", "--key", "buyer-1",
               expect=EXIT_USER)
    assert "has registered no encryption key" in none.stderr and "account set-enc-key" in none.stderr
    cli("account", "set-enc-key", "--key", "acme-clerk")
    cli("order", "disclose", order_id, "--field", "postcode", "--to", "acme-clerk", "--key", "buyer-1")
    # The node itself refuses what the CLI would not send: an unregistered sender, a recipient without a key.
    client, stranger = cli.net.client(1), SigningKey.from_label("integration/stranger")
    merchant = bytes.fromhex(cli.json("keys", "show", "merchant-acme")["public_key"][2:])
    merchant_enc = bytes.fromhex(cli.json("keys", "show", "merchant-acme")["encryption_key"][2:])
    chain_id = client.status()["chain_id"]
    for sender, recipient, reason in [(stranger, merchant, "unregistered_sender"),
                                      (SigningKey(bytes.fromhex(json.load(open(cli.key_file("buyer-2")))["seed"][2:])),
                                       bytes.fromhex(cli.json("keys", "show", "stranger")["public_key"][2:]),
                                       "no_encryption_key")]:
        env = make_envelope(sender, chain_id, recipient, merchant_enc, int(order_id), "delivery",
                            int(time.time() * 1000), b"sealed bytes")
        with pytest.raises(RpcFailure) as refused:
            client.request("mailbox_send", "0x" + env.encode().hex())
        assert refused.value.reason == reason and refused.value.data["type"] == "MailboxError"


def personal_needles() -> dict[str, bytes]:
    """What must not be found: each personal value (UTF-8, any case, also as hex) and its unsalted SHA-256
    (raw and hex), of each value and of the combined shipping text."""
    values = [*SHIP_TO.values(), TRACKING, PROOF_OF_DELIVERY, TICKET_MESSAGE]
    combined = [", ".join(SHIP_TO[k] for k in ("name", "street", "postcode", "city")), ", ".join(SHIP_TO.values()),
                "\n".join(SHIP_TO.values())]
    needles = {}
    for text in values + combined:
        raw = text.encode("utf-8")
        for form in {raw, raw.lower(), raw.upper()}:
            needles[f"hex of {form.decode()!r}"] = form.hex().encode()
        digest = sha256(raw)
        needles[f"sha256({text!r})"] = digest
        needles[f"hex sha256({text!r})"] = digest.hex().encode()
        if text in values:
            needles[repr(text)] = raw.lower()     # compared with the lowercased haystack
    return needles


def scan(where: str, data: bytes, needles: dict[str, bytes], found: list[str]) -> None:
    lowered = data.lower()
    for what, needle in needles.items():
        if needle in (data if what.startswith("sha256") else lowered):
            found.append(f"{what} in {where}")


def test_privacy_scan_of_blocks_receipts_events_and_state_finds_no_personal_data(cli, net, story):
    """After the whole story: every block with its transactions, every receipt with its events (RPC), and every
    key and value of a validator's LevelDB (state, blocks, receipts, indexes, mailbox) hold no personal value."""
    needles, found = personal_needles(), []
    planted: list[str] = []   # the scanner itself finds a value in any case, and a plain hash raw or in hex
    scan("a sample", b"<" + SHIP_TO["street"].upper().encode() + sha256(TRACKING.encode()).hex().encode()
         + sha256(SHIP_TO["phone"].encode()) + b">", needles, planted)
    assert sorted(planted) == sorted([f"{SHIP_TO['street']!r} in a sample", f"hex sha256({TRACKING!r}) in a sample",
                                      f"sha256({SHIP_TO['phone']!r}) in a sample"]), planted
    client = net.client(0)
    head = client.status()["height"]
    for height in range(1, head + 1):
        block = client.block(height, full=True)
        scan(f"block {height}", json.dumps(block).encode(), needles, found)
        for tx in block["txs"]:
            scan(f"receipt of tx {tx['id']} (block {height})", json.dumps(client.receipt(tx["id"])).encode(),
                 needles, found)
    node = net.manifest["nodes"][3]
    launcher.stop_node(node, timeout=10)      # LevelDB opens for one process; the snapshot test restarts it
    kv = LevelDBKV(os.path.join(node["home"], "data"))
    try:
        entries = mailbox_entries = 0
        for key, value in kv.iterate():
            entries += 1
            mailbox_entries += key.startswith(schema.MAILBOX)
            scan(f"node3 LevelDB key {key[:40].hex()}", key + b"\0" + value, needles, found)
    finally:
        kv.close()
    assert not found, "personal data reached the chain or a node's store:\n" + "\n".join(found)
    assert head >= 10 and entries > 1000
    assert mailbox_entries >= 3 * 5       # the sealed envelopes were gossiped to node3 too (3 records each)


def test_snapshot_of_a_stopped_validator_restores_and_catches_up(cli, net, story, tmp_path):
    node = net.manifest["nodes"][3]
    home = node["home"]
    launcher.stop_node(node, timeout=10)
    verified = cli.json("node", "verify", "--home", home)
    assert verified["ok"] and verified["checked_blocks"] >= 1
    snap = str(tmp_path / "node3.snap")
    exported = cli.json("node", "export", "--home", home, "-o", snap)
    data = os.path.join(home, "data")
    shutil.move(data, str(tmp_path / "old-data"))
    os.makedirs(data)
    imported = cli.json("node", "import", snap, "--home", home)
    assert imported["height"] == exported["height"]
    net.restart(3)
    target = net.height(0) + 3
    net.wait_height([3], target)
    assert net.client(3).block(target)["hash"] == net.client(0).block(target)["hash"]
    # A snapshot carries no mailbox: the restored node gets the recent envelopes from its peers when it reconnects.
    assert read_details(cli, story["order"], "arbiter", node=3)["fields"] == {"postcode": SHIP_TO["postcode"]}
