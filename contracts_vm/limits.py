"""Every limit and gas price of the VM, in one place, as named constants.

How it works: these numbers are part of consensus. Two validators running different
values would disagree on which calls fail, so a change to any of them is a change of
``VM_VERSION`` (the bytecode header names the version it was verified for).

Gas is kept per VM version: ``GAS_SCHEDULES[version]`` is a ``GasSchedule`` with
every per-operation price, and its ``opcode_gas`` reprices opcodes of that version
against the base gas of the opcode table (opcodes.py). A program is decoded with the
opcode gas of its own version (program.py), so a later version can reprice an opcode
while code installed under an earlier one keeps its prices. The module constants of
the Gas section (``INTRINSIC_GAS``, ``BYTES_PER_GAS``, ...) are version 1's prices,
which the machine charges for every version today: a version that changes one of
them must first pass its schedule to where it is charged (tests/vm/test_vm_gas_schedule.py
refuses a schedule that differs from version 1 in anything but ``opcode_gas``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

#: Bytecode format and semantics version; written in every code header.
VM_VERSION = 1
#: Versions this build can verify and run.
SUPPORTED_VERSIONS = (1,)

#: Integer range: signed 64-bit. Results outside it are IntegerOverflow, never wrapped.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
#: Largest exponent accepted by ``**`` (keeps the cost of one opcode bounded).
MAX_POW_EXPONENT = 255

#: Most bytes in one bytes value or UTF-8 chars in one str value.
MAX_ITEM_BYTES = 64 * 1024
#: Most elements in one list or entries in one map built or grown by a contract.
MAX_CONTAINER_ITEMS = 4096
#: Largest encoded value that may be written to one storage key.
MAX_STORAGE_VALUE_BYTES = 16 * 1024
#: Longest encoded storage key suffix (map key) a contract may use.
MAX_STORAGE_KEY_BYTES = 1024
#: Most entries one prefix iteration (``self.m.items(prefix, limit)``) returns.
MAX_ITER_LIMIT = 256

#: Deepest operand stack (locals included) of one function frame; checked statically.
MAX_STACK = 1024
#: Most nested frames in one call: internal function calls plus contract calls.
MAX_FRAME_DEPTH = 64
#: Most nested contract-to-contract calls (the first contract is depth 1).
MAX_CALL_DEPTH = 8
#: Most events one transaction may emit (across every contract it calls).
MAX_EVENTS = 256

#: Largest whole code container (header + constants + functions + ABI).
MAX_CODE_BYTES = 256 * 1024
#: Largest instruction stream of one function (jump offsets are 16-bit).
MAX_FUNCTION_CODE_BYTES = 65535
#: Most functions in one contract, and most constants.
MAX_FUNCTIONS = 1024
MAX_CONSTANTS = 65535
#: Most parameters plus locals of one function.
MAX_LOCALS = 255

#: Longest contract name (it is part of state keys).
MAX_CONTRACT_NAME = 64
#: Most decoded programs kept in the per-process cache (keyed by code hash).
PROGRAM_CACHE_SIZE = 256


# ---- Gas -------------------------------------------------------------------------

@dataclass(frozen=True)
class GasSchedule:
    """The gas prices of one VM version (the opcodes' base gas is in the opcode table)."""

    #: Entering the VM at all: lookup of code and metadata, argument checks.
    intrinsic: int
    #: Installing code, per byte of code (on top of any init call): code is stored forever.
    per_code_byte: int
    #: Per byte written to storage, on top of SPUT's base gas: state grows with it.
    per_written_byte: int
    #: Per row returned by a prefix iteration: each row is a state read and a decode.
    per_iter_row: int
    #: Per container node visited by equality, encoding and copying.
    per_node: int
    #: Bytes per unit of gas when a value's bytes are copied, hashed or encoded.
    bytes_per_gas: int
    #: Bytes compared per unit of gas by ==, <, ... on bytes and str (a memcmp is cheap).
    bytes_per_compare_gas: int
    #: Opcode name -> base gas in this version, for opcodes repriced against the table.
    opcode_gas: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


#: Gas prices per VM version; every version of SUPPORTED_VERSIONS has one.
GAS_SCHEDULES: Mapping[int, GasSchedule] = {
    1: GasSchedule(intrinsic=200, per_code_byte=10, per_written_byte=1, per_iter_row=20, per_node=1,
                   bytes_per_gas=16, bytes_per_compare_gas=64),
}

_V1 = GAS_SCHEDULES[1]
#: Gas for entering the VM (also the smallest gas limit the mempool admits).
INTRINSIC_GAS = _V1.intrinsic
#: Gas per byte of installed code (deploy.py).
GAS_PER_CODE_BYTE = _V1.per_code_byte
#: Gas per byte written to storage, on top of SPUT's base gas (machine.py).
GAS_PER_WRITTEN_BYTE = _V1.per_written_byte
#: Gas per row returned by a prefix iteration (machine.py).
GAS_PER_ITER_ROW = _V1.per_iter_row
#: Gas per container node visited by equality, encoding and copying (values.py).
GAS_PER_NODE = _V1.per_node
#: Bytes per unit of gas when a value's bytes are copied, hashed or encoded.
BYTES_PER_GAS = _V1.bytes_per_gas
#: Bytes per unit of gas of ==, <, ... on bytes and str; shorter operands compare free.
BYTES_PER_COMPARE_GAS = _V1.bytes_per_compare_gas

#: Gas limit of a contract's ``init`` run by install_contract when none is given.
DEFAULT_INIT_GAS = 10_000_000
#: Gas limit of one genesis initialisation call (a call per organisation and per account).
GENESIS_CALL_GAS = 5_000_000
#: Gas limit of the reference (VM) form of the registration check.
REGISTERED_VIEW_GAS = 100_000
#: Gas of the ring_verify host per ring member, on top of its row's 3,000 and charged before
#: the work: a member costs four scalar multiplications, a hash to the curve and a point
#: check, measured at about 7.7 ed25519 verifications (bench/ring.py), and ed25519_verify
#: costs 3,000.
RING_VERIFY_MEMBER_GAS = 24_000
