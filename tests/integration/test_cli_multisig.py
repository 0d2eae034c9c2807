"""`shopchain` with several keys against the shared devnet: a treasury that needs a second key.

The treasury (no other test signs with it) sets a policy with a co-signer made in the
keystore: a small transfer passes with its key alone, a large one fails naming the
limit and passes with `--cosign`; the offline flow `tx prepare` / `tx cosign` /
`tx submit` moves another large amount with the same id throughout; a tampered
transaction file is refused; and the policy is cleared again (with the co-signer), so
the shared chain is left as it was found.
"""

from __future__ import annotations

import json

import pytest

from cli.output import EXIT_TX_FAILED, EXIT_USER
from tests.consortium import Cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli(shared_devnet, tmp_path_factory):
    runner = Cli(shared_devnet, str(tmp_path_factory.mktemp("keystore") / "keys"))
    for name in ("treasury", "merchant-globex"):
        runner("keys", "import", name, runner.key_file(name))
    runner("keys", "new", "treasury-cfo")
    return runner


def test_cosign_and_the_prepare_cosign_submit_flow(cli, tmp_path):
    merchant = cli.json("keys", "show", "merchant-globex")["public_key"]
    treasury = cli.json("keys", "show", "treasury")["public_key"]
    cfo = cli.json("keys", "show", "treasury-cfo")["public_key"]
    set_ = cli.json("account", "policy", "set", "--cosigner", "treasury-cfo", "--threshold", "2", "--limit", "5.00",
                    "--key", "treasury")
    assert set_["status"] == "ok"
    shown = cli.json("account", "policy", "show", "treasury")
    assert shown["threshold"] == 2 and shown["cosigners"] == [cfo] and shown["spend_limit"] == 500
    assert "2 of 2 signatures needed above 5.00 per transaction" in cli("account", "policy", "show", "treasury").stdout

    before = cli.json("call", "ledger", "balance_of", merchant)
    assert cli.json("tx", "send", "ledger", "transfer", merchant, "300", "--key", "treasury")["status"] == "ok"
    refused = cli("tx", "send", "ledger", "transfer", merchant, "5000", "--key", "treasury", expect=EXIT_TX_FAILED)
    assert "SpendLimit: this transaction moves 5000" in refused.output and "allows 500 per transaction" in refused.output
    assert cli.json("tx", "send", "ledger", "transfer", merchant, "5000", "--key", "treasury",
                    "--cosign", "treasury-cfo")["status"] == "ok"

    # Offline collection: prepare with one key, co-sign elsewhere, submit; the id never changes.
    path = str(tmp_path / "payout.tx.json")
    prepared = cli.json("tx", "prepare", "ledger", "transfer", merchant, "7000", "--key", "treasury", "--out", path)
    assert prepared["cosigners"] == [] and prepared["sender"] == treasury
    cosigned = cli.json("tx", "cosign", path, "--key", "treasury-cfo")
    assert cosigned["tx_id"] == prepared["tx_id"] and cosigned["cosigners"] == [cfo]
    again = cli("tx", "cosign", path, "--key", "treasury-cfo", expect=EXIT_USER)
    assert "has already co-signed this transaction" in again.output
    tampered = str(tmp_path / "tampered.tx.json")
    data = json.load(open(path))
    data["args"][1] = 1
    json.dump(data, open(tampered, "w"))
    assert "do not match the raw transaction" in cli("tx", "submit", tampered, expect=EXIT_USER).output
    submitted = cli.json("tx", "submit", path)
    assert submitted["status"] == "ok" and submitted["tx_id"] == prepared["tx_id"]
    assert cli.json("call", "ledger", "balance_of", merchant) == before + 300 + 5000 + 7000

    # One key cannot remove the second factor; with the co-signer the treasury is back to one key.
    cli("account", "policy", "clear", "--key", "treasury", expect=EXIT_TX_FAILED)
    assert cli.json("account", "policy", "clear", "--key", "treasury", "--cosign", "treasury-cfo")["status"] == "ok"
    assert cli.json("account", "policy", "show", "treasury") is None
