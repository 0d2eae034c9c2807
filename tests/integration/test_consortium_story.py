"""The consortium changes itself on a running 4-validator devnet, through the CLI, under load.

The operators' story of issue 14, in order, while pre-signed transfers keep arriving:
a lone admin's attempt to upgrade the ledger is refused (directly, and as a proposal
only its own organisation voted for); the members vote a new organisation in; its admin
registers the organisation's node, which starts with the genesis and syncs as an
observer without any validator's configuration changing; a vote makes it the fifth
validator and certificates from the activation height on carry its signature; then
another validator is voted out (its organisation keeps it as an observer, and it keeps
following) and a third one's key is rotated to a new node of the same organisation.
At the end every acknowledged transaction is committed exactly once and every node
still running agrees on the chain.

Its own devnet (it changes the validator set), with a 2 s governance timelock.
"""

from __future__ import annotations

import collections
import os

import pytest

from cli.output import EXIT_TX_FAILED, EXIT_USER
from ledger.hexfmt import to_hex
from tests.consortium import ADMINS, Cli, Consortium
from tests.nethelpers import WAIT_LIMIT_S, Devnet, LoadGenerator

pytestmark = pytest.mark.integration

TIMELOCK_S = 2
LEDGER_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "contracts_vm", "system", "ledger.sc.py")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    net = Devnet.start(str(tmp_path_factory.mktemp("consortium") / "devnet"),
                       contract_settings={"governance": {"timelock_s": TIMELOCK_S}})
    cli = Cli(net, str(tmp_path_factory.mktemp("keystore") / "keys"))
    for name in ADMINS.values():
        cli("keys", "import", name, cli.key_file(name))
    c = Consortium(net, cli)
    try:
        yield c
    finally:
        c.stop_extra()
        net.stop()


def test_the_consortium_admits_a_member_adds_removes_and_rotates_validators_under_load(consortium):
    c, cli, net = consortium, consortium.cli, consortium.net
    validator_keys = [to_hex(v.public_key) for v in net.genesis.validators]
    buyer3 = net.keys["buyer-3"].public_key
    load = LoadGenerator(net, ["buyer-1", "buyer-2"], buyer3, rate_per_sender=8.0)
    load.avoid = {1, 3}  # node1 is rotated out and node3 voted out: clients use the two that stay
    load.start()
    try:
        # 1. No single admin upgrades the ledger: not directly, not by a proposal only its organisation backs.
        payload = cli.json("contract", "deploy-tx", LEDGER_SOURCE, "--name", "ledger", "--upgrade")["payload"]
        refused = cli("tx", "send", "system", "deploy", payload, "--key", "platform-admin", expect=EXIT_TX_FAILED)
        assert "governance" in refused.output, refused.output
        lone = cli.json("gov", "propose", "code", LEDGER_SOURCE, "--name", "ledger", "--upgrade",
                        "--save-payload", os.path.join(net.root, "ledger.payload"), "-d", "trust me",
                        "--key", "platform-admin")["return_value"]
        cli("gov", "vote", str(lone), "--yes", "--key", "platform-admin")
        blocked = cli("gov", "execute", str(lone), "--payload-file", os.path.join(net.root, "ledger.payload"),
                      "--key", "platform-admin", expect=EXIT_USER)
        assert f"proposal {lone} is open (1 of 4 yes votes so far)" in blocked.output

        # 2. The members admit NewCo (4 of 6 organisations), whose admin registers its node; it syncs as an observer.
        admitted = c.admit("newco", "newco-admin", ["platform", "acme", "globex", "fixit"])
        assert admitted["state"] == "executed"
        assert cli.json("gov", "settings")["required_votes"] == 5  # ceil(2/3 of 7)
        newco = c.join("newco-1", "newco-admin")

        # 3. Voted in as the fifth validator: from the activation height its signature is in certificates.
        added = c.enact("newco", ["add-validator", "--name", "newco-1", "--org", "newco", "--node-home",
                                  newco["home"], "--p2p", newco["p2p"], "--rpc", newco["rpc"][len("http://"):]],
                        ["newco", "platform", "acme", "globex", "fixit"])
        start = added["activation_height"]
        assert start and start > added["executed_height"]
        net.wait_height([0, 2], start + 30)
        assert all(newco["key"] not in c.signers(h) for h in range(2, start))
        assert any(newco["key"] in c.signers(h) for h in range(start, start + 30))
        shown = cli.json("gov", "validators")
        assert [v["key"] for v in shown["schedule"][-1]["validators"]] == validator_keys + [newco["key"]]

        # 4. Node3 (SwiftShip) voted out; SwiftShip registers it as an observer and it keeps following.
        node3 = net.manifest["nodes"][3]
        cli("gov", "node", "add", "--name", "node3", "--node-home", node3["home"], "--p2p", node3["p2p"],
            "--key", "carrier")
        removed = c.enact("platform", ["remove-validator", "--node-home", node3["home"]],
                          ["platform", "acme", "globex", "fixit", "newco"])
        gone = removed["activation_height"]
        net.wait_height([0, 2], gone + 30)
        assert all(validator_keys[3] not in c.signers(h) for h in range(gone, gone + 30))
        net.wait_for("node3 following as an observer", lambda: net.height(3) >= gone + 30)

        # 5. Acme rotates node1's key to a new node it runs.
        node1b = c.join("acme-1b", "merchant-acme")
        rotated = c.enact("acme", ["rotate-validator", "--old-key", validator_keys[1], "--node-home", node1b["home"],
                                   "--p2p", node1b["p2p"], "--rpc", node1b["rpc"][len("http://"):]],
                          ["acme", "platform", "globex", "fixit", "newco"])
        swap = rotated["activation_height"]
        net.wait_height([0, 2], swap + 30)
        late = [c.signers(h) for h in range(swap, swap + 30)]
        assert all(validator_keys[1] not in s for s in late) and any(node1b["key"] in s for s in late)
        final = cli.json("gov", "validators")["schedule"][-1]["validators"]
        assert [v["key"] for v in final] == [validator_keys[0], node1b["key"], validator_keys[2], newco["key"]]
    finally:
        acked = load.stop()
    assert not load.errors, load.errors[:5]
    assert len(acked) > 50

    # Nothing acknowledged is lost, nothing is committed twice, and every node that follows agrees.
    client = net.client(0)
    for tx_id in acked[-20:]:
        client.wait(tx_id, WAIT_LIMIT_S)
    head = net.height(0)
    followers = [net.client(i) for i in (0, 2, 3)] + [c.client(newco), c.client(node1b)]
    net.wait_for(f"every follower at height {head}", lambda: all(f.status()["height"] >= head for f in followers))
    assert len({f.block(head)["hash"] for f in followers}) == 1
    counts = collections.Counter(net.all_tx_ids(0))
    assert all(counts[t] == 1 for t in acked), [t for t in acked if counts[t] != 1][:5]


def test_the_members_vote_a_currency_and_its_issuer_pays_in_it(consortium):
    """Issue 15: a currency exists only once the members voted for it; amounts carry its code
    and its own decimals everywhere the CLI shows or reads them."""
    c, cli = consortium, consortium.cli
    for name in ("buyer-1", "merchant-globex"):
        if name not in c.admins.values():
            cli("keys", "import", name, cli.key_file(name))
    voters = ["platform", "acme", "globex", "fixit", "newco"][:cli.json("gov", "settings")["required_votes"]]
    made = c.enact("acme", ["currency", "ACMEPTS", "--name", "Acme points", "--decimals", "0",
                            "--issuer", "merchant-acme"], voters)
    assert made["state"] == "executed"
    assert "ACMEPTS" in cli("currency", "list").stdout
    cli("currency", "issue", "ACMEPTS", "buyer-1", "500", "--key", "merchant-acme")
    refused = cli("currency", "issue", "ACMEPTS", "buyer-1", "5", "--key", "merchant-globex", expect=EXIT_TX_FAILED)
    assert "only the issuer of ACMEPTS issues it" in refused.output
    fractional = cli("ledger", "transfer", "merchant-acme", "1.5", "--currency", "ACMEPTS", "--key", "buyer-1",
                     expect=EXIT_USER)
    assert "more than 0 decimals" in fractional.output
    paid = cli("ledger", "transfer", "merchant-acme", "20", "--currency", "acmepts", "--key", "buyer-1").stdout
    assert "paid 20 ACMEPTS" in paid
    balance = cli.json("ledger", "balance", "buyer-1")
    assert balance["balances"]["ACMEPTS"] == 480 and balance["currency"] == "USD"
    assert "480 ACMEPTS" in cli("ledger", "balance", "buyer-1").stdout
    assert cli.json("currency", "show", "ACMEPTS")["supply"] == 500
    # An order priced in it: escrow, amounts and the order page are in ACMEPTS.
    cli("order", "terms", "--arbiter", "arbiter", "--key", "merchant-acme")
    placed = cli.json("order", "place", "--merchant", "merchant-acme", "--product", "acme:mug", "--qty", "2",
                      "--price", "100", "--currency", "ACMEPTS", "--key", "buyer-1")
    order = cli.json("order", "show", str(placed["return_value"]))
    assert order["currency"] == "ACMEPTS" and order["amount"] == 100
    assert "paid 100 ACMEPTS" in cli("order", "show", str(placed["return_value"])).stdout
    assert cli.json("ledger", "balance", "buyer-1")["balances"]["ACMEPTS"] == 380
    refused = cli("order", "place", "--merchant", "merchant-acme", "--product", "acme:mug", "--price", "5",
                  "--points", "no-such-program:5", "--key", "buyer-1", expect=EXIT_TX_FAILED)
    assert "no loyalty program no-such-program" in refused.output and "not sent" in refused.output


def test_points_earned_on_one_order_pay_part_of_the_next(consortium):
    """Issue 15: a merchant's loyalty points pay, within its program's rules, through the CLI."""
    c, cli, net = consortium, consortium.cli, consortium.net
    cli("order", "terms", "--name", "final-sale", "--arbiter", "arbiter", "--returns", "0d", "--key", "merchant-acme")
    cli("points", "create-program", "acme-club", "--rate", "10%", "--expiry", "30d", "--key", "merchant-acme")
    first = str(cli.json("order", "place", "--merchant", "merchant-acme", "--line", "acme:mug:1:50.00:final-sale",
                         "--key", "buyer-1")["return_value"])
    cli("order", "accept", first, "--carrier", "carrier", "--label", "0x" + "5c" * 32, "--key", "merchant-acme")
    cli("order", "ship", first, "--tracking", "PTS-1", "--key", "carrier")
    cli("order", "deliver", first, "--proof", "left at the door", "--key", "carrier")
    cli("order", "confirm", first, "--key", "buyer-1")
    close_after = cli.json("order", "show", first)["close_after"]      # no return window: closes a second later
    net.wait_for("block time past the close", lambda: net.client(0).status()["latest_block_time_ms"] // 1000 > close_after)
    cli("order", "poke", first, "--key", "buyer-1")
    assert cli.json("order", "show", first)["state"] == "CLOSED"
    cli("points", "award", "acme-club", first, "--key", "merchant-acme")
    assert cli.json("points", "balance", "acme-club", "buyer-1")["points"] == 500
    too_many = cli("order", "place", "--merchant", "merchant-acme", "--product", "acme:mug", "--price", "10.00",
                   "--points", "acme-club:300", "--key", "buyer-1", expect=EXIT_TX_FAILED)
    assert "do not pay" in too_many.output                                    # not until the program says so
    cli("points", "set-value", "acme-club", "--point-value", "0.01", "--max-share", "50%", "--key", "merchant-acme")
    second = cli.json("order", "place", "--merchant", "merchant-acme", "--product", "acme:mug", "--price", "10.00",
                      "--points", "acme-club:300", "--key", "buyer-1")["return_value"]
    order = cli.json("order", "show", str(second))
    assert (order["price"], order["points"], order["points_value"], order["amount"]) == (1000, 300, 300, 700)
    assert "points 300 of acme-club paid 3.00 USD" in cli("order", "show", str(second)).stdout
    assert cli.json("points", "balance", "acme-club", "buyer-1")["points"] == 200
