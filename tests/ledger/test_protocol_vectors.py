"""The protocol vectors (tests/vectors/protocol_*.json) against the production code.

Two kinds of check: the committed files are exactly what the generator makes from the code
today (so they cannot drift), and, reading only the JSON, the code accepts every accepted
vector and refuses every rejected one, with the statements of docs/protocol.md recomputed
here by hand where they are short (signing payloads, ids, Merkle roots, trie node links).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import encoding
from ledger.crypto import DOMAIN_TX, DOMAIN_VOTE, SigningKey, signing_payload, verify_ed25519
from ledger.errors import DecodeError, EncodeError, ValidationError
from ledger.merkle import verify_inclusion
from ledger.state import StateStore
from ledger.state_proof import EMPTY_ROOT as STATE_EMPTY_ROOT, verify_proof
from ledger.storage.kv import MemoryKV
from ledger.types import (
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    SignedTx,
    TxBody,
    quorum_size,
    validator_set_hash,
    verify_certificate,
)
from tests.vectors import make_protocol_vectors

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


ENC = load("protocol_encoding.json")
TXS = load("protocol_transactions.json")
PROOFS = load("protocol_proofs.json")


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def value_of(node: dict) -> Any:
    """A typed JSON value (docs/protocol.md, "Typed values"), read without the generator."""
    assert isinstance(node, dict) and len(node) == 1, node
    kind, item = next(iter(node.items()))
    if kind == "int":
        assert isinstance(item, str)
        return int(item)
    if kind == "bytes":
        return bytes.fromhex(item)
    if kind == "str":
        assert isinstance(item, str)
        return item
    if kind == "bool":
        assert isinstance(item, bool)
        return item
    if kind == "nil":
        assert item is None
        return None
    if kind == "list":
        return [value_of(x) for x in item]
    if kind == "map":
        out = {k: value_of(v) for k, v in item}
        assert len(out) == len(item), "duplicate key in a typed map"
        return out
    raise AssertionError(f"unknown typed value {node}")


def same(a: Any, b: Any) -> bool:
    """Deep equality that also compares types (True == 1 in Python, not in the encoding)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def field_values(field_list: list) -> tuple[list[str], list]:
    return [name for name, _ in field_list], [value_of(v) for _, v in field_list]


# --- the files are what the code makes ------------------------------------------------

def test_committed_vectors_equal_a_fresh_generation():
    for name, text in make_protocol_vectors.build().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, (
            f"{name} differs from what the code makes: run python -m tests.vectors.make_protocol_vectors")


def test_readme_lists_every_protocol_vector_file():
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    for name in make_protocol_vectors.build():
        assert f"`{name}`" in readme


# --- encoding ---------------------------------------------------------------------------

def test_limits_are_the_encoding_module_constants():
    limits = ENC["limits"]
    assert int(limits["MIN_INT"]) == encoding.MIN_INT == -(2**63)
    assert int(limits["MAX_INT"]) == encoding.MAX_INT == 2**64 - 1
    assert (limits["MAX_DEPTH"], limits["MAX_ITEM_BYTES"], limits["MAX_CONTAINER_LEN"], limits["MAX_ENCODED_BYTES"]) == (
        encoding.MAX_DEPTH, encoding.MAX_ITEM_BYTES, encoding.MAX_CONTAINER_LEN, encoding.MAX_ENCODED_BYTES)


@pytest.mark.parametrize("vector", ENC["accepted"], ids=lambda v: v["name"])
def test_accepted_value_encodes_to_its_bytes_and_back(vector):
    value = value_of(vector["value"])
    raw = bytes.fromhex(vector["hex"])
    assert encoding.encode(value) == raw
    assert same(encoding.decode(raw), value)


@pytest.mark.parametrize("vector", ENC["rejected_decode"], ids=lambda v: v["name"])
def test_non_canonical_bytes_are_refused(vector):
    assert vector["error"] == "DecodeError"
    with pytest.raises(DecodeError):
        encoding.decode(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("vector", ENC["rejected_encode"], ids=lambda v: v["name"])
def test_values_without_an_encoding_are_refused(vector):
    assert vector["error"] == "EncodeError"
    with pytest.raises(EncodeError):
        encoding.encode(value_of(vector["value"]))


def test_map_key_order_is_utf8_byte_order_which_is_code_point_order():
    keys = ["", "a", "aa", "b", "B", "\x7f", "\u0080", "\u00e9", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff",
            "\U00010000", "\U0001f6d2", "\U0010ffff", "a\x00", "a\U00010000", "a\uffff"]
    by_bytes = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert sorted(keys) == by_bytes
    raw = encoding.encode({k: 0 for k in reversed(keys)})
    assert list(encoding.decode(raw)) == by_bytes
    # What a JavaScript sort (UTF-16 code units) would do differs: U+E000..U+FFFF before U+10000 flips.
    utf16 = sorted(keys, key=lambda k: k.encode("utf-16-be"))
    assert utf16 != by_bytes


# --- transactions -------------------------------------------------------------------------

def test_rfc8032_key_derivation():
    alice = TXS["transactions"][0]
    assert alice["sender_seed"] == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    assert alice["sender_public_key"] == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_domain_tags():
    assert {d["name"]: bytes.fromhex(d["tag_hex"]) for d in TXS["domains"]} == {
        "DOMAIN_TX": b"shopchain/tx/v1", "DOMAIN_VOTE": b"shopchain/vote/v1",
        "DOMAIN_CONSENSUS": b"shopchain/consensus/v1", "DOMAIN_HANDSHAKE": b"shopchain/p2p-handshake/v1"}
    assert all(d["tag"].encode() == bytes.fromhex(d["tag_hex"]) for d in TXS["domains"])


@pytest.mark.parametrize("vector", TXS["transactions"], ids=lambda v: v["name"])
def test_transaction_vector(vector):
    seed = bytes.fromhex(vector["sender_seed"])
    key = SigningKey(seed)
    assert key.public_key.hex() == vector["sender_public_key"]
    names, values = field_values(vector["body"])
    assert names == ["tag", "chain_id", "sender", "nonce", "contract", "method", "args", "gas_limit"]
    assert values[0] == "tx/1"
    body = TxBody(*values[1:])
    body_raw = bytes.fromhex(vector["body_hex"])
    assert encoding.encode(values) == body.encode() == body_raw
    assert TxBody.from_list(encoding.decode(body_raw)) == body
    assert sha(body_raw).hex() == vector["tx_id"] == body.tx_id.hex()
    # domain || len(chain id as UTF-8), one byte || chain id || body
    cid = body.chain_id.encode("utf-8")
    payload = b"shopchain/tx/v1" + bytes([len(cid)]) + cid + body_raw
    assert payload.hex() == vector["signing_payload_hex"]
    assert signing_payload(DOMAIN_TX, body.chain_id, body_raw) == payload
    signature = bytes.fromhex(vector["signature"])
    assert key.sign_raw(payload) == signature  # ed25519 is deterministic
    assert verify_ed25519(key.public_key, payload, signature)
    cosigs = []
    for c in vector["cosignatures"]:
        ckey = SigningKey(bytes.fromhex(c["seed"]))
        assert ckey.public_key.hex() == c["public_key"]
        csig = bytes.fromhex(c["signature"])
        assert ckey.sign_raw(payload) == csig and verify_ed25519(ckey.public_key, payload, csig)
        cosigs.append([ckey.public_key, csig])
    assert [k for k, _ in cosigs] == sorted(k for k, _ in cosigs)
    outer = ["cstx/1", values, signature, cosigs] if cosigs else ["stx/1", values, signature]
    assert outer[0] == vector["signed_tag"]
    raw = bytes.fromhex(vector["signed_hex"])
    assert encoding.encode(outer) == raw
    tx = SignedTx.decode(raw)
    assert tx.body == body and tx.tx_id == sha(body_raw)
    assert tx.verify_signature() and tx.encode() == raw
    assert tx.cosigner_keys == tuple(k for k, _ in cosigs)


def test_chain_id_length_prefix_counts_utf8_bytes():
    vector = next(v for v in TXS["transactions"] if v["name"] == "non-ASCII chain id")
    chain_id = value_of(vector["body"][1][1])
    assert len(chain_id) == 11 and len(chain_id.encode()) == 12
    payload = bytes.fromhex(vector["signing_payload_hex"])
    assert payload[len(b"shopchain/tx/v1")] == 12


def test_co_signing_leaves_body_id_and_sender_signature_unchanged():
    plain = next(v for v in TXS["transactions"] if v["name"] == "co-signed transfer")
    tx = SignedTx.decode(bytes.fromhex(plain["signed_hex"]))
    stripped = SignedTx(tx.body, tx.signature)
    assert stripped.tx_id == tx.tx_id and stripped.verify_signature()
    assert stripped.encode().hex().startswith("93a57374782f31" + plain["body_hex"])


@pytest.mark.parametrize("vector", TXS["rejected"], ids=lambda v: v["name"])
def test_rejected_transaction(vector):
    raw = bytes.fromhex(vector["hex"])
    if vector["stage"] == "decode":
        assert vector["error"] == "DecodeError"
        with pytest.raises(DecodeError):
            SignedTx.decode(raw)
    else:
        assert vector["stage"] == "verify" and vector["error"] is None
        assert not SignedTx.decode(raw).verify_signature()


# --- Merkle trees and receipts --------------------------------------------------------------

def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962 section 2.1, written from the RFC."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:]))


def test_merkle_vectors():
    merkle = PROOFS["merkle"]
    assert merkle["empty_root"] == sha(b"").hex()
    for tree in merkle["trees"]:
        leaves = [bytes.fromhex(x) for x in tree["leaves"]]
        assert len(leaves) == tree["size"] and rfc6962_root(leaves).hex() == tree["root"]
        root = bytes.fromhex(tree["root"])
        assert len(tree["proofs"]) == tree["size"]
        for proof in tree["proofs"]:
            path = [bytes.fromhex(h) for h in proof["path"]]
            assert verify_inclusion(root, proof["index"], tree["size"], leaves[proof["index"]], path)
    assert merkle["rejected"]
    for bad in merkle["rejected"]:
        assert not verify_inclusion(bytes.fromhex(bad["root"]), bad["index"], bad["size"], bytes.fromhex(bad["leaf"]),
                                    [bytes.fromhex(h) for h in bad["path"]]), bad["name"]


def test_receipts_and_their_root():
    receipts = PROOFS["receipts"]
    raws = [bytes.fromhex(r["hex"]) for r in receipts["receipts"]]
    root = bytes.fromhex(receipts["receipts_root"])
    assert rfc6962_root(raws) == root
    tx_ids = [v["tx_id"] for v in TXS["transactions"]]
    for r, raw in zip(receipts["receipts"], raws):
        names, values = field_values(r["fields"])
        assert encoding.encode(values) == raw
        receipt = Receipt.decode(raw)
        assert receipt.encode() == raw and receipt.tx_id.hex() in tx_ids
        assert values[0] == ("rcpt/2" if receipt.fee else "rcpt/1") and len(values) == (8 if receipt.fee else 7)
        assert verify_inclusion(root, r["index"], len(raws), raw, [bytes.fromhex(h) for h in r["proof"]])


# --- state proofs ---------------------------------------------------------------------------

def leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    return sha(b"\x00" + len(key).to_bytes(2, "big") + key + value_hash)


def test_state_root_is_the_root_of_the_entries():
    state = PROOFS["state"]
    store = StateStore(MemoryKV())
    overlay = store.overlay()
    for k, v in state["entries"]:
        overlay.put(bytes.fromhex(k), bytes.fromhex(v))
    store.apply(overlay.commit())
    assert store.root.hex() == state["state_root"]
    assert state["empty_root"] == STATE_EMPTY_ROOT.hex() == sha(b"\x02shopchain/state/empty/v1").hex()


@pytest.mark.parametrize("vector", PROOFS["state"]["proofs"], ids=lambda v: v["what"])
def test_state_proof(vector):
    root = bytes.fromhex(PROOFS["state"]["state_root"])
    key = bytes.fromhex(vector["key"])
    value = None if vector["value"] is None else bytes.fromhex(vector["value"])
    proof_raw = bytes.fromhex(vector["proof"])
    nodes = value_of(vector["proof_value"])
    assert same(encoding.decode(proof_raw), nodes)
    assert verify_proof(root, key, value, proof_raw) and verify_proof(root, key, value, nodes)
    assert not verify_proof(root, key, b"not the value" if value is None else None, proof_raw)
    # By hand: each node is what the one above points to (the root first), a branch hashes as
    # sha256(01 || its encoding), a leaf as sha256(00 || len:2 || key || sha256(value)).
    expected, depth, nibbles = root, 0, key.hex()
    for node in nodes:
        if node[0] == 0:
            assert leaf_hash(node[1], node[2]) == expected and node is nodes[-1]
            assert (node[1] == key) == (value is not None)
            if value is not None:
                assert node[2] == sha(value)
            return
        assert sha(b"\x01" + encoding.encode(node)) == expected
        path = node[1]
        if not nibbles.startswith(path, depth):
            assert value is None and node is nodes[-1]
            return
        depth += len(path)
        if depth == len(nibbles):
            expected = node[2]
        else:
            expected = node[3][int(nibbles[depth], 16)]
            depth += 1
        if not expected:
            assert value is None and node is nodes[-1]
            return
    raise AssertionError("the proof ended above the node the walk needs")


@pytest.mark.parametrize("vector", PROOFS["state"]["rejected"], ids=lambda v: v["name"])
def test_rejected_state_proof(vector):
    root = bytes.fromhex(PROOFS["state"]["state_root"])
    value = None if vector["value"] is None else bytes.fromhex(vector["value"])
    assert not verify_proof(root, bytes.fromhex(vector["key"]), value, bytes.fromhex(vector["proof"]))


# --- headers, votes, certificates ---------------------------------------------------------------

def test_validator_set_header_votes_and_certificate():
    chain = PROOFS["chain"]
    cid = chain["chain_id"]
    validators = [bytes.fromhex(k) for k in chain["validators"]]
    assert [SigningKey(bytes.fromhex(s)).public_key for s in chain["validator_seeds"]] == validators
    vset_raw = bytes.fromhex(chain["validator_set_encoding_hex"])
    assert encoding.encode(["vset/1", validators]) == vset_raw
    assert sha(vset_raw).hex() == chain["validator_set_hash"] == validator_set_hash(validators).hex()
    assert chain["quorum"] == quorum_size(4) == 3

    names, values = field_values(chain["header"]["fields"])
    assert len(names) == 13 and values[0] == "hdr/2"
    header_raw = bytes.fromhex(chain["header"]["hex"])
    assert encoding.encode(values) == header_raw
    header = BlockHeader.from_list(encoding.decode(header_raw))
    assert header.encode() == header_raw
    block_hash = sha(header_raw)
    assert block_hash.hex() == chain["header"]["block_hash"] == header.block_hash.hex()
    assert header.receipts_root.hex() == PROOFS["receipts"]["receipts_root"]
    assert header.state_root.hex() == PROOFS["state"]["state_root"]
    assert header.validator_set_hash.hex() == chain["validator_set_hash"]

    block = Block.decode(bytes.fromhex(chain["block"]["hex"]))
    leaves = [bytes.fromhex(x) for x in chain["block"]["tx_leaves"]]
    assert [tx.encode() for tx in block.txs] == leaves and block.header == header
    assert rfc6962_root(leaves) == header.tx_root and chain["block"]["tx_root"] == header.tx_root.hex()
    assert leaves[0].hex() == TXS["transactions"][0]["signed_hex"]

    for vote in chain["votes"]:
        vnames, vvalues = field_values(vote["fields"])
        assert vnames == ["tag", "phase", "view", "height", "block_hash", "validator"] and vvalues[0] == "vote/1"
        assert vvalues[1] == 2 and vvalues[4] == block_hash
        body = bytes.fromhex(vote["signed_body_hex"])
        assert encoding.encode(vvalues) == body
        c = cid.encode()
        payload = b"shopchain/vote/v1" + bytes([len(c)]) + c + body
        assert payload.hex() == vote["signing_payload_hex"] == signing_payload(DOMAIN_VOTE, cid, body).hex()
        assert verify_ed25519(vvalues[5], payload, bytes.fromhex(vote["signature"]))
        assert encoding.encode(vvalues + [bytes.fromhex(vote["signature"])]).hex() == vote["vote_hex"]

    cert_raw = bytes.fromhex(chain["certificate"]["hex"])
    cert = CommitCertificate.decode(cert_raw)
    assert cert.encode() == cert_raw and sha(cert_raw).hex() == chain["certificate"]["cert_hash"]
    assert (cert.height, cert.view, cert.block_hash.hex()) == (2, 1, chain["header"]["block_hash"])
    assert [v.validator for v in cert.votes] == sorted(v.validator for v in cert.votes)
    verify_certificate(cert, validators, cid, height=2, block_hash=block_hash)
    with pytest.raises(ValidationError):
        verify_certificate(cert, validators, "another-chain")
    with pytest.raises(ValidationError):
        verify_certificate(cert, validators, cid, height=3)


@pytest.mark.parametrize("vector", PROOFS["chain"]["rejected_certificates"], ids=lambda v: v["name"])
def test_rejected_certificate(vector):
    chain = PROOFS["chain"]
    validators = [bytes.fromhex(k) for k in chain["validators"]]
    cert = CommitCertificate.decode(bytes.fromhex(vector["certificate_hex"]))
    assert vector["error"] == "ValidationError"
    with pytest.raises(ValidationError):
        verify_certificate(cert, validators, chain["chain_id"])


# --- docs/protocol.md states what the vectors show -----------------------------------------------

def test_protocol_doc_worked_example_and_constants_match_the_vectors():
    doc = (VECTORS.parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    transfer = TXS["transactions"][0]
    body = bytes.fromhex(transfer["body_hex"])
    assert len(body) == 118 and len(bytes.fromhex(transfer["signing_payload_hex"])) == 151
    assert len(bytes.fromhex(transfer["signed_hex"])) == 191
    for text in (transfer["tx_id"], transfer["signature"], transfer["sender_seed"], transfer["signed_hex"][:20],
                 PROOFS["merkle"]["empty_root"][:8], PROOFS["state"]["empty_root"]):
        assert text in doc
    example = doc[doc.index("### 3.6 Worked example"):doc.index("## 4. Receipts")]
    rows = covered = 0
    for row in example.split("\n"):  # the byte table of the worked example: each row's bytes at its offset
        cells = [c.strip() for c in row.split("|")]
        if len(cells) == 5 and cells[2].startswith("`") and cells[1].replace("..", "").isdigit():
            start = int(cells[1].split("..")[0])
            chunk = bytes.fromhex(cells[2].strip("`"))
            assert body[start:start + len(chunk)] == chunk, row
            rows += 1
            covered += len(chunk)
    assert rows == 17 and covered == len(body)
    for d in TXS["domains"]:
        assert f"| `{d['tag']}` | `{d['tag_hex']}` |" in doc
    assert "`82 a2 6161 02 a1 62 01`" in doc and encoding.encode({"b": 1, "aa": 2}).hex() == "82a2616102a16201"
    assert [quorum_size(n) for n in (4, 5, 7)] == [3, 4, 5]


def test_consensus_and_handshake_signatures():
    from consensus.messages import PrePrepare, decode_message
    from p2p.handshake import transcript

    cid = PROOFS["chain"]["chain_id"].encode()
    pp = PROOFS["consensus"]["pre_prepare"]
    names, values = field_values(pp["fields"])
    assert values[0] == "pbft-pp/1" and values[3].hex() == PROOFS["chain"]["header"]["block_hash"]
    body = bytes.fromhex(pp["signed_body_hex"])
    assert encoding.encode(values) == body
    payload = b"shopchain/consensus/v1" + bytes([len(cid)]) + cid + body
    assert payload.hex() == pp["signing_payload_hex"]
    assert verify_ed25519(values[4], payload, bytes.fromhex(pp["signature"]))
    message = decode_message(bytes.fromhex(pp["message_hex_without_block"]))
    assert isinstance(message, PrePrepare) and message.signed_body() == body and message.block is None

    hs = PROOFS["consensus"]["handshake_transcript"]
    names, values = field_values(hs["fields"])
    assert values[:3] == ["p2p-handshake", 1, "dialer"]
    signed = bytes.fromhex(hs["hex"])
    assert encoding.encode(values) == signed == transcript(*values[2:])
    payload = b"shopchain/p2p-handshake/v1" + bytes([len(cid)]) + cid + signed
    assert payload.hex() == hs["signing_payload_hex"]
    assert verify_ed25519(bytes.fromhex(hs["signer"]), payload, bytes.fromhex(hs["signature"]))
