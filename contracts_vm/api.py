"""The VM's entry points for the node: execute a call, a view, install a contract.

How it works: ``execute_call`` takes a checkpoint of the state overlay, charges the
intrinsic gas, runs the method through a fresh Machine and, if anything fails,
reverts to the checkpoint. Whatever happens inside (a contract error, a malformed
argument, even an unanticipated Python exception in a handler) comes back as a
CallResult with a named error; nothing escapes as an exception, so every validator
records the same receipt. Gas used is charged in both outcomes. ``execute_view``
runs the same way with writes and events forbidden and always reverts.
``install_contract`` verifies code (or compiles source first) and writes code and
metadata into state; it is what genesis and the governed deploy transaction use.
``check_call_shape`` is the mempool's cheap pre-check of a transaction's call against
the installed ABI (contract, method, argument count and types), using the programs
already cached per code hash; execution repeats the same checks, so an ABI that
changed in between still fails deterministically there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from contracts_vm import errors as E
from contracts_vm.bytecode import code_hash as compute_code_hash
from contracts_vm.errors import VMError, VerifyError
from contracts_vm.limits import DEFAULT_INIT_GAS, INTRINSIC_GAS
from contracts_vm.machine import CODE_PREFIX, META_PREFIX, Machine, check_contract_name, load_contract
from contracts_vm.program import Method, load_program
from contracts_vm.values import to_bytes, type_name, walk_cost
from ledger.encoding import encode
from ledger.errors import StorageError

logger = logging.getLogger("shopchain.vm")

#: Signature texts kept for error messages, keyed by (code hash, method); not consensus state.
SIGNATURE_CACHE_SIZE = 4096
#: Longest signature text shown in an error message (a method may have many arguments).
MAX_SIGNATURE_CHARS = 400
#: The receipt message of an unanticipated fault inside the VM (the details are logged).
VM_FAULT_MESSAGE = "the VM met a fault its checks did not anticipate; the node log has the details"


@dataclass(frozen=True)
class CallContext:
    sender: bytes                 # 32-byte public key of the signer (or a contract address)
    height: int = 0
    timestamp_ms: int = 0
    chain_id: str = ""
    tx_id: bytes = b""
    origin: bytes | None = None   # the transaction signer; defaults to sender
    #: The transaction's co-signer keys (signatures verified before execution, ascending);
    #: identity's signing policies count the ones they name (docs/commerce.md, "Signing policies").
    cosigners: tuple[bytes, ...] = ()


@dataclass
class CallResult:
    status: str                   # "ok" or "failed"
    gas_used: int
    return_value: Any = None
    error: str | None = None      # a name from contracts_vm.errors, when failed
    error_message: str = ""
    events: list = field(default_factory=list)   # [(contract, name, data map)]
    steps: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _run(state, contract: str, method: str, args: Any, ctx: CallContext, gas_limit: int, read_only: bool) -> CallResult:
    if type(gas_limit) is not int or gas_limit < 0:
        return CallResult("failed", 0, error=E.BAD_ARGUMENTS, error_message=f"gas limit must be a non-negative int, found {gas_limit!r:.40}")
    cp = state.checkpoint()
    m = Machine(state, ctx, gas_limit, read_only)
    try:
        m.charge(INTRINSIC_GAS)
        value = m.enter(contract, method, args, False)
        t = type(value)
        if t is list or t is dict:
            m.charge(walk_cost(value, m.gas))
            to_bytes(value, "the return value")
    except VMError as exc:
        state.revert(cp)
        return CallResult("failed", gas_limit - max(m.gas, 0), error=exc.name, error_message=exc.message, steps=m.steps)
    except StorageError:
        # This node's store failed (a damaged value, an I/O error): not the contract's
        # outcome, so it must not become a receipt; the node halts on it (node/core/engine.py).
        state.revert(cp)
        raise
    except RecursionError:
        state.revert(cp)
        return CallResult("failed", gas_limit - max(m.gas, 0), error=E.VM_FAULT,
                          error_message="Python recursion limit reached", steps=m.steps)
    except Exception:  # noqa: BLE001 - the VM must never raise; report deterministically
        # The receipt carries only text we wrote: CPython's wording (and even the class of
        # an unanticipated exception) may differ between Python versions, and receipt bytes
        # are consensus. The detail goes to this node's log, which is not.
        logger.exception("VM fault in %s.%s (receipt says %s)", contract, method, E.VM_FAULT)
        state.revert(cp)
        return CallResult("failed", gas_limit - max(m.gas, 0), error=E.VM_FAULT,
                          error_message=VM_FAULT_MESSAGE, steps=m.steps)
    if read_only:
        state.revert(cp)
    return CallResult("ok", gas_limit - m.gas, return_value=value, events=m.events, steps=m.steps)


def execute_call(state, contract: str, method: str, args: list, ctx: CallContext, gas_limit: int) -> CallResult:
    """Run a public or view method as a transaction; on failure the state is as before."""
    return _run(state, contract, method, args, ctx, gas_limit, False)


def execute_view(state, contract: str, method: str, args: list, ctx: CallContext, gas_limit: int) -> CallResult:
    """Run a method read-only (writes and events are ReadOnlyViolation); state never changes."""
    return _run(state, contract, method, args, ctx, gas_limit, True)


def install_contract(state, name: str, source_or_code: str | bytes, capabilities: list | tuple = (),
                     init_args: list | None = None, ctx: CallContext | None = None,
                     gas_limit: int = DEFAULT_INIT_GAS, filename: str = "<contract>") -> dict:
    """Verify (compiling source first) and install ``name``; run ``init(*init_args)`` if given.

    Returns {"code_hash", "abi", "capabilities", "init_gas_used", "init_events"}. Raises CompileError, VerifyError, or
    VMError (the init call failed; nothing is installed then).
    """
    check_contract_name(name)
    if isinstance(source_or_code, str):
        from contracts_vm.compiler import compile_source
        code = compile_source(source_or_code, filename).code
    else:
        code = bytes(source_or_code)
    program = load_program(code)
    caps = sorted(set(capabilities))
    if not all(type(c) is str and c for c in caps):
        raise VerifyError(E.BAD_ABI, f"capabilities must be non-empty strs, found {caps!r}")
    cp = state.checkpoint()
    key = name.encode("utf-8")
    h = compute_code_hash(code)
    state.put(CODE_PREFIX + key, code)
    state.put(META_PREFIX + key, encode({"code_hash": h, "capabilities": caps, "vm_version": program.version}))
    init_gas = 0
    init_events: list = []
    if init_args is not None:
        result = execute_call(state, name, "init", list(init_args),
                              ctx or CallContext(sender=b"\x00" * 32), gas_limit)
        if not result.ok:
            state.revert(cp)
            raise VMError(result.error, f"init of {name!r} failed: {result.error_message}")
        init_gas, init_events = result.gas_used, result.events
    return {"code_hash": h, "abi": program.abi, "capabilities": caps, "init_gas_used": init_gas,
            "init_events": init_events}


def get_contract_info(state, name: str) -> dict | None:
    """Installed contract's code hash, ABI and capabilities, or None."""
    try:
        program, caps = load_contract(state, name)
    except VMError:
        return None
    return {"code_hash": program.code_hash, "abi": program.abi, "capabilities": list(caps)}


def get_code(state, name: str) -> bytes | None:
    return state.get(CODE_PREFIX + name.encode("utf-8"))


_signatures: dict[tuple[bytes, str], str] = {}


def method_signature(code_hash: bytes, method: Method, abi: dict) -> str:
    """``(order_id: bytes, qty: int)``: a method's argument list as the ABI names it (memoised)."""
    key = (code_hash, method.name)
    text = _signatures.get(key)
    if text is None:
        names = next((m["args"] for m in abi.get("methods", ()) if m["name"] == method.name), ())
        text = "(" + ", ".join(f"{n}: {t}" for n, t in names) + ")"
        if len(text) > MAX_SIGNATURE_CHARS:
            text = text[:MAX_SIGNATURE_CHARS - 4] + "...)"
        if len(_signatures) >= SIGNATURE_CACHE_SIZE:
            _signatures.clear()
        _signatures[key] = text
    return text


def check_call_shape(state, contract: str, method: str, args: Any) -> tuple[str, str] | None:
    """Why a transaction calling ``contract.method(*args)`` cannot run, or None if its shape fits.

    Returns (error name from contracts_vm.errors, message with the expected and found
    shape). It checks what ``Machine.enter`` checks for a transaction (not a contract)
    caller, in the same order, against the same program, which is cached per code hash,
    so the mempool pays a metadata read and a few dict lookups per transaction. Whether
    the call then succeeds (requires, balances, permissions) is execution's business.
    """
    try:
        program, _ = load_contract(state, contract)
    except VMError as exc:
        return exc.name, exc.message
    m = program.methods.get(method)
    if m is None:
        public = ", ".join(sorted(program.methods)) or "none"
        if len(public) > MAX_SIGNATURE_CHARS:
            public = public[:MAX_SIGNATURE_CHARS] + "..."
        return E.UNKNOWN_METHOD, f"contract {contract!r} has no public method {method!r}; its methods: {public}"
    if m.requires is not None:
        return E.PERMISSION_DENIED, (f"{contract}.{method} may only be called by a contract holding capability "
                                     f"{m.requires!r}, not by a transaction")
    if type(args) is not list or len(args) != len(m.arg_checks):
        found = len(args) if type(args) is list else type_name(args)
        count = len(m.arg_checks)
        return E.BAD_ARGUMENTS, (f"{contract}.{method} expects {count} argument{'s' if count != 1 else ''} "
                                 f"{method_signature(program.code_hash, m, program.abi)}, found {found}")
    for i, (check, arg) in enumerate(zip(m.arg_checks, args)):
        if not check(arg):
            return E.BAD_ARGUMENTS, (f"{contract}.{method} argument {i} must be {m.arg_types[i]} "
                                     f"{method_signature(program.code_hash, m, program.abi)}, found {type_name(arg)}")
    return None
