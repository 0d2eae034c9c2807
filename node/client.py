"""The Python client for application developers (sync; ``node.client_async.AsyncClient`` for asyncio).

How it works: ``Client`` speaks JSON-RPC to one node over HTTP with the standard
library. What it does beyond one request (tracking nonces, submitting idempotently by
transaction id, polling, back-off) is written once, free of I/O, in
``node.client_ops`` and driven here with blocking calls and there with awaits, so the
two clients behave the same. ``send`` signs a transaction once and submits its
canonical bytes, re-sending the same bytes (never a new signature) when the node could
not be reached or was busy; ``wait`` waits for the receipt over a websocket
subscription to new blocks, with a timeout, and falls back to polling if the websocket
is unavailable. Called from inside a running event loop, the wait runs on its own loop
in a worker thread (it blocks the caller, like every sync call; use AsyncClient there).
``verify_receipt`` and ``verify_state_proof`` check what a node returned with nothing but
the validator set: the header's hash, the block's commit certificate, and the Merkle
path from the receipt (or state entry) to the root in that header. A node cannot fake
either without 2f+1 validator signatures.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, TypeVar

import aiohttp

from contracts_vm.bytecode import code_hash, decode_container
from contracts_vm.errors import VMError
from contracts_vm.machine import CODE_PREFIX, check_contract_name, storage_prefix
from contracts_vm.system import cosigner_proof_message, key_proof_message
from contracts_vm.values import encode_key
from ledger import encoding
from ledger.crypto import SigningKey, sha256
from ledger.errors import ValidationError
from ledger.merkle import verify_inclusion
from ledger.state import verify_proof
from ledger.types import BlockHeader, CommitCertificate, Receipt, validator_set_hash, verify_certificate
from ledger.validator_set import ValidatorSchedule
from ledger.hexfmt import to_hex
from node import client_ops as ops
from node.client_async import (HTTP_TIMEOUT_S, AsyncClient, failure_from_reply, request_body, rpc_failure_from_http,
                               run_blocking, wait_receipt_ws)
from node.client_commerce import AsyncCommerce, Commerce, Sent
from node.client_ops import DEFAULT_GAS, DEFAULT_WAIT_S, UNREACHABLE, RpcFailure, SubmitUncertain, TxFailed

#: What applications import from here (the async client, the errors and the typed commerce
#: facades live beside it; the commerce helpers themselves are in node.client_commerce).
__all__ = ["AsyncClient", "AsyncCommerce", "Client", "Commerce", "DEFAULT_GAS", "DEFAULT_WAIT_S", "RpcFailure", "Sent", "SubmitUncertain", "TxFailed",
           "cosigner_proof", "key_proof", "storage_state_key", "unhex", "verify_receipt", "verify_state_proof", "verify_validator_sets"]

T = TypeVar("T")


def unhex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text[2:])


class Client:
    """JSON-RPC to one node, e.g. ``Client("http://127.0.0.1:8545")``."""

    def __init__(self, url: str, chain_id: str | None = None, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.state = ops.ClientState(chain_id)
        self._ids = itertools.count(1)

    @property
    def chain_id(self) -> str | None:
        return self.state.chain_id

    @chain_id.setter
    def chain_id(self, value: str | None) -> None:
        self.state.chain_id = value

    # --- raw JSON-RPC ---------------------------------------------------------------

    def request(self, method: str, *params: Any) -> Any:
        return self._request(method, params)

    def _request(self, method: str, params: tuple) -> Any:
        body = request_body(next(self._ids), method, params)
        req = urllib.request.Request(self.url + "/rpc", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise rpc_failure_from_http(exc.code, self.url, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RpcFailure(UNREACHABLE, f"cannot reach {self.url}: {exc}") from None
        if "error" in reply:
            raise failure_from_reply(reply)
        return reply["result"]

    def _run(self, op: ops.Op[T]) -> T:
        return ops.drive_sync(op, self._request)

    # --- reads ----------------------------------------------------------------------

    def status(self) -> dict:
        return self._run(ops.status(self.state))

    def validators(self) -> dict:
        """``chain_getValidators``: prove it with ``verify_validator_sets`` before trusting it."""
        return self.request("chain_getValidators")

    def block(self, height: int | str = "latest", full: bool = False) -> dict:
        return self.request("chain_getBlock", height, full)

    def receipt(self, tx_id: str) -> dict:
        return self.request("chain_getReceipt", tx_id)

    def transaction(self, tx_id: str) -> dict | None:
        """``chain_getTransaction`` (status pending or committed), None when the node knows no such id."""
        return self._run(ops.find_tx(tx_id))

    def call(self, contract: str, method: str, *args: Any, height: int | str = "latest") -> Any:
        """A read-only contract view; bytes arguments as bytes or 0x-hex."""
        json_args = [ops.json_arg(a) for a in args]
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
        self.state.nonces.pop(key.public_key, None)
        return receipt

    def proven_value(self, key: bytes, height: int, validators: "Sets") -> bytes | None:
        """The state value at ``key`` after block ``height``, checked against its certified header
        (the answer must be for that key and height; at height 0, the genesis state, there is no
        certificate and the answer is taken as given)."""
        answer = self.request("chain_getProof", to_hex(key), height)
        if answer.get("header") is None:
            if height != 0 or answer.get("height") != 0 or answer.get("key") != to_hex(key):
                raise ValidationError(f"the node answered no certified header for the state at height {height}")
            return unhex(answer.get("value"))
        return verify_state_proof(answer, validators, self.chain_id or self.status()["chain_id"], key=key, height=height)

    def contract_scalars(self, contract: str) -> dict:
        """{contract, height, code_hash, values: {name: value}}: every storage variable without keys
        (a contract's settings and counters), each proven against the certified state root.

        The layout comes from the installed code's ABI, so it works for any contract; no
        contract view is needed. Maps are left out (their views answer them). Raises
        ValidationError for a bad name or a contract that is not installed.
        """
        height, validators, code = self._proven_code(contract)
        values: dict[str, Any] = {}
        for name, key_types, _value_type in decode_container(code).abi.get("storage", []):
            if not key_types:
                raw = self.proven_value(storage_state_key(contract, name, []), height, validators)
                values[name] = None if raw is None else ops.json_arg(encoding.decode(raw))
        return {"contract": contract, "height": height, "code_hash": to_hex(code_hash(code)), "values": values}

    def proven_storage(self, contract: str, variable: str, *key: Any) -> dict:
        """{height, state_key, value}: one entry of a contract's storage (``balances[account]`` is
        ``proven_storage("ledger", "balances", account)``), proven against the certified state root
        of the head; value None when the entry is absent (absence is proven too).

        The key types come from the installed code's ABI; raises ValidationError for an
        unknown variable or a key that does not fit it.
        """
        height, validators, code = self._proven_code(contract)
        layout = {name: key_types for name, key_types, _ in decode_container(code).abi.get("storage", [])}
        if variable not in layout:
            raise ValidationError(f"contract {contract!r} has no storage variable {variable!r} "
                                  f"(it has: {', '.join(sorted(layout)) or 'none'})")
        state_key = storage_state_key(contract, variable, layout[variable], *key)
        raw = self.proven_value(state_key, height, validators)
        return {"height": height, "state_key": to_hex(state_key),
                "value": None if raw is None else encoding.decode(raw)}

    def _proven_code(self, contract: str) -> tuple[int, ValidatorSchedule, bytes]:
        """(head height, the validator schedule proven from genesis, the contract's code proven at it)."""
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
        return height, validators, code

    # --- writes ---------------------------------------------------------------------

    def next_nonce(self, sender: bytes) -> int:
        return self._run(ops.next_nonce(self.state, sender))

    def build(self, key: SigningKey, contract: str, method: str, args: list, gas: int = DEFAULT_GAS,
              nonce: int | None = None) -> bytes:
        """The signed raw transaction (canonical bytes), consuming a local nonce."""
        return self._run(ops.build(self.state, key, contract, method, args, gas, nonce))

    def send_raw(self, raw: bytes) -> str:
        """One ``chain_sendRawTransaction``, no retry (``resubmit`` retries idempotently)."""
        return self.request("chain_sendRawTransaction", to_hex(raw))

    def resubmit(self, raw: bytes) -> str:
        """Submit signed bytes (again) until the node has them: idempotent by transaction id
        (node.client_ops). Raises SubmitUncertain, carrying the bytes, when it cannot tell."""
        return self._run(ops.submit(self.state, raw))

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
                                "args": [ops.json_arg(a) for a in args], "gas_limit": gas}
        if nonce is not None:
            call["nonce"] = nonce
        return self.request("chain_simulate", call)

    def send(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS) -> str:
        """Sign once and submit; returns the transaction id once the node has it."""
        return self.resubmit(self.build(key, contract, method, list(args), gas))

    def wait(self, tx_id: str, timeout: float = DEFAULT_WAIT_S) -> dict:
        """The committed receipt; raises TimeoutError if it does not commit in time."""
        async def over_websocket() -> dict:
            # The receipt reads are blocking calls, made from the wait's own loop (its own thread
            # when the caller is inside a loop): a few quick requests, one per block naming the tx.
            async def try_receipt() -> dict | None:
                return self._run(ops.try_receipt(tx_id))
            return await wait_receipt_ws(self.url, tx_id, timeout, try_receipt)
        try:
            return run_blocking(over_websocket)
        except (OSError, aiohttp.ClientError, ConnectionError, RpcFailure):  # no usable websocket: poll
            return self._run(ops.wait_poll(tx_id, timeout))

    def wait_for_height(self, height: int, timeout: float = DEFAULT_WAIT_S) -> dict:
        """The node's status once its chain reaches ``height`` (e.g. a reveal that must come in
        a later block than its commitment); raises TimeoutError if it does not in time."""
        return self._run(ops.wait_for_height(self.state, height, timeout))

    def transact(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS,
                 timeout: float = DEFAULT_WAIT_S, idempotency_key: str | None = None) -> dict:
        """Send, wait, and raise TxFailed if the receipt failed. Returns the receipt.

        With ``idempotency_key``, calling again with the same key (say after a timeout)
        resubmits and waits for the transaction the first call signed, never a new one.
        """
        raw = self._run(ops.signed_for(self.state, key, contract, method, list(args), gas, idempotency_key))
        return ops.check_receipt(self.wait(self.resubmit(raw), timeout))

    def _try_receipt(self, tx_id: str) -> dict | None:
        return self._run(ops.try_receipt(tx_id))


def storage_state_key(contract: str, variable: str, key_types: Sequence[str], *key: Any) -> bytes:
    """The state key of one contract storage entry: what ``chain_getProof`` takes to prove it.

    ``c/<contract>/<variable>/`` followed by the key parts in the VM's order-preserving
    key encoding (contracts_vm.values.encode_key), one part per key type of the variable
    (its ABI's ``storage`` entry); a variable without keys is the prefix alone.
    """
    prefix = storage_prefix(contract) + variable.encode("utf-8") + b"/"
    if len(key) != len(key_types):
        raise ValidationError(f"storage variable {variable!r} of {contract!r} takes {len(key_types)} key part(s) "
                              f"({', '.join(key_types) or 'none'}), found {len(key)}")
    if not key_types:
        return prefix
    try:
        return prefix + encode_key(key[0] if len(key_types) == 1 else list(key), list(key_types))
    except VMError as exc:
        raise ValidationError(f"storage key of {contract}.{variable}: {exc.message}") from None


def key_proof(chain_id: str, account: bytes, new_key: SigningKey) -> bytes:
    """``new_key``'s proof of possession for becoming ``account``'s signing key on ``chain_id``:
    the argument of ``identity.rotate_signing_key`` and of a ``recover_account`` proposal."""
    return new_key.sign_raw(key_proof_message(chain_id, account, new_key.public_key))


def cosigner_proof(chain_id: str, account: bytes, cosigner: SigningKey) -> bytes:
    """``cosigner``'s proof of possession for joining ``account``'s signing policy on ``chain_id``:
    an entry of ``identity.set_signing_policy``'s ``proofs``."""
    return cosigner.sign_raw(cosigner_proof_message(chain_id, account, cosigner.public_key))


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


def verify_receipt(receipt: dict, validators: Sets, chain_id: str, tx_id: bytes | str | None = None) -> Receipt:
    """Check a ``chain_getReceipt`` answer offline; return the proven receipt or raise ValidationError.

    Pass ``tx_id`` (the id you asked for): without it a node could answer, with a valid
    proof, the receipt of another transaction, and only the answer's own field would say so.
    """
    proof = receipt["proof"]
    header = _check_header_and_cert(proof, validators, chain_id)
    raw = unhex(receipt["raw"])
    path = [unhex(p) for p in proof["path"]]
    if not verify_inclusion(header.receipts_root, receipt["index"], proof["receipts_size"], raw, path):
        raise ValidationError("the receipt is not in the certified block's receipts")
    proven = Receipt.decode(raw)
    if to_hex(proven.tx_id) != receipt["tx_id"]:
        raise ValidationError("the proven receipt is for another transaction")
    if tx_id is not None and to_hex(proven.tx_id) != (tx_id if isinstance(tx_id, str) else to_hex(tx_id)).lower():
        raise ValidationError(f"the proven receipt is for transaction {to_hex(proven.tx_id)}, not the one asked for")
    return proven


def verify_state_proof(answer: dict, validators: Sets, chain_id: str, key: bytes | None = None,
                       height: int | None = None) -> bytes | None:
    """Check a ``chain_getProof`` answer offline; return the proven value (None = absent).

    Pass the ``key`` and ``height`` you asked for: the proof is checked for the key and
    certified header the answer names, so without them a node could answer a valid proof
    of another key (another account's balance) or of another height.
    """
    header = _check_header_and_cert(answer, validators, chain_id)
    root = unhex(answer["state_root"])
    if root != header.state_root:
        raise ValidationError("the proof's state root is not the certified header's")
    proven_key = unhex(answer["key"])
    if key is not None and proven_key != key:
        raise ValidationError(f"the proof is for state key {answer['key']}, not the one asked for ({to_hex(key)})")
    if height is not None and header.height != height:
        raise ValidationError(f"the proof is for height {header.height}, not the one asked for ({height})")
    value = unhex(answer["value"])
    if not verify_proof(root, proven_key, value, encoding.decode(unhex(answer["proof"]))):
        raise ValidationError("the state proof does not verify against the certified root")
    return value
