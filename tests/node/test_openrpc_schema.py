"""The OpenRPC document (``rpc.discover``) is valid, and every method answers what it declares.

Three checks, each able to fail:

- the document validates against the official OpenRPC meta-schema, vendored in
  tests/vectors/openrpc_meta_schema.json (open-rpc/meta-schema ``schema.json`` at commit
  cd8f0bd497fcb1ac166b8f9befea320fa84cee18) with the JSON Schema meta-schema it references
  (tests/vectors/json_schema_tools_meta_schema.json, json-schema-tools/meta-schema
  ``schema.json`` at 34244564b0a96326431354cb5555ff65cf2644ab, served under the URL of its
  1.5.9 release that the OpenRPC schema names); both are draft-07, validated with
  ``jsonschema.Draft7Validator``. The repository's schema leaves the ``openrpc`` version enum
  as a placeholder that its release build fills with the spec's versions; ``SPEC_VERSIONS``
  does the same here. Broken documents must be refused too;
- a real answer of every method in the route table, from a lone validator's node core with
  committed ledger transfers (their Transfer events), a pending transaction, the mailbox and a
  websocket subscription, validates against the method's declared result schema (``$ref`` s
  resolved against the document's ``components.schemas``); no result schema is empty;
- every error code the RPC modules raise is in ``components.errors``.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import importlib
import json
import pkgutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

import node.rpc as rpc_package
from ledger.hexfmt import to_hex
from ledger.mailbox import make_fetch_request
from ledger.types import TxBody
from node.rpc import jsonrpc
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcServer
from node.rpc.views import block_json
from node.rpc.ws import ConnectionSubscriptions
from tests.node.test_mailbox import CHAIN as MAILBOX_CHAIN
from tests.node.test_mailbox import MERCHANT, World
from tests.node.test_node_core import propose_next
from tests.node.test_simulate import BUYER, GAS, OTHER, served_core

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
JSON_SCHEMA_META_URLS = ("https://raw.githubusercontent.com/json-schema-tools/meta-schema/1.5.9/src/schema.json",
                         "https://meta.json-schema.tools/")
#: Released versions of the OpenRPC specification (github.com/open-rpc/spec releases).
SPEC_VERSIONS = ["1.3.2", "1.3.1", "1.3.0", "1.2.6", "1.2.5", "1.2.4", "1.2.3", "1.2.2", "1.2.1", "1.2.0",
                 "1.1.12", "1.1.11", "1.1.10", "1.1.9", "1.1.8", "1.0.0"]
DOC_URI = "urn:shopchain:openrpc"


def meta_validator() -> Draft7Validator:
    meta = json.loads((VECTORS / "openrpc_meta_schema.json").read_text())
    assert meta["properties"]["openrpc"]["enum"][0].startswith("GENERATED FIELD")  # the repository's placeholder
    meta["properties"]["openrpc"]["enum"] = SPEC_VERSIONS
    json_schema = DRAFT7.create_resource(json.loads((VECTORS / "json_schema_tools_meta_schema.json").read_text()))
    registry = Registry().with_resources((url, json_schema) for url in JSON_SCHEMA_META_URLS)
    return Draft7Validator(meta, registry=registry)


def meta_errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in meta_validator().iter_errors(doc)]


class Node:
    """A lone validator with three committed blocks of ledger transfers, served as a node serves it."""

    def __init__(self) -> None:
        self.core, self.host, self.kv, self.clock, self.reads = served_core()
        core = self.core
        self.mail = World()
        self.reads.attach_mailbox(self.mail.box, lambda raw: None, lambda reason: None)
        self.server = RpcServer(make_routes(self.reads))
        self.committed = []
        for amount in (5, 7, 11):
            tx = core.submit(self.transfer(amount), 0.0)
            propose_next(core, self.host, self.clock, [tx])
            self.committed.append(tx)
        assert core.chain.height == 3
        self.pending = core.submit(self.transfer(13), 0.0)
        conn = SimpleNamespace(subscriptions={})
        self.ws = CallContext("ws", subscriptions=ConnectionSubscriptions(self.server.hub, conn))  # type: ignore[arg-type]

    def transfer(self, amount: int, nonce: int | None = None) -> bytes:
        """A signed ledger transfer of BUYER's; by default with the nonce after its pending ones."""
        n = self.core.chain.nonce(BUYER.public_key) + len(self.core.mempool) if nonce is None else nonce
        return TxBody(self.core.genesis.chain_id, BUYER.public_key, n, "ledger", "transfer",
                      [OTHER.public_key, amount], GAS).sign(BUYER).encode()

    def rpc(self, method: str, params: list, ctx: CallContext | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        reply = json.loads(asyncio.run(self.server.dispatcher.handle(body, ctx or CallContext("http"))))
        assert "error" not in reply, (method, params, reply["error"])
        return reply["result"]


@pytest.fixture(scope="module")
def node() -> Node:
    return Node()


def calls(node: Node) -> list[tuple[str, list, CallContext | None]]:
    """Valid calls of every method, covering the shapes' variants (full blocks, pending, height 0...)."""
    committed, pending = to_hex(node.committed[1].tx_id), to_hex(node.pending.tx_id)
    block_hash = to_hex(node.core.chain.blocks.get_block(2).block_hash)
    buyer = to_hex(BUYER.public_key)
    mail = node.mail
    sub = node.rpc("chain_subscribe", ["events", {"contract": "ledger"}], node.ws)
    return [
        ("rpc.discover", [], None),
        ("chain_status", [], None),
        ("chain_getBlock", [], None), ("chain_getBlock", [2, True], None),
        ("chain_getBlockByHash", [block_hash], None), ("chain_getBlockByHash", [block_hash, True], None),
        ("chain_getCertificate", [1], None),
        ("chain_getTransaction", [committed], None), ("chain_getTransaction", [pending], None),
        ("chain_getReceipt", [committed], None),
        ("chain_sendRawTransaction", [to_hex(node.transfer(17))], None),
        ("chain_call", ["ledger", "balance_of", [buyer]], None),
        ("chain_getProof", [to_hex(b"no such key")], None), ("chain_getProof", [to_hex(b"k"), 0], None),
        ("chain_getContract", ["ledger"], None),
        ("account_get", [buyer], None), ("account_get", [to_hex(b"\x07" * 32)], None),
        ("chain_getValidators", [], None),
        ("net_peers", [], None),
        ("consensus_status", [], None),
        ("chain_getEvents", [], None), ("chain_getEvents", ["ledger", {"name": "Transfer"}, 2, 3], None),
        ("chain_getEvents", ["", None, 3, 2], None),
        ("chain_getRawBlocks", [1], None),
        ("chain_getGenesis", [], None),
        ("chain_simulate", [to_hex(node.transfer(19, nonce=5))], None),
        ("chain_simulate", [{"sender": buyer, "contract": "ledger", "method": "transfer",
                             "args": [to_hex(OTHER.public_key), 10**15], "gas_limit": GAS}], None),
        ("mailbox_send", [to_hex(mail.envelope())], None),
        ("mailbox_fetch", [to_hex(make_fetch_request(MERCHANT, MAILBOX_CHAIN, MERCHANT.public_key, 0, mail.now).encode())],
         None),
        ("chain_subscribe", ["newBlocks"], node.ws),
        ("chain_unsubscribe", [sub], node.ws), ("chain_unsubscribe", ["0x00"], node.ws),
    ]


def result_validator(doc: dict, pointer: str) -> Draft7Validator:
    """A validator of the schema at ``pointer`` in the document, its $refs resolved in the document."""
    registry = Registry().with_resource(DOC_URI, DRAFT7.create_resource(doc))
    return Draft7Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry)


def test_the_document_validates_against_the_openrpc_meta_schema(node: Node) -> None:
    doc = node.rpc("rpc.discover", [])
    assert meta_errors(doc) == []
    assert doc["components"]["schemas"] and all(m["result"]["schema"] for m in doc["methods"])


@pytest.mark.parametrize("break_it", [
    lambda d: d["methods"][1].pop("name"),
    lambda d: d["methods"][1]["result"]["schema"].update(type="hex"),
    lambda d: d["components"]["errors"]["NotFound"].update(code="-32004"),
    lambda d: d.update(openrpc="9.9.9"),
    lambda d: d["methods"][1].update(paramStructure="positional"),
], ids=["method-without-name", "unknown-json-type", "error-code-not-integer", "unknown-version", "bad-param-structure"])
def test_a_broken_document_is_refused(node: Node, break_it) -> None:
    doc = copy.deepcopy(node.server.openrpc_document)
    break_it(doc)
    assert meta_errors(doc) != []


def test_every_method_answers_what_its_result_schema_says(node: Node) -> None:
    doc = node.server.openrpc_document
    index = {m["name"]: i for i, m in enumerate(doc["methods"])}
    assert [m for m in node.server.routes if not m.result_schema] == []
    called = set()
    for method, params, ctx in calls(node):
        result = node.rpc(method, params, ctx)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in result_validator(doc, f"/methods/{index[method]}/result/schema").iter_errors(result)]
        assert errors == [], (method, params, errors[:5])
        called.add(method)
    assert called == set(index), f"methods not called: {sorted(set(index) - called)}"


def test_a_schema_refuses_what_the_view_does_not_write(node: Node) -> None:
    doc = node.server.openrpc_document
    index = {m["name"]: i for i, m in enumerate(doc["methods"])}
    block = node.rpc("chain_getBlock", [1])
    validator = result_validator(doc, f"/methods/{index['chain_getBlock']}/result/schema")
    assert validator.is_valid(block)
    assert not validator.is_valid({**block, "extra": 1})
    assert not validator.is_valid({**block, "hash": "0xABC"})
    assert not validator.is_valid({**block, "height": -1})


def test_notification_payloads_match_their_schemas(node: Node) -> None:
    doc = node.server.openrpc_document
    (i, subscribe), = [(i, m) for i, m in enumerate(doc["methods"]) if m["name"] == "chain_subscribe"]
    assert set(subscribe["x-notifications"]) == {"newBlocks", "events"}
    payload = block_json(node.core.chain.blocks.get_block(3))  # what node/service.py publishes to newBlocks
    assert result_validator(doc, f"/methods/{i}/x-notifications/newBlocks").is_valid(payload)


def _raised_codes() -> dict[str, int]:
    """Every code passed to RpcError(...) or answered by limit_error(...) in node/rpc, by where."""
    found: dict[str, int] = {}
    for info in pkgutil.iter_modules(rpc_package.__path__):
        module = importlib.import_module(f"node.rpc.{info.name}")
        tree = ast.parse(Path(module.__file__).read_text())
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            where = f"{info.name}.py:{call.lineno}"
            if call.func.id == "limit_error":
                found[where] = jsonrpc.LIMIT_EXCEEDED
            elif call.func.id == "RpcError" and call.args:
                arg = call.args[0]
                if isinstance(arg, ast.Name):
                    found[where] = getattr(module, arg.id)
                elif isinstance(arg, ast.Attribute) and isinstance(getattr(arg.value, "id", None), str) \
                        and hasattr(module, arg.value.id):  # e.g. jsonrpc.NOT_FOUND (not err.code: a local)
                    found[where] = getattr(getattr(module, arg.value.id), arg.attr)
                elif isinstance(arg, ast.Constant) and isinstance(arg.value, int):
                    found[where] = arg.value
                elif isinstance(arg, ast.UnaryOp) and isinstance(arg.operand, ast.Constant):
                    found[where] = -arg.operand.value
                # anything else (e.g. ``err.code``) re-raises a code raised elsewhere
    return found


def test_every_error_code_the_server_raises_is_documented(node: Node) -> None:
    documented = {e["code"] for e in node.server.openrpc_document["components"]["errors"].values()}
    raised = _raised_codes()
    assert len(raised) > 20 and {jsonrpc.NOT_FOUND, jsonrpc.HEIGHT_PRUNED} <= set(raised.values())
    assert {where: code for where, code in raised.items() if code not in documented} == {}
    bounds = {jsonrpc.RESERVED_MIN, jsonrpc.RESERVED_MAX, jsonrpc.SERVER_ERROR_MIN, jsonrpc.SERVER_ERROR_MAX}
    constants = {name: value for name, value in vars(jsonrpc).items()
                 if name.isupper() and type(value) is int and jsonrpc.RESERVED_MIN <= value <= jsonrpc.RESERVED_MAX}
    assert {n: v for n, v in constants.items() if v not in documented and not (v in bounds and n.endswith(("_MIN", "_MAX")))} == {}


def test_methods_name_the_errors_they_raise(node: Node) -> None:
    by_name = {m["name"]: {e["$ref"].rsplit("/", 1)[1] for e in m["errors"]}
               for m in node.server.openrpc_document["methods"]}
    assert "HeightPruned" in by_name["chain_getBlock"] and "NotFound" in by_name["chain_getReceipt"]
    assert "HeightPruned" not in by_name["chain_getTransaction"] and "NotFound" not in by_name["chain_status"]
    assert "WebsocketRequired" in by_name["chain_subscribe"] and "WebsocketRequired" not in by_name["chain_status"]
