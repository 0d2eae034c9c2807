"""The genesis file: who the consortium is and what the chain starts with.

How it works: a genesis file is JSON (human-edited, diffed in review, like CometBFT's
genesis.json). ``load_genesis`` parses it into a frozen ``Genesis`` value, checking
every field and naming the offending one (``validators[2].public_key: expected 32
bytes as 0x-hex, found 31``). ``Genesis.to_canonical`` is the canonical-encodable form
and ``genesis_hash`` its SHA-256: every node of a network must print the same hash.

Format (every key required unless marked optional)::

    {
      "chain_id": "shopchain-devnet",          # 1..64 chars of [A-Za-z0-9._-]
      "genesis_time_ms": 1767225600000,        # block timestamps start after this
      "organisations": [
        {"id": "platform", "name": "Example Platform Ltd",
         "admin_keys": ["0x<32-byte ed25519 public key>"]}
      ],
      "validators": [
        {"name": "v0", "organisation": "platform", "public_key": "0x...",
         "p2p_address": "127.0.0.1:26600", "rpc_address": "127.0.0.1:8545"}
      ],
      "accounts": [
        {"public_key": "0x...", "organisation": "platform", "roles": ["PLATFORM"],
         "balance": "1000000",                 # minor units, decimal string or int
         "encryption_key": "0x<32-byte X25519 key>"}   # optional
      ],
      "contracts": {"settings": {...}},         # optional: system-contract settings
      "fees": {                                 # optional: no section = no fees at all
        "gas_price": 1,                         # minor units per 1,000 gas (rounded up)
        "byte_price": 1,                        # minor units per byte of the signed transaction
        "collector": "0x..."}                   # optional: a genesis account; default the
    }                                           #   first TREASURY account

Fees (``node.core.fees``): every transaction with a valid sender and nonce pays, failed
ones included, ``ceil(gas_used x gas_price / 1000) + bytes x byte_price`` from the
sender's ledger balance to the collector; admission refuses a sender whose balance
does not cover ``ceil(gas_limit x gas_price / 1000) + bytes x byte_price`` for this
and its pending transactions. The section enters the genesis hash only when present,
so older genesis files keep their hash and state root. Later changes are governed
transactions (``system.set_fees``, node/core/executor.py), not edits of this file.

Names and ids of organisations are business identities, not personal data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ledger import encoding
from ledger.crypto import PUBLIC_KEY_BYTES, sha256
from ledger.errors import EncodeError, GenesisError
from ledger.types import MAX_VALIDATORS
from ledger.hexfmt import to_hex

ROLES = ("PLATFORM", "MERCHANT", "BUYER", "CARRIER", "SERVICE_CENTER", "ARBITER", "ISSUER", "TREASURY", "AUDITOR")
#: Largest genesis file accepted.
MAX_GENESIS_BYTES = 16 * 1024 * 1024
#: Most accounts in a genesis file.
MAX_GENESIS_ACCOUNTS = 100_000
#: Most organisations.
MAX_ORGANISATIONS = 1_000
#: Largest balance (fits the canonical integer range).
MAX_BALANCE = 2**63 - 1
#: Highest fee prices a genesis may set (minor units per 1,000 gas, and per byte).
MAX_GAS_PRICE = 10**9
MAX_BYTE_PRICE = 10**9

_CHAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ORG_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:(\d{1,5})$")


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    admin_keys: tuple[bytes, ...]


@dataclass(frozen=True)
class ValidatorInfo:
    name: str
    organisation: str
    public_key: bytes
    p2p_address: str
    rpc_address: str


@dataclass(frozen=True)
class GenesisAccount:
    public_key: bytes
    organisation: str
    roles: tuple[str, ...]
    balance: int
    encryption_key: bytes | None


@dataclass(frozen=True)
class GenesisFees:
    """The fee schedule: prices in minor units and the account fees are paid to."""

    gas_price: int
    byte_price: int
    collector: bytes


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    organisations: tuple[Organisation, ...]
    validators: tuple[ValidatorInfo, ...]
    accounts: tuple[GenesisAccount, ...]
    contract_settings: dict = field(default_factory=dict)
    fees: GenesisFees | None = None

    @property
    def validator_keys(self) -> list[bytes]:
        """The validator order fixed by genesis: the primary of view v is index v mod n."""
        return [v.public_key for v in self.validators]

    def to_canonical(self) -> list:
        fees = [] if self.fees is None else [[self.fees.gas_price, self.fees.byte_price, self.fees.collector]]
        return [
            "genesis/1",
            self.chain_id,
            self.genesis_time_ms,
            [[o.id, o.name, list(o.admin_keys)] for o in self.organisations],
            [[v.name, v.organisation, v.public_key, v.p2p_address, v.rpc_address] for v in self.validators],
            [[a.public_key, a.organisation, list(a.roles), a.balance, a.encryption_key] for a in self.accounts],
            self.contract_settings,
            *fees,  # only when set: genesis files without fees keep their hash
        ]

    @property
    def genesis_hash(self) -> bytes:
        return sha256(encoding.encode(self.to_canonical()))

    def to_json(self) -> dict:
        """The JSON form ``load_genesis`` reads back to an equal value."""
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "organisations": [{"id": o.id, "name": o.name, "admin_keys": [to_hex(k) for k in o.admin_keys]}
                              for o in self.organisations],
            "validators": [{"name": v.name, "organisation": v.organisation, "public_key": to_hex(v.public_key),
                            "p2p_address": v.p2p_address, "rpc_address": v.rpc_address} for v in self.validators],
            "accounts": [
                {"public_key": to_hex(a.public_key), "organisation": a.organisation, "roles": list(a.roles),
                 "balance": str(a.balance),
                 **({"encryption_key": to_hex(a.encryption_key)} if a.encryption_key else {})}
                for a in self.accounts
            ],
            "contracts": {"settings": self.contract_settings},
            **({} if self.fees is None else {"fees": {"gas_price": self.fees.gas_price,
                                                      "byte_price": self.fees.byte_price,
                                                      "collector": to_hex(self.fees.collector)}}),
        }


def _fail(path: str, expected: str, found: Any) -> GenesisError:
    shown = repr(found)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return GenesisError(f"genesis {path}: expected {expected}, found {shown}")


def _require(obj: dict, key: str, path: str) -> Any:
    if key not in obj:
        raise GenesisError(f"genesis {path}: missing required key {key!r}")
    return obj[key]


def _hex_key(value: Any, path: str, size: int = PUBLIC_KEY_BYTES) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise _fail(path, f"{size} bytes as 0x-prefixed hex", value)
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise _fail(path, f"{size} bytes as 0x-prefixed hex", value) from None
    if len(raw) != size:
        raise GenesisError(f"genesis {path}: expected {size} bytes as 0x-hex, found {len(raw)}")
    return raw


def _list(value: Any, path: str, limit: int, allow_empty: bool = False) -> list:
    if not isinstance(value, list):
        raise _fail(path, "a list", value)
    if not allow_empty and not value:
        raise GenesisError(f"genesis {path}: expected at least one entry, found none")
    if len(value) > limit:
        raise GenesisError(f"genesis {path}: expected at most {limit} entries, found {len(value)}")
    return value


def _text(value: Any, path: str, max_chars: int = 128) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise _fail(path, f"a non-empty string of at most {max_chars} characters", value)
    return value


def _address(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise _fail(path, "host:port with a port in 1..65535", value)
    return value


def parse_genesis(doc: Any, draft: bool = False) -> Genesis:
    """Validate a parsed JSON document and build the Genesis value.

    ``draft=True`` accepts a genesis being assembled (``shopchain genesis ...``): the
    organisation and validator lists may still be empty; every entry present is checked
    exactly as in a complete file. Such a value is not a network's genesis: only a
    document that passes without ``draft`` is.
    """
    if not isinstance(doc, dict):
        raise _fail("(top level)", "a JSON object", type(doc).__name__)
    known = {"chain_id", "genesis_time_ms", "organisations", "validators", "accounts", "contracts", "fees"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise GenesisError(f"genesis: unknown key(s) {unknown}; expected only {sorted(known)}")
    chain_id = _require(doc, "chain_id", "chain_id")
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise _fail("chain_id", "1..64 characters of letters, digits, '.', '_' or '-'", chain_id)
    time_ms = _require(doc, "genesis_time_ms", "genesis_time_ms")
    if type(time_ms) is not int or time_ms < 0:
        raise _fail("genesis_time_ms", "a non-negative integer (milliseconds since 1970)", time_ms)

    orgs: list[Organisation] = []
    org_docs = _list(_require(doc, "organisations", "organisations"), "organisations", MAX_ORGANISATIONS,
                     allow_empty=draft)
    for i, o in enumerate(org_docs):
        p = f"organisations[{i}]"
        if not isinstance(o, dict):
            raise _fail(p, "an object", o)
        oid = _require(o, "id", p)
        if not isinstance(oid, str) or not _ORG_ID.fullmatch(oid):
            raise _fail(f"{p}.id", "a lowercase id of letters, digits, '_' or '-'", oid)
        if any(x.id == oid for x in orgs):
            raise GenesisError(f"genesis {p}.id: organisation {oid!r} is listed twice")
        admins = _list(_require(o, "admin_keys", p), f"{p}.admin_keys", 64)
        orgs.append(Organisation(oid, _text(_require(o, "name", p), f"{p}.name"),
                                 tuple(_hex_key(k, f"{p}.admin_keys[{j}]") for j, k in enumerate(admins))))
    org_ids = {o.id for o in orgs}

    def org_ref(value: Any, path: str) -> str:
        if value not in org_ids:
            raise _fail(path, f"one of the organisations {sorted(org_ids)}", value)
        return value

    validators: list[ValidatorInfo] = []
    validator_docs = _list(_require(doc, "validators", "validators"), "validators", MAX_VALIDATORS,
                           allow_empty=draft)
    for i, v in enumerate(validator_docs):
        p = f"validators[{i}]"
        if not isinstance(v, dict):
            raise _fail(p, "an object", v)
        info = ValidatorInfo(_text(_require(v, "name", p), f"{p}.name", 64), org_ref(_require(v, "organisation", p), f"{p}.organisation"),
                             _hex_key(_require(v, "public_key", p), f"{p}.public_key"),
                             _address(_require(v, "p2p_address", p), f"{p}.p2p_address"),
                             _address(_require(v, "rpc_address", p), f"{p}.rpc_address"))
        for other in validators:
            if other.public_key == info.public_key:
                raise GenesisError(f"genesis {p}.public_key: the same key as validator {other.name!r}")
            if other.name == info.name:
                raise GenesisError(f"genesis {p}.name: validator name {info.name!r} is used twice")
        validators.append(info)

    accounts: list[GenesisAccount] = []
    seen_keys: set[bytes] = set()
    for i, a in enumerate(_list(doc.get("accounts", []), "accounts", MAX_GENESIS_ACCOUNTS, allow_empty=True)):
        p = f"accounts[{i}]"
        if not isinstance(a, dict):
            raise _fail(p, "an object", a)
        key = _hex_key(_require(a, "public_key", p), f"{p}.public_key")
        if key in seen_keys:
            raise GenesisError(f"genesis {p}.public_key: account {key.hex()[:16]}... is listed twice")
        seen_keys.add(key)
        roles = _list(_require(a, "roles", p), f"{p}.roles", len(ROLES))
        for j, r in enumerate(roles):
            if r not in ROLES:
                raise _fail(f"{p}.roles[{j}]", f"one of {list(ROLES)}", r)
        if len(set(roles)) != len(roles):
            raise GenesisError(f"genesis {p}.roles: a role is listed twice")
        balance = a.get("balance", 0)
        if isinstance(balance, str) and balance.isdigit():
            balance = int(balance)
        if type(balance) is not int or not 0 <= balance <= MAX_BALANCE:
            raise _fail(f"{p}.balance", f"an integer amount in minor units, 0..{MAX_BALANCE}", balance)
        enc = a.get("encryption_key")
        accounts.append(GenesisAccount(key, org_ref(_require(a, "organisation", p), f"{p}.organisation"),
                                       tuple(sorted(roles)), balance,
                                       None if enc is None else _hex_key(enc, f"{p}.encryption_key")))

    contracts = doc.get("contracts", {})
    if not isinstance(contracts, dict) or set(contracts) - {"settings"}:
        raise _fail("contracts", 'an object with only the key "settings"', contracts)
    settings = contracts.get("settings", {})
    if not isinstance(settings, dict):
        raise _fail("contracts.settings", "an object", settings)
    try:
        encoding.encode(settings)
    except EncodeError as exc:
        raise GenesisError(f"genesis contracts.settings: {exc}") from None
    fees = None if "fees" not in doc else _parse_fees(doc["fees"], accounts)
    return Genesis(chain_id, time_ms, tuple(orgs), tuple(validators), tuple(accounts), settings, fees)


def _parse_fees(value: Any, accounts: list[GenesisAccount]) -> GenesisFees:
    """The ``fees`` section; the collector must be a genesis account (someone holds its key)."""
    if not isinstance(value, dict) or set(value) - {"gas_price", "byte_price", "collector"}:
        raise _fail("fees", 'an object with keys "gas_price", "byte_price" and optionally "collector"', value)
    prices = []
    for key, limit in (("gas_price", MAX_GAS_PRICE), ("byte_price", MAX_BYTE_PRICE)):
        price = _require(value, key, "fees")
        if type(price) is not int or not 0 <= price <= limit:
            raise _fail(f"fees.{key}", f"an integer price in minor units, 0..{limit}", price)
        prices.append(price)
    keys = {a.public_key for a in accounts}
    if "collector" in value:
        collector = _hex_key(value["collector"], "fees.collector")
        if collector not in keys:
            raise GenesisError(f"genesis fees.collector: {collector.hex()[:16]}... is not one of the genesis accounts")
    else:
        treasury = [a.public_key for a in accounts if "TREASURY" in a.roles]
        if not treasury:
            raise GenesisError("genesis fees: no TREASURY account to collect fees; set fees.collector")
        collector = treasury[0]
    return GenesisFees(prices[0], prices[1], collector)


def load_genesis(path: str) -> Genesis:
    """Read and validate a genesis file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_GENESIS_BYTES + 1)
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from None
    if len(raw) > MAX_GENESIS_BYTES:
        raise GenesisError(f"genesis file {path} is larger than {MAX_GENESIS_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from None
    return parse_genesis(doc)


def save_genesis(genesis: Genesis, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(genesis.to_json(), fh, indent=2)
        fh.write("\n")
