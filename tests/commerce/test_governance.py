"""Governance: organisations vote through their admin keys; the contract executes what passed."""

from __future__ import annotations

from contracts_vm.api import CallContext, execute_call, execute_view
from contracts_vm.compiler import compile_source
from contracts_vm.deploy import encode_deploy, make_deploy
from contracts_vm.system import compiled_code, install_system_contracts, validator_directory, validator_schedule
from contracts_vm.machine import storage_prefix
from contracts_vm.memstate import MemoryState
from contracts_vm.values import from_bytes
from ledger.fees import read_fee_schedule
from ledger.genesis import Genesis, GenesisAccount, Organisation, ValidatorInfo
from ledger.types import MAX_VALIDATORS
from ledger.validator_set import ValidatorSchedule
from tests.commerce_harness import key

ORGS = ("platform", "shops", "logistics", "service")
DAY_MS = 86_400_000
GAS = 20_000_000


class Gov:
    """Four organisations (platform has two admin keys), four validators, block time in ms."""

    def __init__(self) -> None:
        self.admins = {o: [key("admin-" + o)] for o in ORGS}
        self.admins["platform"].append(key("admin-platform-2"))
        orgs = tuple(Organisation(o, o.title(), tuple(self.admins[o])) for o in ORGS)
        self.vals = [key("val-" + o) for o in ORGS]
        validators = tuple(ValidatorInfo("node-" + o, o, k, f"{o}:26600", f"{o}:8545") for o, k in zip(ORGS, self.vals))
        self.buyer = key("buyer")
        accts = (GenesisAccount(key("platform-acct"), "platform", ("PLATFORM",), 0, None),
                 GenesisAccount(self.buyer, "platform", ("BUYER",), 5_000, None))
        self.state = MemoryState()
        install_system_contracts(self.state, Genesis("gov-test", 0, orgs, validators, accts, {}))
        self.height, self.now = 1, 1_000
        self.events: list = []

    def call(self, who: bytes, contract: str, method: str, *args):
        ctx = CallContext(sender=who, height=self.height, timestamp_ms=self.now, chain_id="gov-test")
        r = execute_call(self.state, contract, method, list(args), ctx, GAS)
        if r.ok:
            self.events.extend(r.events)
        return r

    def ok(self, who, contract, method, *args):
        r = self.call(who, contract, method, *args)
        assert r.ok, f"{method}: {r.error}: {r.error_message}"
        return r.return_value

    def err(self, who, contract, method, *args) -> str:
        r = self.call(who, contract, method, *args)
        assert not r.ok, f"{method} should fail"
        return r.error_message

    def view(self, contract, method, *args):
        r = execute_view(self.state, contract, method, list(args), CallContext(sender=b"\x01" * 32, height=self.height,
                                                                               timestamp_ms=self.now), GAS)
        assert r.ok, r.error_message
        return r.return_value

    def admin(self, org: str, i: int = 0) -> bytes:
        return self.admins[org][i]

    def propose(self, kind, args, org="platform"):
        return self.ok(self.admin(org), "governance", "propose", kind, args, "why: " + kind)

    def pass_(self, pid, orgs=("platform", "shops", "logistics")):
        for o in orgs:
            self.ok(self.admin(o), "governance", "vote", pid, True)

    def wait(self, ms=DAY_MS, blocks=1):
        self.now += ms
        self.height += blocks

    def enact(self, kind, args, payload=b"", orgs=("platform", "shops", "logistics")):
        pid = self.propose(kind, args)
        self.pass_(pid, orgs)
        self.wait()
        self.ok(self.admin("service"), "governance", "execute", pid, payload)
        return pid

    def names(self):
        return [e[1] for e in self.events]


def test_threshold_is_two_thirds_of_organisations_and_one_vote_each():
    g = Gov()
    assert g.view("governance", "required_votes") == 3            # ceil(2/3 * 4)
    pid = g.propose("settings", ["orders", {"fee_bps": 300}])
    assert g.ok(g.admin("platform"), "governance", "vote", pid, True) == "open"
    assert "already voted" in g.err(g.admin("platform", 1), "governance", "vote", pid, True)
    assert "not an admin key" in g.err(g.buyer, "governance", "vote", pid, True)
    assert "not an admin key" in g.err(key("platform-acct"), "governance", "vote", pid, True)
    assert g.ok(g.admin("shops"), "governance", "vote", pid, True) == "open"
    assert "only a passed proposal" in g.err(g.admin("shops"), "governance", "execute", pid, b"")
    assert g.ok(g.admin("logistics"), "governance", "vote", pid, True) == "passed"
    assert "timelocked" in g.err(g.admin("shops"), "governance", "execute", pid, b"")
    g.wait(DAY_MS - 1)
    assert "timelocked" in g.err(g.admin("shops"), "governance", "execute", pid, b"")   # block time, not blocks
    g.wait(1)
    g.ok(g.buyer, "governance", "execute", pid, b"")
    assert "executed" in g.err(g.admin("shops"), "governance", "execute", pid, b"")    # once only
    assert from_bytes(g.state.get(storage_prefix("orders") + b"fee_bps/")) == 300
    for name in ("ProposalCreated", "Voted", "ProposalPassed", "ProposalExecuted", "SettingsChanged"):
        assert name in g.names()


def test_expiry_and_cancel():
    g = Gov()
    pid = g.propose("remove_org", ["service"])
    g.wait(7 * DAY_MS)
    assert "expired" in g.err(g.admin("shops"), "governance", "vote", pid, True)
    g.ok(g.buyer, "governance", "expire", pid)
    assert g.view("governance", "get_proposal", pid)["state"] == "expired" and "ProposalExpired" in g.names()
    other = g.propose("remove_org", ["service"])
    assert "only the proposer" in g.err(g.admin("shops"), "governance", "cancel", other)
    g.ok(g.admin("platform"), "governance", "cancel", other)


def test_no_single_key_changes_settings_or_calls_governed_methods():
    g = Gov()
    msg = g.err(key("platform-acct"), "orders", "configure", 1, 1, 3600, 3600, b"\x01" * 32)
    assert "only genesis" in msg
    assert g.call(g.admin("platform"), "orders", "gov_configure", {"fee_bps": 1}).error == "PermissionDenied"
    assert g.call(g.admin("platform"), "identity", "gov_remove_org", "shops").error == "PermissionDenied"


def test_attack_a_lone_platform_admin_cannot_upgrade_the_ledger():
    g = Gov()
    evil = compile_source((_src("ledger.sc.py")) + "\n\n@public\ndef steal(frm: bytes, amount: int) -> None:\n"
                          "    self.balances[frm] = self.balances.get(frm, 0) - amount\n").code
    payload = encode_deploy(make_deploy("upgrade", "ledger", evil))
    before = g.view("ledger", "balance_of", g.buyer)
    pid = g.propose("code", [payload])
    g.ok(g.admin("platform"), "governance", "vote", pid, True)
    assert "already voted" in g.err(g.admin("platform", 1), "governance", "vote", pid, True)
    g.wait(30 * DAY_MS)
    assert "only a passed proposal" in g.err(g.admin("platform"), "governance", "execute", pid, payload)
    assert g.view("ledger", "balance_of", g.buyer) == before
    assert g.call(g.buyer, "ledger", "steal", g.buyer, 1).error == "UnknownMethod"


def _src(name: str) -> str:
    from contracts_vm.system import contract_source
    return contract_source(name)


def test_code_upgrade_shows_the_hash_and_refuses_another_payload():
    g = Gov()
    v2 = compile_source(_src("reviews.sc.py") + "\n\n@view\ndef version() -> int:\n    return 2\n").code
    tx = make_deploy("upgrade", "reviews", v2)
    payload = encode_deploy(tx)
    pid = g.propose("code", [payload])
    shown = g.view("governance", "get_proposal", pid)["code"]
    assert shown["code_hash"] == tx.code_hash and shown["name"] == "reviews" and shown["abi"] == tx.abi
    g.pass_(pid)
    g.wait()
    other = encode_deploy(make_deploy("upgrade", "reviews", compiled_code("reviews.sc.py")))
    assert "installs code hash" in g.err(g.admin("shops"), "governance", "execute", pid, other)
    g.ok(g.admin("shops"), "governance", "execute", pid, payload)
    assert g.view("reviews", "version") == 2 and "ContractUpgraded" in g.names()


def test_admit_and_remove_organisations_change_who_counts():
    g = Gov()
    newcomer = key("admin-newco")
    g.admins["newco"] = [newcomer]
    g.enact("admit_org", ["newco", [newcomer]])
    assert g.view("identity", "admin_org", newcomer) == "newco"
    assert g.view("governance", "required_votes") == 4            # ceil(2/3 * 5)
    pid = g.propose("settings", ["governance", {"timelock_s": 60}])
    g.ok(newcomer, "governance", "vote", pid, True)               # the new member votes
    g.ok(g.admin("shops"), "governance", "vote", pid, True)
    g.enact("remove_org", ["service"], orgs=("platform", "shops", "logistics", "newco"))   # 4 orgs again: 3 needed
    assert g.view("identity", "admin_org", g.admin("service")) == ""
    g.enact("remove_org", ["newco"])                              # newco's vote on pid no longer counts
    assert g.view("governance", "required_votes") == 2            # ceil(2/3 * 3)
    assert g.ok(g.admin("logistics"), "governance", "vote", pid, True) == "passed"   # shops + logistics
    g.wait()
    g.ok(g.buyer, "governance", "execute", pid, b"")
    assert g.view("governance", "get_settings")["timelock_s"] == 60


def test_role_policy_and_fees():
    g = Gov()
    g.enact("role_policy", [["PLATFORM", "TREASURY", "AUDITOR"]])
    assert g.view("identity", "platform_only_roles") == ["PLATFORM", "TREASURY", "AUDITOR"]
    g.ok(g.admin("shops"), "identity", "register", key("arb-shops"), ["ARBITER"], b"")   # no longer platform-only
    g.enact("fees", [3, 4, g.buyer])
    s = read_fee_schedule(g.state)
    assert (s.gas_price, s.byte_price, s.collector) == (3, 4, g.buyer) and "FeesChanged" in g.names()


def test_validator_schedule_add_remove_rotate_and_direct_reads_agree():
    g = Gov()
    assert validator_schedule(g.state) == [(1, g.vals)]
    g.height = 100
    new = key("val-new")
    pid = g.propose("add_validator", [new, "node-new", "shops", "new:26600", "new:8545"])
    g.pass_(pid)
    g.wait(blocks=0)
    g.ok(g.buyer, "governance", "execute", pid, b"")             # executed at height 100
    assert validator_schedule(g.state)[-1] == (110, g.vals + [new])
    g.enact("remove_validator", [g.vals[1]])                      # executed at 101; pending set at 110 -> 111
    rotated = key("val-rotated")
    g.enact("rotate_validator", [g.vals[0], rotated])             # executed at 102 -> 112
    sched = validator_schedule(g.state)
    assert sched == [(1, g.vals), (110, g.vals + [new]), (111, [g.vals[0], g.vals[2], g.vals[3], new]),
                     (112, [rotated, g.vals[2], g.vals[3], new])]
    schedule = ValidatorSchedule.from_pairs(sched)
    assert list(schedule.at(109)) == g.vals and list(schedule.at(111)) == sched[2][1]
    assert [[h, k] for h, k in sched] == g.view("governance", "get_schedule", 0, 50)
    assert list(schedule.at(500)) == g.view("governance", "validators_at", 500)
    directory = validator_directory(g.state)
    assert set(directory) == set(g.vals) | {new, rotated}
    for k, v in directory.items():
        assert g.view("governance", "get_validator", k) == v
    assert directory[rotated]["name"] == "node-platform" and directory[new]["organisation"] == "shops"
    # invalid sets, refused at proposal time with clear messages
    assert "already in the latest validator set" in g.err(g.admin("shops"), "governance", "propose", "add_validator",
                                                          [new, "x", "shops", "a", "b"], "")
    assert "not in the latest validator set" in g.err(g.admin("shops"), "governance", "propose", "remove_validator",
                                                      [g.vals[1]], "")
    assert "32-byte" in g.err(g.admin("shops"), "governance", "propose", "rotate_validator", [rotated, b"x"], "")
    assert "[old key, new key] or [old key, new key, p2p_address, rpc_address], found 3" in g.err(
        g.admin("shops"), "governance", "propose", "rotate_validator", [rotated, key("v3"), "h:1"], "")
    assert "ValidatorSetScheduled" in g.names()


def test_a_key_rotated_to_another_machine_takes_its_addresses_and_keeps_name_and_organisation():
    g = Gov()
    moved = key("val-moved")
    g.enact("rotate_validator", [g.vals[2], moved, "newhost:26600", "newhost:8545"])
    entry = validator_directory(g.state)[moved]
    assert entry == {"name": "node-logistics", "organisation": "logistics", "p2p_address": "newhost:26600",
                     "rpc_address": "newhost:8545"}
    assert validator_directory(g.state)[g.vals[2]]["p2p_address"] == "logistics:26600"  # the old entry stays


def test_limits_match_the_ledger():
    assert f"MAX_VALIDATORS = {MAX_VALIDATORS}\n" in _src("governance.sc.py")


def test_recover_account_is_asked_by_the_accounts_organisation_voted_and_proven_by_the_new_key():
    from contracts_vm.system import key_proof_message, resolve_signer
    from ledger.crypto import SigningKey

    g = Gov()
    lost, found = SigningKey.from_label("buyer"), SigningKey.from_label("buyer-recovered")
    proof = found.sign_raw(key_proof_message("gov-test", g.buyer, found.public_key))
    args = [g.buyer, found.public_key, proof]
    assert "only an admin of organisation platform" in g.err(g.admin("shops"), "governance", "propose",
                                                             "recover_account", args, "not ours")
    wrong = found.sign_raw(key_proof_message("other-chain", g.buyer, found.public_key))
    assert "the proof is not the new key's signature" in g.err(
        g.admin("platform"), "governance", "propose", "recover_account", [g.buyer, found.public_key, wrong], "x")
    assert "expected args [account id, new key, proof]" in g.err(
        g.admin("platform"), "governance", "propose", "recover_account", [g.buyer, found.public_key], "x")
    assert "no account" in g.err(g.admin("platform"), "governance", "propose", "recover_account",
                                 [key("nobody"), found.public_key, proof], "x")
    # Passed but not executed: no single organisation moved anything.
    pid = g.propose("recover_account", args)
    g.pass_(pid, ("platform", "shops"))
    assert resolve_signer(g.state, lost.public_key).ok
    g.ok(g.admin("logistics"), "governance", "vote", pid, True)
    g.wait()
    g.ok(g.admin("service"), "governance", "execute", pid, b"")
    assert "AccountRecovered" in g.names()
    assert resolve_signer(g.state, found.public_key).account == g.buyer
    assert resolve_signer(g.state, lost.public_key).refusal[0] == "RotatedKey"
    assert g.view("ledger", "balance_of", g.buyer) == 5_000
    # The same proof cannot move the account again: the key is taken now.
    assert "already an account's key" in g.err(g.admin("platform"), "governance", "propose", "recover_account",
                                               args, "again")
