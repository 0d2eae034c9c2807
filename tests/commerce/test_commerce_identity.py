"""Identity: admission reads agree with the contract; revoked accounts are stopped in contracts."""

from __future__ import annotations

from contracts_vm.system import account_of, is_registered, is_registered_view, resolve_signer
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


def test_direct_resolution_agrees_with_the_views_across_rotations_and_recovery_checks():
    c = Chain()
    buyer = c.keys["buyer1"]
    first = c.rotate("buyer1", "buyer1-a")
    second = c.rotate("buyer1", "buyer1-b")
    retired_first = c.height
    for k in [buyer, first, second, c.admins["shops"], h("nobody")]:
        assert is_registered(c.state, k) == is_registered_view(c.state, k), k
        found = c.view("identity", "account_of", k)
        assert account_of(c.state, k) == (found[0] if found else k)
    assert [is_registered(c.state, k) for k in (buyer, first, second)] == [False, False, True]
    assert resolve_signer(c.state, first).refusal == (
        "RotatedKey", f"key {first.hex()} was rotated out of account {buyer.hex()} at height {retired_first}; "
                      f"sign with the account's current key")
    acct = c.view("identity", "get_account", buyer)
    assert (acct["signing_key"], acct["rotations"], acct["roles"]) == (second, 2, ["BUYER"])
    hint = c.err("admin-platform", "identity", "revoke_account", second).message
    assert hint == f"key 0x{second.hex()} signs for account 0x{buyer.hex()}; name the account by its id"
    # A retired key can never be registered again, nor become another account's key.
    assert "already an account's key" in c.err("admin-platform", "identity", "register", first, ["BUYER"], b"").message
    other = SigningKey.from_label("buyer1-a")
    assert "already an account's key" in c.err("buyer2", "identity", "rotate_signing_key", other.public_key,
                                               c.key_proof(c.keys["buyer2"], other)).message
    assert "organisation admin key" in c.err("buyer2", "identity", "check_key_change", c.keys["buyer2"],
                                             c.admins["shops"], b"\x00" * 64).message


def test_an_admin_key_that_is_also_an_account_stays_the_organisations_admin_after_rotation():
    """As in the devnet genesis, an organisation admin key may be an account too: admin_of is
    keyed by the id, so the admin role travels with the account to its new key."""
    c = Chain()
    shop_admin = c.admins["shops"]
    c.ok("admin-platform", "identity", "register", shop_admin, ["BUYER"], b"")
    new_key = c.rotate(shop_admin, "shops-admin-rotated")
    assert c.view("identity", "admin_org", c.account(new_key)) == "shops"
    c.ok(new_key, "identity", "register", h("new shop"), ["MERCHANT"], b"")
    assert c.view("identity", "get_account", h("new shop"))["org"] == "shops"
    assert c.err(shop_admin, "identity", "register", h("other"), ["MERCHANT"], b"").name == "RotatedKey"


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
