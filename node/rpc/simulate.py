"""``chain_simulate``: the receipt a transaction would get in the next block, nothing committed.

How it works: the one parameter is either a signed raw transaction (0x-hex, exactly what
``chain_sendRawTransaction`` takes) or an unsigned call object ``{sender, contract,
method, args, gas_limit, nonce?}`` that a wallet asks about before it signs; the call's
JSON arguments are converted by the method's ABI as ``chain_call`` does, and it is
encoded as the transaction it describes (same id, same size, so the same fee) with a
blank signature. The node then runs its admission checks on those bytes and executes the
transaction on a throwaway overlay of the committed state (``NodeView.simulation``,
node.core.simulate: the executor's own ``execute_tx``), so a simulation cannot drift
from what the mempool and the block do. The work runs in the heavy lanes, one
transaction per slice with a work-budget checkpoint between them (the sender's pending
transactions before its nonce are replayed first); if a block commits while it yields,
it starts again on the new state, at most ``MAX_SIMULATION_ATTEMPTS`` times. One
transaction cannot be cut into slices (the VM has no yield point), so its gas limit bounds
how long it holds the loop, as ``VIEW_GAS_LIMIT`` bounds a ``chain_call``: a loop that
uses all of MAX_TX_GAS takes about 0.4 s on a 2-core CI machine, against 0.2 s for a view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.errors import ValidationError
from ledger.types import MAX_TX_BYTES, MAX_TX_GAS, TxBody
from node.core.executor import SYSTEM_CONTRACT, SYSTEM_METHODS
from node.core.simulate import MAX_SIMULATED_AHEAD, NONCE_GAP, NONCE_TOO_FAR, SimulatedReceipt, unsigned
from node.rpc.budget import WorkBudgetExceeded
from node.rpc.jsonrpc import INVALID_PARAMS, LIMIT_EXCEEDED, NOT_FOUND, Method, Param, RpcError, limit_error
from node.rpc.result_schemas import ref
from node.rpc.types import ANY
from node.rpc.views import args_from_json, hx, receipt_json, value_from_json

if TYPE_CHECKING:
    from node.rpc.nodeview import NodeView

#: Largest transaction chain_simulate takes: a simulation is of a transaction, so the
#: transaction size limit applies (the gas limit's, MAX_TX_GAS, is admission's own check).
MAX_SIMULATE_TX_BYTES = MAX_TX_BYTES
#: Times a simulation starts again because a block committed while it yielded.
MAX_SIMULATION_ATTEMPTS = 3
#: The fields of an unsigned call and whether each is required (nonce: the next free one).
CALL_FIELDS = {"sender": True, "contract": True, "method": True, "args": False, "gas_limit": True, "nonce": False}
#: Longest contract or method name (the route table's Str limit of chain_call).
MAX_NAME_CHARS = 64
_TYPE_NAMES = {bytes: "bytes", int: "int", str: "str"}

TX_PARAM = Param(
    "tx", ANY,
    f"a signed raw transaction (0x-hex, as for chain_sendRawTransaction; at most {MAX_SIMULATE_TX_BYTES} bytes, "
    "MAX_TX_BYTES) or an unsigned call "
    '{"sender": 0x key, "contract", "method", "args": [JSON, converted by the ABI], "gas_limit" (at most '
    f'{MAX_TX_GAS}, MAX_TX_GAS), "nonce" (optional: the next one after the sender\'s pending transactions)}}; '
    "it runs at the next block's height and timestamp (max(now, head + 1)), after the sender's own pending "
    "transactions with lower nonces")


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: tx: {message}")


def _hex_bytes(text: str, what: str) -> bytes:
    if not text.startswith(("0x", "0X")):
        raise _invalid(f"{what}: expected 0x-hex, found {text[:40]!r}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise _invalid(f"{what}: expected 0x and pairs of hex digits, found "
                       f"{'an odd number of digits' if len(text) % 2 else 'characters that are not hex digits'}") from None


def _raw_from_text(text: str) -> bytes:
    """The signed transaction's bytes; the size limit is checked before decoding the hex."""
    size = (len(text) - 2) // 2
    if size > MAX_SIMULATE_TX_BYTES:
        raise limit_error("max_tx_bytes", MAX_SIMULATE_TX_BYTES, size,
                          f"the transaction is {size} bytes, the limit is {MAX_SIMULATE_TX_BYTES} (MAX_TX_BYTES)")
    return _hex_bytes(text, "the signed transaction")


def _call_args(node: "NodeView", contract: str, method: str, args: list) -> list:
    """The call's JSON arguments converted by the ABI (the system pseudo-contract's own signature)."""
    try:
        if contract == SYSTEM_CONTRACT:
            signature = SYSTEM_METHODS.get(method)
            if signature is None or len(signature) != len(args):
                return list(args)   # admission words the shape error, as it would for the signed form
            return [value_from_json(a, _TYPE_NAMES[t], f"system.{method}.{n}") for a, (n, t) in zip(args, signature)]
        abi = node.contract_abi(contract, node.blocks.height)
        if abi is None:
            raise RpcError(NOT_FOUND, f"no contract named {contract!r}")
        return args_from_json(abi, method, args)
    except ValidationError as exc:
        raise _invalid(str(exc)) from None


def _raw_from_call(node: "NodeView", call: dict) -> bytes:
    """The unsigned call as the bytes of the transaction it describes (a blank signature)."""
    unknown = sorted(set(call) - set(CALL_FIELDS))
    missing = [name for name, required in CALL_FIELDS.items() if required and name not in call]
    if unknown or missing:
        raise _invalid(f"expected a call object with fields {', '.join(CALL_FIELDS)} (args and nonce optional), "
                       f"found {'unknown ' + ', '.join(unknown) if unknown else 'no ' + ', '.join(missing)}")
    sender = call["sender"]
    if not isinstance(sender, str):
        raise _invalid(f"sender: expected a 0x-hex public key, found {type(sender).__name__}")
    key = _hex_bytes(sender, "sender")
    if len(key) != 32:
        raise _invalid(f"sender: expected a 32-byte public key, found {len(key)} bytes")
    for name in ("contract", "method"):
        value = call[name]
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_CHARS:
            raise _invalid(f"{name}: expected a name of 1..{MAX_NAME_CHARS} characters, found {value!r:.40}")
    args = call.get("args", [])
    if not isinstance(args, list):
        raise _invalid(f"args: expected a list, found {type(args).__name__}")
    gas = call["gas_limit"]
    if type(gas) is not int or not 1 <= gas <= MAX_TX_GAS:
        raise _invalid(f"gas_limit: expected an integer 1..{MAX_TX_GAS} (MAX_TX_GAS), found {gas!r:.40}")
    nonce = call.get("nonce")
    if nonce is None:
        nonce = node.next_free_nonce(key)
    elif type(nonce) is not int or nonce < 0:
        raise _invalid(f"nonce: expected a non-negative integer, found {nonce!r:.40}")
    converted = _call_args(node, call["contract"], call["method"], args)
    body = TxBody(node.genesis.chain_id, key, nonce, call["contract"], call["method"], converted, gas)
    return unsigned(body).encode()


def simulation_json(result: SimulatedReceipt, signed: bool) -> dict:
    """The would-be receipt: the receipt's fields plus where it was computed (no block, no index)."""
    receipt = result.receipt
    out = {k: v for k, v in receipt_json(receipt).items() if k not in ("height", "index", "raw")}
    name, _, message = (receipt.error or "").partition(": ")
    out.update({"simulated": True, "signed": signed, "height": result.height, "timestamp_ms": result.timestamp_ms,
                "state_root": hx(result.base_root), "pending_replayed": result.ahead,
                "error_name": name or None, "error_message": message or None})
    return out


def simulate_routes(node: "NodeView") -> list[Method]:
    async def chain_simulate(ctx, tx: Any) -> dict:
        if isinstance(tx, str):
            raw, signed = _raw_from_text(tx), True
        elif isinstance(tx, dict):
            raw, signed = _raw_from_call(node, tx), False
        else:
            raise _invalid("expected a signed raw transaction (0x-hex string) or an unsigned call object "
                           f"{{{', '.join(CALL_FIELDS)}}}, found {type(tx).__name__}")
        for _ in range(MAX_SIMULATION_ATTEMPTS):
            simulation = node.simulation(raw, signed)   # admission's refusals raise here (MempoolError)
            try:
                for step in simulation.steps():
                    if simulation.result is not None:
                        break   # done: the receipt is computed on one state
                    if ctx.work is not None:
                        await ctx.work.checkpoint()
                    if simulation.stale:
                        break   # a block committed while we yielded: start again on the new state
            except WorkBudgetExceeded as exc:
                raise RpcError(LIMIT_EXCEEDED, (
                    f"chain_simulate used its {exc.scope} work budget of {exc.limit_ms} ms ({exc.spent_ms} ms) after "
                    f"replaying {step + 1} of the sender's {len(simulation.ahead)} pending transactions before it; "
                    "simulate again once they commit"), exc.data(replayed=step + 1)) from None
            if simulation.result is not None:
                return simulation_json(simulation.result, signed)
        raise RpcError(LIMIT_EXCEEDED, f"blocks committed during each of {MAX_SIMULATION_ATTEMPTS} simulation "
                                       "attempts; simulate again", {"limit": "max_simulation_attempts",
                                                                    "max": MAX_SIMULATION_ATTEMPTS})

    return [Method(
        "chain_simulate", chain_simulate, (TX_PARAM,),
        "{tx_id, status, gas_used, fee, return_value, error, error_name, error_message, events, simulated: true, "
        "signed, height and timestamp_ms (the next block's), state_root (the committed state it ran on), "
        "pending_replayed}: the receipt the transaction would get; admission's refusals are answered as "
        "chain_sendRawTransaction answers them (ChainError, data.reason), and a nonce that cannot run yet as "
        f"ChainError with data.reason {NONCE_GAP} (a nonce between is not pending) or {NONCE_TOO_FAR} (more than "
        f"{MAX_SIMULATED_AHEAD} past the next one)",
        summary="Run a transaction on the latest committed state and return its would-be receipt; nothing is "
                "committed or added to the mempool.", heavy=True, result_schema=ref("Simulation"), errors=(NOT_FOUND,))]
