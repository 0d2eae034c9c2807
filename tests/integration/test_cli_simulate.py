"""Mistakes cost nothing: `--dry-run`, the pre-check, and the identity, ledger and settings verbs.

Driven the way a user would, with the `shopchain` command in-process against the run's
shared 4-validator devnet (tests/integration/conftest.py). The module keeps to accounts
the other shared-devnet modules leave alone (buyer-3, a fresh key, merchant-globex's
orders) and reads nonces and balances when it starts, so it runs in any order. Each test
checks what a mistake must not cost: the signer's nonce, its pending count and its balance.
"""

from __future__ import annotations

import json

import pytest

from cli.output import EXIT_TX_FAILED, EXIT_USER
from node.client import Client
from tests.consortium import Cli

pytestmark = pytest.mark.integration

PRODUCT = "globex:lamp"
COUNTER = '''
count: int

@public
def bump(by: int) -> int:
    self.count += by
    return self.count
'''


@pytest.fixture(scope="module")
def cli(shared_devnet, tmp_path_factory):
    runner = Cli(shared_devnet, str(tmp_path_factory.mktemp("keystore") / "keys"))
    for name in ("buyer-3", "merchant-globex", "merchant-acme", "carrier", "arbiter", "platform-admin"):
        runner("keys", "import", name, runner.key_file(name))
    return runner


def standing(cli: Cli, who: str) -> tuple[int, int, int]:
    """(nonce, pending transactions, balance) of ``who``: what a mistake must leave alone."""
    a = cli.json("account", "show", who)
    return a["nonce"], a["pending_txs"], int(a["balance"])


def test_dry_run_prints_the_would_be_receipt_and_submits_nothing(cli):
    before = standing(cli, "buyer-3")
    dry = cli.json("ledger", "transfer", "merchant-globex", "1.25", "--key", "buyer-3", "--dry-run")
    assert dry["dry_run"] is True and dry["status"] == "ok" and dry["nonce"] == before[0]
    assert [e["name"] for e in dry["events"]] == ["Transfer"] and dry["events"][0]["data"]["amount"] == 125
    human = cli("ledger", "transfer", "merchant-globex", "1.25", "--key", "buyer-3", "--dry-run").stdout
    assert "would succeed (nothing was sent" in human and "event ledger.Transfer" in human
    failing = cli("ledger", "transfer", "merchant-globex", "999999999", "--key", "buyer-3", "--dry-run", "--json",
                  expect=EXIT_TX_FAILED)
    assert json.loads(failing.stdout)["status"] == "failed" and "insufficient balance" in failing.stderr
    assert standing(cli, "buyer-3") == before
    # A wallet asking before it signs gets the same answer.
    merchant = cli.json("keys", "show", "merchant-globex")["public_key"]
    buyer = cli.json("keys", "show", "buyer-3")["public_key"]
    asked = Client(cli.net.urls[0]).simulate_call(bytes.fromhex(buyer[2:]), "ledger", "transfer_in", "USD", merchant,
                                                  125)
    assert (asked["signed"], asked["status"], asked["gas_used"], asked["fee"], asked["tx_id"]) == \
        (False, "ok", dry["gas_used"], dry["fee"], dry["tx_id"])
    # The real transfer gets the receipt the dry run showed.
    sent = cli.json("ledger", "transfer", "merchant-globex", "1.25", "--key", "buyer-3")
    assert (sent["status"], sent["gas_used"], sent["fee"], sent["events"]) == \
        ("ok", dry["gas_used"], dry["fee"], dry["events"])
    after = standing(cli, "buyer-3")
    assert after[0] == before[0] + 1 and after[2] == before[2] - 125 - sent["fee"]
    shown = cli.json("ledger", "balance", "buyer-3")
    assert int(shown["balance"]) == after[2] and int(shown["total_supply"]) > 0


def test_no_wait_steps_of_one_key_are_prechecked_after_its_pending_ones(cli):
    before = standing(cli, "buyer-3")
    first = cli.json("ledger", "transfer", "merchant-globex", "0.01", "--key", "buyer-3", "--no-wait")
    dry = cli.json("ledger", "transfer", "merchant-globex", "0.01", "--key", "buyer-3", "--dry-run")
    second = cli.json("ledger", "transfer", "merchant-globex", "0.01", "--key", "buyer-3", "--no-wait")
    assert first["status"] == second["status"] == "pending" and first["tx_id"] != second["tx_id"]
    assert dry["nonce"] == before[0] + 1 and dry["pending_replayed"] in (0, 1)  # 0 if the first already committed
    for tx_id in (first["tx_id"], second["tx_id"]):
        assert cli.json("tx", "wait", tx_id)["status"] == "ok"
    assert standing(cli, "buyer-3")[0] == before[0] + 2


def test_confirming_a_completed_order_is_refused_before_it_is_sent(cli):
    cli("order", "terms", "--arbiter", "arbiter", "--key", "merchant-globex")
    order_id = str(cli.json("order", "place", "--merchant", "merchant-globex", "--product", PRODUCT, "--price", "3",
                            "--key", "buyer-3")["return_value"])
    cli("order", "accept", order_id, "--carrier", "carrier", "--label", "0x" + "ab" * 32, "--key", "merchant-globex")
    cli("order", "ship", order_id, "--tracking", "TRACK-9", "--key", "merchant-globex")
    cli("order", "deliver", order_id, "--proof", "signed", "--key", "carrier")
    cli("order", "confirm", order_id, "--key", "buyer-3")
    before = standing(cli, "buyer-3")
    again = cli("order", "confirm", order_id, "--key", "buyer-3", expect=EXIT_TX_FAILED)
    assert "not sent: orders.confirm would fail" in again.stderr
    assert "order is COMPLETED, expected DELIVERED or SHIPPED" in again.stderr
    assert "no nonce or fee was spent" in again.stderr and "--no-precheck" in again.stderr
    assert standing(cli, "buyer-3") == before
    # --no-precheck sends anyway: the chain records the failure, and that costs the nonce.
    forced = cli("order", "confirm", order_id, "--key", "buyer-3", "--no-precheck", expect=EXIT_TX_FAILED)
    assert "failed in block" in forced.stderr and "order is COMPLETED" in forced.stderr
    assert standing(cli, "buyer-3")[0] == before[0] + 1


def test_an_admin_registers_grants_revokes_roles_and_revokes_an_account(cli):
    cli("keys", "new", "shop-buyer-7")
    key = cli.json("keys", "show", "shop-buyer-7")["public_key"]
    refused = cli("account", "register", "shop-buyer-7", "--role", "BUYER", "--key", "buyer-3", expect=EXIT_USER)
    assert "not an admin key of an active organisation" in refused.stderr
    done = cli("account", "register", "shop-buyer-7", "--role", "buyer", "--key", "platform-admin").stdout
    assert f"account {key} registered in platform with BUYER" in done
    shown = cli.json("account", "show", "shop-buyer-7")
    assert shown["registered"] and shown["roles"] == ["BUYER"] and shown["organisation"] == "platform"
    assert cli.json("account", "show", "platform-admin")["admin_of"] == "platform"
    cli("account", "grant-role", "shop-buyer-7", "ISSUER", "--key", "platform-admin")
    assert cli.json("account", "show", "shop-buyer-7")["roles"] == ["BUYER", "ISSUER"]
    twice = cli("account", "grant-role", "shop-buyer-7", "ISSUER", "--key", "platform-admin", expect=EXIT_TX_FAILED)
    assert "account already holds ISSUER" in twice.stderr and "not sent" in twice.stderr
    admin_before = standing(cli, "merchant-acme")
    foreign = cli("account", "revoke-role", "shop-buyer-7", "BUYER", "--key", "merchant-acme", expect=EXIT_TX_FAILED)
    assert "account belongs to organisation platform, not acme" in foreign.stderr
    assert standing(cli, "merchant-acme") == admin_before
    cli("account", "revoke-role", "shop-buyer-7", "ISSUER", "--key", "platform-admin")
    cli("ledger", "transfer", "shop-buyer-7", "2.00", "--key", "buyer-3")
    assert cli.json("ledger", "balance", "shop-buyer-7")["balance"] == 200
    cli("account", "revoke", "shop-buyer-7", "--key", "platform-admin")
    revoked = cli.json("account", "show", "shop-buyer-7")
    assert revoked["active"] is False and not revoked["registered"] and revoked["roles"] == []  # has_role: active only
    late = cli("ledger", "transfer", "buyer-3", "1.00", "--key", "shop-buyer-7", expect=EXIT_TX_FAILED)
    assert "would refuse the transaction (nothing was sent)" in late.stderr


def test_settings_show_and_a_direct_deploy_is_refused_towards_governance(cli, tmp_path):
    orders = cli.json("settings", "show", "orders")
    assert orders["contract"] == "orders" and type(orders["values"]["fee_bps"]) is int
    assert "change with: shopchain gov propose settings orders" in cli("settings", "show", "orders").stdout
    missing = cli("settings", "show", "nosuch", expect=EXIT_USER)
    assert "no contract named 'nosuch'" in missing.stderr
    source = tmp_path / "counter.sc.py"
    source.write_text(COUNTER)
    payload = json.loads(cli("contract", "deploy-tx", str(source), "--name", "counter", "--json").stdout)["payload"]
    before = standing(cli, "platform-admin")
    direct = cli("tx", "send", "system", "deploy", payload, "--key", "platform-admin", expect=EXIT_TX_FAILED)
    assert "PermissionDenied: contract deploys and upgrades are governed" in direct.stderr
    assert "shopchain gov propose code FILE --name NAME" in direct.stderr
    assert standing(cli, "platform-admin") == before
