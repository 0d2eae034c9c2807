"""`shopchain genesis ...`: a consortium assembles its genesis from public keys, in process.

Four organisations, each with a fresh admin key, an account and a validator, are added
step by step to a draft; the finalized file loads with ``load_genesis``, a Chain starts
from it, and the printed hash is the genesis hash that ``node init`` prints. Every
refused step names what was expected and what was found, exits nonzero and leaves the
draft byte for byte as it was.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.output import EXIT_USER
from ledger.crypto import SigningKey
from ledger.genesis import load_genesis
from ledger.hexfmt import to_hex
from ledger.storage.kv import MemoryKV
from node.core.chain import Chain

ORGS = [("platform", "Example Platform Ltd", "PLATFORM"), ("acme", "Acme Outdoor Gear", "MERCHANT"),
        ("swiftship", "SwiftShip Logistics", "CARRIER"), ("fairplay", "FairPlay Arbitration", "ARBITER")]
GENESIS_TIME = "2027-01-01T00:00:00Z"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, result.output + result.stderr
    return result


def hex_key(key: SigningKey) -> str:
    return to_hex(key.public_key)


@pytest.fixture(scope="module")
def members():
    """Per organisation: an admin key, an account key and a node key (fresh, not derived from labels)."""
    return {oid: {"admin": SigningKey.generate(), "account": SigningKey.generate(), "node": SigningKey.generate()}
            for oid, _, _ in ORGS}


def assemble(path: str, members: dict) -> None:
    """The whole consortium, one command per step, in a fixed order."""
    ok("genesis", "new", path, "--chain-id", "consortium-1", "--genesis-time", GENESIS_TIME)
    for oid, name, _ in ORGS:
        ok("genesis", "add-org", path, "--id", oid, "--name", name, "--admin-key", hex_key(members[oid]["admin"]))
    for oid, _, role in ORGS:
        ok("genesis", "add-account", path, "--key", hex_key(members[oid]["account"]), "--org", oid,
           "--role", role, "--balance", "1000.00")
    ok("genesis", "add-account", path, "--key", hex_key(members["platform"]["admin"]), "--org", "platform",
       "--role", "treasury", "--role", "AUDITOR")
    for i, (oid, _, _) in enumerate(ORGS):
        ok("genesis", "add-validator", path, "--name", f"{oid}-v", "--org", oid, "--key",
           hex_key(members[oid]["node"]), "--p2p", f"10.0.0.{i + 1}:26600", "--rpc", f"10.0.0.{i + 1}:8545")


@pytest.fixture
def draft(tmp_path, members):
    path = str(tmp_path / "draft.json")
    assemble(path, members)
    return path


def test_a_four_organisation_consortium_is_assembled_and_finalized(draft, tmp_path, members):
    out = str(tmp_path / "genesis.json")
    result = ok("genesis", "finalize", draft, "--out", out, "--json")
    printed = json.loads(result.output)
    genesis = load_genesis(out)
    assert printed["genesis_hash"] == to_hex(genesis.genesis_hash)
    assert (printed["organisations"], printed["validators"], printed["accounts"]) == (4, 4, 5)
    assert [o.id for o in genesis.organisations] == [oid for oid, _, _ in ORGS]
    assert [o.admin_keys for o in genesis.organisations] == [(members[oid]["admin"].public_key,) for oid, _, _ in ORGS]
    assert genesis.validator_keys == [members[oid]["node"].public_key for oid, _, _ in ORGS]
    assert [v.p2p_address for v in genesis.validators] == [f"10.0.0.{i}:26600" for i in range(1, 5)]
    accounts = {a.public_key: a for a in genesis.accounts}
    for oid, _, role in ORGS:
        account = accounts[members[oid]["account"].public_key]
        assert (account.organisation, account.roles, account.balance) == (oid, (role,), 1000_00)
    assert accounts[members["platform"]["admin"].public_key].roles == ("AUDITOR", "TREASURY")
    assert genesis.genesis_time_ms == 1798761600000
    chain = Chain(MemoryKV(), genesis)
    assert chain.chain_id == "consortium-1" and chain.height == 0
    human = ok("genesis", "finalize", draft, "--out", out, "--force")
    assert f"genesis hash: {printed['genesis_hash']}" in human.output


def test_finalize_writes_the_canonical_file_a_node_writes(draft, tmp_path):
    from ledger.genesis import save_genesis

    ok("genesis", "finalize", draft)  # in place
    reference = str(tmp_path / "reference.json")
    save_genesis(load_genesis(draft), reference)
    with open(draft, "rb") as a, open(reference, "rb") as b:
        assert a.read() == b.read()


def test_two_members_with_the_same_inputs_get_the_same_hash(tmp_path, members):
    hashes, contents = [], []
    for who in ("alice", "bob"):
        os.makedirs(tmp_path / who)
        path = str(tmp_path / who / "draft.json")
        assemble(path, members)
        hashes.append(json.loads(ok("genesis", "finalize", path, "--json").output)["genesis_hash"])
        with open(path, "rb") as fh:
            contents.append(fh.read())
    assert hashes[0] == hashes[1]
    assert contents[0] == contents[1]


def test_node_init_prints_the_same_genesis_hash(draft, tmp_path):
    finalized = json.loads(ok("genesis", "finalize", draft, "--json").output)["genesis_hash"]
    as_json = json.loads(ok("node", "init", "--home", str(tmp_path / "home1"), "--genesis", draft, "--json").output)
    assert as_json["genesis_hash"] == finalized
    human = ok("node", "init", "--home", str(tmp_path / "home2"), "--genesis", draft).output
    assert f"genesis hash: {finalized}" in human


def test_members_make_node_keys_first_and_the_genesis_reads_them_from_their_homes(tmp_path, members):
    """The order a real consortium works in: node keys before the genesis, the genesis into the same homes."""
    homes = {oid: str(tmp_path / f"{oid}-home") for oid, _, _ in ORGS}
    keys = {}
    for i, (oid, _, _) in enumerate(ORGS):
        made = json.loads(ok("node", "init", "--home", homes[oid], "--p2p", f"10.0.0.{i + 1}:26600", "--json").output)
        assert made["genesis_hash"] is None and not made["in_validator_set"]
        keys[oid] = made["public_key"]
    assert "no genesis yet" in ok("node", "init", "--home", homes["acme"]).output  # again: keeps its key
    path = str(tmp_path / "draft.json")
    ok("genesis", "new", path, "--chain-id", "c2", "--genesis-time", "0")
    for i, (oid, name, _) in enumerate(ORGS):
        ok("genesis", "add-org", path, "--id", oid, "--name", name, "--admin-key", hex_key(members[oid]["admin"]))
        ok("genesis", "add-validator", path, "--name", f"{oid}-v", "--org", oid, "--node-home", homes[oid],
           "--p2p", f"10.0.0.{i + 1}:26600", "--rpc", f"10.0.0.{i + 1}:8545")
    finalized = json.loads(ok("genesis", "finalize", path, "--json").output)["genesis_hash"]
    assert [to_hex(k) for k in load_genesis(path).validator_keys] == [keys[oid] for oid, _, _ in ORGS]
    for oid, _, _ in ORGS:
        joined = json.loads(ok("node", "init", "--home", homes[oid], "--genesis", path, "--json").output)
        assert joined["in_validator_set"] and joined["public_key"] == keys[oid]
        assert joined["genesis_hash"] == finalized


def test_show_summarises_a_draft_and_a_complete_genesis(tmp_path, members):
    path = str(tmp_path / "draft.json")
    ok("genesis", "new", path, "--chain-id", "c1", "--genesis-time", "0")
    summary = json.loads(ok("genesis", "show", path, "--json").output)
    assert summary["complete"] is False and summary["genesis_hash"] is None
    assert "organisations" in summary["missing"]
    path2 = str(tmp_path / "full.json")
    assemble(path2, members)
    summary = json.loads(ok("genesis", "show", path2, "--json").output)
    assert summary["complete"] is True and summary["genesis_hash"] == to_hex(load_genesis(path2).genesis_hash)
    assert [v["name"] for v in summary["validator_list"]] == [f"{oid}-v" for oid, _, _ in ORGS]
    human = ok("genesis", "show", path2).output
    assert "acme-v" in human and summary["genesis_hash"] in human


def _refused(path: str, *args: str, expect: str) -> None:
    """The command fails with exit 1, says ``expect`` and leaves ``path`` unchanged."""
    with open(path, "rb") as fh:
        before = fh.read()
    result = run(*args)
    assert result.exit_code == EXIT_USER, result.output + result.stderr
    assert expect in result.stderr, result.stderr
    with open(path, "rb") as fh:
        assert fh.read() == before
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]


def test_add_steps_refuse_bad_input_and_leave_the_draft_unchanged(draft, members):
    other = hex_key(SigningKey.generate())
    v = ("--p2p", "10.0.0.7:26600", "--rpc", "10.0.0.7:8545")
    _refused(draft, "genesis", "add-org", draft, "--id", "newco", "--name", "N", "--admin-key", "0xzz",
             expect="--admin-key '0xzz' is not valid hex")
    _refused(draft, "genesis", "add-org", draft, "--id", "newco", "--name", "N", "--admin-key", "0x" + "ab" * 31,
             expect="has 31 bytes, expected 32")
    _refused(draft, "genesis", "add-org", draft, "--id", "newco", "--name", "N", "--admin-key", "ab" * 32,
             expect="expected 0x-hex")
    _refused(draft, "genesis", "add-org", draft, "--id", "acme", "--name", "Again", "--admin-key", other,
             expect="organisation 'acme' is already in")
    _refused(draft, "genesis", "add-org", draft, "--id", "New Co", "--name", "N", "--admin-key", other,
             expect="expected a lowercase id")
    _refused(draft, "genesis", "add-account", draft, "--key", other, "--org", "nobody", "--role", "BUYER",
             expect="unknown organisation 'nobody'")
    _refused(draft, "genesis", "add-account", draft, "--key", other, "--org", "acme", "--role", "KING",
             expect="--role 'KING': expected one of")
    _refused(draft, "genesis", "add-account", draft, "--key", hex_key(members["acme"]["account"]), "--org", "acme",
             "--role", "BUYER", expect="is already in")
    _refused(draft, "genesis", "add-account", draft, "--key", other, "--org", "acme", "--role", "BUYER",
             "--balance", "1.234", expect="more than 2 decimals")
    _refused(draft, "genesis", "add-validator", draft, "--name", "x", "--org", "nobody", "--key", other, *v,
             expect="unknown organisation 'nobody'")
    _refused(draft, "genesis", "add-validator", draft, "--name", "acme-v", "--org", "acme", "--key", other, *v,
             expect="validator name 'acme-v' is already in")
    _refused(draft, "genesis", "add-validator", draft, "--name", "x", "--org", "acme",
             "--key", hex_key(members["acme"]["node"]), *v, expect="is already validator 'acme-v'")
    _refused(draft, "genesis", "add-validator", draft, "--name", "x", "--org", "acme", "--key", other,
             "--p2p", "10.0.0.7", "--rpc", "10.0.0.7:8545", expect="expected host:port")
    _refused(draft, "genesis", "add-validator", draft, "--name", "x", "--org", "acme", *v,
             expect="exactly one of --key")
    _refused(draft, "genesis", "add-validator", draft, "--name", "x", "--org", "acme", "--node-home",
             os.path.join(os.path.dirname(draft), "no-such-home"), *v, expect="no config.toml")
    _refused(draft, "genesis", "new", draft, "--chain-id", "other", expect="already exists")


def test_new_checks_chain_id_and_time(tmp_path):
    path = str(tmp_path / "d.json")
    for args, expect in [(("--chain-id", "bad id!"), "chain_id: expected 1..64 characters"),
                         (("--chain-id", "c", "--genesis-time", "2027-01-01T00:00:00"), "has no time zone"),
                         (("--chain-id", "c", "--genesis-time", "tomorrow"), "expected milliseconds")]:
        result = run("genesis", "new", path, *args)
        assert result.exit_code == EXIT_USER and expect in result.stderr, result.stderr
        assert not os.path.exists(path)
    ok("genesis", "new", path, "--chain-id", "c", "--genesis-time", "1767225600000")
    ok("genesis", "new", path, "--chain-id", "c2", "--force")
    assert json.load(open(path))["chain_id"] == "c2"


def _edit(path: str, change) -> None:  # type: ignore[no-untyped-def]
    """What a hand edit (the thing the builder replaces) could do to a draft."""
    with open(path) as fh:
        doc = json.load(fh)
    change(doc)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)


def test_finalize_refuses_an_incomplete_or_wrong_draft_with_the_genesis_error(tmp_path, members):
    path = str(tmp_path / "d.json")
    ok("genesis", "new", path, "--chain-id", "c1", "--genesis-time", "0")
    _refused(path, "genesis", "finalize", path, expect="genesis organisations: expected at least one entry, found none")
    ok("genesis", "add-org", path, "--id", "acme", "--name", "Acme", "--admin-key", hex_key(members["acme"]["admin"]))
    _refused(path, "genesis", "finalize", path, expect="genesis validators: expected at least one entry, found none")
    out = str(tmp_path / "out.json")
    _refused(path, "genesis", "finalize", path, "--out", out, expect="validators: expected at least one entry")
    assert not os.path.exists(out)

    node = hex_key(members["acme"]["node"])
    ok("genesis", "add-validator", path, "--name", "v0", "--org", "acme", "--key", node,
       "--p2p", "10.0.0.1:26600", "--rpc", "10.0.0.1:8545")
    _edit(path, lambda d: d["validators"][0].update(organisation="ghost"))
    _refused(path, "genesis", "finalize", path,
             expect="genesis validators[0].organisation: expected one of the organisations ['acme'], found 'ghost'")
    _edit(path, lambda d: (d["validators"][0].update(organisation="acme"),
                           d["validators"].append({**d["validators"][0], "name": "v1"})))
    _refused(path, "genesis", "finalize", path, expect="genesis validators[1].public_key: the same key as validator 'v0'")
    _edit(path, lambda d: d["validators"].pop())
    ok("genesis", "finalize", path)
    missing = str(tmp_path / "missing.json")
    result = run("genesis", "finalize", missing)
    assert result.exit_code == EXIT_USER and "shopchain genesis new" in result.stderr


def test_a_home_without_its_genesis_yet_does_not_start(tmp_path):
    from node.ops.home import HomeError, load_home

    home = str(tmp_path / "early")
    ok("node", "init", "--home", home)
    with pytest.raises(HomeError, match="--genesis genesis.json"):
        load_home(home)


def test_node_init_observer_writes_a_node_that_never_signs(draft, tmp_path):
    from node.ops.home import load_home

    home = str(tmp_path / "auditor")
    made = json.loads(ok("node", "init", "--home", home, "--genesis", draft, "--observer", "--json").output)
    assert made["observer"] is True and not made["in_validator_set"]
    config, key, _ = load_home(home)
    assert config.get("node", "observer") is True
    human = ok("node", "init", "--home", str(tmp_path / "auditor2"), "--genesis", draft, "--observer").output
    assert "never signs" in human and "gov node add" in human
