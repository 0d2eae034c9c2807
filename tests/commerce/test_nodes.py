"""The node registry: each organisation vouches for its own observer nodes, no vote needed."""

from __future__ import annotations

from contracts_vm.system import member_nodes
from tests.commerce.test_governance import Gov
from tests.commerce_harness import key


def _view_nodes(g: Gov) -> dict[bytes, dict]:
    """The contract's list_nodes view, filtered as the node's direct read filters (active nodes of active orgs)."""
    out = {}
    for k, rec in g.view("nodes", "list_nodes", 0, 50):
        if rec["active"] and g.view("identity", "is_org_active", rec["organisation"]):
            out[k] = {f: rec[f] for f in ("name", "organisation", "p2p_address")}
    return out


def test_an_org_admin_registers_readdresses_and_removes_its_own_nodes():
    g = Gov()
    obs = key("observer-shops")
    g.ok(g.admin("shops"), "nodes", "register", obs, "shops-observer", "10.0.0.9:26600")
    assert member_nodes(g.state) == {obs: {"name": "shops-observer", "organisation": "shops",
                                           "p2p_address": "10.0.0.9:26600"}} == _view_nodes(g)
    g.ok(g.admin("shops"), "nodes", "register", obs, "shops-observer", "10.0.0.10:26600")
    assert member_nodes(g.state)[obs]["p2p_address"] == "10.0.0.10:26600"
    assert g.names().count("NodeRegistered") == 2
    g.ok(g.admin("shops"), "nodes", "remove", obs)
    assert member_nodes(g.state) == {} == _view_nodes(g)
    assert g.view("nodes", "get_node", obs)["active"] is False


def test_only_the_owning_org_admin_may_register_or_remove_and_limits_hold():
    g = Gov()
    obs = key("observer-shops")
    assert "only organisation admins" in g.err(g.buyer, "nodes", "register", obs, "x", "h:1")
    g.ok(g.admin("shops"), "nodes", "register", obs, "shops-observer", "h:1")
    assert "belongs to organisation shops, not logistics" in g.err(g.admin("logistics"), "nodes", "remove", obs)
    assert "belongs to organisation shops" in g.err(g.admin("logistics"), "nodes", "register", obs, "mine", "h:2")
    assert "32 bytes, found 5" in g.err(g.admin("shops"), "nodes", "register", b"short", "x", "h:1")
    assert "p2p_address must be 1..256" in g.err(g.admin("shops"), "nodes", "register", key("o2"), "x", "")
    for i in range(7):
        g.ok(g.admin("shops"), "nodes", "register", key(f"more-{i}"), f"n{i}", "h:1")
    message = g.err(g.admin("shops"), "nodes", "register", key("ninth"), "n9", "h:1")
    assert "already has 8 registered nodes (at most 8)" in message
    g.ok(g.admin("shops"), "nodes", "remove", key("more-0"))
    g.ok(g.admin("shops"), "nodes", "register", key("ninth"), "n9", "h:1")
    assert len(member_nodes(g.state)) == 8 == len(_view_nodes(g))


def test_a_removed_organisations_nodes_drop_out_without_a_write_to_the_registry():
    g = Gov()
    obs = key("observer-service")
    g.ok(g.admin("service"), "nodes", "register", obs, "svc-observer", "h:1")
    g.enact("remove_org", ["service"])
    assert member_nodes(g.state) == {} == _view_nodes(g)
    assert g.view("nodes", "get_node", obs)["active"] is True
    assert "not an admin key of an active organisation" in g.err(g.admin("service"), "nodes", "register", obs, "x", "h:1")
