"""Language-neutral JSON test vectors of shopchain's bytes, hashes and signatures (issue 17).

How it works: ``build()`` makes every vector with the production code (``ledger.encoding``,
``ledger.crypto``, ``ledger.types``, ``ledger.merkle``, ``ledger.state`` and its proof
verifier) from fixed 32-byte seeds, so it is deterministic (ed25519 signatures are), and
returns {file name: JSON text}. ``python -m tests.vectors.make_protocol_vectors`` writes
the files next to this module; tests/ledger/test_protocol_vectors.py checks that the
committed files equal a fresh ``build()`` and checks every vector against the production
code independently of this generator. docs/protocol.md specifies what the vectors show.

Typed values: a value of the canonical encoding is written as a one-key JSON object,
``{"int": "<decimal>"}``, ``{"bytes": "<lowercase hex>"}``, ``{"str": "<text>"}``,
``{"bool": true}``, ``{"nil": null}``, ``{"list": [typed, ...]}`` or
``{"map": [["<key>", typed], ...]}`` (map entries in any order: an encoder sorts them).
Every other hex string in the files is plain lowercase hex without "0x".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ledger import encoding
from ledger.crypto import (
    DOMAIN_CONSENSUS,
    DOMAIN_HANDSHAKE,
    DOMAIN_TX,
    DOMAIN_VOTE,
    SigningKey,
    sha256,
    signing_payload,
)
from ledger.errors import DecodeError, EncodeError, ValidationError
from ledger.merkle import EMPTY_ROOT as MERKLE_EMPTY_ROOT, merkle_proof, merkle_root, verify_inclusion
from ledger.state import StateStore
from ledger.state_proof import EMPTY_ROOT as STATE_EMPTY_ROOT, verify_proof
from ledger.storage.kv import MemoryKV
from ledger.types import (
    MAX_COSIGNATURES,
    PHASE_COMMIT,
    PHASE_PREPARE,
    TAG_COSIGNED_TX,
    TAG_SIGNED_TX,
    TAG_TX,
    Block,
    BlockHeader,
    CommitCertificate,
    Event,
    Receipt,
    SignedTx,
    TxBody,
    Vote,
    compute_receipts_root,
    compute_tx_root,
    quorum_size,
    validator_set_hash,
    verify_certificate,
)

HERE = Path(__file__).resolve().parent
ENCODING_FILE = "protocol_encoding.json"
TRANSACTIONS_FILE = "protocol_transactions.json"
PROOFS_FILE = "protocol_proofs.json"

TYPED_VALUES = (
    'Typed values: {"int": "<decimal string>"}, {"bytes": "<lowercase hex>"}, {"str": "<text>"}, '
    '{"bool": true|false}, {"nil": null}, {"list": [<typed>, ...]}, {"map": [["<str key>", <typed>], ...]} '
    "(map entries in any order; the canonical encoding sorts them). Every other hex string is plain "
    'lowercase hex without "0x". Specification: docs/protocol.md.'
)

#: RFC 8032 section 7.1 TEST 1 secret key, so its public key can be checked against the RFC.
SEEDS = {
    "alice": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "bob": "2222222222222222222222222222222222222222222222222222222222222222",
    "carol": "3333333333333333333333333333333333333333333333333333333333333333",
    "dave": "4444444444444444444444444444444444444444444444444444444444444444",
    "erin": "5555555555555555555555555555555555555555555555555555555555555555",
}
VALIDATOR_SEEDS = [f"{0xa0 + i:02x}" * 32 for i in range(1, 5)]
OUTSIDER_SEED = "ee" * 32
CHAIN_ID = "shopchain-vectors"
#: A chain id whose UTF-8 length (12 bytes) differs from its length in characters (11).
CHAIN_ID_UTF8 = "boutique-\u00e9u"


def key(name: str) -> SigningKey:
    return SigningKey(bytes.fromhex(SEEDS[name]))


# --- typed JSON values ---------------------------------------------------------------

def typed(value: Any) -> dict:
    """The typed JSON form of an encodable value."""
    t = type(value)
    if t is bool:
        return {"bool": value}
    if value is None:
        return {"nil": None}
    if t is int:
        return {"int": str(value)}
    if t is bytes:
        return {"bytes": value.hex()}
    if t is str:
        return {"str": value}
    if t is list or t is tuple:
        return {"list": [typed(item) for item in value]}
    if t is dict:
        return {"map": [[k, typed(v)] for k, v in value.items()]}
    raise TypeError(f"no typed form for {t.__name__}")


def untyped(node: dict) -> Any:
    """The value of a typed JSON form (the inverse of ``typed``; tuples come back as lists)."""
    if type(node) is not dict or len(node) != 1:
        raise ValueError(f"a typed value is a one-key object, found {node!r:.60}")
    (kind, item), = node.items()
    if kind == "bool" and type(item) is bool:
        return item
    if kind == "nil" and item is None:
        return None
    if kind == "int" and type(item) is str:
        return int(item)
    if kind == "bytes" and type(item) is str:
        return bytes.fromhex(item)
    if kind == "str" and type(item) is str:
        return item
    if kind == "list" and type(item) is list:
        return [untyped(x) for x in item]
    if kind == "map" and type(item) is list:
        out: dict = {}
        for k, v in item:
            if type(k) is not str or k in out:
                raise ValueError(f"map keys are distinct strings, found {k!r:.60}")
            out[k] = untyped(v)
        return out
    raise ValueError(f"unknown typed value {node!r:.60}")


def fields(names: list[str], values: list) -> list:
    """An explicit, ordered field list: [[name, typed value], ...]."""
    assert len(names) == len(values)
    return [[n, typed(v)] for n, v in zip(names, values)]


def render(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=True) + "\n"


# --- protocol_encoding.json -------------------------------------------------------------

def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _accepted_values() -> list[tuple[str, Any]]:
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 + 1, 2**63, 2**64 - 1,
            -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
    out: list[tuple[str, Any]] = [(f"int {i}", i) for i in ints]
    out += [("true", True), ("false", False), ("nil", None)]
    out += [("empty str", ""), ("str 'a'", "a"), ("str of 31 chars (fixstr)", "x" * 31),
            ("str of 32 chars (str8)", "x" * 32), ("str of 255 bytes (str8)", "y" * 255),
            ("str of 256 bytes (str16)", "z" * 256),
            ("str with 2-byte UTF-8 (length counts bytes)", "caf\u00e9"),
            ("str outside the BMP (4-byte UTF-8)", "\U0001f6d2 cart")]
    out += [("empty bytes (bin8)", b""), ("bytes 1", b"\x00"), ("bytes 32", bytes(range(32))),
            ("bytes 255 (bin8)", bytes(255)), ("bytes 256 (bin16)", b"\xff" * 256)]
    out += [("empty array", []), ("array of 15 (fixarray)", list(range(15))),
            ("array of 16 (array16)", list(range(16))), ("nested arrays", [[], [1, [b"\x01"]], "s"])]
    out += [("empty map", {}), ("map with keys given unsorted", {"b": 2, "a": 1, "c": 3}),
            ("keys sort by bytes, not by length ('aa' < 'b')", {"b": 1, "aa": 2}),
            ("keys sort by code point = UTF-8 bytes (U+FFFF < U+10000; UTF-16 order differs)",
             {"\U00010000": 2, "\uffff": 1}),
            ("map of 15 (fixmap)", {f"k{i:02d}": i for i in range(15)}),
            ("map of 16 (map16)", {f"k{i:02d}": i for i in range(16)}),
            ("map in array in map", {"items": [{"sku": "A-1", "qty": 2}], "total": 1999, "paid": False,
                                     "memo": None})]
    out += [("deepest nesting: a scalar at depth 32", _nested(32, 7)),
            ("deepest nesting: an empty array at depth 32", _nested(32, []))]
    return out


def _encode_rejections() -> list[dict]:
    cases = [("int 2^64 (above the range)", typed(2**64)), ("int -2^63 - 1 (below the range)", typed(-(2**63) - 1)),
             ("a scalar at depth 33", typed(_nested(33, 7))), ("an empty array at depth 33", typed(_nested(33, [])))]
    out = []
    for name, value in cases:
        try:
            encoding.encode(untyped(value))
        except EncodeError as exc:
            out.append({"name": name, "value": value, "error": "EncodeError", "reason": str(exc)[:200]})
        else:
            raise AssertionError(f"expected EncodeError for {name}")
    return out


#: (name, hex, why it is not canonical). Every one must raise DecodeError.
DECODE_REJECTIONS = [
    ("empty input", "", "no value"),
    ("trailing bytes", "0102", "one value, then an extra byte"),
    ("truncated array", "9201", "array of 2 with one item"),
    ("truncated bin32 header", "c6008000", "length field cut short"),
    ("reserved byte 0xc1", "c1", "never used by msgpack"),
    ("uint8 for 5", "cc05", "non-minimal int: 5 is the positive fixint 0x05"),
    ("uint16 for 255", "cd00ff", "non-minimal int: 255 is uint8 cc ff"),
    ("uint32 for 65535", "ce0000ffff", "non-minimal int: 65535 is uint16 cd ffff"),
    ("uint64 for 2^32 - 1", "cf00000000ffffffff", "non-minimal int: uint32 ce ffffffff"),
    ("int8 for -1", "d0ff", "non-minimal int: -1 is the negative fixint 0xff"),
    ("int8 for 5", "d005", "non-negative ints use the positive/uint forms: 0x05"),
    ("int16 for 128", "d10080", "non-negative ints use the uint forms: cc 80"),
    ("int16 for -128", "d1ff80", "non-minimal int: -128 is int8 d0 80"),
    ("int64 for -2^31", "d3ffffffff80000000", "non-minimal int: int32 d2 80000000"),
    ("str8 for a 3-byte str", "d903616263", "non-minimal length: fixstr a3 616263"),
    ("str16 for a 3-byte str", "da0003616263", "non-minimal length: fixstr a3 616263"),
    ("bin16 for 3 bytes", "c50003616263", "non-minimal length: bin8 c4 03 616263"),
    ("bin32 for 3 bytes", "c600000003616263", "non-minimal length: bin8 c4 03 616263"),
    ("array16 of 1", "dc000101", "non-minimal length: fixarray 91 01"),
    ("array32 of 1", "dd0000000101", "non-minimal length: fixarray 91 01"),
    ("map16 of 1", "de0001a16101", "non-minimal length: fixmap 81 a1 61 01"),
    ("unsorted map keys", "82a16201a16102", "keys b, a: must be a, b"),
    ("unsorted by length instead of bytes", "82a16201a2616102", "keys b, aa: must be aa, b"),
    ("UTF-16 order of keys", "82a4f090808002a3efbfbf01", "keys U+10000, U+FFFF: must be U+FFFF first"),
    ("duplicate map keys", "82a16101a16102", "key a twice"),
    ("float32", "ca3f800000", "floats are not allowed (1.0)"),
    ("float64", "cb3ff0000000000000", "floats are not allowed (1.0)"),
    ("fixext1", "d40100", "ext types are not allowed"),
    ("ext8", "c7010100", "ext types are not allowed"),
    ("int map key", "810102", "map keys must be str"),
    ("bytes map key", "81c4016101", "map keys must be str (not bin)"),
    ("nil map key", "81c001", "map keys must be str"),
    ("invalid UTF-8 (0xff)", "a1ff", "str must be valid UTF-8"),
    ("overlong UTF-8 (c0 80 for U+0000)", "a2c080", "str must be valid UTF-8"),
    ("UTF-8 of a surrogate (U+D800)", "a3eda080", "str must be valid UTF-8: surrogates are not scalar values"),
    ("array over MAX_CONTAINER_LEN", "dd000186a1", "declares 100001 items"),
    ("map over MAX_CONTAINER_LEN", "df000186a1", "declares 100001 entries"),
    ("a scalar at depth 33", "91" * 33 + "07", "nested deeper than MAX_DEPTH"),
]


def build_encoding() -> dict:
    accepted = []
    for name, value in _accepted_values():
        raw = encoding.encode(value)
        accepted.append({"name": name, "value": typed(value), "hex": raw.hex()})
    rejected = []
    for name, hx, why in DECODE_REJECTIONS:
        try:
            encoding.decode(bytes.fromhex(hx))
        except DecodeError:
            rejected.append({"name": name, "hex": hx, "error": "DecodeError", "reason": why})
        else:
            raise AssertionError(f"expected DecodeError for {name}")
    return {
        "description": ("Canonical encoding (restricted msgpack). 'accepted': encode(value) == hex and "
                        "decode(hex) == value. 'rejected_decode': decoding hex must fail (the node raises "
                        "DecodeError). 'rejected_encode': the value has no canonical encoding (EncodeError). "
                        + TYPED_VALUES),
        "limits": {"MIN_INT": str(encoding.MIN_INT), "MAX_INT": str(encoding.MAX_INT), "MAX_DEPTH": encoding.MAX_DEPTH,
                   "MAX_ITEM_BYTES": encoding.MAX_ITEM_BYTES, "MAX_CONTAINER_LEN": encoding.MAX_CONTAINER_LEN,
                   "MAX_ENCODED_BYTES": encoding.MAX_ENCODED_BYTES},
        "accepted": accepted,
        "rejected_decode": rejected,
        "rejected_encode": _encode_rejections(),
    }


# --- protocol_transactions.json ---------------------------------------------------------

BODY_FIELDS = ["tag", "chain_id", "sender", "nonce", "contract", "method", "args", "gas_limit"]


def _tx_vector(name: str, note: str, sender: str, body: TxBody, cosigners: list[str]) -> tuple[dict, SignedTx]:
    k = key(sender)
    signed = body.sign(k)
    for c in cosigners:
        signed = signed.cosigned_by(key(c))
    body_raw = body.encode()
    payload = signing_payload(DOMAIN_TX, body.chain_id, body_raw)
    raw = signed.encode()
    assert SignedTx.decode(raw).verify_signature()
    vector = {
        "name": name, "note": note,
        "sender_seed": SEEDS[sender], "sender_public_key": k.public_key.hex(),
        "body": fields(BODY_FIELDS, body.to_list()),
        "body_hex": body_raw.hex(),
        "tx_id": sha256(body_raw).hex(),
        "signing_payload_hex": payload.hex(),
        "signature": signed.signature.hex(),
        "cosignatures": [{"seed": SEEDS[c], "public_key": key(c).public_key.hex(),
                          "signature": dict(signed.cosignatures)[key(c).public_key].hex()}
                         for c in sorted(cosigners, key=lambda c: key(c).public_key)],
        "signed_tag": TAG_COSIGNED_TX if cosigners else TAG_SIGNED_TX,
        "signed_hex": raw.hex(),
    }
    return vector, signed


def _transactions() -> list[tuple[dict, SignedTx]]:
    alice, bob, carol = key("alice"), key("bob"), key("carol")
    return [
        _tx_vector("transfer", "ledger.transfer(to, amount): 1000 minor units (10.00) from alice to bob, nonce 0",
                   "alice", TxBody(CHAIN_ID, alice.public_key, 0, "ledger", "transfer", [bob.public_key, 1000], 100_000),
                   []),
        _tx_vector("transfer_in", "ledger.transfer_in(code, to, amount) with an amount above 2^53 and nonce 300",
                   "bob", TxBody(CHAIN_ID, bob.public_key, 300, "ledger", "transfer_in",
                                 ["EUR", carol.public_key, 2**53 + 1], 250_000), []),
        _tx_vector("co-signed transfer", "alice's transfer co-signed by carol and dave: cstx/1, co-signatures "
                   "ascending by key; the body, id and sender signature are those of an stx/1 of the same body",
                   "alice", TxBody(CHAIN_ID, alice.public_key, 1, "ledger", "transfer", [bob.public_key, 5], 100_000),
                   ["dave", "carol"]),
        _tx_vector("every argument type", "encoding only (no contract has this method; admission would refuse "
                   "it as unknown_method): args of every type, a map given with unsorted keys",
                   "carol", TxBody(CHAIN_ID, carol.public_key, 2**32, "example", "every_type",
                                   [0, -1, 2**64 - 1, "", "\u00e9", b"", True, False, None, [1, [2]],
                                    {"qty": 3, "amount": 1999}], 1), []),
        _tx_vector("non-ASCII chain id", f"chain id {CHAIN_ID_UTF8!r}: 11 characters, 12 UTF-8 bytes; the "
                   "signing payload's length byte is 0x0c", "dave",
                   TxBody(CHAIN_ID_UTF8, key("dave").public_key, 7, "ledger", "transfer", [alice.public_key, 1], 50_000),
                   []),
    ]


def _tx_rejections(transfer: SignedTx, cosigned: SignedTx) -> list[dict]:
    body = transfer.body.to_list()
    sig = transfer.signature
    cosigs = [[k, s] for k, s in cosigned.cosignatures]
    cbody = cosigned.body.to_list()
    csig = cosigned.signature

    def with_body(i: int, value: Any) -> list:
        b = list(body)
        b[i] = value
        return b

    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    extra = [SigningKey(bytes([0x60 + i]) * 32) for i in range(MAX_COSIGNATURES + 1)]
    nine = sorted([[k.public_key, cosigned.body.cosign(k)] for k in extra])
    other_chain = key("alice").sign(DOMAIN_TX, "another-chain", transfer.body.encode())
    vote_domain = key("alice").sign(DOMAIN_VOTE, CHAIN_ID, transfer.body.encode())
    no_chain = key("alice").sign_raw(transfer.body.encode())
    bad_cosig = [list(cosigs[0]), [cosigs[1][0], cosigs[0][1]]]
    structural = [
        ("wrong signed tag", ["stx/2", body, sig], "tag must be stx/1 or cstx/1"),
        ("signed tx with 4 fields", [TAG_SIGNED_TX, body, sig, []], "stx/1 has exactly 3 fields"),
        ("signed tx with 2 fields", [TAG_SIGNED_TX, body], "stx/1 has exactly 3 fields"),
        ("cstx/1 with 3 fields", [TAG_COSIGNED_TX, body, sig], "cstx/1 has exactly 4 fields"),
        ("wrong body tag", [TAG_SIGNED_TX, with_body(0, "tx/2"), sig], "body tag must be tx/1"),
        ("body with 9 fields", [TAG_SIGNED_TX, body + [0], sig], "tx/1 has exactly 8 fields"),
        ("body with 7 fields", [TAG_SIGNED_TX, body[:7], sig], "tx/1 has exactly 8 fields"),
        ("body as a map", [TAG_SIGNED_TX, {"tag": TAG_TX}, sig], "the body is an array"),
        ("empty chain id", [TAG_SIGNED_TX, with_body(1, ""), sig], "chain_id: 1..64 characters"),
        ("sender of 31 bytes", [TAG_SIGNED_TX, with_body(2, body[2][:31]), sig], "sender: 32 bytes"),
        ("sender as str", [TAG_SIGNED_TX, with_body(2, body[2].hex()), sig], "sender: bytes"),
        ("negative nonce", [TAG_SIGNED_TX, with_body(3, -1), sig], "nonce: 0..2^64-1"),
        ("nonce as str", [TAG_SIGNED_TX, with_body(3, "0"), sig], "nonce: an integer"),
        ("empty contract", [TAG_SIGNED_TX, with_body(4, ""), sig], "contract: 1..64 characters"),
        ("method of 65 characters", [TAG_SIGNED_TX, with_body(5, "m" * 65), sig], "method: 1..64 characters"),
        ("args as a map", [TAG_SIGNED_TX, with_body(6, {"to": b""}), sig], "args: an array"),
        ("gas_limit 0", [TAG_SIGNED_TX, with_body(7, 0), sig], "gas_limit: 1..2^64-1"),
        ("bool nonce", [TAG_SIGNED_TX, with_body(3, True), sig], "nonce: an integer (a bool is not one)"),
        ("signature of 63 bytes", [TAG_SIGNED_TX, body, sig[:63]], "signature: 64 bytes"),
        ("unsorted co-signatures", [TAG_COSIGNED_TX, cbody, csig, cosigs[::-1]], "keys strictly ascending"),
        ("duplicate co-signer", [TAG_COSIGNED_TX, cbody, csig, [cosigs[0], cosigs[0]]], "keys strictly ascending"),
        ("sender co-signing", [TAG_COSIGNED_TX, cbody, csig, sorted(cosigs + [[cbody[2], csig]])],
         "the sender may not co-sign"),
        ("empty co-signature array", [TAG_COSIGNED_TX, cbody, csig, []], "1..8 co-signatures"),
        ("9 co-signatures", [TAG_COSIGNED_TX, cbody, csig, nine], "1..8 co-signatures"),
        ("co-signature as a map", [TAG_COSIGNED_TX, cbody, csig, [{"key": cosigs[0][0]}]], "[key, signature] pairs"),
        ("co-signer key of 33 bytes", [TAG_COSIGNED_TX, cbody, csig, [[cosigs[0][0] + b"\x00", cosigs[0][1]]]],
         "co-signer key: 32 bytes"),
    ]
    out = []
    for name, value, why in structural:
        raw = encoding.encode(value)
        try:
            SignedTx.decode(raw)
        except DecodeError:
            out.append({"name": name, "hex": raw.hex(), "stage": "decode", "error": "DecodeError", "reason": why})
        else:
            raise AssertionError(f"expected DecodeError for {name}")
    noncanonical = transfer.encode().replace(b"\xa6ledger", b"\xd9\x06ledger", 1)
    out.append({"name": "non-canonical bytes (str8 for the 6-byte contract name)", "hex": noncanonical.hex(),
                "stage": "decode", "error": "DecodeError", "reason": "the signed tx must be canonical"})
    bad_signatures = [
        ("signature with a flipped bit", [TAG_SIGNED_TX, body, flipped], "does not verify"),
        ("signature for another chain id", [TAG_SIGNED_TX, body, other_chain], "the chain id is signed"),
        ("signature under the vote domain", [TAG_SIGNED_TX, body, vote_domain], "the domain tag is signed"),
        ("signature of the bare body (no domain, no chain id)", [TAG_SIGNED_TX, body, no_chain],
         "the signed bytes are the signing payload, not the body"),
        ("co-signatures swapped between keys", [TAG_COSIGNED_TX, cbody, csig, bad_cosig],
         "each co-signature verifies for its own key"),
    ]
    for name, value, why in bad_signatures:
        raw = encoding.encode(value)
        if SignedTx.decode(raw).verify_signature():
            raise AssertionError(f"expected a failed verification for {name}")
        out.append({"name": name, "hex": raw.hex(), "stage": "verify", "error": None, "reason": why})
    return out


def build_transactions() -> dict:
    made = _transactions()
    domains = [{"name": name, "tag": tag.decode(), "tag_hex": tag.hex()} for name, tag in (
        ("DOMAIN_TX", DOMAIN_TX), ("DOMAIN_VOTE", DOMAIN_VOTE), ("DOMAIN_CONSENSUS", DOMAIN_CONSENSUS),
        ("DOMAIN_HANDSHAKE", DOMAIN_HANDSHAKE))]
    return {
        "description": ("Transactions. body_hex = canonical encoding of the body field list; tx_id = "
                        "sha256(body_hex); signing_payload_hex = domain tag 'shopchain/tx/v1' || one byte: UTF-8 "
                        "length of the chain id || the chain id's UTF-8 || body_hex; signature = ed25519 (RFC 8032) "
                        "of signing_payload_hex by the key of sender_seed (co-signers sign the same payload); "
                        "signed_hex = canonical ['stx/1', body, signature] or ['cstx/1', body, signature, "
                        "[[key, signature], ...]]. 'rejected': stage 'decode' must fail to decode as a signed tx "
                        "(DecodeError); stage 'verify' decodes but a signature does not verify. " + TYPED_VALUES),
        "domains": domains,
        "transactions": [v for v, _ in made],
        "rejected": _tx_rejections(made[0][1], made[2][1]),
    }


# --- protocol_proofs.json ---------------------------------------------------------------

def _merkle() -> dict:
    leaves = [f"leaf-{i}".encode() for i in range(7)]
    trees = []
    for n in (0, 1, 2, 3, 4, 5, 7):
        items = leaves[:n]
        root = merkle_root(items)
        proofs = []
        for i in range(n):
            path = merkle_proof(items, i)
            assert verify_inclusion(root, i, n, items[i], path)
            proofs.append({"index": i, "path": [h.hex() for h in path]})
        trees.append({"size": n, "leaves": [x.hex() for x in items], "root": root.hex(), "proofs": proofs})
    five = leaves[:5]
    root5 = merkle_root(five)
    path2 = merkle_proof(five, 2)
    rejected = [
        ("wrong index", 3, 5, five[2], path2),
        ("wrong size (the path of leaf 4 of 5 claimed for 6 leaves)", 4, 6, five[4], merkle_proof(five, 4)),
        ("other leaf", 2, 5, five[3], path2),
        ("path one hash short", 2, 5, five[2], path2[:-1]),
        ("path with an extra hash", 2, 5, five[2], path2 + [path2[0]]),
        ("index equal to size", 5, 5, five[4], merkle_proof(five, 4)),
        ("leaf hashed as if it were an inner node's input", 0, 1, sha256(b"\x00" + five[0]), []),
    ]
    out_rejected = []
    for name, index, size, leaf, path in rejected:
        root = root5 if size != 1 else merkle_root(five[:1])
        assert not verify_inclusion(root, index, size, leaf, path), name
        out_rejected.append({"name": name, "root": root.hex(), "index": index, "size": size, "leaf": leaf.hex(),
                             "path": [h.hex() for h in path]})
    return {"empty_root": MERKLE_EMPTY_ROOT.hex(), "trees": trees, "rejected": out_rejected}


RECEIPT_FIELDS_1 = ["tag", "tx_id", "status", "gas_used", "return_value", "error", "events"]
RECEIPT_FIELDS_2 = RECEIPT_FIELDS_1 + ["fee"]


def _receipts(tx_ids: list[bytes]) -> tuple[dict, bytes]:
    bob = key("bob").public_key
    receipts = [
        Receipt(tx_ids[0], 0, 31_250, None, None,
                [Event("ledger", "Transfer", {"sender": key("alice").public_key, "to": bob, "amount": 1000,
                                              "currency": "SHOP"})]),
        Receipt(tx_ids[1], 1, 20_000, None, "insufficient balance: have 0, sending 9007199254740993", [], fee=45),
        Receipt(tx_ids[2], 0, 31_250, [1, "ok"], None, [], fee=190),
    ]
    root = compute_receipts_root(receipts)
    items = []
    encoded = [r.encode() for r in receipts]
    for i, r in enumerate(receipts):
        names = RECEIPT_FIELDS_2 if r.fee else RECEIPT_FIELDS_1
        items.append({"index": i, "fields": fields(names, r.to_list()), "hex": encoded[i].hex(),
                      "proof": [h.hex() for h in merkle_proof(encoded, i)]})
    return {"receipts": items, "receipts_root": root.hex()}, root


def _state() -> tuple[dict, bytes]:
    entries = {b"ab": b"short key", b"abc": b"a key with a prefix that is a key", b"abd": b"",
               b"b\x00": b"\x01\x02", b"b\x01": encoding.encode({"balance": 1000}), b"\x10\x20": b"x", b"\x10\x30": b"y",
               b"\xff\xfe": b"last"}
    store = StateStore(MemoryKV())
    overlay = store.overlay()
    for k, v in entries.items():
        overlay.put(k, v)
    store.apply(overlay.commit())
    root = store.root
    queries = [(b"ab", "present: a branch's here slot"), (b"abc", "present: a leaf below a branch"),
               (b"abd", "present: an empty value"), (b"b\x01", "present"), (b"\xff\xfe", "present: a leaf slot of the root"),
               (b"a", "absent: the key ends before a branch's path does"),
               (b"ac", "absent: the key leaves a branch's path"), (b"abe", "absent: an empty child slot"),
               (b"abcd", "absent: the walk ends at another key's leaf"), (b"\x20", "absent: an empty child slot of the root"),
               (b"\x10", "absent: the key ends at a branch whose here slot is empty"),
               (b"\xff\xfe\x00", "absent: the walk ends at the leaf of a prefix of the key")]
    proofs = []
    for k, what in queries:
        value = store.get_at(root, k)
        assert (value is None) == what.startswith("absent"), what
        proof = encoding.encode(store.prove(k))
        assert verify_proof(root, k, value, proof)
        proofs.append({"key": k.hex(), "value": None if value is None else value.hex(), "what": what,
                       "proof": proof.hex(), "proof_value": typed(store.prove(k))})
    abc_proof = encoding.encode(store.prove(b"abc"))
    absent_proof = encoding.encode(store.prove(b"abe"))
    tampered = bytearray(abc_proof)
    tampered[-1] ^= 1
    rejected = [
        ("wrong value", b"abc", b"another value", abc_proof),
        ("present key claimed absent", b"abc", None, abc_proof),
        ("absent key claimed present", b"abe", b"", absent_proof),
        ("proof of another key", b"abd", entries[b"abd"], abc_proof),
        ("tampered value hash", b"abc", entries[b"abc"], bytes(tampered)),
        ("truncated proof (root branch only)", b"abc", entries[b"abc"],
         encoding.encode(store.prove(b"abc")[:1])),
        ("empty proof under a non-empty root", b"abc", entries[b"abc"], encoding.encode([])),
    ]
    out_rejected = []
    for name, k, value, proof in rejected:
        assert not verify_proof(root, k, value, proof), name
        out_rejected.append({"name": name, "key": k.hex(), "value": None if value is None else value.hex(),
                             "proof": proof.hex()})
    return ({"entries": [[k.hex(), v.hex()] for k, v in entries.items()], "state_root": root.hex(),
             "empty_root": STATE_EMPTY_ROOT.hex(), "proofs": proofs, "rejected": out_rejected}, root)


HEADER_FIELDS = ["tag", "chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "view", "tx_root",
                 "receipts_root", "state_root", "validator_set_hash", "last_commit_hash", "next_validator_set_hash"]
VOTE_FIELDS = ["tag", "phase", "view", "height", "block_hash", "validator"]


def _chain(txs: list[SignedTx], receipts_root: bytes, state_root: bytes) -> dict:
    vkeys = [SigningKey(bytes.fromhex(s)) for s in VALIDATOR_SEEDS]
    validators = [k.public_key for k in vkeys]
    vset = validator_set_hash(validators)
    header = BlockHeader(CHAIN_ID, 2, sha256(b"block 1 of the vectors"), 1_796_000_000_000, validators[1], 1,
                         compute_tx_root(txs), receipts_root, state_root, vset, sha256(b"certificate of block 1"), vset)
    block_hash = header.block_hash
    votes = [Vote.create(vkeys[i], CHAIN_ID, PHASE_COMMIT, 1, 2, block_hash) for i in (2, 0, 3)]
    cert = CommitCertificate.from_votes(votes)
    verify_certificate(cert, validators, CHAIN_ID, 2, block_hash)
    block = Block(header, tuple(txs), None)
    vote_vectors = []
    for v in votes:
        body = v.signed_body()
        vote_vectors.append({"fields": fields(VOTE_FIELDS, encoding.decode(body)), "signed_body_hex": body.hex(),
                             "signing_payload_hex": signing_payload(DOMAIN_VOTE, CHAIN_ID, body).hex(),
                             "signature": v.signature.hex(), "vote_hex": encoding.encode(v.to_list()).hex()})
    prepare = Vote.create(vkeys[0], CHAIN_ID, PHASE_PREPARE, 1, 2, block_hash)
    outsider = SigningKey(bytes.fromhex(OUTSIDER_SEED))
    pairs = [[v.validator, v.signature] for v in cert.votes]

    def cert_hex(pair_list: list, height: int = 2, view: int = 1, bh: bytes = block_hash) -> str:
        return encoding.encode(["cert/1", height, view, bh, pair_list]).hex()

    forged = Vote.create(outsider, CHAIN_ID, PHASE_COMMIT, 1, 2, block_hash)
    other_chain = Vote.create(vkeys[1], "another-chain", PHASE_COMMIT, 1, 2, block_hash)
    rejected = [
        ("two votes of four: below the quorum of 3", cert_hex(pairs[:2])),
        ("the same validator twice", cert_hex([pairs[0], pairs[0], pairs[1]])),
        ("a vote from a key outside the set", cert_hex(sorted(pairs[:2] + [[outsider.public_key, forged.signature]]))),
        ("a PREPARE signature counted as a COMMIT", cert_hex(sorted(pairs[1:] + [[prepare.validator, prepare.signature]]))),
        ("a signature for another chain id", cert_hex(sorted(pairs + [[vkeys[1].public_key, other_chain.signature]]))),
        ("another view than the votes signed", cert_hex(pairs, view=2)),
        ("another block hash than the votes signed", cert_hex(pairs, bh=sha256(b"another block"))),
    ]
    out_rejected = []
    for name, hx in rejected:
        try:
            verify_certificate(CommitCertificate.decode(bytes.fromhex(hx)), validators, CHAIN_ID)
        except ValidationError:
            out_rejected.append({"name": name, "certificate_hex": hx, "error": "ValidationError"})
        else:
            raise AssertionError(f"expected ValidationError for {name}")
    return {
        "chain_id": CHAIN_ID,
        "validator_seeds": VALIDATOR_SEEDS,
        "validators": [k.hex() for k in validators],
        "validator_set_hash": vset.hex(),
        "validator_set_encoding_hex": encoding.encode(["vset/1", validators]).hex(),
        "quorum": quorum_size(len(validators)),
        "header": {"fields": fields(HEADER_FIELDS, header.to_list()), "hex": header.encode().hex(),
                   "block_hash": block_hash.hex()},
        "block": {"note": "height 2 carrying the transfer and the co-signed transfer; last_commit nil here "
                          "(a real chain carries block 1's certificate, whose hash is last_commit_hash)",
                  "hex": block.encode().hex(), "tx_root": header.tx_root.hex(),
                  "tx_leaves": [tx.encode().hex() for tx in txs]},
        "votes": vote_vectors,
        "certificate": {"hex": cert.encode().hex(), "cert_hash": cert.cert_hash.hex(), "height": 2, "view": 1,
                        "block_hash": block_hash.hex()},
        "rejected_certificates": out_rejected,
    }


def _consensus(block: Block) -> dict:
    """A PRE-PREPARE and a handshake signature: the other two signing domains."""
    from consensus.messages import PrePrepare
    from p2p.handshake import transcript

    primary, dialer = (SigningKey(bytes.fromhex(s)) for s in VALIDATOR_SEEDS[1:3])
    pp = PrePrepare.create(primary, CHAIN_ID, 1, block)
    body = pp.signed_body()
    dialer_nonce, listener_nonce = bytes(range(32)), bytes(range(32, 64))
    signed = transcript("dialer", dialer.public_key, primary.public_key, dialer_nonce, listener_nonce)
    signature = dialer.sign(DOMAIN_HANDSHAKE, CHAIN_ID, signed)
    return {
        "pre_prepare": {"fields": fields(["tag", "view", "height", "digest", "primary"], encoding.decode(body)),
                        "signed_body_hex": body.hex(),
                        "signing_payload_hex": signing_payload(DOMAIN_CONSENSUS, CHAIN_ID, body).hex(),
                        "signature": pp.signature.hex(),
                        "message_hex_without_block": pp.without_block().encode().hex()},
        "handshake_transcript": {
            "fields": fields(["tag", "version", "role", "dialer_key", "listener_key", "dialer_nonce", "listener_nonce"],
                             encoding.decode(signed)),
            "hex": signed.hex(), "signing_payload_hex": signing_payload(DOMAIN_HANDSHAKE, CHAIN_ID, signed).hex(),
            "signer": dialer.public_key.hex(), "signature": signature.hex()},
    }


def build_proofs() -> dict:
    made = _transactions()
    receipts, receipts_root = _receipts([signed.tx_id for _, signed in made])
    state, state_root = _state()
    chain = _chain([made[0][1], made[2][1]], receipts_root, state_root)
    return {
        "description": ("Hashes and proofs. merkle: RFC 6962 tree, leaf = sha256(00 || leaf bytes), node = "
                        "sha256(01 || left || right), path = sibling hashes from the leaf up; 'rejected' must not "
                        "verify. receipts: canonical receipts, their Merkle root and paths. state: entries, the "
                        "state root, proofs (hex of the canonical proof array, and the same as a typed value) of "
                        "presence (value hex) and absence (value null); 'rejected' must not verify. chain: "
                        "validator set hash, a header and its hash, COMMIT votes and a certificate that verifies "
                        "against the validator set; rejected_certificates must fail. consensus: a PRE-PREPARE of that "
                        "block (domain shopchain/consensus/v1) and a dialer's handshake transcript signature "
                        "(domain shopchain/p2p-handshake/v1). " + TYPED_VALUES),
        "merkle": _merkle(),
        "receipts": receipts,
        "state": state,
        "chain": chain,
        "consensus": _consensus(Block.decode(bytes.fromhex(chain["block"]["hex"]))),
    }


def build() -> dict[str, str]:
    """{file name: JSON text} of every protocol vector file."""
    return {ENCODING_FILE: render(build_encoding()), TRANSACTIONS_FILE: render(build_transactions()),
            PROOFS_FILE: render(build_proofs())}


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else HERE
    for name, text in build().items():
        (target / name).write_text(text, encoding="utf-8")
        print(f"wrote {target / name} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
