"""Run one Byzantine fault against a proxied devnet and measure the others through it.

How this works, for a validator pattern (``tests.fault.byzantine.PATTERNS``): the victim
validator's node is SIGKILLed (through the ``Crasher``, so a soak's heal knows it is
down) and a ``tests.fault.byzantine validator`` process starts on its home: same key,
same store, same proxied peer links. Once it has caught up, a fault-free window of
``window_s`` measures the three honest nodes (committed rate, ``chain_status``
latency from the ``LatencyProbe``, memory); then SIGUSR1 starts the pattern and a
second window of the same length measures them again. The attacker process is then
killed and the real node restarted. For ``equivocate`` the victim must be the primary:
the runner cuts the current primary off (``FaultNet.isolate``) until the view change
lands on the victim, then lets it commit two blocks as an honest primary before the
baseline window starts.

For ``outsider`` nobody is killed: the baseline and fault windows measure all four
nodes, and the fault is a ``tests.fault.byzantine outsider`` process aimed at every
node's real p2p and RPC port.

``python -m tests.fault.scenario --kinds flood,replay --window 10`` starts its own
proxied devnet with steady load on node 0 and prints one line per kind (the quick way to
compare figures before and after a fix; ``--attacker-args`` passes e.g. ``--rate 100``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

from devnet import launcher
from tests.fault.byzantine import PATTERNS, REPORT_PREFIX
from tests.fault.checks import percentile
from tests.fault.cluster import Crasher, primary_index, start_proxied
from tests.fault.measure import LatencyProbe, Window, ratio, summary_line
from tests.fault.proxy import FaultNet
from ledger.types import TxBody
from node.client import RpcFailure
from tests.nethelpers import Devnet, LoadGenerator

OUTSIDER = "outsider"
KINDS = PATTERNS + (OUTSIDER,)
#: Issue 13: during a fault the others commit at least this share of the baseline's transactions/s.
RATE_FLOOR = 0.8
#: Issue 13: no chain_status answer of an honest node slower than this during a fault.
STATUS_LIMIT_S = 1.0
#: Longest the attacker process may take to start and reach the others' height.
ATTACKER_CATCH_UP_S = 60.0
#: Longest the runner spends making the victim the primary (each step is a view change).
STEER_LIMIT_S = 60.0
#: Longest one isolation of a primary is held while waiting for the others' view change.
STEER_STEP_S = 15.0
#: Before the baseline window the measured nodes' mempools must be down to this many
#: transactions (a backlog left by the previous fault would inflate the baseline rate),
#: waiting at most SETTLE_LIMIT_S.
SETTLED_MEMPOOL_TXS = 60
SETTLE_LIMIT_S = 20.0
#: After an outsider fault starts, one honest link is cut at RELINK_CUT_AT_S and healed
#: RELINK_CUT_S later; the time it then takes to reconnect is reported (handshake slots).
RELINK_CUT_AT_S = 1.0
RELINK_CUT_S = 0.5
#: Longest wait, after a fault window, for the measured nodes to answer fast and commit again.
RECOVERY_LIMIT_S = 90.0
#: Longest the attacker may take to print its report after the fault window.
REPORT_WAIT_S = 10.0
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _read_report(log_path: str) -> dict | None:
    try:
        with open(log_path, errors="replace") as fh:
            lines = [line for line in fh if line.startswith(REPORT_PREFIX)]
    except OSError:
        return None
    return json.loads(lines[-1][len(REPORT_PREFIX):]) if lines else None


def _height(net: Devnet, index: int) -> int | None:
    try:
        return net.height(index)
    except Exception:  # noqa: BLE001 - not answering right now
        return None


def _view(net: Devnet, index: int) -> int | None:
    try:
        return net.client(index).request("consensus_status")["view"]
    except Exception:  # noqa: BLE001 - not answering right now
        return None


class ByzantineRunner:
    """Runs Byzantine fault kinds on ``net`` one at a time; ``results`` keeps every outcome."""

    def __init__(self, net: Devnet, faults: FaultNet, crasher: Crasher, rng: random.Random,
                 progress=lambda _: None) -> None:
        self.net = net
        self.faults = faults
        self.crasher = crasher
        self.rng = rng
        self.progress = progress
        self.n = len(net.manifest["nodes"])
        self.probe = LatencyProbe(net.urls[0]).start()
        self.results: list[dict] = []
        #: Validator keys that ran a pattern: their own signatures are not a safety check.
        self.byzantine_keys: set[bytes] = set()
        #: The run's load, if clients should stay off the attacker's node while it attacks.
        self.load: LoadGenerator | None = None

    def stop(self) -> None:
        self.probe.stop()

    # --- one fault ---------------------------------------------------------------------

    def run(self, kind: str, window_s: float, victim: int | None = None, extra_args: tuple[str, ...] = ()) -> dict:
        """Run ``kind``; ``extra_args`` go to the attacker's command line (e.g. ``--rate 100``)."""
        if kind not in KINDS:
            raise ValueError(f"byzantine fault kind: expected one of {KINDS}, found {kind!r}")
        if kind == OUTSIDER:
            result = self._run_outsider(window_s)
        else:
            if victim is None:
                victim = self.rng.randrange(self.n)
            result = self._run_validator(kind, window_s, victim, extra_args)
        self.results.append(result)
        self.progress("  " + result["line"])
        return result

    def _measured(self, nodes: list[int]) -> tuple[dict[str, str], dict[str, int | None]]:
        names = [self.net.manifest["nodes"][i]["name"] for i in nodes]
        return ({nm: self.net.urls[i] for nm, i in zip(names, nodes)},
                {nm: self.net.manifest["nodes"][i].get("pid") for nm, i in zip(names, nodes)})

    def _settle(self, nodes: list[int]) -> None:
        deadline = time.monotonic() + SETTLE_LIMIT_S
        while time.monotonic() < deadline:
            sizes = []
            for i in nodes:
                try:
                    sizes.append(self.net.client(i).status()["mempool_size"])
                except Exception:  # noqa: BLE001 - not answering yet
                    sizes.append(None)
            if None not in sizes and max(sizes) <= SETTLED_MEMPOOL_TXS:
                return
            time.sleep(0.2)
        self.progress(f"  mempools did not settle within {SETTLE_LIMIT_S:.0f} s; measuring anyway")

    def _windows(self, kind: str, nodes: list[int], window_s: float, start_fault) -> tuple[dict, dict, dict]:
        self._settle(nodes)
        self.probe.retarget(self.net.urls[nodes[0]])
        urls, pids = self._measured(nodes)
        window = Window(urls, pids, self.probe).begin()
        time.sleep(window_s)
        baseline = window.end()
        start_fault()
        window = Window(urls, pids, self.probe).begin()
        time.sleep(window_s)
        fault = window.end()
        after = self._recovery_time(nodes)
        r = ratio(fault, baseline)
        extra = f", back {'never' if after is None else format(after, '.1f') + ' s'} after it"
        return baseline, fault, {"kind": kind, "ratio": None if r is None else round(r, 3),
                                 "baseline": baseline.as_dict(), "fault": fault.as_dict(), "recovery_s": after,
                                 "line": summary_line(kind, baseline, fault, extra)}

    def _recovery_time(self, nodes: list[int]) -> float | None:
        """Seconds from the fault's end until every measured node answers within STATUS_LIMIT_S at a new height."""
        started = time.monotonic()
        floor: dict[int, int] = {}
        while time.monotonic() - started < RECOVERY_LIMIT_S:
            for i in nodes:
                if i in floor and floor[i] < 0:
                    continue
                asked = time.monotonic()
                height = _height(self.net, i)
                if height is None or time.monotonic() - asked > STATUS_LIMIT_S:
                    continue
                if i not in floor:
                    floor[i] = height
                elif height > floor[i]:
                    floor[i] = -1  # done
            if len(floor) == len(nodes) and all(v < 0 for v in floor.values()):
                return round(time.monotonic() - started, 2)
            time.sleep(0.1)
        return None

    def _run_outsider(self, window_s: float) -> dict:
        everyone = list(range(self.n))
        p2p = ",".join(n["p2p"] for n in self.net.manifest["nodes"])
        rpc = ",".join(n["rpc"].split("//", 1)[1] for n in self.net.manifest["nodes"])
        log_path = os.path.join(self.net.root, "logs", "outsider.log")
        holder: list[subprocess.Popen] = []

        def start() -> None:
            with open(log_path, "ab") as log:
                holder.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.fault.byzantine", "outsider", "--p2p", p2p, "--rpc", rpc,
                     "--seconds", str(window_s), "--seed", str(self.rng.randrange(2**31))],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=PROJECT_ROOT, env=_env()))

        relink: list[float | None] = []
        cutter = threading.Thread(target=lambda: relink.append(self._relink_time(window_s)), daemon=True)

        def start_and_cut() -> None:
            start()
            cutter.start()

        self.progress(f"byzantine outsider against every node for {window_s:.0f} s")
        _, _, result = self._windows(OUTSIDER, everyone, window_s, start_and_cut)
        cutter.join(RELINK_CUT_AT_S + RELINK_CUT_S + window_s + 5)
        result["relink_s"] = relink[0] if relink else None
        back = "never (within the window)" if result["relink_s"] is None else f"{result['relink_s']} s"
        result["line"] += f", link 0-1 cut for {RELINK_CUT_S} s back after {back}"
        for process in holder:
            try:
                process.wait(REPORT_WAIT_S + 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        result["attacker"] = _read_report(log_path)
        return result

    def _relink_time(self, window_s: float) -> float | None:
        """Cut link (0, 1) while the outsider holds connections; seconds until it is back, None if not in time."""
        time.sleep(RELINK_CUT_AT_S)
        self.faults.cut(0, 1)
        time.sleep(RELINK_CUT_S)
        self.faults.heal()
        healed = time.monotonic()
        name = self.net.manifest["nodes"][1]["name"]
        while time.monotonic() - healed < window_s:
            try:
                if any(p["name"] == name and p["connected"] for p in self.net.client(0).request("net_peers")):
                    return round(time.monotonic() - healed, 2)
            except Exception:  # noqa: BLE001 - a slow answer is measured elsewhere
                pass
            time.sleep(0.1)
        return None

    def _run_validator(self, pattern: str, window_s: float, victim: int, extra_args: tuple[str, ...]) -> dict:
        node = self.net.manifest["nodes"][victim]
        honest = [i for i in range(self.n) if i != victim]
        self.byzantine_keys.add(self.net.genesis.validators[victim].public_key)
        self.progress(f"byzantine {pattern} from {node['name']} for {window_s:.0f} s")
        if self.load is not None:
            self.load.avoid.add(victim)  # baseline and fault windows alike, so both see the same load
        if victim not in self.crasher.down:
            self.crasher.kill(victim)
        log_path = os.path.join(self.net.root, "logs", f"{node['name']}-byzantine-{pattern}.log")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.fault.byzantine", "validator", "--home", node["home"], "--pattern", pattern,
                 "--seconds", str(window_s), "--seed", str(self.rng.randrange(2**31)), *extra_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=PROJECT_ROOT, env=_env(),
                start_new_session=True)
        try:
            self._wait_caught_up(victim, honest, process)
            if pattern == "equivocate":
                self._steer_primary_to(victim, honest)
            _, _, result = self._windows(pattern, honest, window_s, lambda: process.send_signal(signal.SIGUSR1))
            deadline = time.monotonic() + REPORT_WAIT_S
            while _read_report(log_path) is None and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            result["attacker"] = _read_report(log_path)
            result["victim"] = node["name"]
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            self.crasher.restart(victim)
            if self.load is not None:
                self.load.avoid.discard(victim)
        return result

    def _wait_caught_up(self, victim: int, honest: list[int], process: subprocess.Popen) -> None:
        deadline = time.monotonic() + ATTACKER_CATCH_UP_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the byzantine process exited with {process.returncode} before its fault")
            mine = _height(self.net, victim)
            theirs = [h for h in (_height(self.net, i) for i in honest) if h is not None]
            if mine is not None and theirs and launcher._healthy(self.net.urls[victim]) and mine >= max(theirs) - 1:
                return
            time.sleep(0.2)
        raise AssertionError(f"the byzantine process did not catch up within {ATTACKER_CATCH_UP_S:.0f} s")

    def _steer_primary_to(self, victim: int, honest: list[int]) -> None:
        """Cut off each honest primary in turn until the view change makes ``victim`` primary."""
        everyone = honest + [victim]
        deadline = time.monotonic() + STEER_LIMIT_S
        while time.monotonic() < deadline:
            primary = primary_index(self.net, everyone)
            if primary == victim:
                start = max(h for h in (_height(self.net, i) for i in honest) if h is not None)
                self.net.wait_height(honest, start + 2, timeout=STEER_STEP_S)
                return
            if primary is None:
                time.sleep(0.2)
                continue
            others = [i for i in honest if i != primary]
            views = [v for v in (_view(self.net, i) for i in others) if v is not None]
            self.faults.isolate(primary, "cut")
            try:
                step_end = time.monotonic() + STEER_STEP_S
                while time.monotonic() < step_end:
                    now = [v for v in (_view(self.net, i) for i in others) if v is not None]
                    if views and now and min(now) > max(views):
                        break
                    time.sleep(0.1)
            finally:
                self.faults.heal()
            time.sleep(0.5)
        raise AssertionError(f"could not make node {victim} the primary within {STEER_LIMIT_S:.0f} s")


def liveness_problems(result: dict) -> list[str]:
    """What one fault's figures break of issue 13's bounds (empty when they hold)."""
    problems = []
    if result["ratio"] is None or result["ratio"] < RATE_FLOOR:
        problems.append(f"{result['kind']}: committed rate ratio {result['ratio']} < {RATE_FLOOR}")
    worst = result["fault"]["status_max_s"]
    if worst is None or worst > STATUS_LIMIT_S:
        problems.append(f"{result['kind']}: chain_status max {worst} s > {STATUS_LIMIT_S} s")
    return problems


def per_kind(results: list[dict]) -> dict[str, dict]:
    """The soak's end report: for each kind, its worst and median figures over all its runs."""
    out: dict[str, dict] = {}
    for kind in sorted({r["kind"] for r in results}):
        runs = [r for r in results if r["kind"] == kind]
        ratios = [r["ratio"] for r in runs]
        known = [x for x in ratios if x is not None]
        out[kind] = {"runs": len(runs), "ratio_min": None if None in ratios else min(known, default=None),
                     "ratio_p50": percentile(known, 50),
                     "status_p50_s": percentile([r["fault"]["status_p50_s"] for r in runs
                                                 if r["fault"]["status_p50_s"] is not None], 50),
                     "status_max_s": max((r["fault"]["status_max_s"] or 0.0 for r in runs), default=None),
                     "honest_peak_rss_mib": max((max(r["fault"]["peak_rss_mib"].values(), default=0.0) for r in runs),
                                                default=None),
                     "recovery_s_max": None if any(r.get("recovery_s") is None for r in runs)
                     else max(r["recovery_s"] for r in runs)}
    return out


def filter_byzantine(problems: list[str], keys: set[bytes]) -> list[str]:
    """Equivocation reports minus those of validators that were Byzantine on purpose."""
    prefixes = tuple(f"validator {k.hex()[:8]} " for k in keys)
    return [p for p in problems if not p.startswith(prefixes)] if prefixes else problems


class OnlyNode:
    """The parts of a Devnet a LoadGenerator uses, limited to one node (so load never meets the attacker)."""

    def __init__(self, net: Devnet, index: int) -> None:
        self._net = net
        self._index = index
        self.urls = [net.urls[index]]
        self.keys = net.keys
        self.genesis = net.genesis

    def client(self, _: int):
        return self._net.client(self._index)


class PacedLoad(LoadGenerator):
    """LoadGenerator on a fixed schedule: the k-th transfer of a sender is due at start + k / rate.

    The base class sleeps a fixed interval after each acknowledgement, so a slower RPC
    lowers the offered load; here the offered load stays the same in the baseline and
    the fault window (a late sender catches up, at most ``PACED_MAX_BEHIND`` transfers).
    """

    def _run(self, sender_name: str, offset: int) -> None:
        key = self.net.keys[sender_name]
        client = self.net.client(0)
        nonce = client.account(key.public_key)["nonce"]
        due = time.monotonic()
        while not self.stop_event.is_set():
            body = TxBody(self.net.genesis.chain_id, key.public_key, nonce, "ledger", "transfer", [self.to, 1], 200_000)
            raw = body.sign(key).encode()
            for _ in range(PACED_ATTEMPTS):
                try:
                    client.send_raw(raw)
                    break
                except RpcFailure as exc:
                    if exc.reason == "duplicate":
                        break
                    if exc.code != -1:
                        self.errors.append(f"{sender_name} nonce {nonce}: {exc}")
                    time.sleep(0.05)
            else:
                self.errors.append(f"{sender_name} nonce {nonce}: not accepted in {PACED_ATTEMPTS} attempts")
                continue  # the same body again; ed25519 signs deterministically, so the same bytes and tx id
            with self.lock:
                self.acked.append("0x" + body.tx_id.hex())
            nonce += 1
            due = max(due + self.interval, time.monotonic() - PACED_MAX_BEHIND * self.interval)
            self.stop_event.wait(max(0.0, due - time.monotonic()))


#: PacedLoad: tries per transfer before it is reported, and how far behind schedule it may fall.
PACED_ATTEMPTS = 20
PACED_MAX_BEHIND = 10
#: Steady load of the standalone command and of tests/integration/test_byzantine.py: transfers/s per sender.
LOAD_SENDERS = ("buyer-1", "buyer-2", "buyer-3")
LOAD_RATE_PER_SENDER = 15.0


def catch_up(net: Devnet, timeout: float = RECOVERY_LIMIT_S) -> None:
    """Wait until every node answers and has passed the highest height any of them had."""
    everyone = list(range(len(net.manifest["nodes"])))
    top = max((h for h in (_height(net, i) for i in everyone) if h is not None), default=0)
    net.wait_height(everyone, top + 1, timeout=timeout)


def start_loaded(root: str, seed: int) -> tuple[Devnet, FaultNet, LoadGenerator]:
    """A proxied 4-validator devnet with a paced load sent to node 0 only."""
    net, faults = start_proxied(root, 4, seed)
    load = PacedLoad(OnlyNode(net, 0), list(LOAD_SENDERS), net.keys["merchant-acme"].public_key,
                     LOAD_RATE_PER_SENDER).start()
    return net, faults, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.scenario", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {KINDS}")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of baseline and of fault window")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--victim", type=int, default=1, help="which validator attacks (node 0 takes the load)")
    parser.add_argument("--attacker-args", default="", help="extra arguments for tests.fault.byzantine validator")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or any(k not in KINDS for k in kinds) or not 1 <= args.victim <= 3:
        parser.error(f"--kinds: a comma-separated subset of {KINDS}; --victim: 1, 2 or 3")
    root = args.root or tempfile.mkdtemp(prefix="shopchain-byzantine-")
    net, faults, load = start_loaded(os.path.join(root, "devnet"), args.seed)
    rng = random.Random(args.seed)
    crasher = Crasher(net, rng)
    runner = ByzantineRunner(net, faults, crasher, rng, lambda m: print(m, file=sys.stderr, flush=True))
    failed = False
    try:
        for kind in kinds:
            result = runner.run(kind, args.window, args.victim, tuple(args.attacker_args.split()))
            catch_up(net)
            failed |= bool(liveness_problems(result))
            print(json.dumps({k: v for k, v in result.items() if k != "line"}), flush=True)
    finally:
        load.stop()
        runner.stop()
        net.stop()
        faults.stop()
    for result in runner.results:
        print(result["line"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
