"""Every persistent key shopchain writes, built in one place.

How it works: the first byte names a namespace, so that one LevelDB holds blocks,
state and indexes without collisions and each namespace iterates on its own. Heights
are 8-byte big-endian so that LevelDB's bytewise order is height order.
"""

from __future__ import annotations

import struct

META = b"M"            # M<name>                 -> small metadata values (head, genesis hash, schema version)
BLOCK = b"B"           # B<height:8>             -> encoded block
BLOCK_HASH = b"H"      # H<block hash:32>        -> height:8
HEADER = b"K"          # K<height:8>             -> encoded block header (the compact chain the open check walks)
CERT = b"C"            # C<height:8>             -> encoded commit certificate
RECEIPTS = b"R"        # R<height:8>             -> encoded list of receipts
TX_INDEX = b"T"        # T<tx id:32>             -> height:8 || index:4
STATE_NODE_PREFIX = b"N"   # N<node hash:32>     -> birth height:8 || encoded state tree node (ledger.state_trie)
STATE_VALUE_PREFIX = b"V"  # V<state key>        -> latest committed value (flat table for fast reads)
STATE_ROOT = b"S"      # S<height:8>             -> state root after that height
CONSENSUS = b"P"       # P<name>                 -> what this validator signed (persisted before sending)
MEMPOOL = b"Q"         # Q<tx id:32>             -> raw tx acknowledged to a client and not yet committed
MAILBOX = b"Y"         # Y<sub><...>            -> node-local sealed envelopes (node/mailbox.py; not chain state)
SET_PROOF = b"X"       # X<height:8>             -> [header, certificate] of a validator-set change held below the base
#: G<height:8> -> the 32-byte hashes, concatenated, of the state-trie nodes the commit of that
#: height removed from the trie (its death row, ledger.state_prune); deleted once pruned.
STATE_DEATH_ROW = b"G"

HEAD_KEY = META + b"head"
GENESIS_HASH_KEY = META + b"genesis_hash"
SCHEMA_VERSION_KEY = META + b"schema_version"
#: Oldest block held (absent: 0, the store holds the chain from genesis; a state-synced
#: store starts at its snapshot block, node/statesync).
BASE_KEY = META + b"base"
#: Present once block pruning has moved the base (ledger.storage.blockstore.prune_to): says
#: why heights below the base are missing (pruned, not skipped by a state sync).
PRUNED_KEY = META + b"pruned"
#: The snapshot a state sync in progress is fetching; present only until it completes.
STATESYNC_KEY = META + b"statesync"
#: Heights below this one may have lost state-trie nodes to pruning (absent: 0, nothing pruned);
#: every state at this height or above is whole (ledger.state_prune).
STATE_PRUNED_KEY = META + b"state_pruned_below"
SCHEMA_VERSION = 1

_HEIGHT = struct.Struct(">Q")


def encode_height(height: int) -> bytes:
    return _HEIGHT.pack(height)


def decode_height(data: bytes) -> int:
    return _HEIGHT.unpack(data)[0]


def block_key(height: int) -> bytes:
    return BLOCK + _HEIGHT.pack(height)


def header_key(height: int) -> bytes:
    return HEADER + _HEIGHT.pack(height)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH + block_hash


def cert_key(height: int) -> bytes:
    return CERT + _HEIGHT.pack(height)


def receipts_key(height: int) -> bytes:
    return RECEIPTS + _HEIGHT.pack(height)


def tx_index_key(tx_id: bytes) -> bytes:
    return TX_INDEX + tx_id


def state_root_key(height: int) -> bytes:
    return STATE_ROOT + _HEIGHT.pack(height)


def state_node_key(node_hash: bytes) -> bytes:
    return STATE_NODE_PREFIX + node_hash


def state_value_key(state_key: bytes) -> bytes:
    return STATE_VALUE_PREFIX + state_key


def mempool_key(tx_id: bytes) -> bytes:
    return MEMPOOL + tx_id


def consensus_key(name: bytes) -> bytes:
    return CONSENSUS + name


def set_proof_key(height: int) -> bytes:
    return SET_PROOF + _HEIGHT.pack(height)


def state_death_row_key(height: int) -> bytes:
    return STATE_DEATH_ROW + _HEIGHT.pack(height)
