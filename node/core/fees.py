"""Transaction fees: a schedule fixed at genesis, charged by the executor after every call.

How it works: a genesis with a ``fees`` section writes a ``FeeSchedule`` (price per
1,000 gas, price per transaction byte, both in the ledger currency's minor units, and
the collector account, by default the platform treasury) under the system key
``sys/fees``; the executor reads it once per block. A genesis without one writes
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

from dataclasses import dataclass

from contracts_vm.machine import storage_prefix
from contracts_vm.values import encode_key, from_bytes, to_bytes
from ledger import encoding
from ledger.errors import DecodeError
from ledger.genesis import MAX_BYTE_PRICE, MAX_GAS_PRICE, Genesis

#: System state key of the fee schedule (outside every contract's namespace).
FEES_KEY = b"sys/fees"
#: Gas prices are quoted per this many gas units, so small prices need no fractions.
GAS_PRICE_UNIT = 1_000
#: Key prefix of the ledger contract's ``balances`` map.
BALANCES_PREFIX = storage_prefix("ledger") + b"balances/"
#: Tag of the encoded schedule in state.
TAG_FEES = "fees/1"


@dataclass(frozen=True)
class FeeSchedule:
    """Prices in minor units: ``gas_price`` per GAS_PRICE_UNIT gas, ``byte_price`` per byte."""

    gas_price: int
    byte_price: int
    collector: bytes

    @property
    def free(self) -> bool:
        return self.gas_price == 0 and self.byte_price == 0

    def byte_fee(self, size: int) -> int:
        return size * self.byte_price

    def fee(self, gas: int, size: int) -> int:
        """What ``gas`` units and ``size`` bytes cost; the gas part is rounded up."""
        return -(-gas * self.gas_price // GAS_PRICE_UNIT) + size * self.byte_price

    def max_fee(self, gas_limit: int, size: int) -> int:
        """The most a transaction can cost: all of its gas limit and its bytes."""
        return self.fee(gas_limit, size)

    def encode(self) -> bytes:
        return encoding.encode([TAG_FEES, self.gas_price, self.byte_price, self.collector])


#: The schedule of a chain whose genesis sets none.
FREE = FeeSchedule(0, 0, b"\x00" * 32)


def check_prices(gas_price: int, byte_price: int) -> str | None:
    """Why these prices are not allowed, or None."""
    if type(gas_price) is not int or not 0 <= gas_price <= MAX_GAS_PRICE:
        return f"gas_price must be an integer 0..{MAX_GAS_PRICE} (minor units per {GAS_PRICE_UNIT} gas), found {gas_price!r}"
    if type(byte_price) is not int or not 0 <= byte_price <= MAX_BYTE_PRICE:
        return f"byte_price must be an integer 0..{MAX_BYTE_PRICE} (minor units per byte), found {byte_price!r}"
    return None


def genesis_schedule(genesis: Genesis) -> FeeSchedule:
    """The schedule a genesis sets (FREE without a ``fees`` section)."""
    fees = genesis.fees
    return FREE if fees is None else FeeSchedule(fees.gas_price, fees.byte_price, fees.collector)


def write_fee_schedule(state, schedule: FeeSchedule) -> None:
    """Record the schedule (genesis); a FREE schedule is not written, so old roots stay."""
    if not schedule.free:
        state.put(FEES_KEY, schedule.encode())


def read_fee_schedule(state) -> FeeSchedule:
    """The chain's fee schedule in this state; FREE when none was recorded.

    A record that does not decode is a corrupt state, not something to guess about.
    """
    raw = state.get(FEES_KEY)
    if raw is None:
        return FREE
    try:
        value = encoding.decode(raw)
    except DecodeError as exc:
        raise ValueError(f"state key {FEES_KEY!r} does not decode: {exc}") from None
    if (not isinstance(value, list) or len(value) != 4 or value[0] != TAG_FEES or type(value[3]) is not bytes
            or check_prices(value[1], value[2]) is not None):
        raise ValueError(f"state key {FEES_KEY!r} holds {value!r:.80}, not a fee schedule")
    return FeeSchedule(value[1], value[2], value[3])


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
