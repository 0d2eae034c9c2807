"""Benchmarks of the contract VM: `python -m bench.vm` prints one JSON object per line.

Figures (each with a baseline measured in the same run):
- instructions/s on a representative mix (arithmetic, locals, lists, maps, records,
  internal calls, storage) vs the dispatch ceiling (a loop of the cheapest opcodes),
  and the mix's time fused (fuse.py, what the VM runs) vs unfused;
- a token transfer written in the contract language and executed through the VM vs
  the same transfer as plain Python dict operations (the overhead factor; goal <= 20x),
  and vs the same transfer in plain Python over the same state interface and
  canonical encoding (what a hand-written native contract would cost);
- a marketplace order placement (escrow lock through a contract call) in microseconds;
- compile time of the 300-line marketplace example vs CPython's own compile() of it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from contracts_vm.api import CallContext, execute_call, install_contract
from contracts_vm.compiler import compile_source
from contracts_vm.memstate import MemoryState
from contracts_vm.program import unfused
from ledger.encoding import decode, encode

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts_vm" / "examples"

MIX = '''
class Point(Record):
    x: int
    y: int

acc: Map[int, int]

def weight(p: Point) -> int:
    return p.x * 3 + p.y // 2

@public
def mix(n: int) -> int:
    total = 0
    pts = []
    seen = {}
    for i in range(n):
        p = Point(x=i, y=i % 7)
        pts.append(p)
        w = weight(p)
        if w % 2 == 0:
            total += w
        else:
            total -= 1
        seen[str(i % 10)] = seen.get(str(i % 10), 0) + 1
    for p in pts:
        total += p.x - p.y
    self.acc[n] = total + len(seen)
    return self.acc[n]

@public
def spin(n: int) -> int:
    i = 0
    while i < n:
        i += 1
    return i
'''


def _line(bench: str, metric: str, value: float, unit: str, baseline: float | None, ratio: float | None) -> None:
    print(json.dumps({"bench": bench, "metric": metric, "value": round(value, 3), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 3),
                      "ratio": None if ratio is None else round(ratio, 3)}), flush=True)


def _best(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_steps() -> None:
    """Instructions per second: counted by an unfused run (one step per instruction),
    timed on the fused code the VM runs; baseline = the same for the spin loop."""
    state = MemoryState()
    install_contract(state, "mix", MIX)
    ctx = CallContext(sender=b"\x01" * 32)
    instructions = {}

    def run(method: str, n: int):
        def go():
            r = execute_call(state, "mix", method, [n], ctx, 10**9)
            assert r.ok, r
        return go

    for method, n in (("mix", 2000), ("spin", 20000)):
        with unfused():
            instructions[method] = execute_call(state, "mix", method, [n], ctx, 10**9).steps
    t_mix = _best(run("mix", 2000))
    t_spin = _best(run("spin", 20000))
    mix_rate = instructions["mix"] / t_mix
    spin_rate = instructions["spin"] / t_spin
    _line("vm.steps", "instructions_per_second_mix", mix_rate, "instr/s", spin_rate, mix_rate / spin_rate)
    t_mix_unfused = _best(_in_unfused(run("mix", 2000)))
    _line("vm.steps", "mix_fused_vs_unfused", t_mix * 1e3, "ms", t_mix_unfused * 1e3, t_mix / t_mix_unfused)



def _in_unfused(fn):
    def go():
        with unfused():
            fn()
    return go


TRANSFERS = 5000


def bench_transfer() -> None:
    source = (EXAMPLES / "token.sc.py").read_text()
    state = MemoryState()
    a, b = b"\xaa" * 32, b"\xbb" * 32
    install_contract(state, "token", source, init_args=[a], ctx=CallContext(sender=a))
    execute_call(state, "token", "mint", [a, 10**12], CallContext(sender=a), 100_000)
    ctx = CallContext(sender=a)

    def vm():
        for _ in range(TRANSFERS):
            execute_call(state, "token", "transfer", [b, 1], ctx, 100_000)

    balances = {a: 10**12, b: 0}
    events: list = []

    def plain():
        for _ in range(TRANSFERS):
            sender, to, amount = a, b, 1
            if amount <= 0:
                raise ValueError("amount must be positive")
            bal = balances.get(sender, 0)
            if bal < amount:
                raise ValueError("insufficient balance")
            balances[sender] = bal - amount
            balances[to] = balances.get(to, 0) + amount
            events.append(("token", "Transfer", {"sender": sender, "to": to, "amount": amount}))
            if len(events) > 1000:
                events.clear()

    native_state = MemoryState()
    native_state.put(b"c/native/balances/" + a, encode(10**12))

    def native():
        for _ in range(TRANSFERS):
            sender, to, amount = a, b, 1
            cp = native_state.checkpoint()
            if amount <= 0:
                native_state.revert(cp)
                continue
            raw = native_state.get(b"c/native/balances/" + sender)
            bal = decode(raw) if raw is not None else 0
            if bal < amount:
                native_state.revert(cp)
                continue
            native_state.put(b"c/native/balances/" + sender, encode(bal - amount))
            raw = native_state.get(b"c/native/balances/" + to)
            native_state.put(b"c/native/balances/" + to, encode((decode(raw) if raw is not None else 0) + amount))
            events.append(("token", "Transfer", {"sender": sender, "to": to, "amount": amount}))
            if len(events) > 1000:
                events.clear()

    t_vm = _best(vm) / TRANSFERS * 1e6
    t_plain = _best(plain) / TRANSFERS * 1e6
    t_native = _best(native) / TRANSFERS * 1e6
    _line("vm.token_transfer", "us_per_transfer_vs_plain_dict", t_vm, "us", t_plain, t_vm / t_plain)
    _line("vm.token_transfer", "us_per_transfer_vs_python_on_state", t_vm, "us", t_native, t_vm / t_native)


def bench_place_order() -> None:
    state = MemoryState()
    admin, buyer, merchant = b"\xad" * 32, b"\xb0" * 32, b"\xe0" * 32
    install_contract(state, "ledger", (EXAMPLES / "escrow_ledger.sc.py").read_text(), init_args=[admin],
                     ctx=CallContext(sender=admin))
    install_contract(state, "market", (EXAMPLES / "marketplace.sc.py").read_text(), capabilities=["escrow"],
                     init_args=[admin, b"\xf0" * 32], ctx=CallContext(sender=admin))
    execute_call(state, "ledger", "mint", [buyer, 10**15], CallContext(sender=admin), 100_000)
    execute_call(state, "market", "register_merchant", [merchant], CallContext(sender=admin), 100_000)
    terms = {"accept_blocks": 10, "ship_blocks": 10, "deliver_blocks": 10, "confirm_blocks": 10, "fee_bps": 250,
             "arbiter": b"\xab" * 32}
    n = 1000

    def place():
        for _ in range(n):
            r = execute_call(state, "market", "place", [merchant, b"\xca" * 32, [1000, 2001], terms],
                             CallContext(sender=buyer, height=5), 1_000_000)
            assert r.ok, r
    t = _best(place, 3) / n * 1e6
    _line("vm.place_order", "us_per_order_placement", t, "us", 1000.0, t / 1000.0)


def bench_compile() -> None:
    source = (EXAMPLES / "marketplace.sc.py").read_text()
    lines = len(source.splitlines())
    t_ours = _best(lambda: compile_source(source, "marketplace.sc.py"), 10) * 1e3
    t_py = _best(lambda: compile(source, "marketplace.sc.py", "exec"), 10) * 1e3
    _line("vm.compile", f"ms_to_compile_{lines}_line_contract", t_ours, "ms", t_py, t_ours / t_py)


def main() -> None:
    bench_steps()
    bench_transfer()
    bench_place_order()
    bench_compile()


if __name__ == "__main__":
    main()
