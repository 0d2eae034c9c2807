"""The Machine: the interpreter loop plus the host interface it runs against.

How it works: one Machine executes one transaction's call (and every nested call it
makes). ``run`` is the whole interpreter: fetch ``(handler, arg, gas)``, subtract the
gas, stop with OutOfGas if it went below zero, call the handler, follow the jump or
return it asks for. It runs a function's fused code (fuse.py); when a fused entry's
gas does not fit, it continues the frame on the unfused code, which then stops at
the very instruction the unfused run would have. Every instruction costs at least one
gas, so a call never takes more steps than its gas. The frame is one Python list: locals first (parameters,
then None), operands above them; the verifier proved heights, so the loop does not
check them. The host interface (storage scoped under the current contract's prefix,
events, context, contract calls with capability checks) lives in the same object
because handlers reach it as ``m``. The state is any object with get, has, put,
delete, iterate(prefix, limit), checkpoint and revert (ledger's state overlay).
"""

from __future__ import annotations

import re
from typing import Any

from contracts_vm import errors as E
from contracts_vm.builtins import contract_address
from contracts_vm.errors import VMError
from contracts_vm.limits import (BYTES_PER_GAS, GAS_PER_ITER_ROW, GAS_PER_WRITTEN_BYTE, MAX_CALL_DEPTH,
                                 MAX_CONTRACT_NAME, MAX_EVENTS, MAX_FRAME_DEPTH, MAX_ITER_LIMIT,
                                 MAX_STORAGE_VALUE_BYTES)
from contracts_vm.program import Program, cached_program, load_program
from contracts_vm.values import (copy_value, decode_key, encode_key, encode_key_prefix, encode_scalar, from_bytes,
                                 remember_canonical, to_bytes, type_name, walk_cost)
from ledger.encoding import decode
from ledger.errors import CorruptionError, DecodeError

#: State key prefixes: code, per-contract metadata, per-contract storage.
CODE_PREFIX = b"code/"
META_PREFIX = b"cmeta/"
STORAGE_PREFIX = b"c/"
#: Contract names: lower-case identifiers, so they are safe inside state keys.
CONTRACT_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")

#: Largest encoded data map of one event.
MAX_EVENT_BYTES = 16 * 1024

_meta_cache: dict[bytes, tuple] = {}
#: Most decoded metadata records kept (keyed by their raw bytes; not consensus state).
META_CACHE_SIZE = 1024


_prefix_cache: dict[str, tuple[bytes, bytes, bytes]] = {}


def storage_prefix(name: str) -> bytes:
    return STORAGE_PREFIX + name.encode("utf-8") + b"/"


def _identity(name: str) -> tuple[bytes, bytes, bytes]:
    """(storage prefix, contract address, metadata key) of a valid contract name, memoised
    (pure functions of the name; the cache is not consensus state)."""
    found = _prefix_cache.get(name)
    if found is None:
        if len(_prefix_cache) >= META_CACHE_SIZE:
            _prefix_cache.clear()
        found = _prefix_cache[name] = (storage_prefix(name), contract_address(name),
                                       META_PREFIX + name.encode("utf-8"))
    return found


def check_contract_name(name: Any) -> None:
    if type(name) is not str or len(name) > MAX_CONTRACT_NAME or not CONTRACT_NAME_RE.fullmatch(name):
        raise VMError(E.UNKNOWN_CONTRACT, f"contract names are [a-z][a-z0-9_]* up to {MAX_CONTRACT_NAME} chars, found {name!r:.80}")


def load_contract(state, name: str) -> tuple[Program, tuple]:
    """The installed program of ``name`` and its capabilities; UnknownContract if none."""
    ident = _prefix_cache.get(name) if type(name) is str else None
    if ident is None:
        check_contract_name(name)
        ident = _identity(name)
    raw = state.get(ident[2])
    if raw is None:
        raise VMError(E.UNKNOWN_CONTRACT, f"no contract named {name!r} is installed")
    meta = _meta_cache.get(raw)
    if meta is None:
        try:  # written by install/upgrade only, canonically: anything else is the store failing
            record = decode(raw)
            meta = (record["code_hash"], tuple(record["capabilities"]))
        except (DecodeError, KeyError, TypeError) as exc:
            raise CorruptionError(f"the record of contract {name!r} is damaged: {exc!r}") from None
        if len(_meta_cache) >= META_CACHE_SIZE:
            _meta_cache.clear()
        _meta_cache[raw] = meta
    program = cached_program(meta[0])
    if program is None:
        code = state.get(CODE_PREFIX + name.encode("utf-8"))
        if code is None:
            raise VMError(E.INVALID_CODE, f"contract {name!r} has metadata but no code")
        program = load_program(code, meta[0])
    return program, meta[1]


class Machine:
    __slots__ = ("gas", "steps", "state", "read_only", "events", "frames", "depth",
                 "sender", "origin", "caller_contract", "contract", "self_address",
                 "height", "timestamp_ms", "chain_id", "tx_id", "prefix", "capabilities", "_cosigners")

    def __init__(self, state, ctx, gas: int, read_only: bool) -> None:
        self.gas = gas
        self.steps = 0
        self.state = state
        self.read_only = read_only
        self.events: list = []
        self.frames = 0
        self.depth = 0
        self.sender = ctx.sender
        self.origin = ctx.origin if ctx.origin is not None else ctx.sender
        self.caller_contract = ""
        self.contract = ""
        self.self_address = b""
        self.height = ctx.height
        self.timestamp_ms = ctx.timestamp_ms
        self.chain_id = ctx.chain_id
        self.tx_id = ctx.tx_id
        self.prefix = b""
        self.capabilities: tuple = ()
        self._cosigners: tuple = tuple(ctx.cosigners)

    @property
    def cosigners(self) -> list:
        """``ctx.cosigners``: a fresh list each read, so a contract cannot edit what later reads see."""
        return list(self._cosigners)

    # ---- the interpreter loop -------------------------------------------------------

    def charge(self, amount: int) -> None:
        self.gas -= amount
        if self.gas < 0:
            raise VMError(E.OUT_OF_GAS, f"needed {amount} more gas than was left")

    def run(self, fn, args: list) -> Any:
        if self.frames >= MAX_FRAME_DEPTH:
            raise VMError(E.CALL_DEPTH_EXCEEDED, f"more than {MAX_FRAME_DEPTH} nested function frames")
        self.frames += 1
        s = args
        if fn.nlocals > fn.nparams:
            s.extend([None] * (fn.nlocals - fn.nparams))
        code = fn.code
        if code is None:
            code = fn.fuse()
        plain = fn.plain
        pc = 0
        steps = 0
        try:
            while True:
                handler, arg, cost = code[pc]
                steps += 1
                self.gas -= cost
                if self.gas < 0:
                    if code is plain:
                        raise VMError(E.OUT_OF_GAS, f"ran out in {fn.name} at instruction {pc}")
                    # a fused entry: the unfused code runs out at the same instruction
                    self.gas += cost
                    steps -= 1
                    pc = fn.plain_index[pc]
                    code = plain
                    continue
                pc += 1
                r = handler(self, s, arg)
                if r is not None:
                    if r < 0:
                        if r == -1:
                            return s[-1]
                        # a fused block could not pay for its next group: unfused from there
                        pc = -r - 2
                        code = plain
                        continue
                    pc = r
        finally:
            self.frames -= 1
            self.steps += steps

    # ---- contract entry --------------------------------------------------------------

    def enter(self, name: str, method_name: str, args: Any, caller_is_contract: bool) -> Any:
        """Run a public method of ``name`` with the current context as its caller."""
        if self.depth >= MAX_CALL_DEPTH:
            raise VMError(E.CALL_DEPTH_EXCEEDED, f"more than {MAX_CALL_DEPTH} nested contract calls")
        if type(method_name) is not str:
            raise VMError(E.TYPE_MISMATCH, f"method name must be str, found {type_name(method_name)}")
        program, capabilities = load_contract(self.state, name)
        method = program.methods.get(method_name)
        if method is None:
            raise VMError(E.UNKNOWN_METHOD, f"contract {name!r} has no public method {method_name!r}")
        if method.requires is not None and not (caller_is_contract and method.requires in self.capabilities):
            who = f"contract {self.contract!r}" if caller_is_contract else "a transaction"
            raise VMError(E.PERMISSION_DENIED, f"{name}.{method_name} requires capability {method.requires!r}; "
                                               f"caller {who} does not hold it")
        if type(args) is not list or len(args) != len(method.arg_checks):
            raise VMError(E.BAD_ARGUMENTS, f"{name}.{method_name} takes {len(method.arg_checks)} arguments, "
                                           f"found {len(args) if type(args) is list else type_name(args)}")
        for check, arg in zip(method.arg_checks, args):
            if not check(arg):
                i = next(i for i, (c, a) in enumerate(zip(method.arg_checks, args)) if not c(a))
                raise VMError(E.BAD_ARGUMENTS, f"{name}.{method_name} argument {i} must be {method.arg_types[i]}, "
                                               f"found {type_name(args[i])}")
        saved = (self.sender, self.caller_contract, self.contract, self.self_address, self.prefix,
                 self.capabilities, self.read_only)
        if caller_is_contract:
            self.sender = self.self_address
            self.caller_contract = self.contract
        self.contract = name
        self.prefix, self.self_address, _ = _identity(name)
        self.capabilities = capabilities
        if method.kind == "view":
            self.read_only = True
        self.depth += 1
        try:
            result = self.run(method.function, list(args))
        finally:
            self.depth -= 1
            (self.sender, self.caller_contract, self.contract, self.self_address, self.prefix,
             self.capabilities, self.read_only) = saved
        if not method.return_check(result):
            raise VMError(E.BAD_RETURN, f"{name}.{method_name} must return {method.returns}, found {type_name(result)}")
        return result

    def call_contract(self, name: Any, method: Any, args: list) -> Any:
        if type(name) is not str:
            raise VMError(E.TYPE_MISMATCH, f"contract name must be str, found {type_name(name)}")
        self.charge(walk_cost(args, self.gas))
        result = self.enter(name, method, copy_value(args), True)
        self.charge(walk_cost(result, self.gas))
        return copy_value(result)

    def caller_has(self, capability: str) -> bool:
        """True when the immediate caller is a contract holding ``capability``."""
        if not self.caller_contract:
            return False
        _, caps = load_contract(self.state, self.caller_contract)
        return capability in caps

    # ---- storage ---------------------------------------------------------------------

    def _key(self, slot, key: Any) -> bytes:
        if not slot.key_types:
            return self.prefix + slot.prefix
        return self.prefix + slot.prefix + encode_key(key, slot.key_types)

    def storage_get(self, slot, key: Any, has_default: bool, default: Any) -> Any:
        data = self.state.get(self.prefix + slot.prefix + encode_key(key, slot.key_types) if slot.key_types
                              else self.prefix + slot.prefix)
        if data is None:
            if not slot.key_types:
                return copy_value(slot.default)
            if has_default:
                return default
            raise VMError(E.KEY_NOT_FOUND, f"{slot.name}[{key!r:.80}] is not set")
        cost = len(data) // BYTES_PER_GAS
        if cost:
            self.gas -= cost
            if self.gas < 0:
                raise VMError(E.OUT_OF_GAS, f"needed {cost} more gas than was left")
        return from_bytes(data)

    def storage_has(self, slot, key: Any) -> bool:
        return self.state.has(self._key(slot, key))

    def storage_put(self, slot, key: Any, value: Any) -> None:
        if self.read_only:
            raise VMError(E.READ_ONLY_VIOLATION, f"write to {slot.name} in a read-only call")
        full = (self.prefix + slot.prefix + encode_key(key, slot.key_types) if slot.key_types
                else self.prefix + slot.prefix)
        t = type(value)
        if t is int or t is bool or t is bytes or t is str or value is None:
            data = encode_scalar(value)
            if data is None:
                data = to_bytes(value, slot.name)
            else:
                remember_canonical(data, value)     # the next transaction's read of it is a lookup
        else:
            self.charge(walk_cost(value, self.gas))     # containers: pay for the walk before encoding
            data = to_bytes(value, slot.name)
        n = len(data)
        if n > MAX_STORAGE_VALUE_BYTES:
            raise VMError(E.STORAGE_VALUE_TOO_LARGE, f"{slot.name} value of {n} bytes exceeds {MAX_STORAGE_VALUE_BYTES}")
        cost = n * GAS_PER_WRITTEN_BYTE
        self.gas -= cost
        if self.gas < 0:
            raise VMError(E.OUT_OF_GAS, f"needed {cost} more gas than was left")
        self.state.put(full, data)

    def storage_delete(self, slot, key: Any) -> None:
        if self.read_only:
            raise VMError(E.READ_ONLY_VIOLATION, f"delete from {slot.name} in a read-only call")
        self.state.delete(self._key(slot, key))

    def storage_iterate(self, slot, prefix: Any, limit: Any, with_values: bool) -> list:
        if not slot.key_types:
            raise VMError(E.TYPE_MISMATCH, f"{slot.name} is a scalar, not a map")
        if type(limit) is not int or not 0 <= limit <= MAX_ITER_LIMIT:
            raise VMError(E.ITERATION_LIMIT, f"iteration limit must be 0..{MAX_ITER_LIMIT}, found {limit!r:.40}")
        base = self.prefix + slot.prefix
        rows = self.state.iterate(base + encode_key_prefix(prefix, slot.key_types), limit) if limit else []
        out = []
        cut = len(base)
        for k, v in rows:
            self.charge(GAS_PER_ITER_ROW + (len(k) + len(v)) // BYTES_PER_GAS)
            key = decode_key(k[cut:], slot.key_types)
            out.append([key, from_bytes(v)] if with_values else key)
        return out

    # ---- events ----------------------------------------------------------------------

    def emit(self, name: str, data: dict) -> None:
        if self.read_only:
            raise VMError(E.READ_ONLY_VIOLATION, f"event {name} emitted in a read-only call")
        if len(self.events) >= MAX_EVENTS:
            raise VMError(E.TOO_MANY_EVENTS, f"more than {MAX_EVENTS} events in one transaction")
        size = 0
        for v in data.values():
            t = type(v)
            if t is bytes or t is str:
                size += len(v) + 5
            elif t is int or t is bool or v is None:
                size += 9
            else:
                size = -1
                break
        if size < 0:
            # containers: charge for the walk, then measure exactly (also proves encodability)
            self.charge(walk_cost(data, self.gas))
            size = len(to_bytes(data, name))
            data = copy_value(data)
        else:
            self.charge(size // BYTES_PER_GAS)
        if size > MAX_EVENT_BYTES:
            raise VMError(E.VALUE_TOO_LARGE, f"event {name} of about {size} bytes exceeds {MAX_EVENT_BYTES}")
        self.events.append((self.contract, name, data))
