"""Deploy and upgrade transactions: governed installation of contract code.

How it works: a deploy payload is the canonical encoding of
``[DEPLOY_TAG, action, name, code, code_hash, abi, capabilities, init_args]`` with
action "deploy" (the name must be free) or "upgrade" (the name must exist; storage
is kept). The payload repeats the code hash and ABI so that a reviewer (and the
signature) commits to them; ``apply_deploy`` recomputes both from the code and
refuses any mismatch.

No single key may deploy or upgrade (issue 14): code changes are proposals of the
governance contract (contracts_vm/system/governance.sc.py, kind "code"), which the
members vote on and which the contract itself executes through the ``install_code``
host function; that host function and genesis are the only callers of
``install_deploy``. ``apply_deploy``, the entry of the node's ``system.deploy``
transaction, refuses every transaction sender and names the governance path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts_vm import errors as E
from contracts_vm.api import CallContext, CallResult, install_contract
from contracts_vm.builtins import mismatch, register_deploy_host
from contracts_vm.bytecode import code_hash as compute_code_hash
from contracts_vm.bytecode import decode_container
from contracts_vm.errors import VMError
from contracts_vm.limits import BYTES_PER_GAS, GAS_PER_CODE_BYTE, MAX_EVENTS
from contracts_vm.machine import META_PREFIX, check_contract_name
from ledger.encoding import decode, encode
from ledger.errors import ChainError, DecodeError, ValidationError
from ledger.hexfmt import to_hex

DEPLOY_TAG = "shopchain/deploy/v1"
ACTIONS = ("deploy", "upgrade")
#: The error message of a deploy or upgrade attempted outside governance.
GOVERNED_MESSAGE = ("contract deploys and upgrades are governed: propose the payload to the governance contract "
                    "(governance.propose(\"code\", [payload], description)); no single key may install code")


@dataclass(frozen=True)
class DeployTx:
    action: str
    name: str
    code: bytes
    code_hash: bytes
    abi: dict
    capabilities: list
    init_args: list | None = None


def make_deploy(action: str, name: str, code: bytes, capabilities: list | tuple = (),
                init_args: list | None = None) -> DeployTx:
    """A deploy/upgrade transaction body with the code hash and ABI taken from ``code``."""
    return DeployTx(action, name, code, compute_code_hash(code), decode_container(code).abi,
                    sorted(set(capabilities)), init_args)


def encode_deploy(tx: DeployTx) -> bytes:
    return encode([DEPLOY_TAG, tx.action, tx.name, tx.code, tx.code_hash, tx.abi, list(tx.capabilities),
                   tx.init_args])


def decode_deploy(data: bytes) -> DeployTx:
    """Parse a deploy payload; ValidationError naming the bad field."""
    try:
        body = decode(data)
    except DecodeError as exc:
        raise ValidationError(f"deploy payload is not canonical: {exc}") from None
    if type(body) is not list or len(body) != 8 or body[0] != DEPLOY_TAG:
        raise ValidationError(f"deploy payload must be an 8-item array tagged {DEPLOY_TAG!r}")
    _, action, name, code, h, abi, caps, init_args = body
    if action not in ACTIONS:
        raise ValidationError(f"deploy action must be one of {ACTIONS}, found {action!r}")
    if type(name) is not str or type(code) is not bytes or type(h) is not bytes or type(abi) is not dict:
        raise ValidationError("deploy name must be str, code and code_hash bytes, abi a map")
    if type(caps) is not list or not all(type(c) is str for c in caps):
        raise ValidationError("deploy capabilities must be a list of str")
    if init_args is not None and type(init_args) is not list:
        raise ValidationError("deploy init_args must be a list or nil")
    return DeployTx(action, name, code, h, abi, caps, init_args)


def apply_deploy(state, tx: DeployTx, ctx: CallContext, gas_limit: int) -> CallResult:
    """The ``system.deploy`` transaction: refused for every sender, code changes go through governance."""
    return CallResult("failed", 0, error=E.PERMISSION_DENIED, error_message=GOVERNED_MESSAGE)


def install_deploy(state, tx: DeployTx, ctx: CallContext, gas_limit: int) -> CallResult:
    """Install or upgrade ``tx``; never raises, reverts on failure.

    No permission check: the caller proves authority (genesis, or the governance
    contract's ``install_code`` host call after a passed proposal). ``ctx`` is the
    context ``init`` runs with on a deploy.
    """
    cp = state.checkpoint()
    gas = GAS_PER_CODE_BYTE * len(tx.code) if type(tx.code) is bytes else 0
    try:
        if gas > gas_limit:
            raise VMError(E.OUT_OF_GAS, f"installing {len(tx.code)} bytes needs {gas} gas, limit {gas_limit}")
        check_contract_name(tx.name)
        exists = state.has(META_PREFIX + tx.name.encode("utf-8"))
        if tx.action == "deploy" and exists:
            raise VMError(E.BAD_ARGUMENTS, f"contract {tx.name!r} already exists; use an upgrade")
        if tx.action == "upgrade" and not exists:
            raise VMError(E.UNKNOWN_CONTRACT, f"contract {tx.name!r} does not exist; use a deploy")
        check_deploy(tx)
        installed = install_contract(state, tx.name, tx.code, tx.capabilities, tx.init_args, ctx, gas_limit - gas)
    except VMError as exc:
        state.revert(cp)
        return CallResult("failed", min(gas, gas_limit), error=exc.name, error_message=exc.message)
    event = (tx.name, "ContractDeployed" if tx.action == "deploy" else "ContractUpgraded",
             {"code_hash": tx.code_hash, "capabilities": list(tx.capabilities)})
    return CallResult("ok", gas + installed["init_gas_used"], return_value=tx.code_hash,
                      events=installed["init_events"] + [event])


def check_deploy(tx: DeployTx) -> None:
    """VMError unless the payload's code hash and ABI are those of its code (and the code loads)."""
    if compute_code_hash(tx.code) != tx.code_hash:
        raise VMError(E.INVALID_CODE, "code_hash does not match the sha256 of the code")
    container = decode_container(tx.code)     # VerifyError (a VMError) for anything that is not code
    if encode(container.abi) != encode(tx.abi):
        raise VMError(E.INVALID_CODE, "the ABI in the transaction differs from the ABI in the code")


def describe(tx: DeployTx) -> dict[str, Any]:
    """JSON-friendly summary (for the CLI and RPC)."""
    return {"action": tx.action, "name": tx.name, "code_hash": to_hex(tx.code_hash),
            "code_bytes": len(tx.code), "capabilities": list(tx.capabilities), "abi": tx.abi}


# ---- the governance contract's host functions (registered in contracts_vm.builtins) ----

def _host_payload(m, payload) -> DeployTx:
    if type(payload) is not bytes:
        raise mismatch("deploy payload", payload)
    m.charge(len(payload) // BYTES_PER_GAS)
    try:
        tx = decode_deploy(payload)
    except ChainError as exc:
        raise VMError(E.BAD_ARGUMENTS, str(exc)) from None
    check_deploy(tx)
    return tx


def host_inspect_code(m, payload) -> dict:
    """``inspect_code(payload)``: the checked summary a proposal shows its voters."""
    tx = _host_payload(m, payload)
    return {"action": tx.action, "name": tx.name, "code_hash": tx.code_hash, "abi": tx.abi,
            "capabilities": list(tx.capabilities), "code_bytes": len(tx.code)}


def host_install_code(m, payload) -> bytes:
    """``install_code(payload)``: ``install_deploy`` as the running (governance) contract, gas from the call."""
    tx = _host_payload(m, payload)
    ctx = CallContext(sender=m.self_address, height=m.height, timestamp_ms=m.timestamp_ms, chain_id=m.chain_id,
                      tx_id=m.tx_id, origin=m.origin, cosigners=m._cosigners)
    result = install_deploy(m.state, tx, ctx, max(m.gas, 0))
    m.charge(result.gas_used)
    if not result.ok:
        raise VMError(result.error, f"install_code: {result.error_message}")
    if len(m.events) + len(result.events) > MAX_EVENTS:
        raise VMError(E.TOO_MANY_EVENTS, f"more than {MAX_EVENTS} events in one transaction")
    m.events.extend(result.events)
    return result.return_value


register_deploy_host("inspect_code", host_inspect_code)
register_deploy_host("install_code", host_install_code)
