"""The Python client for application developers.

How it works: ``Client`` speaks JSON-RPC to one node over HTTP (standard library only,
so a shop's backend needs nothing but shopchain installed). ``send`` builds a
transaction body, signs it with the caller's key, tracks the sender's nonce locally
(first read from ``account_get``) and submits the canonical bytes; ``wait`` waits for
the receipt over a websocket subscription to new blocks, with a timeout, and falls
back to polling if the websocket is unavailable. ``verify_receipt`` and
``verify_state_proof`` check what a node returned with nothing but the validator set:
the header's hash, the block's commit certificate, and the Merkle path from the
receipt (or state entry) to the root in that header. A node cannot fake either
without 2f+1 validator signatures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

from contracts_vm.bytecode import code_hash, decode_container
from contracts_vm.errors import VMError
from contracts_vm.machine import CODE_PREFIX, check_contract_name, storage_prefix
from contracts_vm.system import cosigner_proof_message, key_proof_message
from ledger import encoding
from ledger.crypto import SigningKey, sha256
from ledger.errors import ChainError, ValidationError
from ledger.merkle import verify_inclusion
from ledger.state import verify_proof
from ledger.types import BlockHeader, CommitCertificate, Receipt, TxBody, validator_set_hash, verify_certificate
from ledger.validator_set import ValidatorSchedule
from ledger.hexfmt import to_hex

#: Default gas limit of a transaction sent by the client.
DEFAULT_GAS = 2_000_000
#: Default time to wait for a receipt.
DEFAULT_WAIT_S = 30.0
#: Timeout of one HTTP request.
HTTP_TIMEOUT_S = 10.0
#: Most characters of a non-JSON error body quoted in an RpcFailure.
MAX_SHOWN_REASON_CHARS = 300
#: Polling interval when no websocket is available.
POLL_INTERVAL_S = 0.2


class RpcFailure(ChainError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.rpc_message = message
        self.data = data

    @property
    def reason(self) -> str | None:
        return self.data.get("reason") if isinstance(self.data, dict) else None


class TxFailed(ChainError):
    """A transaction was committed with a failed receipt."""

    def __init__(self, receipt: dict) -> None:
        super().__init__(f"transaction {receipt['tx_id']} failed: {receipt['error']}")
        self.receipt = receipt


def unhex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text[2:])


@dataclass
class Client:
    url: str                       # e.g. http://127.0.0.1:8545
    chain_id: str | None = None
    timeout: float = HTTP_TIMEOUT_S

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._ids = itertools.count(1)
        self._nonces: dict[bytes, int] = {}

    # --- raw JSON-RPC ---------------------------------------------------------------

    def request(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url + "/rpc", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                reply = json.loads(text or b"{}")
            except ValueError:  # a plain-text refusal (503 at a connection cap, 408 at a timeout)
                reply = {}
            if not isinstance(reply, dict) or "error" not in reply:
                reason = text.decode("utf-8", "replace").strip()[:MAX_SHOWN_REASON_CHARS]
                raise RpcFailure(exc.code, f"HTTP {exc.code} from {self.url}" + (f": {reason}" if reason else "")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RpcFailure(-1, f"cannot reach {self.url}: {exc}") from None
        if "error" in reply:
            err = reply["error"]
            raise RpcFailure(err.get("code", 0), err.get("message", ""), err.get("data"))
        return reply["result"]

    # --- reads ----------------------------------------------------------------------

    def status(self) -> dict:
        status = self.request("chain_status")
        self.chain_id = self.chain_id or status["chain_id"]
        return status

    def validators(self) -> dict:
        """``chain_getValidators``: prove it with ``verify_validator_sets`` before trusting it."""
        return self.request("chain_getValidators")

    def block(self, height: int | str = "latest", full: bool = False) -> dict:
        return self.request("chain_getBlock", height, full)

    def receipt(self, tx_id: str) -> dict:
        return self.request("chain_getReceipt", tx_id)

    def call(self, contract: str, method: str, *args: Any, height: int | str = "latest") -> Any:
        """A read-only contract view; bytes arguments as bytes or 0x-hex."""
        json_args = [_json_arg(a) for a in args]
        return self.request("chain_call", contract, method, json_args, height)["result"]

    def account(self, address: bytes) -> dict:
        """``account_get`` by account id or signing key: the account's nonce, roles and balance."""
        return self.request("account_get", to_hex(address))

    def account_of(self, key: bytes) -> bytes | None:
        """The stable account id a signing key acts (or acted) for, None when it is no account's key.

        Contracts name parties by account id (the key an account was registered with),
        so an application that knows a party by its current signing key asks here.
        """
        found = self.call("identity", "account_of", key)
        return None if found is None else unhex(found[0])

    def rotate_signing_key(self, key: SigningKey, new_key: SigningKey, timeout: float = DEFAULT_WAIT_S) -> dict:
        """Move ``key``'s account to ``new_key`` (which proves possession); ``key`` is refused from then on.

        Returns the receipt. Balances, orders, escrow, terms, tickets, points and
        passports stay with the account; sign everything after this with ``new_key``.
        """
        if self.chain_id is None:
            self.status()
        account = self.account_of(key.public_key) or key.public_key
        receipt = self.transact(key, "identity", "rotate_signing_key", new_key.public_key,
                                key_proof(self.chain_id, account, new_key), timeout=timeout)
        self._nonces.pop(key.public_key, None)
        return receipt

    def proven_value(self, key: bytes, height: int, validators: "Sets") -> bytes | None:
        """The state value at ``key`` after block ``height``, checked against its certified header
        (at height 0, the genesis state, there is no certificate and the answer is taken as given)."""
        answer = self.request("chain_getProof", to_hex(key), height)
        if answer.get("header") is None:
            return unhex(answer.get("value"))
        return verify_state_proof(answer, validators, self.chain_id or self.status()["chain_id"])

    def contract_scalars(self, contract: str) -> dict:
        """{contract, height, code_hash, values: {name: value}}: every storage variable without keys
        (a contract's settings and counters), each proven against the certified state root.

        The layout comes from the installed code's ABI, so it works for any contract; no
        contract view is needed. Maps are left out (their views answer them). Raises
        ValidationError for a bad name or a contract that is not installed.
        """
        try:
            check_contract_name(contract)
        except VMError as exc:
            raise ValidationError(f"contract {contract!r}: {exc.message}") from None
        status = self.status()
        height = status["height"]
        genesis_keys = [unhex(v["public_key"]) for v in self.request("chain_getGenesis")["validators"]]
        validators = verify_validator_sets(self.validators(), genesis_keys, status["chain_id"])
        code = self.proven_value(CODE_PREFIX + contract.encode(), height, validators)
        if code is None:
            raise ValidationError(f"no contract named {contract!r} is installed at height {height}")
        prefix = storage_prefix(contract)
        values: dict[str, Any] = {}
        for name, key_types, _value_type in decode_container(code).abi.get("storage", []):
            if not key_types:
                raw = self.proven_value(prefix + name.encode() + b"/", height, validators)
                values[name] = None if raw is None else _json_arg(encoding.decode(raw))
        return {"contract": contract, "height": height, "code_hash": to_hex(code_hash(code)), "values": values}

    # --- writes ---------------------------------------------------------------------

    def next_nonce(self, sender: bytes) -> int:
        if sender not in self._nonces:
            self._nonces[sender] = self.account(sender)["nonce"]
        return self._nonces[sender]

    def build(self, key: SigningKey, contract: str, method: str, args: list, gas: int = DEFAULT_GAS,
              nonce: int | None = None) -> bytes:
        """The signed raw transaction (canonical bytes), consuming a local nonce."""
        if self.chain_id is None:
            self.status()
        n = self.next_nonce(key.public_key) if nonce is None else nonce
        tx = TxBody(self.chain_id, key.public_key, n, contract, method, list(args), gas).sign(key)
        if nonce is None:
            self._nonces[key.public_key] = n + 1
        return tx.encode()

    def send_raw(self, raw: bytes) -> str:
        return self.request("chain_sendRawTransaction", to_hex(raw))

    def simulate(self, raw: bytes) -> dict:
        """``chain_simulate`` of a signed raw transaction: the receipt it would get in the next
        block ({status, error, gas_used, fee, return_value, events, ...}); nothing is sent, no
        nonce is used. Admission's refusals raise RpcFailure as ``send_raw`` would."""
        return self.request("chain_simulate", to_hex(raw))

    def simulate_call(self, sender: bytes, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS,
                      nonce: int | None = None) -> dict:
        """``chain_simulate`` of a call not signed yet (a wallet asking before it signs): the same
        checks and execution except the signature; JSON-style arguments are converted by the ABI
        (bytes as bytes or 0x-hex). ``nonce`` defaults to the one after the sender's pending ones."""
        call: dict[str, Any] = {"sender": to_hex(sender), "contract": contract, "method": method,
                                "args": [_json_arg(a) for a in args], "gas_limit": gas}
        if nonce is not None:
            call["nonce"] = nonce
        return self.request("chain_simulate", call)

    def send(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS) -> str:
        """Sign and submit; returns the transaction id once the node admitted it."""
        raw = self.build(key, contract, method, list(args), gas)
        try:
            return self.send_raw(raw)
        except RpcFailure:
            self._nonces.pop(key.public_key, None)  # re-read the nonce next time
            raise

    def wait(self, tx_id: str, timeout: float = DEFAULT_WAIT_S) -> dict:
        """The committed receipt; raises TimeoutError if it does not commit in time."""
        try:
            return asyncio.run(self._wait_ws(tx_id, timeout))
        except (OSError, ImportError, RpcFailure, ConnectionError):
            return self._wait_poll(tx_id, timeout)

    def wait_for_height(self, height: int, timeout: float = DEFAULT_WAIT_S) -> dict:
        """The node's status once its chain reaches ``height`` (e.g. a reveal that must come in
        a later block than its commitment); raises TimeoutError if it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["height"] >= height:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the chain did not reach height {height} within {timeout:.1f} s "
                                   f"(it is at {status['height']})")
            time.sleep(POLL_INTERVAL_S)

    def transact(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS,
                 timeout: float = DEFAULT_WAIT_S) -> dict:
        """Send, wait, and raise TxFailed if the receipt failed. Returns the receipt."""
        receipt = self.wait(self.send(key, contract, method, *args, gas=gas), timeout)
        if receipt["status"] != "ok":
            raise TxFailed(receipt)
        return receipt

    def _try_receipt(self, tx_id: str) -> dict | None:
        try:
            return self.receipt(tx_id)
        except RpcFailure as exc:
            if exc.code == -32004:
                return None
            raise

    def _wait_poll(self, tx_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self._try_receipt(tx_id)
            if receipt is not None:
                return receipt
            time.sleep(POLL_INTERVAL_S)
        raise TimeoutError(f"transaction {tx_id} was not committed within {timeout:.1f} s")

    async def _wait_ws(self, tx_id: str, timeout: float) -> dict:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribe", "params": ["newBlocks"]})
                # Subscribed first, then checked: a block committed in between is not missed.
                receipt = self._try_receipt(tx_id)
                while receipt is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"transaction {tx_id} was not committed within {timeout:.1f} s")
                    try:
                        message = await ws.receive(timeout=left)
                    except asyncio.TimeoutError:
                        continue
                    if message.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(f"websocket closed: {message.type}")
                    data = json.loads(message.data)
                    if data.get("method") == "chain_subscription":
                        block = data["params"]["result"]
                        if tx_id in block.get("txs", []):
                            receipt = self._try_receipt(tx_id)
                    elif "error" in data:
                        raise RpcFailure(data["error"]["code"], data["error"]["message"])
                return receipt


def key_proof(chain_id: str, account: bytes, new_key: SigningKey) -> bytes:
    """``new_key``'s proof of possession for becoming ``account``'s signing key on ``chain_id``:
    the argument of ``identity.rotate_signing_key`` and of a ``recover_account`` proposal."""
    return new_key.sign_raw(key_proof_message(chain_id, account, new_key.public_key))


def cosigner_proof(chain_id: str, account: bytes, cosigner: SigningKey) -> bytes:
    """``cosigner``'s proof of possession for joining ``account``'s signing policy on ``chain_id``:
    an entry of ``identity.set_signing_policy``'s ``proofs``."""
    return cosigner.sign_raw(cosigner_proof_message(chain_id, account, cosigner.public_key))


def _json_arg(value: Any) -> Any:
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, list):
        return [_json_arg(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_arg(v) for k, v in value.items()}
    return value


Sets = ValidatorSchedule | Sequence[bytes]


def _check_header_and_cert(proof: dict, validators: Sets, chain_id: str) -> BlockHeader:
    """The certified header of a proof. ``validators``: the schedule ``verify_validator_sets``
    proved (the set of the header's own height is used), or one trusted key list."""
    header_raw = unhex(proof["header_raw"])
    header = BlockHeader.from_list(encoding.decode(header_raw))
    if header.chain_id != chain_id:
        raise ValidationError(f"header is for chain {header.chain_id!r}, expected {chain_id!r}")
    cert_info = proof["certificate"]
    if cert_info is None:
        raise ValidationError("the proof carries no certificate")
    cert = CommitCertificate.decode(unhex(cert_info["raw"]))
    keys = list(validators.at(header.height) if isinstance(validators, ValidatorSchedule) else validators)
    if header.validator_set_hash != validator_set_hash(keys):
        raise ValidationError(f"header {header.height} names validator set {to_hex(header.validator_set_hash)[:18]}, "
                              f"not the set trusted for that height ({to_hex(validator_set_hash(keys))[:18]})")
    verify_certificate(cert, keys, chain_id, header.height, sha256(header_raw))
    return header


def verify_validator_sets(answer: dict, genesis_keys: Sequence[bytes], chain_id: str) -> ValidatorSchedule:
    """Check a ``chain_getValidators`` answer offline from the genesis set; return the proven schedule.

    Each change to the set in force from height A comes with header A - 1 and its
    certificate: that header is checked against the set already proven for A - 1 and
    must name the new set as its next one, so every set is proven by the one before it,
    back to genesis. Changes not yet reached (no proof) are left out. A node that hides
    a change cannot make an old set certify a newer header unless 2f+1 of that old set
    sign a fork (the usual light-client assumption: keys of removed validators must not
    be trusted for long; re-verify from a recent checkpoint).
    """
    entries = answer["schedule"]
    if not entries or entries[0]["from_height"] != 1 or [unhex(k) for k in entries[0]["validators"]] != list(genesis_keys):
        raise ValidationError("the schedule does not start with the genesis set at height 1")
    schedule = ValidatorSchedule.fixed(genesis_keys)
    for entry in entries[1:]:
        start, keys = entry["from_height"], [unhex(k) for k in entry["validators"]]
        proof = entry["proof"]
        if proof is None:
            break  # not yet certified by any header: not proven
        if proof["height"] != start - 1:
            raise ValidationError(f"the change at height {start} is proven by header {proof['height']}, "
                                  f"expected {start - 1}")
        header = _check_header_and_cert(proof, schedule, chain_id)
        if header.height != start - 1 or header.next_validator_set_hash != validator_set_hash(keys):
            raise ValidationError(f"certified header {header.height} does not name the set claimed from height {start}")
        schedule = schedule.then(start, keys)
    return schedule


def verify_receipt(receipt: dict, validators: Sets, chain_id: str) -> Receipt:
    """Check a ``chain_getReceipt`` answer offline; return the proven receipt or raise ValidationError."""
    proof = receipt["proof"]
    header = _check_header_and_cert(proof, validators, chain_id)
    raw = unhex(receipt["raw"])
    path = [unhex(p) for p in proof["path"]]
    if not verify_inclusion(header.receipts_root, receipt["index"], proof["receipts_size"], raw, path):
        raise ValidationError("the receipt is not in the certified block's receipts")
    proven = Receipt.decode(raw)
    if to_hex(proven.tx_id) != receipt["tx_id"]:
        raise ValidationError("the proven receipt is for another transaction")
    return proven


def verify_state_proof(answer: dict, validators: Sets, chain_id: str) -> bytes | None:
    """Check a ``chain_getProof`` answer offline; return the proven value (None = absent)."""
    header = _check_header_and_cert(answer, validators, chain_id)
    root = unhex(answer["state_root"])
    if root != header.state_root:
        raise ValidationError("the proof's state root is not the certified header's")
    value = unhex(answer["value"])
    if not verify_proof(root, unhex(answer["key"]), value, encoding.decode(unhex(answer["proof"]))):
        raise ValidationError("the state proof does not verify against the certified root")
    return value
