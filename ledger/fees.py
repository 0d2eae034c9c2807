"""The fee schedule as state: its key, its value type and its (de)serialisation.

How it works: a chain's fee schedule lives under the system key ``sys/fees`` as the
canonical encoding of ``[TAG_FEES, gas_price, byte_price, collector]``; no record
means ``FREE``. This module is the one owner of that key and its bytes, so both the
node's executor (node/core/fees.py, which charges fees) and the VM's governance host
function (contracts_vm/builtins.py ``set_fee_schedule``, which changes them by
proposal) read and write the same thing without contracts_vm importing node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import encoding
from ledger.errors import DecodeError
from ledger.genesis import MAX_BYTE_PRICE, MAX_GAS_PRICE

#: System state key of the fee schedule (outside every contract's namespace).
FEES_KEY = b"sys/fees"
#: Gas prices are quoted per this many gas units, so small prices need no fractions.
GAS_PRICE_UNIT = 1_000
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


def write_fee_schedule(state, schedule: FeeSchedule) -> None:
    """Record the schedule; a FREE schedule is no record at all (so chains without fees keep their roots)."""
    if schedule.free:
        if state.get(FEES_KEY) is not None:
            state.delete(FEES_KEY)
    else:
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
