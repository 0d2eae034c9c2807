"""The fault harness and the soak: proxy faults on real sockets, checkers that can fail, a 1-minute soak.

The default run includes a 1-minute soak (every fault kind at least once and the three
validator-set changes of tests.fault.reconfig, then random faults until the minute
is up); ``--runslow`` adds a 10-minute one, and ``python -m tests.soak --minutes M``
runs any length.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from ledger.crypto import SigningKey
from node.ops.config import ConfigError, parse_config
from tests.fault.checks import StoreView, check_agreement, check_exactly_once, find_equivocations, percentile
from tests.fault.proxy import BLACKHOLE, DELAY, STALL, FaultNet
from tests.nethelpers import free_base_port
from tests.fault.measure import WindowFigures, _longest_gap, ratio, summary_line
from tests.fault.scenario import RATE_FLOOR, STATUS_LIMIT_S, filter_byzantine, liveness_problems, per_kind
from tests.fault.reconfig import STEPS as RECONFIG_STEPS
from tests.soak import BYZANTINE_KINDS, FAULT_KINDS, run_soak

KEY = SigningKey.from_label("peer").public_key.hex()


# --- ports ----------------------------------------------------------------------------------

@pytest.mark.integration  # real sockets
def test_devnet_ports_stay_out_of_the_ephemeral_range(monkeypatch):
    """A killed node must be able to listen again: no outgoing connection may take its port."""
    from devnet import launcher

    low, high = launcher.ephemeral_port_range()
    for _ in range(50):
        base = free_base_port(12)
        assert base >= launcher.PORT_FLOOR and (base + 12 <= low or base > high), (base, low, high)
    monkeypatch.setattr(launcher, "ephemeral_port_range", lambda: (launcher.PORT_FLOOR, 65_000))
    assert free_base_port(12) > 65_000
    monkeypatch.setattr(launcher, "ephemeral_port_range", lambda: (1024, 65_535))
    with pytest.raises(RuntimeError, match="outside the ephemeral range"):
        free_base_port(12)


# --- [p2p] peer_addresses -----------------------------------------------------------------

def test_peer_addresses_accepts_key_at_host_port():
    config = parse_config("/h", {"p2p": {"peer_addresses": [f"0x{KEY}@127.0.0.1:4000"]}})
    assert config.get("p2p", "peer_addresses") == [f"0x{KEY}@127.0.0.1:4000"]


@pytest.mark.parametrize("entry, expected", [
    ("127.0.0.1:4000", "expected \"0x<64 hex digits"),
    (f"{KEY}@127.0.0.1:4000", "expected \"0x<64 hex digits"),
    (f"0x{KEY[:-2]}@127.0.0.1:4000", "expected \"0x<64 hex digits"),
    (f"0x{KEY}@127.0.0.1", "expected host:port"),
    (f"0x{KEY}@127.0.0.1:70000", "expected host:port"),
])
def test_peer_addresses_rejects_malformed_entries(entry, expected):
    with pytest.raises(ConfigError) as info:
        parse_config("/h", {"p2p": {"peer_addresses": [entry]}})
    assert "[p2p] peer_addresses" in str(info.value) and expected in str(info.value)


def test_peer_addresses_rejects_a_validator_listed_twice():
    with pytest.raises(ConfigError, match="listed twice"):
        parse_config("/h", {"p2p": {"peer_addresses": [f"0x{KEY}@a:1", f"0x{KEY}@b:2"]}})


# --- the proxy on real sockets ------------------------------------------------------------

async def _echo_server(port: int) -> asyncio.base_events.Server:
    async def echo(reader, writer):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()
    return await asyncio.start_server(echo, "127.0.0.1", port)


def _roundtrip(port: int, payload: bytes, timeout: float) -> bytes | None:
    async def go() -> bytes | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload)
            await writer.drain()
            got = b""
            while len(got) < len(payload):
                chunk = await asyncio.wait_for(reader.read(1024), timeout)
                if not chunk:
                    return got or None
                got += chunk
            return got
        except (asyncio.TimeoutError, ConnectionError):
            return None
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
    return asyncio.run(go())


@pytest.fixture
def echo_pair():
    """Node 1 is an echo server; node 0 reaches it through the proxy of link (0, 1)."""
    base = free_base_port(3)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(_echo_server(base))
    import threading
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    net = FaultNet([("127.0.0.1", base + 2), ("127.0.0.1", base)], {(0, 1): base + 1, (1, 0): base + 2}, seed=1).start()
    yield net, base + 1
    net.stop()
    asyncio.run_coroutine_threadsafe(_close(server), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


async def _close(server: asyncio.base_events.Server) -> None:
    server.close()
    await server.wait_closed()


@pytest.mark.integration  # real sockets
def test_proxy_passes_delays_blackholes_stalls_and_cuts(echo_pair):
    net, port = echo_pair
    assert _roundtrip(port, b"hello", 5) == b"hello"
    net.set_flow(0, 1, DELAY, 300)
    started = time.monotonic()
    assert _roundtrip(port, b"slow", 5) == b"slow"
    assert time.monotonic() - started >= 0.3
    net.heal()
    net.set_flow(1, 0, BLACKHOLE)  # asymmetric: requests arrive, answers vanish
    assert _roundtrip(port, b"lost", 0.5) is None
    assert net.bytes_dropped >= 4
    net.heal()
    net.set_flow(0, 1, STALL)
    assert _roundtrip(port, b"held", 0.5) is None
    net.heal()
    net.cut(0, 1)
    assert _roundtrip(port, b"cut", 1) is None
    net.heal()
    assert _roundtrip(port, b"again", 5) == b"again"


def test_partition_groups_cut_only_pairs_across_groups():
    net = FaultNet([("127.0.0.1", 1)] * 4, {}, seed=0)
    net.partition([[0, 1], [2, 3]])
    assert net.cut_pairs == {frozenset(p) for p in [(0, 2), (0, 3), (1, 2), (1, 3)]}
    net.heal()
    net.isolate(2, BLACKHOLE)
    assert {k for k, f in net.flows.items() if f.mode == BLACKHOLE} == {(2, 0), (2, 1), (2, 3), (0, 2), (1, 2), (3, 2)}


# --- the checkers fail when they should ------------------------------------------------------

def _view(name: str, hashes: list[bytes], tx_ids: list[bytes] = ()) -> StoreView:
    v = StoreView(name, len(hashes))
    v.hashes = {i + 1: h for i, h in enumerate(hashes)}
    v.state_roots = {i + 1: b"r" for i in range(len(hashes))}
    v.tx_ids = list(tx_ids)
    return v


def test_checkers_report_forks_equivocation_and_lost_or_doubled_transactions():
    a, b = _view("a", [b"1", b"2"]), _view("b", [b"1", b"X", b"3"])
    assert check_agreement([a, b]) == ["a and b differ at height 2"]
    a.signatures[(b"v" * 32, 0, 2, 2)].add(b"d1")
    b.signatures[(b"v" * 32, 0, 2, 2)].add(b"d2")
    b.signatures[(b"w" * 32, 0, 2, 2)].add(b"d2")
    assert len(find_equivocations([a, b])) == 1
    c = _view("c", [b"1"], [b"\x01" * 32, b"\x01" * 32])
    problems = check_exactly_once(c, ["0x" + "01" * 32, "0x" + "02" * 32])
    assert any("never committed" in p for p in problems) and any("more than once" in p for p in problems)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([], 99) is None


def _figures(tx_rate: float | None, status_max_s: float | None) -> WindowFigures:
    return WindowFigures(10.0, tx_rate, 5.0, 0.002, status_max_s, 0, 0.5, {"node0": 100.0}, {"node0": 120.0})


def test_liveness_checks_fail_on_a_slow_rate_a_slow_answer_or_an_unknown_rate():
    base = _figures(40.0, 0.01)
    assert ratio(_figures(20.0, 0.01), base) == 0.5 and ratio(_figures(None, 0.01), base) is None
    result = {"kind": "flood", "ratio": 0.5, "fault": _figures(20.0, 5.0).as_dict(), "recovery_s": 3.0}
    problems = liveness_problems(result)
    assert len(problems) == 2 and f"< {RATE_FLOOR}" in problems[0] and f"> {STATUS_LIMIT_S}" in problems[1]
    assert liveness_problems({"kind": "x", "ratio": RATE_FLOOR, "fault": _figures(40.0, STATUS_LIMIT_S).as_dict()}) == []
    assert liveness_problems({"kind": "x", "ratio": None, "fault": _figures(None, None).as_dict()}) != []
    assert "ratio 0.50" in summary_line("flood", base, _figures(20.0, 0.01))
    summary = per_kind([result, {**result, "ratio": None}])
    assert summary["flood"]["runs"] == 2 and summary["flood"]["ratio_min"] is None
    assert summary["flood"]["status_max_s"] == 5.0 and summary["flood"]["honest_peak_rss_mib"] == 120.0
    assert summary["flood"]["recovery_s_max"] == 3.0


def test_longest_commit_gap_counts_a_stall_up_to_the_window_end():
    samples = [(0.0, 0.0, 5), (1.0, 0.0, 6), (2.0, 0.0, 6), (4.0, 0.0, 7)]
    assert _longest_gap(samples, 0.0, 4.5) == 3.0
    assert _longest_gap(samples, 0.0, 9.0) == 5.0 and _longest_gap([], 0.0, 1.0) is None


def test_equivocations_of_the_byzantine_validators_are_left_out_and_no_others():
    problems = ["validator aaaaaaaa signed 2 digests for view 1 height 3 phase 2",
                "validator bbbbbbbb signed 2 digests for view 1 height 3 phase 2"]
    assert filter_byzantine(problems, {bytes.fromhex("aa" * 32)}) == problems[1:]
    assert filter_byzantine(problems, set()) == problems
    assert all(k.startswith("byz_") for k in BYZANTINE_KINDS) and not set(BYZANTINE_KINDS) & set(FAULT_KINDS)


# --- the soak ----------------------------------------------------------------------------------

@pytest.mark.integration
def test_one_minute_soak_runs_every_fault_kind_and_reconfiguration_and_keeps_every_invariant(tmp_path):
    """With the validator set changed by vote meanwhile: a fifth validator from an observer,
    one removed, one key rotated, each while a fault is held (tests.fault.reconfig)."""
    report = run_soak(str(tmp_path / "devnet"), minutes=1.0, seed=int(os.environ.get("SOAK_SEED", "11")),
                      reconfig=True)
    assert report["problems"] == [], report["problems"][:5]
    assert [r["step"] for r in report["reconfig"]] == list(RECONFIG_STEPS)
    assert len(report["heights"]) == 6  # the four devnet nodes and the two the reconfiguration added
    assert all(report["faults"][k] >= 1 for k in FAULT_KINDS)
    assert report["kills"] >= 2 and report["acknowledged_txs"] > 100
    assert report["view_change_recovery_s"]["count"] >= 4
    # Nodes are stopped one after another, and the three still running form a quorum that
    # may commit one more (empty) block meanwhile; check_agreement compared every block.
    assert max(report["heights"]) - min(report["heights"]) <= 1 and report["signatures_checked"] > 0


@pytest.mark.slow
def test_byzantine_soak_runs_every_kind_once_and_stays_safe(tmp_path):
    """Liveness is reported, not asserted here: tests/integration/test_byzantine.py asserts it per pattern."""
    report = run_soak(str(tmp_path / "devnet"), minutes=0.0, seed=int(os.environ.get("SOAK_SEED", "13")),
                      byzantine=True)
    assert report["problems"] == [], report["problems"][:5]
    assert all(report["faults"][k] >= 1 for k in FAULT_KINDS + BYZANTINE_KINDS)
    assert set(report["byzantine"]) == {k[len("byz_"):] for k in BYZANTINE_KINDS}


@pytest.mark.slow
def test_ten_minute_soak(tmp_path):
    report = run_soak(str(tmp_path / "devnet"), minutes=10.0, seed=int(os.environ.get("SOAK_SEED", "12")),
                      reconfig=True)
    assert report["problems"] == [], report["problems"][:5]
