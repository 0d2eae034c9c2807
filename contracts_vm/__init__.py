"""shopchain's deterministic contract VM: bytecode, verifier, interpreter, compiler.

The node calls ``execute_call`` / ``execute_view`` / ``install_contract``; tools call
``compile_source``, ``disassemble`` and ``verify``. See docs/contract-language.md.
"""

from contracts_vm.api import (CallContext, CallResult, execute_call, execute_view, get_code, get_contract_info,
                              install_contract)
from contracts_vm.builtins import contract_address
from contracts_vm.deploy import install_deploy  # also registers the install_code / inspect_code host functions
from contracts_vm.bytecode import assemble, code_hash, disassemble
from contracts_vm.compiler import CompiledContract, compile_source
from contracts_vm.errors import CompileError, VerifyError, VMError
from contracts_vm.verifier import verify

__all__ = [
    "CallContext", "CallResult", "execute_call", "execute_view", "get_code", "get_contract_info",
    "install_contract", "contract_address", "assemble", "code_hash", "disassemble", "CompiledContract",
    "compile_source", "CompileError", "VerifyError", "VMError", "verify", "install_deploy",
]
