"""Node registry: the non-validator nodes (observers) each member organisation runs.

How it works: an admin key of an active organisation registers one of its nodes by
the node's public key, a name and the p2p address validators reach it at
(``register``), and removes it again (``remove``). No vote is needed: a node that only
follows the chain changes nothing, so, as a Fabric organisation issues its own peers'
identities, each member vouches for its own nodes, up to ``MAX_NODES_PER_ORG``.

Validators accept p2p connections only from the validators of the schedule and from
the registered nodes of active organisations, and send those nodes the votes and
blocks they need to follow (the node reads ``nodes`` / ``node_keys`` / ``node_count``
directly: contracts_vm.system.member_nodes). So a new member's observer joins a
running network without any validator's configuration changing, and a removed
organisation's nodes are cut off by that read, without a write here. Registering the
key of a future validator is the usual path: it syncs as an observer, then a governance
proposal adds it to the validator set.
"""

KEY_BYTES = 32
#: Most active registered nodes of one organisation.
MAX_NODES_PER_ORG = 8
#: Most node keys ever registered (removed ones keep their record).
MAX_NODE_RECORDS = 1024
#: Longest node name and p2p address.
MAX_NAME = 64
MAX_ADDRESS = 256


class Node(Record):
    name: str
    organisation: str
    p2p_address: str
    active: bool
    registered_at: int


nodes: Map[bytes, Node]
node_keys: Map[int, bytes]
node_count: int
active_per_org: Map[str, int]


def _admin_org() -> str:
    org = call("identity", "admin_org", ctx.sender)
    require(org != "", "sender is not an admin key of an active organisation; only organisation admins "
            + "register and remove their nodes")
    return org


@public
def register(key: bytes, name: str, p2p_address: str) -> None:
    """Register (or re-address) a node of the sender's organisation."""
    org = _admin_org()
    require(len(key) == KEY_BYTES, "a node key is 32 bytes, found " + str(len(key)))
    require(len(name) >= 1 and len(name) <= MAX_NAME, "node names are 1..64 characters, found " + str(len(name)))
    require(len(p2p_address) >= 1 and len(p2p_address) <= MAX_ADDRESS,
            "p2p_address must be 1..256 characters, found " + str(len(p2p_address)))
    old = self.nodes.get(key)
    if old == None:
        require(self.node_count < MAX_NODE_RECORDS, "the registry holds at most 1024 node keys")
        self.node_keys[self.node_count] = key
        self.node_count = self.node_count + 1
    else:
        require(old.organisation == org, "node 0x" + key.hex() + " belongs to organisation " + old.organisation
                + ", not " + org)
    if old == None or not old.active:
        count = self.active_per_org.get(org, 0)
        require(count < MAX_NODES_PER_ORG, "organisation " + org + " already has " + str(count)
                + " registered nodes (at most 8); remove one first")
        self.active_per_org[org] = count + 1
    self.nodes[key] = Node(name=name, organisation=org, p2p_address=p2p_address, active=True,
                           registered_at=ctx.height)
    emit(NodeRegistered, key=key, name=name, org=org, p2p_address=p2p_address)


@public
def remove(key: bytes) -> None:
    """Remove a node of the sender's organisation: validators disconnect it after the block."""
    org = _admin_org()
    node = self.nodes.get(key)
    require(node != None and node.active, "node 0x" + key.hex() + " is not registered")
    require(node.organisation == org, "node 0x" + key.hex() + " belongs to organisation " + node.organisation
            + ", not " + org)
    node.active = False
    self.nodes[key] = node
    self.active_per_org[org] = self.active_per_org.get(org, 1) - 1
    emit(NodeRemoved, key=key, org=org)


@view
def get_node(key: bytes) -> any:
    return self.nodes.get(key)


@view
def list_nodes(from_index: int, count: int) -> list:
    """[[key, node record], ...] of registered keys from ``from_index`` on (at most 50; removed ones too)."""
    require(count >= 0 and count <= 50, "count must be 0..50")
    out = []
    i = max(from_index, 0)
    while i < self.node_count and len(out) < count:
        k = self.node_keys[i]
        out.append([k, self.nodes[k]])
        i += 1
    return out


@view
def node_total() -> int:
    return self.node_count
