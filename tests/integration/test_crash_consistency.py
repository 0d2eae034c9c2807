"""Crash consistency: SIGKILL a committing process at random instants, reopen, check.

After every kill the store must reopen, pass its integrity check, hold every block
the child reported as committed, and hold each block's state write-set whole.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a child process killed mid-write

KILLS_DEFAULT = 50
KILLS_LONG = 200


def run_kills(path: str, kills: int, seed: int) -> int:
    rng = random.Random(seed)
    reported = 0
    for attempt in range(kills):
        child = subprocess.Popen([sys.executable, "-m", "tests.crash_child", path], cwd=PROJECT_ROOT,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        first = child.stdout.readline().split()
        assert first and first[0] == "ready", f"child failed to start: {first}"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        # Only whole lines count: a line cut by the kill was never fully reported.
        heights = [int(line.split()[1]) for line in out.splitlines(keepends=True)
                   if line.startswith("committed ") and line.endswith("\n")]
        if heights:
            reported = max(reported, heights[-1])
        kv = LevelDBKV(path)
        try:
            store = BlockStore(kv)
            store.check_integrity()
            head = store.height
            assert head >= reported, f"kill {attempt}: child reported block {reported} committed, store head is {head}"
            for height in range(max(1, head - 5), head + 1):
                written = [k for k, _ in kv.iterate(prefix=b"V%08d-" % height)]
                assert len(written) == 50, f"kill {attempt}: block {height} has {len(written)} of 50 state writes"
            assert kv.get(b"V%08d-0000" % (head + 1)) is None, "state of an uncommitted block is present"
        finally:
            kv.close()
    return reported


def test_sigkill_during_commits_never_loses_or_tears_a_block(tmp_path):
    reported = run_kills(str(tmp_path / "db"), KILLS_DEFAULT, seed=1)
    assert reported > 0


@pytest.mark.slow
def test_sigkill_long_run(tmp_path):
    run_kills(str(tmp_path / "db"), KILLS_LONG, seed=int(os.environ.get("CRASH_SEED", "2")))
