"""Every limit of the VM, in one place, as named constants.

How it works: these numbers are part of consensus. Two validators running different
values would disagree on which calls fail, so a change to any of them is a change of
``VM_VERSION`` (the bytecode header names the version it was verified for).
"""

from __future__ import annotations

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
