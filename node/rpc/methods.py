"""The node's JSON-RPC route table: every method a client can call, in one list.

How it works: ``make_routes(node)`` returns ``Method`` entries (name, params with
types, handler, documentation) bound to a ``NodeView`` (node.rpc.nodeview: the one
read interface the service implements, so this module never imports it); the RPC server validates
params against the types, runs the handler and builds ``rpc.discover`` from the same
list, so the documentation cannot drift from what is served. Handlers only read the
node's committed data or hand a transaction to the mempool; none blocks the event
loop for long: the ones that loop over blocks or run contract code are marked
``heavy`` (at most a few run at once) and the block scan of ``chain_getEvents`` calls
``ctx.work.checkpoint()`` after every block, so it runs in short slices that yield to
the event loop and stops with a LimitExceeded error, saying how far it got and how to
narrow the query, once its work budget is spent (node/rpc/budget.py). Where the node's SQL
index (node/indexer, ``NodeView.event_index``) reaches, chain_getEvents reads it instead,
on a worker thread, so a filter over years of history is one query, not a block scan.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from contracts_vm.bytecode import code_hash, decode_container
from contracts_vm.errors import VMError
from contracts_vm.machine import CODE_PREFIX, check_contract_name
from ledger import encoding
from ledger.errors import ValidationError
from ledger.state_prune import PrunedStateError
from ledger.merkle import merkle_proof
from ledger.types import CommitCertificate
from node.indexer.rows import attribute_text
from node.indexer.sink import MAX_DATA_FILTERS
from node.rpc.jsonrpc import (CHAIN_ERROR, HEIGHT_PRUNED, INVALID_PARAMS, LIMIT_EXCEEDED, NOT_FOUND, Method, Param,
                              RpcError)
from node.rpc.budget import WorkBudgetExceeded
from node.rpc.server import Topic, subscription_methods
from node.rpc.mailbox import mailbox_routes
from node.rpc.result_schemas import array, ref
from node.rpc.simulate import simulate_routes
from node.rpc.types import ANY, BOOLEAN, HASH32, HEX, OBJECT, Array, Int, Str
from node.rpc.views import args_from_json, block_json, cert_json, header_json, hx, receipt_json, tx_json, value_to_json

if TYPE_CHECKING:
    from node.rpc.nodeview import NodeView

log = logging.getLogger("shopchain.rpc")

#: NOT_FOUND (-32004) and HEIGHT_PRUNED (-32006) live in node.rpc.jsonrpc with the other codes
#: (imported above, so ``methods.NOT_FOUND`` still names them). HeightPruned: the height asked for
#: is below the oldest this node holds: pruned ([storage] retain_blocks) or before the snapshot it
#: state-synced from. data.oldest_height names the oldest height held; an archive node
#: (retain_blocks = 0, synced from genesis) has it.
#: Codes a method reading at a height may answer (``_height``: not committed yet, or pruned).
AT_HEIGHT_ERRORS = (NOT_FOUND, HEIGHT_PRUNED)
TOPIC_BLOCKS = "newBlocks"
TOPIC_EVENTS = "events"

#: Most blocks one chain_getEvents call scans; a longer range is answered in pages
#: (the answer's ``next_from`` says where the next call starts).
MAX_EVENT_SCAN_BLOCKS = 2_000
#: Most events one chain_getEvents call returns; it stops at the end of the block that
#: reaches this many, so one answer holds at most this plus one block's events.
MAX_EVENTS_PER_CALL = 500
#: Most receipts one chain_getEvents call reads (whole blocks, like the event cap): the
#: scan runs on the node's event loop, so a range of full blocks is answered in pages too.
MAX_RECEIPTS_PER_EVENT_SCAN = 20_000
#: Most event names one chain_getEvents filter may list.
MAX_EVENT_FILTER_NAMES = 64
#: Most blocks one chain_getRawBlocks answer holds (a remote indexer asks for runs of blocks).
MAX_RAW_BLOCKS_PER_CALL = 32
#: Most stored bytes (blocks and receipts) one chain_getRawBlocks answer holds; it always holds at
#: least one block. Hex doubles it, which stays below the RPC answer limit (16 MiB by default).
MAX_RAW_BYTES_PER_CALL = 6 * 1024 * 1024

HEIGHT = Param("height", ANY, 'a block height (integer) or "latest"', required=False, default="latest")
FULL = Param("full", BOOLEAN, "include whole transactions instead of their ids", required=False, default=False)


def _height(node: "NodeView", value: Any) -> int:
    head = node.blocks.height
    if value in (None, "latest"):
        return head
    if type(value) is not int or value < 0:
        raise RpcError(INVALID_PARAMS, f'Invalid params: height: expected a non-negative integer or "latest", found {value!r:.40}')
    if value > head:
        raise RpcError(NOT_FOUND, f"block {value} is not committed yet; the head is {head}", {"head": head})
    base = _base(node)
    if base and value < base:
        raise RpcError(HEIGHT_PRUNED, node.blocks.below_base(value), {"oldest_height": base, "head": head})  # type: ignore[attr-defined]
    return value


def _state_height(node: "NodeView", value: Any) -> int:
    """``_height`` for reads of the state at a height, refused (with the oldest kept) once it is pruned.
    Readers without the notion (tests' fakes) keep every state."""
    h = _height(node, value)
    check = getattr(node, "check_state_retained", None)
    if check is not None:
        try:
            check(h)
        except PrunedStateError as exc:
            raise RpcError(HEIGHT_PRUNED, str(exc), {"oldest_height": max(exc.oldest, _base(node)),
                                                     "oldest_state_height": exc.oldest,
                                                     "head": node.blocks.height}) from None
    return h


def _base(node: "NodeView") -> int:
    """The oldest height the node holds (0: from genesis; a state-synced node starts at its snapshot).
    Readers without the notion (tests' fakes) hold the chain from genesis."""
    return getattr(node.blocks, "base", 0)


def _base_note(node: "NodeView") -> str:
    """For a lookup by id that found nothing: what this node does not hold, which may be why."""
    base = _base(node)
    if not base:
        return ""
    pruned = getattr(node.blocks, "pruned", None)
    how = ("prunes old blocks ([storage] retain_blocks)" if pruned is not None and pruned()
           else "joined by state sync")
    return (f"; this node {how} and holds blocks from height {base} on only (the oldest height held is {base}): "
            f"an older one is known to an archive node")


def _base_data(node: "NodeView") -> dict:
    base = _base(node)
    return {"oldest_height": base} if base else {}


def _set_proof(node: "NodeView", height: int) -> tuple[bytes, bytes] | None:
    """Header and certificate bytes of block ``height`` (a state-synced node keeps those of set changes below its base)."""
    get = getattr(node.blocks, "get_set_proof", None)
    if get is not None:
        return get(height)
    block, cert = node.blocks.get_block(height), node.blocks.get_certificate(height)
    return None if block is None or cert is None else (block.header.encode(), cert.encode())


def _not_found(what: str) -> RpcError:
    return RpcError(NOT_FOUND, f"{what} not found")


def make_routes(node: "NodeView") -> list[Method]:
    async def chain_status(ctx) -> dict:
        return node.status()

    async def chain_getBlock(ctx, height: Any = "latest", full: bool = False) -> dict:
        h = _height(node, height)
        if h == 0:
            raise RpcError(NOT_FOUND, "height 0 is the genesis state, which has no block", {"genesis_hash": hx(node.genesis.genesis_hash)})
        block = node.blocks.get_block(h)
        if block is None:
            raise _not_found(f"block {h}")
        return block_json(block, full)

    async def chain_getBlockByHash(ctx, hash: bytes, full: bool = False) -> dict:
        block = node.blocks.get_block_by_hash(hash)
        if block is None:
            raise RpcError(NOT_FOUND, f"block {hx(hash)} not found{_base_note(node)}", _base_data(node) or None)
        return block_json(block, full)

    async def chain_getCertificate(ctx, height: Any = "latest") -> dict:
        h = _height(node, height)
        cert = node.blocks.get_certificate(h)
        if cert is None:
            raise _not_found(f"certificate of block {h}")
        return cert_json(cert)

    async def chain_getTransaction(ctx, tx_id: bytes) -> dict:
        found = node.blocks.get_tx(tx_id)
        if found is not None:
            tx, height, index = found
            return {**tx_json(tx), "status": "committed", "height": height, "index": index}
        pending = node.mempool.get(tx_id)
        if pending is not None:
            return {**tx_json(pending), "status": "pending", "height": None, "index": None}
        raise RpcError(NOT_FOUND, f"transaction {hx(tx_id)} not found{_base_note(node)}", _base_data(node) or None)

    async def chain_getReceipt(ctx, tx_id: bytes) -> dict:
        found = node.blocks.get_receipt(tx_id)
        if found is None:
            status = "pending" if tx_id in node.mempool else "unknown"
            raise RpcError(NOT_FOUND, f"no receipt for {hx(tx_id)} yet (transaction is {status}){_base_note(node)}",
                           {"status": status, **_base_data(node)})
        receipt, height, index = found
        block = node.blocks.get_block(height)
        receipts = node.blocks.get_receipts(height) or []
        proof = merkle_proof([r.encode() for r in receipts], index)
        return {**receipt_json(receipt, height, index), "block_hash": hx(block.block_hash),
                "proof": {"header": header_json(block.header), "header_raw": hx(block.header.encode()),
                          "receipts_size": len(receipts), "path": [hx(p) for p in proof],
                          "certificate": cert_json(node.blocks.get_certificate(height))}}

    async def chain_sendRawTransaction(ctx, raw: bytes) -> str:
        tx = await node.submit_transaction(raw)
        return hx(tx.tx_id)

    async def chain_call(ctx, contract: str, method: str, args: list, height: Any = "latest") -> Any:
        h = _state_height(node, height)
        abi = node.contract_abi(contract, h)
        if abi is None:
            raise RpcError(NOT_FOUND, f"no contract named {contract!r}")
        try:
            converted = args_from_json(abi, method, args)
        except ValidationError as exc:
            raise RpcError(INVALID_PARAMS, f"Invalid params: {exc}") from None
        result = node.call_view(contract, method, converted, h)
        if not result.ok:
            raise RpcError(CHAIN_ERROR, f"{result.error}: {result.error_message}",
                           {"type": "ContractError", "reason": result.error})
        return {"height": h, "result": value_to_json(result.return_value), "gas_used": result.gas_used}

    async def chain_getProof(ctx, key: bytes, height: Any = "latest") -> dict:
        h = _state_height(node, height)
        root = node.blocks.get_state_root(h)
        value, proof = node.state_proof(key, root)
        block = node.blocks.get_block(h) if h else None
        return {"key": hx(key), "value": hx(value), "height": h, "state_root": hx(root),
                "proof": hx(encoding.encode(proof)),
                "header": None if block is None else header_json(block.header),
                "header_raw": None if block is None else hx(block.header.encode()),
                "certificate": cert_json(node.blocks.get_certificate(h)) if h else None}

    async def chain_getContract(ctx, contract: str, height: Any = "latest") -> dict:
        """A contract's ABI and code hash in the state of a height (upgrades change both), read from
        the code entry a client can prove with chain_getProof(state_key) at the same height."""
        try:
            check_contract_name(contract)
        except VMError as exc:
            raise RpcError(INVALID_PARAMS, f"Invalid params: contract: {exc.message}") from None
        h = _state_height(node, height)
        key = CODE_PREFIX + contract.encode("utf-8")
        code, _ = node.state_proof(key, node.blocks.get_state_root(h))
        if code is None:
            raise RpcError(NOT_FOUND, f"no contract named {contract!r} is installed at height {h}")
        abi = decode_container(code).abi
        return {"contract": contract, "height": h, "code_hash": hx(code_hash(code)), "code_bytes": len(code),
                "abi": value_to_json(abi), "state_key": hx(key)}

    async def account_get(ctx, address: bytes) -> dict:
        return node.account_info(address)

    async def chain_getEvents(ctx, contract: str = "", filters: dict | None = None, from_height: Any = 1,
                              to_height: Any = "latest") -> dict:
        names, where = _event_filters(filters)
        head = node.blocks.height
        if type(from_height) is int and 0 <= from_height < _base(node):
            from_height = _base(node)  # a state-synced node scans what it holds; the answer's from_height says so
        start = _height(node, from_height) if from_height != "latest" else head
        end = _height(node, to_height)
        start = max(start, 1)
        if end < start:
            return {"events": [], "from_height": start, "to_height": end, "next_from": None}
        index = getattr(node, "event_index", None)
        indexed = None if index is None else index.height
        if indexed and start <= indexed:
            try:
                return await _events_from_index(index, contract, names, where, start, min(end, indexed), end)
            except Exception as exc:  # a broken index must not break the call: the block scan still answers
                log.warning("chain_getEvents: the index failed; scanning blocks", extra={"error": repr(exc)})
        stop = min(end, start + MAX_EVENT_SCAN_BLOCKS - 1)
        events: list[dict] = []
        scanned = start - 1
        receipts_read = 0
        for height in range(start, stop + 1):
            if len(events) >= MAX_EVENTS_PER_CALL or receipts_read >= MAX_RECEIPTS_PER_EVENT_SCAN:
                break
            receipts = node.blocks.get_receipts(height) or []
            receipts_read += len(receipts)
            for index, receipt in enumerate(receipts):
                for event in receipt.events:
                    if contract and event.contract != contract or names and event.name not in names:
                        continue
                    data = value_to_json(event.data)
                    if where and not all(isinstance(data, dict) and data.get(k) == v for k, v in where.items()):
                        continue
                    events.append({"height": height, "tx_id": hx(receipt.tx_id), "index": index,
                                   "contract": event.contract, "name": event.name, "data": data})
            scanned = height
            if ctx.work is not None and height < stop:
                try:
                    await ctx.work.checkpoint()
                except WorkBudgetExceeded as exc:
                    raise _scan_budget_error(exc, start, scanned, end, receipts_read, len(events)) from None
        return {"events": events, "from_height": start, "to_height": scanned,
                "next_from": scanned + 1 if scanned < end else None, "source": "scan"}

    async def chain_getRawBlocks(ctx, from_height: int, count: int = MAX_RAW_BLOCKS_PER_CALL) -> dict:
        """Stored bytes of a run of blocks with their certificates and receipts: what a remote
        indexer (``shopchain indexer run --from``) decodes and checks against each header's roots."""
        start = _height(node, from_height)
        if start == 0:
            raise RpcError(INVALID_PARAMS, "Invalid params: from_height: expected a block height of at least 1, found 0")
        head = node.blocks.height
        stop = min(head, start + count - 1)
        out: list[dict] = []
        size = 0
        for height in range(start, stop + 1):
            pair = node.blocks.get_stored_pair(height)
            receipts = node.blocks.get_receipts(height)
            if pair is None or receipts is None:
                raise _not_found(f"block {height}")
            raws = [r.encode() for r in receipts]
            size += len(pair[0]) + sum(len(r) for r in raws)
            if out and size > MAX_RAW_BYTES_PER_CALL:
                break
            out.append({"height": height, "block": hx(pair[0]), "certificate": hx(pair[1]),
                        "receipts": [hx(r) for r in raws]})
        last = out[-1]["height"]
        return {"blocks": out, "head": head, "next_from": last + 1 if last < head else None}

    async def chain_getGenesis(ctx) -> dict:
        g = node.genesis
        return {"chain_id": g.chain_id, "genesis_hash": hx(g.genesis_hash), "genesis_time_ms": g.genesis_time_ms,
                "organisations": [{"id": o.id, "name": o.name, "admin_keys": [hx(k) for k in o.admin_keys]}
                                  for o in g.organisations],
                "validators": [{"name": v.name, "organisation": v.organisation, "public_key": hx(v.public_key),
                                "p2p_address": v.p2p_address, "rpc_address": v.rpc_address} for v in g.validators],
                "accounts": [{"public_key": hx(a.public_key), "organisation": a.organisation, "roles": list(a.roles)}
                             for a in g.accounts]}

    async def chain_getValidators(ctx) -> dict:
        """The schedule, each change with the certified header that names it (see client.verify_validator_sets)."""
        schedule, head = node.validator_schedule(), node.blocks.height
        entries = []
        for start, keys in schedule.entries:
            proof = None
            if 1 < start <= head + 1:
                pair = _set_proof(node, start - 1)
                if pair is not None:
                    proof = {"height": start - 1, "header_raw": hx(pair[0]),
                             "certificate": cert_json(CommitCertificate.decode(pair[1]))}
            entries.append({"from_height": start, "validators": [hx(k) for k in keys],
                            "set_hash": hx(schedule.hash_at(start)), "proof": proof})
        return {"height": head, "validators": [hx(k) for k in schedule.at(head + 1)], "schedule": entries}

    async def net_peers(ctx) -> list:
        return node.peers()

    async def consensus_status(ctx) -> dict:
        return node.consensus_status()

    routes = [
        Method("chain_status", chain_status, (), "chain id, head height and hash, state root, sync state",
               summary="Where this node's chain is.", result_schema=ref("Status")),
        Method("chain_getBlock", chain_getBlock, (HEIGHT, FULL), "the block with its header and tx ids (or txs)",
               summary="A committed block by height.", heavy=True, result_schema=ref("Block"), errors=AT_HEIGHT_ERRORS),
        Method("chain_getBlockByHash", chain_getBlockByHash, (Param("hash", HASH32, "block hash (0x-hex)"), FULL),
               "the block", summary="A committed block by hash.", heavy=True, result_schema=ref("Block"),
               errors=(NOT_FOUND,)),
        Method("chain_getCertificate", chain_getCertificate, (HEIGHT,), "the commit certificate: 2f+1 signed COMMITs",
               summary="The proof that a block is final.", result_schema=ref("Certificate"), errors=AT_HEIGHT_ERRORS),
        Method("chain_getTransaction", chain_getTransaction, (Param("tx_id", HASH32, "transaction id"),),
               "the transaction with its status (committed or pending)", summary="A transaction by id.",
               result_schema=ref("TransactionLookup"), errors=(NOT_FOUND,)),
        Method("chain_getReceipt", chain_getReceipt, (Param("tx_id", HASH32, "transaction id"),),
               "the receipt with a Merkle proof to its block header and the block's certificate",
               summary="The outcome of a committed transaction, provable offline.", heavy=True,
               result_schema=ref("ProvenReceipt"), errors=(NOT_FOUND,)),
        Method("chain_sendRawTransaction", chain_sendRawTransaction,
               (Param("raw", HEX, "the canonical encoding of a signed transaction (0x-hex)"),),
               "the transaction id, once admitted to the mempool", summary="Submit a signed transaction.",
               result_schema=ref("Hash")),
        Method("chain_call", chain_call,
               (Param("contract", Str(max_len=64), "contract name"), Param("method", Str(max_len=64), "view method"),
                Param("args", Array(ANY), "arguments converted by the method's ABI types"),
                Param("height", ANY, '"latest" or the head height: views run on the latest state (older heights are '
                      'refused; prove an old value with chain_getProof)', required=False, default="latest")),
               "{height, result (the view's return value), gas_used}", summary="Run a read-only contract view.",
               heavy=True, result_schema=ref("CallResult"), errors=AT_HEIGHT_ERRORS),
        Method("chain_getProof", chain_getProof, (Param("key", HEX, "state key (0x-hex)"), HEIGHT),
               "value and inclusion/non-inclusion proof against the certified state root",
               summary="A state proof a light client can check.", result_schema=ref("StateProof"),
               errors=AT_HEIGHT_ERRORS),
        Method("chain_getContract", chain_getContract,
               (Param("contract", Str(max_len=64), "contract name"),
                Param("height", ANY, 'a block height (integer, within the states this node keeps) or "latest"',
                      required=False, default="latest")),
               "{contract, height, code_hash, code_bytes, abi: {methods: [{name, kind (public or view), args: [[name, type]], "
               "returns, requires}], events, records, storage: [[name, key types, value type]]}, state_key (prove the code "
               "with chain_getProof at that height and hash it)}",
               summary="A contract's ABI and code hash at a height.", result_schema=ref("ContractInfo"),
               errors=AT_HEIGHT_ERRORS),
        Method("account_get", account_get, (Param("address", HASH32, "an account id or any signing key it used"),),
               "{address, account (the stable account id), signing_key (its current key), key_retired_at (0: "
               "current; null: no account's key), registered (may address sign now), nonce (the account's), "
               "roles, balance, pending_txs (of address)}", summary="An account's on-chain facts.", heavy=True,
               result_schema=ref("Account")),
        Method("chain_getValidators", chain_getValidators, (),
               "{height, validators (the set of the next height), schedule: [{from_height, validators, set_hash, "
               "proof: {height, header_raw, certificate} of the header before the change that names the set, or "
               "null for genesis and for changes not yet reached}]}",
               summary="Which validators certify which heights, provable from genesis offline.",
               result_schema=ref("ValidatorSchedule")),
        Method("net_peers", net_peers, (), "connected validators", summary="This node's validator connections.",
               result_schema=array(ref("Peer"))),
        Method("consensus_status", consensus_status, (), "view, height, primary, counters",
               summary="The consensus core's state.", result_schema=ref("ConsensusStatus")),
    ]
    routes += [
        Method("chain_getEvents", chain_getEvents,
               (Param("contract", Str(max_len=64), 'only events of this contract ("" = every contract)',
                      required=False, default=""),
                Param("filters", OBJECT, '{"name": event name or list of names, "data": {field: JSON value}}: '
                      "only events whose name is listed and whose data fields equal these values", required=False),
                Param("from_height", ANY, "first height to scan (default 1)", required=False, default=1),
                Param("to_height", ANY, 'last height to scan (default "latest")', required=False, default="latest")),
               f"{{events: [{{height, tx_id, index, contract, name, data}}], from_height, to_height, next_from, "
               f"source, indexed_height}}: heights the node's SQL index holds ([indexer], source \"index\") are "
               f"answered from it in one page of about {MAX_EVENTS_PER_CALL} events (whole blocks) however long "
               f"the range; heights above the indexed one are scanned (source \"scan\"): at most "
               f"{MAX_EVENT_SCAN_BLOCKS} blocks, about {MAX_RECEIPTS_PER_EVENT_SCAN} receipts and about "
               f"{MAX_EVENTS_PER_CALL} events per call. "
               "next_from (null when done) is where the next page starts; a scan that runs out of its work "
               "budget answers LimitExceeded naming the heights it reached",
               summary="Contract events of committed blocks, paged; served from the SQL index where it reaches.",
               heavy=True, result_schema=ref("EventsPage"), errors=AT_HEIGHT_ERRORS),
        Method("chain_getRawBlocks", chain_getRawBlocks,
               (Param("from_height", Int(1), "first height"),
                Param("count", Int(1, MAX_RAW_BLOCKS_PER_CALL), "most blocks wanted", required=False,
                      default=MAX_RAW_BLOCKS_PER_CALL)),
               f"{{blocks: [{{height, block, certificate, receipts: [...]}}] (stored bytes, 0x-hex), head, next_from}}: "
               f"at most {MAX_RAW_BLOCKS_PER_CALL} blocks and about {MAX_RAW_BYTES_PER_CALL // (1024 * 1024)} MiB "
               "of stored bytes per call (at least one block); each receipts list hashes to its block's receipts root",
               summary="Committed blocks with their receipts as stored, for indexers and archives.", heavy=True,
               result_schema=ref("RawBlocks"), errors=AT_HEIGHT_ERRORS),
        Method("chain_getGenesis", chain_getGenesis, (),
               "chain id, genesis hash and time, organisations, validators (names, keys, addresses), genesis accounts",
               summary="The consortium this chain was started with.", result_schema=ref("Genesis")),
    ]
    routes += simulate_routes(node)
    routes += mailbox_routes(node)
    routes += subscription_methods([
        Topic(TOPIC_BLOCKS, "each newly committed block (header, hash, tx ids)", payload_schema=ref("Block")),
        Topic(TOPIC_EVENTS, "contract events of committed transactions", OBJECT,
              'optional {"contract": name, "name": event name}: only matching events',
              payload_schema=ref("EventNotification")),
    ])
    return routes


async def _events_from_index(index: Any, contract: str, names: set[str], where: dict, start: int, stop: int,
                             end: int) -> dict:
    """chain_getEvents answered from the SQL index (node/indexer) for heights start..stop (stop: the indexed
    height or the range's end), read on a worker thread. Pages end with a whole block, like the scan's: the
    one holding the MAX_EVENTS_PER_CALL-th event. Attribute text pre-filters the data equalities in SQL; the
    exact JSON comparison below is the scan's, so both paths give the same events."""
    # null also matches a missing field, and a value too long to be stored as an attribute is not one: the
    # exact check below decides those; at most MAX_DATA_FILTERS equalities go to SQL (the check covers the rest)
    texts = [(k, attribute_text(v)) for k, v in sorted(where.items()) if v is not None]
    prefilter = dict([(k, t) for k, t in texts if t is not None][:MAX_DATA_FILTERS])
    rows, last = await asyncio.to_thread(index.sink.events_page, contract, sorted(names), prefilter, start, stop,
                                         MAX_EVENTS_PER_CALL)
    events = []
    for height, tx_index, _, tx_id, event_contract, name, data_json in rows:
        data = json.loads(data_json)
        if where and not all(isinstance(data, dict) and data.get(k) == v for k, v in where.items()):
            continue
        events.append({"height": height, "tx_id": tx_id, "index": tx_index, "contract": event_contract,
                       "name": name, "data": data})
    return {"events": events, "from_height": start, "to_height": last,
            "next_from": last + 1 if last < end else None, "source": "index", "indexed_height": index.height}


def _scan_budget_error(exc: WorkBudgetExceeded, start: int, scanned: int, end: int, receipts: int,
                       events: int) -> RpcError:
    """chain_getEvents ran out of work budget: say what was done and how to ask for less."""
    if exc.scope == "batch":
        advice = "send fewer chain_getEvents calls per batch, or narrower ranges"
    else:
        advice = f"ask for a narrower range (e.g. from_height={start}, to_height={scanned}) or filter by contract"
    return RpcError(
        LIMIT_EXCEEDED,
        f"chain_getEvents stopped after scanning blocks {start}..{scanned} of {start}..{end} ({receipts} receipts, "
        f"{events} matching events) in {exc.spent_ms} ms: the {exc.scope} work budget is {exc.limit_ms} ms "
        f"({exc.limit_name}); {advice}",
        exc.data(scanned_from=start, scanned_to=scanned, receipts_read=receipts, suggested_to_height=scanned),
    )


def _event_filters(filters: Any) -> tuple[set[str], dict]:
    """Validate chain_getEvents' filter object; returns (names, data equalities)."""
    if filters is None:
        return set(), {}
    unknown = sorted(set(filters) - {"name", "data"})
    if unknown:
        raise RpcError(INVALID_PARAMS, f'Invalid params: filters: expected keys "name" and "data", found {unknown}')
    names = filters.get("name")
    if names is None:
        names = []
    elif isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or len(names) > MAX_EVENT_FILTER_NAMES or not all(isinstance(n, str) for n in names):
        raise RpcError(INVALID_PARAMS, f"Invalid params: filters.name: expected an event name or a list of at most "
                                       f"{MAX_EVENT_FILTER_NAMES} names, found {names!r:.60}")
    where = filters.get("data") or {}
    if not isinstance(where, dict):
        raise RpcError(INVALID_PARAMS, f"Invalid params: filters.data: expected an object, found {where!r:.60}")
    where = {k: v.lower() if isinstance(v, str) and v[:2] in ("0x", "0X") else v for k, v in where.items()}
    return set(names), where


def event_matches(filter: dict | None, contract: str, name: str) -> bool:
    if not filter:
        return True
    return filter.get("contract", contract) == contract and filter.get("name", name) == name
