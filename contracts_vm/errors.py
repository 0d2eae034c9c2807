"""Named VM errors: what a failed call reports, identical on every validator.

How it works: every failure inside the VM is a ``VMError`` whose ``name`` is one of
the constants below. The name (not the Python class, not the message wording of some
library) is what goes into receipts and conformance vectors, so two validators agree
on a failure exactly when they agree on the name. ``VerifyError`` is the deploy-time
subset: code that fails static verification is never installed, so never executed.
"""

from __future__ import annotations

from ledger.errors import ChainError

# Runtime errors (a call fails, its state changes are reverted, gas is charged).
OUT_OF_GAS = "OutOfGas"
REQUIRE_FAILED = "RequireFailed"
INTEGER_OVERFLOW = "IntegerOverflow"
DIVISION_BY_ZERO = "DivisionByZero"
TYPE_MISMATCH = "TypeMismatch"
INDEX_OUT_OF_RANGE = "IndexOutOfRange"
KEY_NOT_FOUND = "KeyNotFound"
VALUE_TOO_LARGE = "ValueTooLarge"
STORAGE_VALUE_TOO_LARGE = "StorageValueTooLarge"
TOO_MANY_EVENTS = "TooManyEvents"
CALL_DEPTH_EXCEEDED = "CallDepthExceeded"
READ_ONLY_VIOLATION = "ReadOnlyViolation"
UNKNOWN_CONTRACT = "UnknownContract"
UNKNOWN_METHOD = "UnknownMethod"
BAD_ARGUMENTS = "BadArguments"
BAD_RETURN = "BadReturn"
PERMISSION_DENIED = "PermissionDenied"
NOT_ENCODABLE = "NotEncodable"
ITERATION_LIMIT = "IterationLimit"
INVALID_CODE = "InvalidCode"
#: A defect the checks above did not anticipate; still deterministic (same input, same fault).
VM_FAULT = "VMFault"

RUNTIME_ERRORS = (
    OUT_OF_GAS, REQUIRE_FAILED, INTEGER_OVERFLOW, DIVISION_BY_ZERO, TYPE_MISMATCH,
    INDEX_OUT_OF_RANGE, KEY_NOT_FOUND, VALUE_TOO_LARGE, STORAGE_VALUE_TOO_LARGE,
    TOO_MANY_EVENTS, CALL_DEPTH_EXCEEDED, READ_ONLY_VIOLATION, UNKNOWN_CONTRACT,
    UNKNOWN_METHOD, BAD_ARGUMENTS, BAD_RETURN, PERMISSION_DENIED, NOT_ENCODABLE,
    ITERATION_LIMIT, INVALID_CODE, VM_FAULT,
)

# Verification errors (deploy time: the code is refused, never installed).
BAD_HEADER = "BadHeader"
UNSUPPORTED_VERSION = "UnsupportedVersion"
MALFORMED_CODE = "MalformedCode"
INVALID_OPCODE = "InvalidOpcode"
TRUNCATED_INSTRUCTION = "TruncatedInstruction"
BAD_IMMEDIATE = "BadImmediate"
BAD_JUMP_TARGET = "BadJumpTarget"
STACK_UNDERFLOW = "StackUnderflow"
STACK_HEIGHT_MISMATCH = "StackHeightMismatch"
STACK_TOO_DEEP = "StackTooDeep"
FALLS_OFF_END = "FallsOffEnd"
CODE_TOO_LARGE = "CodeTooLarge"
BAD_ABI = "BadAbi"

VERIFY_ERRORS = (
    BAD_HEADER, UNSUPPORTED_VERSION, MALFORMED_CODE, INVALID_OPCODE, TRUNCATED_INSTRUCTION,
    BAD_IMMEDIATE, BAD_JUMP_TARGET, STACK_UNDERFLOW, STACK_HEIGHT_MISMATCH, STACK_TOO_DEEP,
    FALLS_OFF_END, CODE_TOO_LARGE, BAD_ABI,
)


class VMError(ChainError):
    """A contract call failed; ``name`` is the stable error name, ``message`` the detail."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class VerifyError(VMError):
    """Bytecode failed static verification; it must not be installed or run."""


class CompileError(ChainError):
    """Contract source uses unsupported syntax or is ill-formed; carries file:line:col."""

    def __init__(self, filename: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{filename}:{line}:{col}: {message}")
        self.filename = filename
        self.line = line
        self.col = col
        self.message = message
