"""The commerce suite: compile, install and initialise every system contract at genesis.

How it works: each contract is a ``<name>.sc.py`` file next to this module, written in
the contract language (docs/contract-language.md). ``SYSTEM_CONTRACTS`` lists them
with the capabilities genesis grants (for example, only ``orders`` may lock and
release escrow because only it holds "escrow"). ``install_system_contracts`` compiles
each source (deterministic: the same files give the same code hashes on every node),
installs them, then replays the genesis document into them through ordinary calls
signed by the all-zero genesis sender: organisations and accounts into ``identity``,
opening balances into ``ledger``, settings into ``orders``, ``cases``, ..., the governance
settings and the genesis validators into ``governance``, and finally seals each one so
the genesis-only methods are closed for good. After genesis every consortium-level
change (code, settings, members, validators, role policy, fees) is a governance
proposal; ``validator_schedule`` / ``validator_directory`` are the node's direct reads
of the validator sets governance has scheduled, ``member_nodes`` of the observer nodes
organisations registered in ``nodes``. docs/commerce.md is
the guide to states, permissions and events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts_vm.api import CallContext, execute_call, execute_view, install_contract
from contracts_vm.errors import VMError
from contracts_vm.limits import GENESIS_CALL_GAS, REGISTERED_VIEW_GAS
from contracts_vm.machine import storage_prefix
from contracts_vm.values import encode_key, from_bytes
from ledger.errors import ChainError, CorruptionError, GenesisError

if TYPE_CHECKING:  # ledger.genesis may land separately; only its shape is used here
    from ledger.genesis import Genesis

#: The sender of genesis calls: all zeros is not a usable ed25519 key, so no one can sign as it.
GENESIS_SENDER = b"\x00" * 32

#: (contract name, file name, capabilities granted at genesis), in install order.
SYSTEM_CONTRACTS: list[tuple[str, str, list[str]]] = [
    ("identity", "identity.sc.py", []),
    ("ledger", "ledger.sc.py", []),
    ("orders", "orders.sc.py", ["escrow", "loyalty", "orders_hook"]),
    ("cases", "cases.sc.py", ["cases"]),
    ("warranty", "warranty.sc.py", []),
    ("reviews", "reviews.sc.py", []),
    ("loyalty", "loyalty.sc.py", []),
    ("tickets", "tickets.sc.py", ["tickets"]),
    ("provenance", "provenance.sc.py", ["carrier_feed"]),
    ("governance", "governance.sc.py", ["governance"]),
    ("nodes", "nodes.sc.py", []),
]

#: Seconds in a day: commerce periods are durations of block time, settings name them in seconds.
DAY = 86_400
#: Settings used when genesis.contract_settings does not name them (per contract).
DEFAULT_SETTINGS: dict[str, dict[str, int]] = {
    # the base currency: pays fees, prices orders unless another is named
    "ledger": {"currency_code": "USD", "currency_decimals": 2},
    # durations are seconds of block time (a day is 86,400)
    "orders": {"fee_bps": 200, "holdback_bps": 1000, "arbiter_seconds": 7 * DAY, "extend_seconds": 3 * DAY},
    "cases": {"reply_seconds": 2 * DAY, "return_ship_seconds": 7 * DAY, "return_transit_seconds": 14 * DAY,
              "refund_seconds": 3 * DAY},
    "warranty": {"contest_seconds": 14 * DAY, "claim_reply_seconds": 5 * DAY},
    "reviews": {"review_window_seconds": 90 * DAY},
    "tickets": {"first_response_seconds": DAY, "resolution_seconds": 5 * DAY, "close_seconds": 7 * DAY},
    # 2/3 of the organisations; a day of block time between passing and execution; a week to vote
    "governance": {"threshold_num": 2, "threshold_den": 3, "timelock_s": 86_400, "voting_period_s": 604_800,
                   "activation_delay": 10},
}

_HERE = Path(__file__).resolve().parent
_compiled: dict[str, bytes] = {}


def contract_source(file_name: str) -> str:
    return (_HERE / file_name).read_text(encoding="utf-8")


def compiled_code(file_name: str) -> bytes:
    """Bytecode of a system contract, compiled once per process (keyed by the source's hash)."""
    from contracts_vm.compiler import compile_source

    source = contract_source(file_name)
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()
    code = _compiled.get(key)
    if code is None:
        # the file name only labels compile errors; the code never depends on where the tree lives
        code = compile_source(source, "contracts_vm/system/" + file_name).code
        _compiled[key] = code
    return code


def _genesis_call(state, contract: str, method: str, args: list) -> Any:
    result = execute_call(state, contract, method, args, CallContext(sender=GENESIS_SENDER, height=0),
                          GENESIS_CALL_GAS)
    if not result.ok:
        raise GenesisError(f"genesis: {contract}.{method} failed: {result.error}: {result.error_message}")
    return result.return_value


def _settings(genesis, name: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(DEFAULT_SETTINGS.get(name, {}))
    given = (genesis.contract_settings or {}).get(name, {})
    if not isinstance(given, dict):
        raise GenesisError(f"genesis contracts.settings.{name}: expected an object, found {type(given).__name__}")
    unknown = sorted(set(given) - set(merged) - {"fee_account", "platform_org"})
    if unknown:
        raise GenesisError(f"genesis contracts.settings.{name}: unknown key(s) {unknown}; expected {sorted(merged)}")
    merged.update(given)
    return merged


def _platform_org(genesis) -> str:
    given = (genesis.contract_settings or {}).get("identity", {}).get("platform_org")
    if given is not None:
        return given
    for acct in genesis.accounts:
        if "PLATFORM" in acct.roles:
            return acct.organisation
    return genesis.organisations[0].id


def _fee_account(genesis, orders_settings: dict) -> bytes:
    given = orders_settings.get("fee_account")
    if given is not None:
        return bytes.fromhex(given[2:]) if isinstance(given, str) else bytes(given)
    for acct in genesis.accounts:
        if "PLATFORM" in acct.roles:
            return acct.public_key
    raise GenesisError("genesis: no PLATFORM account to receive platform fees; set contracts.settings.orders.fee_account")


def install_system_contracts(state, genesis: "Genesis") -> None:
    """Install every system contract and load the genesis organisations, accounts, balances and settings."""
    try:
        for name, file_name, caps in SYSTEM_CONTRACTS:
            install_contract(state, name, compiled_code(file_name), caps)
    except VMError as exc:
        raise GenesisError(f"genesis: installing system contracts failed: {exc}") from None
    known = {c[0] for c in SYSTEM_CONTRACTS}
    unknown = sorted(set(genesis.contract_settings or {}) - known)
    if unknown:
        raise GenesisError(f"genesis contracts.settings: unknown contract(s) {unknown}; expected some of {sorted(known)}")
    platform_org = _platform_org(genesis)
    for org in genesis.organisations:
        _genesis_call(state, "identity", "genesis_org", [org.id, list(org.admin_keys), org.id == platform_org])
    currency = _settings(genesis, "ledger")
    _genesis_call(state, "ledger", "configure", [currency["currency_code"], currency["currency_decimals"]])
    for acct in genesis.accounts:
        _genesis_call(state, "identity", "genesis_account",
                      [acct.public_key, acct.organisation, list(acct.roles), acct.encryption_key or b""])
        if acct.balance:
            _genesis_call(state, "ledger", "genesis_credit", [acct.public_key, acct.balance])
    o = _settings(genesis, "orders")
    _genesis_call(state, "orders", "configure", [o["fee_bps"], o["holdback_bps"], o["arbiter_seconds"],
                                                 o["extend_seconds"], _fee_account(genesis, o)])
    for name in ("cases", "warranty", "reviews", "tickets"):
        if name in {c[0] for c in SYSTEM_CONTRACTS}:
            s = _settings(genesis, name)
            _genesis_call(state, name, "configure", [s[k] for k in DEFAULT_SETTINGS[name]])
    g = _settings(genesis, "governance")
    _genesis_call(state, "governance", "genesis_configure", [g[k] for k in DEFAULT_SETTINGS["governance"]])
    for v in genesis.validators:
        _genesis_call(state, "governance", "genesis_validator",
                      [v.public_key, v.name, v.organisation, v.p2p_address, v.rpc_address])
    for name in ("identity", "ledger", "orders", "cases", "warranty", "reviews", "tickets", "governance"):
        if name in {c[0] for c in SYSTEM_CONTRACTS}:
            _genesis_call(state, name, "seal", [])


def review_message(chain_id: str, ring: list[int], line: int, scores: list[int], content_hash: bytes,
                   incentivised: bool, version: int) -> bytes:
    """The bytes a review's ring signature covers (ring = the ascending order ids); the
    reviews contract's ``message`` rebuilds exactly these."""
    m = b"shopchain/review/v2|" + chain_id.encode() + b"|" + b"".join(str(o).encode() + b"," for o in ring)
    m += b"|" + str(line).encode()
    for s in scores:
        m += b"|" + str(s).encode()
    return m + b"|" + content_hash + b"|" + (b"1" if incentivised else b"0") + b"|" + str(version).encode()


def key_proof_message(chain_id: str, account: bytes, new_key: bytes) -> bytes:
    """The bytes a new signing key signs to move ``account`` to it (rotation or recovery);
    the identity contract's ``key_proof_message`` rebuilds exactly these."""
    return b"shopchain/account-key/v1|" + chain_id.encode() + b"|" + account + new_key


def warranty_claim_commitment(unit: bytes, claimant: bytes, code: bytes) -> bytes:
    """What a new owner commits to before revealing a transfer's claim code; the warranty
    contract's ``claim_commitment`` rebuilds exactly these (binds the code to the claimant)."""
    return hashlib.sha256(b"shopchain/warranty-claim/v1|" + unit + b"|" + claimant + b"|" + code).digest()


def cosigner_proof_message(chain_id: str, account: bytes, cosigner: bytes) -> bytes:
    """The bytes a co-signer key signs to join ``account``'s signing policy; the identity
    contract's ``cosigner_proof_message`` rebuilds exactly these."""
    return b"shopchain/cosigner-key/v1|" + chain_id.encode() + b"|" + account + cosigner


@dataclass(frozen=True)
class SigningPolicy:
    """An account's k-of-(n+1) rule (identity's ``Policy`` record, read directly).

    ``threshold`` counts the account's own key (which signs every transaction of the
    account) and the co-signers; below it a transaction may move at most
    ``spend_limit`` out of the balance per ``window_ms`` of block time (0: per transaction).
    """

    cosigners: tuple[bytes, ...]
    threshold: int
    spend_limit: int
    window_ms: int

    def approvals(self, cosigner_keys: tuple[bytes, ...] | list[bytes]) -> int:
        """The account's own signature plus the co-signatures from this policy's keys."""
        return 1 + sum(1 for k in set(cosigner_keys) if k in self.cosigners)

    def describe(self) -> str:
        window = "per transaction" if self.window_ms == 0 else f"per {self.window_ms} ms of block time"
        return (f"{self.threshold} of {len(self.cosigners) + 1} signatures above {self.spend_limit} {window}")


def signing_policy(state, account: bytes) -> SigningPolicy | None:
    """``account``'s signing policy, None when it has none (one key suffices for everything).

    A direct read of identity's ``policies`` map (no VM entry: the executor asks this
    for every transaction, admission for every co-signed one); it agrees with the
    contract's ``signing_policy`` view (tests/node/test_multisig.py checks it).
    """
    record = _record(state, "policies", account)
    if record is None:
        return None
    try:
        cosigners, threshold = tuple(record["cosigners"]), record["threshold"]
        spend_limit, window_ms = record["spend_limit"], record["window_ms"]
    except (KeyError, TypeError):
        raise CorruptionError(f"identity policy of {account.hex()} is not a Policy: {record!r}") from None
    if not all(type(k) is bytes for k in cosigners) or not all(type(v) is int for v in (threshold, spend_limit, window_ms)):
        raise CorruptionError(f"identity policy of {account.hex()} is not a Policy: {record!r}")
    return SigningPolicy(cosigners, threshold, spend_limit, window_ms)


#: Error names of a refused signer (the prefix of its receipt error).
UNREGISTERED_SENDER = "UnregisteredSender"
ROTATED_KEY = "RotatedKey"


@dataclass(frozen=True)
class Signer:
    """What a signing key stands for in one state: the account id calls run as, or why it may not sign.

    ``account`` is the stable account id (the key the account was registered with) for
    an account key, current or retired; the key itself for an organisation admin key
    that is no account's; None for a stranger. ``refusal`` is None when the key may
    sign now, else (error name, message).
    """

    key: bytes
    account: bytes | None
    refusal: tuple[str, str] | None = None
    retired_at: int = 0

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _identity_key(slot: str, account: bytes) -> bytes:
    return storage_prefix("identity") + slot.encode("utf-8") + b"/" + encode_key(account, ["bytes"])


def _record(state, slot: str, key: bytes) -> dict | None:
    """A record of identity's ``slot`` map, None when absent; anything else stored there is corruption."""
    raw = state.get(_identity_key(slot, key))
    if raw is None:
        return None
    try:
        record = from_bytes(raw)
    except ChainError as exc:
        raise CorruptionError(f"identity {slot} entry of {key.hex()} does not decode: {exc}") from None
    if not isinstance(record, dict):
        raise CorruptionError(f"identity {slot} entry of {key.hex()} is not a record: {record!r}")
    return record


def resolve_signer(state, key: bytes) -> Signer:
    """The account a transaction signed by ``key`` acts for, or why it is refused.

    The one resolution both the executor (before the registration check, nonce, fee
    and CallContext) and mempool admission use. Direct reads of the identity
    contract's storage (the ``keys`` map, then ``accounts`` or ``admin_of``: two key
    lookups, no VM entry), because the mempool asks this for every incoming
    transaction; it agrees with the contract's ``is_registered`` and ``account_of``
    views (tests/commerce/test_commerce_identity.py checks it).
    """
    if type(key) is not bytes or len(key) != 32:
        return Signer(key, None, (UNREGISTERED_SENDER, "the sender must be a 32-byte key"))
    entry = _record(state, "keys", key)
    if entry is not None:
        account, retired_at = entry.get("account"), entry.get("retired_at")
        if type(account) is not bytes or type(retired_at) is not int:
            raise CorruptionError(f"identity key entry of {key.hex()} is not a KeyEntry: {entry!r}")
        if retired_at:
            return Signer(key, account, (ROTATED_KEY, (
                f"key {key.hex()} was rotated out of account {account.hex()} at height {retired_at}; "
                f"sign with the account's current key")), retired_at)
        acct = _record(state, "accounts", account)
        if acct is None or acct.get("signing_key") != key:  # identity keeps both in step
            raise CorruptionError(f"identity key entry of {key.hex()} names account {account.hex()}, whose record "
                                  f"{'is missing' if acct is None else 'has another current key'}")
        if acct.get("active") is not True:
            return Signer(key, account, (UNREGISTERED_SENDER, f"sender {key.hex()} is not a registered, active account"))
        return Signer(key, account)
    if state.get(_identity_key("admin_of", key)) is not None:
        return Signer(key, key)
    return Signer(key, None, (UNREGISTERED_SENDER, f"sender {key.hex()} is not a registered, active account"))


def is_registered(state, key: bytes) -> bool:
    """True when ``key`` may sign transactions now (``resolve_signer`` without the reasons)."""
    return resolve_signer(state, key).ok


def account_of(state, key: bytes) -> bytes:
    """The account id ``key`` signs for (the key itself when it is no account's key)."""
    account = resolve_signer(state, key).account
    return key if account is None else account


def is_registered_view(state, account: bytes) -> bool:
    """The same answer through the VM (slower; the reference for the direct read)."""
    result = execute_view(state, "identity", "is_registered", [account], CallContext(sender=account),
                          REGISTERED_VIEW_GAS)
    return bool(result.ok and result.return_value is True)


# ---- the validator schedule (governance storage, read directly by the node) --------

def _slot(contract: str, slot: str, key=None, key_type: str = "") -> bytes:
    base = storage_prefix(contract) + slot.encode("utf-8") + b"/"
    return base if key_type == "" else base + encode_key(key, [key_type])


def _governance_key(slot: str, key=None, key_type: str = "") -> bytes:
    return _slot("governance", slot, key, key_type)


def _governance_int(state, slot: str) -> int:
    raw = state.get(_governance_key(slot))
    value = 0 if raw is None else from_bytes(raw)
    return value if type(value) is int else 0


def validator_schedule(state) -> list[tuple[int, list[bytes]]]:
    """Every validator set governance has scheduled: (activation height, ordered 32-byte keys), ascending.

    The first entry is (1, the genesis validators in genesis order); a set is in force
    from its height until the next entry's. Direct reads of the governance contract's
    ``schedule_count`` scalar and ``schedule`` map (index -> {height, keys}), as
    ``is_registered`` reads identity; it agrees with the contract's ``get_schedule``
    view (tests/commerce/test_governance.py).
    """
    out: list[tuple[int, list[bytes]]] = []
    for i in range(_governance_int(state, "schedule_count")):
        raw = state.get(_governance_key("schedule", i, "int"))
        if raw is None:
            raise CorruptionError(f"governance schedule entry {i} of {_governance_int(state, 'schedule_count')} is missing")
        record = from_bytes(raw)
        out.append((record["height"], list(record["keys"])))
    return out


def validator_directory(state) -> dict[bytes, dict]:
    """{key: {"name", "organisation", "p2p_address", "rpc_address"}} for every validator ever scheduled.

    Direct reads of governance's ``directory_count``, ``directory_keys`` (index -> key)
    and ``directory`` (key -> Validator record); agrees with the ``get_validator`` view.
    """
    out: dict[bytes, dict] = {}
    for i in range(_governance_int(state, "directory_count")):
        key = from_bytes(state.get(_governance_key("directory_keys", i, "int")))
        record = from_bytes(state.get(_governance_key("directory", key, "bytes")))
        out[key] = {f: record[f] for f in ("name", "organisation", "p2p_address", "rpc_address")}
    return out


# ---- the node registry (nodes storage, read directly by the node) ---------------------

def member_nodes(state) -> dict[bytes, dict]:
    """{key: {"name", "organisation", "p2p_address"}} of the registered nodes of active organisations.

    Direct reads of the ``nodes`` contract (``node_count``, ``node_keys``, ``nodes``) and of
    identity's ``orgs`` (a removed organisation's nodes drop out here); agrees with the
    contract's ``list_nodes`` view filtered the same way (tests/commerce/test_nodes.py).
    """
    raw_count = state.get(_slot("nodes", "node_count"))
    count = 0 if raw_count is None else from_bytes(raw_count)
    out: dict[bytes, dict] = {}
    active_orgs: dict[str, bool] = {}
    for i in range(count if type(count) is int else 0):
        key = from_bytes(state.get(_slot("nodes", "node_keys", i, "int")))
        record = from_bytes(state.get(_slot("nodes", "nodes", key, "bytes")))
        if not record["active"]:
            continue
        org = record["organisation"]
        if org not in active_orgs:
            org_raw = state.get(_slot("identity", "orgs", org, "str"))
            active_orgs[org] = org_raw is not None and from_bytes(org_raw).get("active") is True
        if active_orgs[org]:
            out[key] = {f: record[f] for f in ("name", "organisation", "p2p_address")}
    return out
