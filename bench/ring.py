"""Benchmarks of ring signatures for reviews: `python -m bench.ring`.

Prints one JSON object per line ({bench, metric, value, unit, baseline, ratio}), the
baseline being ed25519_verify measured in the same run:
- wall time of ledger.ring.verify for rings of 2, 8 and 16 keys, and per ring member,
  vs one strict ed25519 verification (libsodium): the per-member ratio is what
  RING_VERIFY_MEMBER_GAS (contracts_vm/limits.py) prices;
- gas of a contract call of the ring_verify host for the same rings vs a call of
  ed25519_verify, and gas per microsecond of each (a ratio near 1 means the host is
  priced like ed25519_verify for the time it takes);
- signing time per ring size (the reviewer's machine, not the chain).
Times are the median of REPEATS rounds of CALLS calls, on one core.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

from bench.common import emit, result
from contracts_vm.api import CallContext, execute_call, install_contract
from contracts_vm.bytecode import assemble
from contracts_vm.memstate import MemoryState
from ledger import ring
from ledger.crypto import SigningKey, verify_ed25519

SIZES = (2, 8, 16)
#: Rounds timed per figure (the median is reported) and calls per round.
REPEATS = 7
CALLS = 40
MESSAGE = b"shopchain/review/v2|bench|1,2,|0|5|4|5|4|5|" + bytes(32) + b"|0|1"
GAS = 1_000_000


def _median_us(fn: Callable[[], object]) -> float:
    fn()
    rounds = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            fn()
        rounds.append((time.perf_counter() - t0) / CALLS * 1e6)
    return statistics.median(rounds)


def _host_gas(lines: list[str]) -> tuple[int, bool]:
    """Gas used and result of a one-function contract that calls a host with constant arguments."""
    state = MemoryState()
    install_contract(state, "b", assemble("\n".join(["func main 0 0"] + lines + ["RET"])), ())
    out = execute_call(state, "b", "main", [], CallContext(sender=b"\x01" * 32, height=1, chain_id="bench"), GAS)
    assert out.ok, out
    return out.gas_used, out.return_value


def main() -> None:
    keys = [SigningKey.from_label(f"bench-ring-{i}") for i in range(max(SIZES))]
    pubs = [k.public_key for k in keys]
    ed_sig = keys[0].sign_raw(MESSAGE)
    ed_us = _median_us(lambda: verify_ed25519(pubs[0], MESSAGE, ed_sig))
    ed_gas, ok = _host_gas([f"CONST {pubs[0]!r}", f"CONST {MESSAGE!r}", f"CONST {ed_sig!r}", "HOST ed25519_verify"])
    assert ok is True
    emit(result("ring", "ed25519_verify_time", ed_us, "us", None))
    emit(result("ring", "ed25519_verify_call_gas", ed_gas, "gas", None))
    for n in SIZES:
        members = pubs[:n]
        secret = ring.secret_scalar(keys[n // 2].seed)
        image, sig = ring.sign(secret, members, MESSAGE, aux=b"bench")
        assert ring.verify(members, image, MESSAGE, sig)
        us = _median_us(lambda: ring.verify(members, image, MESSAGE, sig))
        sign_us = _median_us(lambda: ring.sign(secret, members, MESSAGE, aux=b"bench"))
        gas, ok = _host_gas([f"CONST {p!r}" for p in members] + [f"BUILD_LIST {n}", f"CONST {image!r}",
                                                                 f"CONST {MESSAGE!r}", f"CONST {sig!r}",
                                                                 "HOST ring_verify"])
        assert ok is True
        emit(result("ring", f"ring_verify_time_n{n}", us, "us", ed_us))
        emit(result("ring", f"ring_verify_time_per_member_n{n}", us / n, "us", ed_us))
        emit(result("ring", f"ring_verify_call_gas_n{n}", gas, "gas", ed_gas))
        emit(result("ring", f"ring_verify_gas_per_us_n{n}", gas / us, "gas/us", ed_gas / ed_us))
        emit(result("ring", f"ring_sign_time_n{n}", sign_us, "us", ed_us))


if __name__ == "__main__":
    main()
