"""JSON views of chain objects, and contract values to and from JSON.

How it works: JSON cannot tell bytes from text or carry integers above 2^53 safely, so
values cross it by convention (DESIGN §8): bytes as 0x-hex, integers outside the safe
range as decimal strings. Going out that is unambiguous. Coming in, a string like
"0x12" could be text or bytes, so arguments are converted by the method's ABI types:
where the ABI says ``bytes`` a 0x-hex string becomes bytes; where it says ``int`` a
decimal string becomes an int. Raw transactions never need this: clients sign the
canonical encoding and send it as one hex string.
"""

from __future__ import annotations

import re
from typing import Any

from ledger.errors import ValidationError
from ledger.types import Block, BlockHeader, CommitCertificate, Receipt, SignedTx
from ledger.hexfmt import to_hex

MAX_SAFE_JSON_INT = 2**53 - 1
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")


def hx(data: bytes | None) -> str | None:
    return None if data is None else to_hex(data)


def value_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_JSON_INT <= value <= MAX_SAFE_JSON_INT else str(value)
    if isinstance(value, list):
        return [value_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: value_to_json(v) for k, v in value.items()}
    return value


def _split_generic(type_name: str) -> tuple[str, str]:
    head, _, rest = type_name.partition("[")
    return head, rest[:-1]


def value_from_json(value: Any, type_name: str, where: str) -> Any:
    """Convert a JSON value to the contract type ``type_name`` (an ABI type string)."""
    if type_name == "bytes":
        if isinstance(value, str) and _HEX.match(value):
            return bytes.fromhex(value[2:])
        raise ValidationError(f"{where}: expected 0x-hex bytes, found {value!r:.60}")
    if type_name == "int":
        if type(value) is int:
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value):
            return int(value)
        raise ValidationError(f"{where}: expected an integer (or a decimal string), found {value!r:.60}")
    if type_name in ("str", "bool", "None"):
        want = {"str": str, "bool": bool, "None": type(None)}[type_name]
        if type(value) is not want:
            raise ValidationError(f"{where}: expected {type_name}, found {value!r:.60}")
        return value
    head, inner = _split_generic(type_name)
    if head == "list" and inner:
        if not isinstance(value, list):
            raise ValidationError(f"{where}: expected a list, found {value!r:.60}")
        return [value_from_json(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if head == "dict" and inner:
        _, _, item_type = inner.partition(",")
        if not isinstance(value, dict):
            raise ValidationError(f"{where}: expected an object, found {value!r:.60}")
        return {k: value_from_json(v, item_type.strip(), f"{where}.{k}") for k, v in value.items()}
    return _loose(value)


def _loose(value: Any) -> Any:
    """For ``any`` and record types: JSON as is, lists and maps walked, no guessing at bytes."""
    if isinstance(value, list):
        return [_loose(v) for v in value]
    if isinstance(value, dict):
        return {k: _loose(v) for k, v in value.items()}
    if isinstance(value, float):
        raise ValidationError(f"floats are not contract values (found {value}); use integers in minor units")
    return value


def args_from_json(abi: dict, method: str, args: list) -> list:
    """Convert JSON arguments by the ABI of ``method``."""
    for entry in abi.get("methods", []):
        if entry["name"] == method:
            params = entry["args"]
            if len(args) != len(params):
                raise ValidationError(f"{method} takes {len(params)} arguments "
                                      f"({', '.join(n for n, _ in params)}), found {len(args)}")
            return [value_from_json(a, t, f"{method}.{n}") for a, (n, t) in zip(args, params)]
    names = sorted(e["name"] for e in abi.get("methods", []))
    raise ValidationError(f"the contract has no method {method!r}; it has {names}")


def header_json(h: BlockHeader) -> dict:
    return {"chain_id": h.chain_id, "height": h.height, "prev_hash": hx(h.prev_hash), "timestamp_ms": h.timestamp_ms,
            "proposer": hx(h.proposer), "view": h.view, "tx_root": hx(h.tx_root), "receipts_root": hx(h.receipts_root),
            "state_root": hx(h.state_root), "validator_set_hash": hx(h.validator_set_hash),
            "next_validator_set_hash": hx(h.next_validator_set_hash), "last_commit_hash": hx(h.last_commit_hash)}


def tx_json(tx: SignedTx) -> dict:
    b = tx.body
    return {"id": hx(tx.tx_id), "chain_id": b.chain_id, "sender": hx(b.sender), "nonce": b.nonce,
            "contract": b.contract, "method": b.method, "args": value_to_json(b.args), "gas_limit": b.gas_limit,
            "signature": hx(tx.signature), "cosigners": [hx(k) for k in tx.cosigner_keys], "raw": hx(tx.encode())}


def cert_json(cert: CommitCertificate | None) -> dict | None:
    if cert is None:
        return None
    return {"height": cert.height, "view": cert.view, "block_hash": hx(cert.block_hash),
            "signers": [hx(v.validator) for v in cert.votes], "raw": hx(cert.encode())}


def block_json(block: Block, full_txs: bool = False) -> dict:
    return {"hash": hx(block.block_hash), "height": block.height, "header": header_json(block.header),
            "txs": [tx_json(t) if full_txs else hx(t.tx_id) for t in block.txs], "tx_count": len(block.txs),
            "last_commit": cert_json(block.last_commit)}


def receipt_json(receipt: Receipt, height: int | None = None, index: int | None = None) -> dict:
    return {"tx_id": hx(receipt.tx_id), "height": height, "index": index,
            "status": "ok" if receipt.status == 0 else "failed", "gas_used": receipt.gas_used, "fee": receipt.fee,
            "return_value": value_to_json(receipt.return_value), "error": receipt.error,
            "events": [{"contract": e.contract, "name": e.name, "data": value_to_json(e.data)} for e in receipt.events],
            "raw": hx(receipt.encode())}
