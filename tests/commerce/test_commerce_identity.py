"""Identity: admission reads agree with the contract; revoked accounts are stopped in contracts."""

from __future__ import annotations

from contracts_vm.system import is_registered, is_registered_view
from ledger.crypto import SigningKey
from tests.commerce_harness import Chain, h


def test_direct_admission_read_agrees_with_the_view():
    c = Chain()
    newcomer = SigningKey.from_label("newcomer").public_key
    candidates = list(c.keys.values()) + list(c.admins.values()) + [newcomer, h("nobody"), b"short"]
    c.ok("admin-platform", "identity", "register", newcomer, ["BUYER"], b"")
    c.ok("admin-platform", "identity", "revoke_account", c.keys["buyer3"])
    for k in candidates:
        assert is_registered(c.state, k) == is_registered_view(c.state, k), k
    assert is_registered(c.state, newcomer) and not is_registered(c.state, c.keys["buyer3"])
    assert not is_registered(c.state, h("nobody")) and is_registered(c.state, c.admins["logistics"])


def test_revoked_buyer_cannot_act_on_its_order():
    c = Chain()
    c.publish_terms()
    oid = c.to_delivered()
    c.ok("admin-platform", "identity", "revoke_account", c.keys["buyer1"])
    assert c.err("buyer1", "orders", "confirm", oid).message == "sender is not an active registered account"
    assert c.err("buyer1", "orders", "dispute", oid, h("e")).message == "sender is not an active registered account"
    assert c.place("buyer1").message == "only a BUYER places orders"


def test_revoked_merchant_takes_no_orders_and_role_revocation_bites():
    c = Chain()
    c.publish_terms()
    c.ok("admin-shops", "identity", "revoke_role", c.keys["merchant1"], "MERCHANT")
    assert c.place().message == "seller is not an active MERCHANT"
    c.ok("admin-shops", "identity", "grant_role", c.keys["merchant1"], "MERCHANT")
    assert isinstance(c.place(), int)


def test_admin_of_one_org_cannot_touch_another():
    c = Chain()
    assert c.err("admin-logistics", "identity", "revoke_account", c.keys["merchant1"]).message.startswith(
        "account belongs to organisation shops")
    assert c.err("buyer1", "identity", "register", h("x"), ["BUYER"], b"").message == \
        "sender is not an organisation admin"
    assert c.err("admin-platform", "identity", "register", h("y")[:31], ["BUYER"], b"").message.startswith(
        "account keys are 32 bytes")
    assert c.err("admin-platform", "identity", "register", h("y"), ["WIZARD"], b"").message == "unknown role WIZARD"
    assert c.err("admin-platform", "identity", "register", h("y"), ["BUYER"], b"\x01" * 31).message.startswith(
        "encryption key must be empty or 32 bytes")


def test_genesis_install_is_deterministic():
    from contracts_vm.api import get_contract_info
    from contracts_vm.system import SYSTEM_CONTRACTS

    a, b = Chain(), Chain()
    assert a.state.snapshot() == b.state.snapshot()
    for name, _file, caps in SYSTEM_CONTRACTS:
        info = get_contract_info(a.state, name)
        assert info is not None and info["capabilities"] == sorted(caps)


def test_system_code_hashes_do_not_depend_on_the_checkout_path():
    from contracts_vm.compiler import compile_source
    from contracts_vm.system import SYSTEM_CONTRACTS, compiled_code, contract_source

    for _name, file_name, _caps in SYSTEM_CONTRACTS:
        assert compile_source(contract_source(file_name), "/elsewhere/" + file_name).code == compiled_code(file_name)
