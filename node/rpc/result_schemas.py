"""JSON Schemas of what the RPC methods answer: the shapes clients get named types for.

How it works: ``SCHEMAS`` holds one JSON Schema (draft-07 vocabulary, as OpenRPC uses)
per shape the views in node/rpc/views.py, node/reads.py and the handlers build: block,
header, certificate, transaction, receipt, proofs, status... Route-table entries name
their result with ``ref("Block")`` (or a small inline schema built from these), and
``build_document`` (node/rpc/openrpc.py) copies every schema a method reaches, through
its ``$ref`` chain, into ``components.schemas``. Objects list every key the view writes
and forbid others, so a view that grows a field without its schema fails
tests/node/test_openrpc_schema.py, which validates a real answer of every method.

Conventions (DESIGN §8): bytes are lowercase 0x-hex (``Hex``; 32-byte hashes and keys
``Hash``); integers that may exceed 2^53 (contract values, balances) may be decimal
strings (``Amount``); heights and counts are non-negative integers; absent values are null.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

Schema = dict[str, Any]

COMPONENT_PREFIX = "#/components/schemas/"


def ref(name: str) -> Schema:
    """A reference to ``components.schemas[name]`` (checked: a typo fails at import)."""
    if name not in SCHEMAS:
        raise KeyError(f"no result schema named {name!r}; known: {sorted(SCHEMAS)}")
    return {"$ref": COMPONENT_PREFIX + name}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null: for values a view writes as None (no certificate yet, pending...)."""
    return {"oneOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(properties: Mapping[str, Schema], optional: Iterable[str] = (), description: str = "") -> Schema:
    """A closed object: every key required unless listed in ``optional``, no other keys."""
    skipped = set(optional)
    out: Schema = {"type": "object", "required": [k for k in properties if k not in skipped],
                   "properties": dict(properties), "additionalProperties": False}
    if description:
        out["description"] = description
    return out


def _r(name: str) -> Schema:
    # ``ref`` without the check, for the table below (which defines the names it uses).
    return {"$ref": COMPONENT_PREFIX + name}


_HEIGHT = _r("Height")
_UINT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_HASH = _r("Hash")
_HEX = _r("Hex")
_VALUE = _r("ContractValue")

_TX_FIELDS: dict[str, Schema] = {
    "id": _HASH, "chain_id": _STR, "sender": _HASH, "nonce": _UINT, "contract": _STR, "method": _STR,
    "args": array(_VALUE), "gas_limit": _UINT, "signature": _HEX, "cosigners": array(_HASH), "raw": _HEX,
}
_RECEIPT_FIELDS: dict[str, Schema] = {
    "tx_id": _HASH, "height": nullable(_HEIGHT), "index": nullable(_UINT),
    "status": {"type": "string", "enum": ["ok", "failed"]}, "gas_used": _UINT, "fee": _UINT,
    "return_value": _VALUE, "error": nullable(_STR), "events": array(_r("Event")), "raw": _HEX,
}
_EVENT_RECORD = {"height": _HEIGHT, "tx_id": _HASH, "index": _UINT, "contract": _STR, "name": _STR, "data": _VALUE}

#: Every named shape; ``components.schemas`` holds those the route table reaches.
SCHEMAS: dict[str, Schema] = {
    "Hex": {"type": "string", "pattern": "^0x([0-9a-f]{2})*$", "description": "bytes as 0x and lowercase hex"},
    "Hash": {"type": "string", "pattern": "^0x[0-9a-f]{64}$",
             "description": "32 bytes as 0x-hex: a hash, an id or an Ed25519 public key"},
    "Height": {"type": "integer", "minimum": 0, "description": "a block height (0: the genesis state)"},
    "Amount": {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+$"}],
               "description": "an integer; beyond 2^53 a decimal string"},
    "ContractValue": {"description": "a contract value as JSON: bytes as 0x-hex, integers beyond 2^53 as "
                                     "decimal strings, lists, maps, records as objects, null"},
    "Header": obj({"chain_id": _STR, "height": _HEIGHT, "prev_hash": _HASH, "timestamp_ms": _UINT,
                   "proposer": _HASH, "view": _UINT, "tx_root": _HASH, "receipts_root": _HASH,
                   "state_root": _HASH, "validator_set_hash": _HASH, "next_validator_set_hash": _HASH,
                   "last_commit_hash": _HASH}, description="a block header (what the certificate signs, by its hash)"),
    "Certificate": obj({"height": _HEIGHT, "view": _UINT, "block_hash": _HASH, "signers": array(_HASH),
                        "raw": _HEX}, description="a commit certificate: 2f+1 signed COMMITs of one block"),
    "Transaction": obj(_TX_FIELDS, description="a signed transaction, decoded, with its canonical bytes (raw)"),
    "TransactionLookup": obj({**_TX_FIELDS, "status": {"type": "string", "enum": ["committed", "pending"]},
                              "height": nullable(_HEIGHT), "index": nullable(_UINT)},
                             description="a transaction and where it is (height and index null while pending)"),
    "Block": obj({"hash": _HASH, "height": _HEIGHT, "header": _r("Header"),
                  "txs": array({"oneOf": [_HASH, _r("Transaction")]}), "tx_count": _UINT,
                  "last_commit": nullable(_r("Certificate"))},
                 description="a committed block: txs are ids, or whole transactions with full=true"),
    "Event": obj({"contract": _STR, "name": _STR, "data": _VALUE}, description="a contract event in a receipt"),
    "ReceiptProof": obj({"header": _r("Header"), "header_raw": _HEX, "receipts_size": _UINT, "path": array(_HASH),
                         "certificate": nullable(_r("Certificate"))},
                        description="the Merkle path of a receipt to its block's receipts root, and the certified header"),
    "ProvenReceipt": obj({**_RECEIPT_FIELDS, "height": _HEIGHT, "index": _UINT, "block_hash": _HASH,
                          "proof": _r("ReceiptProof")},
                         description="a committed receipt with what proves it offline"),
    "CallResult": obj({"height": _HEIGHT, "result": _VALUE, "gas_used": _UINT},
                      description="a contract view's return value"),
    "StateProof": obj({"key": _HEX, "value": nullable(_HEX), "height": _HEIGHT, "state_root": _HASH, "proof": _HEX,
                       "header": nullable(_r("Header")), "header_raw": nullable(_HEX),
                       "certificate": nullable(_r("Certificate"))},
                      description="a state value (null: absent) and its proof against the certified state root "
                                  "(header and certificate null at height 0)"),
    "ContractAbi": {"type": "object", "required": ["methods", "events", "records", "storage"],
                    "properties": {"methods": array(obj({"name": _STR, "function": _UINT,
                                                         "kind": {"type": "string", "enum": ["public", "view"]},
                                                         "requires": nullable(_STR),
                                                         "args": array(array(_STR)), "returns": _STR})),
                                   "events": {"type": "array"}, "records": {"type": "object"},
                                   "storage": {"type": "array"}},
                    "additionalProperties": False, "description": "a contract's ABI, as its code container holds it"},
    "ContractInfo": obj({"contract": _STR, "height": _HEIGHT, "code_hash": _HASH, "code_bytes": _UINT,
                         "abi": _r("ContractAbi"), "state_key": _HEX},
                        description="a contract's ABI and code hash at a height"),
    "Account": obj({"address": _HASH, "account": _HASH, "signing_key": nullable(_HASH),
                    "key_retired_at": nullable(_UINT), "registered": _BOOL, "nonce": _UINT, "roles": array(_STR),
                    "balance": nullable(_r("Amount")), "pending_txs": _UINT},
                   description="an account's on-chain facts"),
    "Status": obj({"chain_id": _STR, "node": _STR, "validator": _HASH, "height": _HEIGHT,
                   "latest_block_hash": _HASH, "latest_block_time_ms": _UINT, "state_root": _HASH,
                   "genesis_hash": _HASH, "syncing": _BOOL, "mempool_size": _UINT, "base_height": _HEIGHT},
                  description="where this node's chain is"),
    "ConsensusStatus": obj({"view": _UINT, "mode": {"type": "string", "enum": ["normal", "view-change"]},
                            "height": _HEIGHT, "committed_height": _HEIGHT, "primary": _HASH,
                            "primary_name": nullable(_STR), "is_primary": _BOOL, "validators": _UINT,
                            "quorum": _UINT, "voting": _BOOL, "known_height": _HEIGHT,
                            "counters": {"type": "object", "additionalProperties": _UINT}},
                           description="the consensus core's state"),
    "Peer": obj({"name": nullable(_STR), "public_key": _HASH, "address": nullable(_STR), "connected": _BOOL},
                description="a validator this node connects to"),
    "EventRecord": obj(_EVENT_RECORD, description="a contract event of a committed transaction"),
    "EventsPage": obj({"events": array(_r("EventRecord")), "from_height": _HEIGHT, "to_height": _HEIGHT,
                       "next_from": nullable(_HEIGHT), "source": {"type": "string", "enum": ["index", "scan"]},
                       "indexed_height": _HEIGHT}, optional=("source", "indexed_height"),
                      description="one page of events (next_from null when the range is done)"),
    "RawBlock": obj({"height": _HEIGHT, "block": _HEX, "certificate": _HEX, "receipts": array(_HEX)},
                    description="a block, its certificate and receipts as stored"),
    "RawBlocks": obj({"blocks": array(_r("RawBlock")), "head": _HEIGHT, "next_from": nullable(_HEIGHT)},
                     description="a run of stored blocks (next_from null at the head)"),
    "Genesis": obj({"chain_id": _STR, "genesis_hash": _HASH, "genesis_time_ms": _UINT,
                    "organisations": array(obj({"id": _STR, "name": _STR, "admin_keys": array(_HASH)})),
                    "validators": array(obj({"name": _STR, "organisation": _STR, "public_key": _HASH,
                                             "p2p_address": _STR, "rpc_address": _STR})),
                    "accounts": array(obj({"public_key": _HASH, "organisation": _STR, "roles": array(_STR)}))},
                   description="the consortium the chain was started with"),
    "ValidatorSchedule": obj({"height": _HEIGHT, "validators": array(_HASH), "schedule": array(obj({
        "from_height": _HEIGHT, "validators": array(_HASH), "set_hash": _HASH,
        "proof": nullable(obj({"height": _HEIGHT, "header_raw": _HEX, "certificate": _r("Certificate")}))}))},
        description="which validators certify which heights, each change with its proof"),
    "Simulation": obj({**{k: v for k, v in _RECEIPT_FIELDS.items() if k not in ("height", "index", "raw")},
                       "simulated": {"const": True}, "signed": _BOOL, "height": _HEIGHT, "timestamp_ms": _UINT,
                       "state_root": _HASH, "pending_replayed": _UINT, "error_name": nullable(_STR),
                       "error_message": nullable(_STR)},
                      description="the receipt a transaction would get in the next block"),
    "MailboxPosted": obj({"id": _HASH, "new": _BOOL, "expires_ms": _UINT}, description="a stored envelope"),
    "MailboxEnvelope": obj({"id": _HASH, "sender": _HASH, "order": _UINT, "kind": _STR, "created_ms": _UINT,
                            "envelope": _HEX}, description="a sealed envelope and its encoding (check its signature)"),
    "EventNotification": obj({k: v for k, v in _EVENT_RECORD.items() if k != "index"},
                             description="the payload of an events notification"),
}

#: rpc.discover's result: an OpenRPC document. Not a ``$ref`` to the meta-schema, which
#: generated clients would have to fetch; tests validate the document against it.
OPENRPC_DOCUMENT: Schema = {
    "type": "object", "required": ["openrpc", "info", "methods"],
    "properties": {"openrpc": {"type": "string"}, "info": {"type": "object", "required": ["title", "version"]},
                   "methods": {"type": "array", "items": {"type": "object", "required": ["name", "params", "result"]}},
                   "components": {"type": "object"}},
    "description": "an OpenRPC 1.2 document (https://spec.open-rpc.org)",
}


def refs_in(schema: Any) -> set[str]:
    """Names of the component schemas ``schema`` references directly."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            target = item.get("$ref")
            if isinstance(target, str) and target.startswith(COMPONENT_PREFIX):
                found.add(target[len(COMPONENT_PREFIX):])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def reachable(schemas: Iterable[Any]) -> dict[str, Schema]:
    """The component schemas the given schemas reach through ``$ref`` chains, by name (sorted),
    so a document carries the named types its methods use and no others."""
    names: set[str] = set()
    todo = set().union(*(refs_in(s) for s in schemas))
    while todo:
        name = todo.pop()
        if name in names:
            continue
        if name not in SCHEMAS:
            raise KeyError(f"a result schema references {name!r}, which is not in SCHEMAS")
        names.add(name)
        todo |= refs_in(SCHEMAS[name]) - names
    return {name: SCHEMAS[name] for name in sorted(names)}
