"""Container semantics, pure builtins and host functions, each as a row of a table.

How it works: ``BUILTINS`` (pure functions of their arguments) and ``HOSTS`` (functions
that reach outside the value world: hashing, signatures, the contract registry) are
tables of (name, arity, gas, function), indexed by the BUILTIN / HOST immediate. The
table's gas is added to the opcode's base gas when the code is decoded, so it is
charged before the function runs; size-dependent gas is charged inside through
``m.charge`` before the work. Every function checks its argument types exactly and
raises only VMError.
"""

from __future__ import annotations

from typing import Any

from contracts_vm import errors as E
from contracts_vm.errors import VMError
from contracts_vm.limits import BYTES_PER_GAS, MAX_CONTAINER_ITEMS, MAX_ITEM_BYTES, RING_VERIFY_MEMBER_GAS
from contracts_vm.values import check_int, strict_eq, type_name, walk_cost
from ledger import ring
from ledger.crypto import sha256, verify_ed25519
from ledger.fees import FeeSchedule, check_prices, write_fee_schedule

#: The capability a contract must hold to use the governed host functions below.
GOVERNANCE_CAPABILITY = "governance"

_KEY_TYPES = (str, int, bytes)
_KEY_RANK = {int: 0, bytes: 1, str: 2}


def mismatch(op: str, *values: Any) -> VMError:
    """The TypeMismatch error for ``op`` applied to these values (names their types)."""
    return VMError(E.TYPE_MISMATCH, f"{op} cannot take ({', '.join(type_name(v) for v in values)})")


def check_map_key(key: Any) -> None:
    if type(key) not in _KEY_TYPES:
        raise VMError(E.TYPE_MISMATCH, f"map keys must be str, int or bytes, found {type_name(key)}")


def sorted_keys(d: dict) -> list:
    """Map keys in the VM's one order: by kind (int, bytes, str), then by value."""
    return sorted(d, key=lambda k: (_KEY_RANK[type(k)], k))


def contains(m, container: Any, item: Any) -> bool:
    t = type(container)
    if t is dict:
        return type(item) in _KEY_TYPES and item in container
    if t is list:
        # each comparison visits at most the nodes of ``item``: charge that per element
        per = walk_cost(item, m.gas) if type(item) in (list, dict) else 1
        m.charge(len(container) * per)
        for x in container:
            if strict_eq(x, item):
                return True
        return False
    if (t is bytes or t is str) and type(item) is t:
        m.charge(len(container) // BYTES_PER_GAS)
        return item in container
    raise mismatch("in", item, container)


def iteration_list(m, value: Any) -> list:
    """The sequence a for loop walks: fixed when the loop starts."""
    t = type(value)
    if t is list:
        m.charge(len(value))
        return list(value)
    if t is dict:
        m.charge(len(value))
        return sorted_keys(value)
    if t is bytes:
        m.charge(len(value))
        return list(value)
    raise mismatch("for", value)


def _index(seq: Any, key: Any) -> int:
    if type(key) is not int:
        raise mismatch("index", seq, key)
    if key < 0:
        key += len(seq)
    if key < 0 or key >= len(seq):
        raise VMError(E.INDEX_OUT_OF_RANGE, f"index {key} outside a {type_name(seq)} of length {len(seq)}")
    return key


def get_item(m, obj: Any, key: Any) -> Any:
    t = type(obj)
    if t is dict:
        if type(key) not in _KEY_TYPES:
            check_map_key(key)
        try:
            return obj[key]
        except KeyError:
            raise VMError(E.KEY_NOT_FOUND, f"map has no key {key!r:.80}") from None
    if t is list or t is bytes or t is str:
        return obj[_index(obj, key)]
    raise mismatch("[]", obj, key)


def set_item(m, obj: Any, key: Any, value: Any) -> None:
    t = type(obj)
    if t is dict:
        check_map_key(key)
        if key not in obj and len(obj) >= MAX_CONTAINER_ITEMS:
            raise VMError(E.VALUE_TOO_LARGE, f"map already has {MAX_CONTAINER_ITEMS} entries")
        obj[key] = value
    elif t is list:
        obj[_index(obj, key)] = value
    else:
        raise mismatch("[] =", obj, key)


def del_item(obj: Any, key: Any) -> None:
    t = type(obj)
    if t is dict:
        check_map_key(key)
        if key not in obj:
            raise VMError(E.KEY_NOT_FOUND, f"map has no key {key!r:.80}")
        del obj[key]
    elif t is list:
        del obj[_index(obj, key)]
    else:
        raise mismatch("del", obj, key)


def slice_of(m, obj: Any, start: Any, stop: Any) -> Any:
    t = type(obj)
    if t not in (bytes, str, list):
        raise mismatch("slice", obj)
    for bound in (start, stop):
        if bound is not None and type(bound) is not int:
            raise mismatch("slice bound", bound)
    lo, hi, _ = slice(start, stop).indices(len(obj))
    size = max(0, hi - lo)
    m.charge(size if t is list else size // BYTES_PER_GAS)
    return obj[start:stop]


# ---- pure builtins ---------------------------------------------------------------

def b_min(m, a, b):
    if type(a) is not int or type(b) is not int:
        raise mismatch("min", a, b)
    return a if a <= b else b


def b_max(m, a, b):
    if type(a) is not int or type(b) is not int:
        raise mismatch("max", a, b)
    return a if a >= b else b


def b_abs(m, a):
    if type(a) is not int:
        raise mismatch("abs", a)
    return check_int(abs(a))


def b_str(m, a):
    if type(a) is not int:
        raise mismatch("str", a)
    return str(a)


def b_int(m, a):
    if type(a) is not str or not (0 < len(a) <= 20):
        raise mismatch("int", a)
    body = a[1:] if a[0] == "-" else a
    if not body or not all("0" <= c <= "9" for c in body):
        raise VMError(E.TYPE_MISMATCH, f"int() expects decimal digits, found {a!r}")
    return check_int(int(a))


def b_encode(m, a):
    if type(a) is not str:
        raise mismatch("encode", a)
    out = a.encode("utf-8")
    if len(out) > MAX_ITEM_BYTES:
        raise VMError(E.VALUE_TOO_LARGE, f"encoded str of {len(out)} bytes exceeds {MAX_ITEM_BYTES}")
    m.charge(len(out) // BYTES_PER_GAS)
    return out


def b_decode(m, a):
    if type(a) is not bytes:
        raise mismatch("decode", a)
    m.charge(len(a) // BYTES_PER_GAS)
    try:
        return a.decode("utf-8")
    except UnicodeDecodeError:
        raise VMError(E.TYPE_MISMATCH, "bytes are not valid UTF-8") from None


def b_hex(m, a):
    if type(a) is not bytes or 2 * len(a) > MAX_ITEM_BYTES:
        raise mismatch("hex", a)
    m.charge(len(a) // 8)
    return a.hex()


def b_startswith(m, a, p):
    if type(a) not in (bytes, str) or type(p) is not type(a):
        raise mismatch("startswith", a, p)
    m.charge(len(p) // BYTES_PER_GAS)
    return a.startswith(p)


def b_sorted(m, a):
    if type(a) is not list:
        raise mismatch("sorted", a)
    if a:
        t = type(a[0])
        if t not in (int, bytes, str) or any(type(x) is not t for x in a):
            raise VMError(E.TYPE_MISMATCH, "sorted() needs a list of ints, bytes or strs of one kind")
    m.charge(len(a) * max(1, len(a).bit_length()) + sum(len(x) for x in a if type(x) is not int) // BYTES_PER_GAS)
    return sorted(a)


def b_keys(m, d):
    if type(d) is not dict:
        raise mismatch("keys", d)
    m.charge(len(d))
    return sorted_keys(d)


def b_values(m, d):
    if type(d) is not dict:
        raise mismatch("values", d)
    m.charge(len(d))
    return [d[k] for k in sorted_keys(d)]


def b_items(m, d):
    if type(d) is not dict:
        raise mismatch("items", d)
    m.charge(2 * len(d))
    return [[k, d[k]] for k in sorted_keys(d)]


def b_get(m, d, key, default):
    if type(d) is not dict:
        raise mismatch("get", d, key)
    check_map_key(key)
    return d.get(key, default)


def b_pop(m, lst):
    if type(lst) is not list:
        raise mismatch("pop", lst)
    if not lst:
        raise VMError(E.INDEX_OUT_OF_RANGE, "pop from an empty list")
    return lst.pop()


def b_int_to_bytes(m, a):
    if type(a) is not int or a < 0:
        raise mismatch("int_to_bytes", a)
    return a.to_bytes(8, "big")


def b_bytes_to_int(m, a):
    if type(a) is not bytes or len(a) > 8:
        raise mismatch("bytes_to_int", a)
    return check_int(int.from_bytes(a, "big"))


#: (name, arity, gas, function); the index in this tuple is the BUILTIN immediate.
BUILTINS = (
    ("min", 2, 1, b_min),
    ("max", 2, 1, b_max),
    ("abs", 1, 1, b_abs),
    ("str", 1, 3, b_str),
    ("int", 1, 3, b_int),
    ("encode", 1, 2, b_encode),
    ("decode", 1, 2, b_decode),
    ("hex", 1, 2, b_hex),
    ("startswith", 2, 2, b_startswith),
    ("sorted", 1, 5, b_sorted),
    ("keys", 1, 2, b_keys),
    ("values", 1, 2, b_values),
    ("items", 1, 2, b_items),
    ("get", 3, 1, b_get),
    ("pop", 1, 1, b_pop),
    ("int_to_bytes", 1, 2, b_int_to_bytes),
    ("bytes_to_int", 1, 2, b_bytes_to_int),
)
BUILTIN_INDEX = {row[0]: i for i, row in enumerate(BUILTINS)}


# ---- host functions --------------------------------------------------------------

def h_sha256(m, data):
    if type(data) is not bytes:
        raise mismatch("sha256", data)
    m.charge(len(data) // BYTES_PER_GAS)
    return sha256(data)


def h_ed25519_verify(m, public_key, message, signature):
    if type(public_key) is not bytes or type(message) is not bytes or type(signature) is not bytes:
        raise mismatch("ed25519_verify", public_key, message, signature)
    m.charge(len(message) // BYTES_PER_GAS)
    return verify_ed25519(public_key, message, signature)


def h_ring_verify(m, members, key_image, message, signature):
    """LSAG verification (ledger/ring.py): True when ``signature`` over ``message`` is by the key
    behind ``key_image``, one of ``members``. False for a ring outside 1..16 (before the
    per-member gas), bad points or scalars; TypeMismatch for arguments of the wrong kinds."""
    if type(members) is not list or type(key_image) is not bytes or type(message) is not bytes \
            or type(signature) is not bytes:
        raise mismatch("ring_verify", members, key_image, message, signature)
    if not ring.MIN_RING_SIZE <= len(members) <= ring.MAX_RING_SIZE:
        return False
    if any(type(p) is not bytes for p in members):
        raise VMError(E.TYPE_MISMATCH, "ring_verify needs a list of bytes public keys")
    m.charge(RING_VERIFY_MEMBER_GAS * len(members) + len(message) // BYTES_PER_GAS)
    return ring.verify(members, key_image, message, signature)


def h_contract_address(m, name):
    if type(name) is not str:
        raise mismatch("contract_address", name)
    return contract_address(name)


def h_caller_has(m, capability):
    if type(capability) is not str:
        raise mismatch("caller_has", capability)
    return m.caller_has(capability)


def _governed(m, name: str) -> None:
    """Only a running contract installed with the governance capability, never in a view."""
    if GOVERNANCE_CAPABILITY not in m.capabilities:
        raise VMError(E.PERMISSION_DENIED, f"{name} needs the {GOVERNANCE_CAPABILITY!r} capability; "
                                           f"contract {m.contract!r} does not hold it")
    if m.read_only:
        raise VMError(E.READ_ONLY_VIOLATION, f"{name} in a read-only call")


#: Host functions that need the whole VM (installing code verifies it and runs its init),
#: which this module, below the interpreter, cannot import: contracts_vm.deploy registers
#: them when it is imported, and the package's __init__ imports it, so they are present
#: whenever any contract runs. Name -> function(m, *args).
DEPLOY_HOSTS: dict = {}


def register_deploy_host(name: str, fn) -> None:
    DEPLOY_HOSTS[name] = fn


def _deploy_host(name: str):
    fn = DEPLOY_HOSTS.get(name)
    if fn is None:  # only when contracts_vm.deploy was never imported: a wiring fault, not a contract error
        raise VMError(E.VM_FAULT, f"host function {name} is not registered (contracts_vm.deploy not loaded)")
    return fn


def h_inspect_code(m, payload):
    """What a deploy payload would install, checked: {action, name, code_hash, abi, capabilities, code_bytes}."""
    return _deploy_host("inspect_code")(m, payload)


def h_install_code(m, payload):
    """Deploy or upgrade through contracts_vm.deploy.install_deploy (governance only); returns the code hash."""
    _governed(m, "install_code")
    return _deploy_host("install_code")(m, payload)


def h_set_fee_schedule(m, gas_price, byte_price, collector):
    """Replace the chain's fee schedule (ledger/fees.py; governance only); all zero prices mean free."""
    _governed(m, "set_fee_schedule")
    if type(gas_price) is not int or type(byte_price) is not int or type(collector) is not bytes:
        raise mismatch("set_fee_schedule", gas_price, byte_price, collector)
    problem = check_prices(gas_price, byte_price)
    if problem is not None:
        raise VMError(E.BAD_ARGUMENTS, problem)
    if len(collector) != 32:
        raise VMError(E.BAD_ARGUMENTS, f"the fee collector must be a 32-byte key, found {len(collector)} bytes")
    write_fee_schedule(m.state, FeeSchedule(gas_price, byte_price, collector))
    return None


def contract_address(name: str) -> bytes:
    """The 32-byte account of a contract: what ``ctx.sender`` is when it calls another."""
    return sha256(b"shopchain/contract/" + name.encode("utf-8"))


#: (name, arity, gas, function); the index is the HOST immediate.
HOSTS = (
    ("sha256", 1, 30, h_sha256),
    ("ed25519_verify", 3, 3000, h_ed25519_verify),
    ("contract_address", 1, 30, h_contract_address),
    ("caller_has", 1, 10, h_caller_has),
    ("inspect_code", 1, 100, h_inspect_code),
    ("install_code", 1, 1000, h_install_code),
    ("set_fee_schedule", 3, 500, h_set_fee_schedule),
    ("ring_verify", 4, 3000, h_ring_verify),
)
HOST_INDEX = {row[0]: i for i, row in enumerate(HOSTS)}

