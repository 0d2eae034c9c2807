"""Genesis files: round trip, stable hash, and errors that point at the field."""

from __future__ import annotations

import copy
import json

import pytest

from ledger.crypto import SigningKey
from ledger.errors import GenesisError
from ledger.genesis import load_genesis, parse_genesis, save_genesis

KEYS = [SigningKey.from_label(f"g{i}").public_key for i in range(6)]


def sample() -> dict:
    return {
        "chain_id": "shopchain-test",
        "genesis_time_ms": 1_767_225_600_000,
        "organisations": [{"id": "platform", "name": "Platform Ltd", "admin_keys": ["0x" + KEYS[0].hex()]},
                          {"id": "acme", "name": "Acme Shoes", "admin_keys": ["0x" + KEYS[1].hex()]}],
        "validators": [{"name": f"v{i}", "organisation": "platform", "public_key": "0x" + KEYS[i].hex(),
                        "p2p_address": f"127.0.0.1:{26600 + i}", "rpc_address": f"127.0.0.1:{8545 + i}"} for i in range(4)],
        "accounts": [{"public_key": "0x" + KEYS[4].hex(), "organisation": "acme", "roles": ["MERCHANT"], "balance": "5000"},
                     {"public_key": "0x" + KEYS[5].hex(), "organisation": "platform", "roles": ["BUYER", "AUDITOR"], "balance": 10}],
        "contracts": {"settings": {"fee_bps": 250}},
    }


def test_round_trip_through_a_file(tmp_path):
    genesis = parse_genesis(sample())
    path = tmp_path / "genesis.json"
    save_genesis(genesis, str(path))
    again = load_genesis(str(path))
    assert again == genesis and again.genesis_hash == genesis.genesis_hash
    assert again.validator_keys == KEYS[:4]
    assert again.accounts[0].balance == 5000


def test_hash_changes_with_content():
    other = sample()
    other["accounts"][0]["balance"] = "5001"
    assert parse_genesis(other).genesis_hash != parse_genesis(sample()).genesis_hash


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("chain_id"), "missing required key 'chain_id'"),
    (lambda d: d.update(chain_id="bad id!"), "chain_id: expected 1..64 characters"),
    (lambda d: d.update(chain_id="shop\n"), "chain_id: expected 1..64 characters"),  # `$` matched before a newline
    (lambda d: d["organisations"][0].update(id="platform\n"), "organisations[0].id: expected a lowercase id"),
    (lambda d: d.update(genesis_time_ms=-1), "genesis_time_ms: expected a non-negative integer"),
    (lambda d: d["validators"][2].update(public_key="0x00"), "validators[2].public_key: expected 32 bytes as 0x-hex, found 1"),
    (lambda d: d["validators"][1].update(p2p_address="localhost"), "validators[1].p2p_address: expected host:port"),
    (lambda d: d["validators"][3].update(public_key=d["validators"][0]["public_key"]), "validators[3].public_key: the same key"),
    (lambda d: d["validators"][0].update(organisation="nobody"), "validators[0].organisation: expected one of the organisations"),
    (lambda d: d["accounts"][1]["roles"].append("WIZARD"), "accounts[1].roles[2]: expected one of"),
    (lambda d: d["accounts"][0].update(balance="-5"), "accounts[0].balance: expected an integer amount"),
    (lambda d: d["accounts"][1].update(public_key=d["accounts"][0]["public_key"]), "accounts[1].public_key: account"),
    (lambda d: d.update(validators=[]), "validators: expected at least one entry"),
    (lambda d: d.update(extra=1), "unknown key"),
    (lambda d: d["organisations"][1].update(id="platform"), "organisations[1].id: organisation 'platform' is listed twice"),
    (lambda d: d.update(contracts={"settings": {"x": 1.5}}), "contracts.settings: floats are not allowed"),
])
def test_bad_files_point_at_the_field(mutate, message):
    doc = copy.deepcopy(sample())
    mutate(doc)
    with pytest.raises(GenesisError) as info:
        parse_genesis(doc)
    assert message in str(info.value)


def test_unreadable_and_invalid_json(tmp_path):
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(str(tmp_path / "missing.json"))
    path = tmp_path / "g.json"
    path.write_text("{not json")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(str(path))
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(GenesisError, match="a JSON object"):
        load_genesis(str(path))


def test_a_draft_may_lack_organisations_and_validators_but_not_valid_entries():
    empty = {**sample(), "organisations": [], "validators": [], "accounts": []}
    assert parse_genesis(empty, draft=True).validators == ()
    with pytest.raises(GenesisError, match="organisations: expected at least one entry"):
        parse_genesis(empty)
    no_validators = {**sample(), "validators": []}
    with pytest.raises(GenesisError, match="validators: expected at least one entry"):
        parse_genesis(no_validators)
    wrong = copy.deepcopy(sample())
    wrong["validators"][1]["organisation"] = "ghost"
    with pytest.raises(GenesisError, match=r"validators\[1\].organisation: expected one of the organisations"):
        parse_genesis(wrong, draft=True)
