"""Transaction fees: a schedule fixed at genesis, charged by the executor after every call.

How it works: a genesis with a ``fees`` section writes a ``FeeSchedule`` (price per
1,000 gas, price per transaction byte, both in the ledger currency's minor units, and
the collector account, by default the platform treasury) under the system key
``sys/fees`` (the key, the value type and its bytes live in ledger/fees.py, shared
with the governance contract's ``set_fee_schedule`` host function, the only way to
change it after genesis); the executor reads it once per block. A genesis without one writes
nothing, so its chains keep their state roots and fees are zero (``FREE``).

For each transaction whose sender and nonce are valid, the executor first debits the
most the transaction can cost (``max_fee``: its whole gas limit plus its bytes) from
the sender's ledger balance, outside the call's reverted checkpoint, so the call
cannot spend the money its fee needs; after the call (failed or not) it refunds the
unused part and credits the collector with the fee actually due (``fee``: gas used
plus bytes). The sender's balance drops by exactly the receipt's ``fee`` and the
collector's rises by it: supply is unchanged (ledger invariant E1). A sender who
cannot cover ``max_fee`` at execution (its balance was spent by an earlier
transaction of the same block) pays what it has up to the byte fee, and the call does
not run. The mempool refuses such senders at admission, counting their pending
transactions' fees too.

Balances are read and written directly in the ledger contract's storage (the
``balances`` map), as ``contracts_vm.system.is_registered`` reads identity's: one
key read and write per party instead of a VM call per transaction.
tests/node/test_fees.py checks that the ledger's own ``balance_of`` view agrees.
"""

from __future__ import annotations

from contracts_vm.machine import storage_prefix
from contracts_vm.values import encode_key, from_bytes, to_bytes
from ledger.fees import (FEES_KEY, FREE, GAS_PRICE_UNIT, TAG_FEES, FeeSchedule, check_prices, read_fee_schedule,
                         write_fee_schedule)
from ledger.genesis import Genesis

#: The schedule's state and value type are ledger.fees'; re-exported for the node's callers.
__all__ = ["FEES_KEY", "FREE", "GAS_PRICE_UNIT", "TAG_FEES", "FeeSchedule", "check_prices", "read_fee_schedule",
           "write_fee_schedule", "BALANCES_PREFIX", "genesis_schedule", "balance_key", "read_balance", "debit",
           "credit"]

#: Key prefix of the ledger contract's ``balances`` map.
BALANCES_PREFIX = storage_prefix("ledger") + b"balances/"


def genesis_schedule(genesis: Genesis) -> FeeSchedule:
    """The schedule a genesis sets (FREE without a ``fees`` section)."""
    fees = genesis.fees
    return FREE if fees is None else FeeSchedule(fees.gas_price, fees.byte_price, fees.collector)


def balance_key(account: bytes) -> bytes:
    return BALANCES_PREFIX + encode_key(account, ["bytes"])


def read_balance(state, account: bytes) -> int:
    """The account's ledger balance in minor units (0 when it has none)."""
    raw = state.get(balance_key(account))
    if raw is None:
        return 0
    value = from_bytes(raw)
    return value if type(value) is int else 0


def _write_balance(state, account: bytes, amount: int) -> None:
    state.put(balance_key(account), to_bytes(amount, "a ledger balance"))


def debit(state, account: bytes, amount: int) -> None:
    """Take ``amount`` (already known to be covered) from the account's balance."""
    if amount:
        _write_balance(state, account, read_balance(state, account) - amount)


def credit(state, account: bytes, amount: int) -> None:
    if amount:
        _write_balance(state, account, read_balance(state, account) + amount)
