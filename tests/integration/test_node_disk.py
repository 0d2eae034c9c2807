"""A validator whose disk fills up or turns read-only stops safely and loses nothing acknowledged.

Both tests need root (to mount): node3's data directory is a small tmpfs of its own.

* Disk full: a filler file leaves a few hundred kilobytes free, then load runs. The
  node must halt (exit code 2, a critical log line saying the write failed and what to
  do), while the other three go on. After the filler is removed and the node is
  started again, every transaction any node acknowledged commits exactly once.
* Read-only: the kernel refuses to remount a filesystem read-only while a process
  holds files open for writing (EBUSY), and LevelDB keeps its log open, so a store
  cannot turn read-only under a running node on Linux. What can happen is a node
  restarting (after a crash) on a store that has become read-only: here node3 is
  SIGKILLed under load, its data directory is bind-mounted read-only over itself, and
  it is started again. It must refuse to start with a clear message; once the mount is
  writable again it restarts, catches up, and nothing acknowledged is lost.

Write failures while running (disk full, I/O errors) all reach the node as the same
StorageError from the store, which is the path the disk-full test drives.
"""

from __future__ import annotations

import collections
import os
import subprocess
import time

import pytest

from tests.fault.cluster import start_proxied
from tests.nethelpers import Devnet, LoadGenerator

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs / a read-only bind mount needs root")]

VICTIM = 3
#: Size of the victim's data filesystem and the room left for it once the filler is written.
TMPFS_BYTES = 64 * 1024 * 1024
FREE_AFTER_FILL_BYTES = 384 * 1024
#: Longest wait for the victim to notice the full disk and stop.
HALT_LIMIT_S = 120.0


def _mount_tmpfs(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", path], check=True)


def _umount(path: str) -> None:
    subprocess.run(["umount", "-l", path], check=False)


@pytest.fixture
def disk_net(tmp_path):
    data = str(tmp_path / "devnet" / "nodes" / f"node{VICTIM}" / "data")
    mounted: list[str] = []

    def prepare(layout) -> None:
        _mount_tmpfs(data)
        mounted.append(data)

    try:
        net, faults = start_proxied(str(tmp_path / "devnet"), prepare=prepare)
    except BaseException:
        for path in mounted:
            _umount(path)
        raise
    yield net, data
    net.stop()
    faults.stop()
    for path in reversed(mounted):
        _umount(path)


def _exit_code(net: Devnet, index: int, timeout: float) -> int | None:
    """Reap the node process (a child of this test) and return its exit code, or None if it still runs."""
    pid = net.manifest["nodes"][index]["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    return None


def _log_since(net: Devnet, index: int, offset: int) -> str:
    with open(os.path.join(net.root, "logs", net.manifest["nodes"][index]["name"] + ".log"), errors="replace") as fh:
        fh.seek(offset)
        return fh.read()


def _log_size(net: Devnet, index: int) -> int:
    return os.path.getsize(os.path.join(net.root, "logs", net.manifest["nodes"][index]["name"] + ".log"))


def _check_all_acked_commit_once(net: Devnet, acked: list[str]) -> None:
    client = net.client(0)
    for tx_id in acked:
        net.wait_for(f"receipt of {tx_id}", lambda t=tx_id: client.receipt(t), timeout=120)
    top = client.status()["height"]
    net.wait_height([0, 1, 2, 3], top, timeout=120)
    counts = collections.Counter(net.all_tx_ids(VICTIM))
    missing = [t for t in acked if counts[t] == 0]
    doubled = [t for t, c in counts.items() if c > 1]
    assert not missing and not doubled, (len(missing), missing[:3], doubled[:3])
    assert len({net.client(i).block(top)["hash"] for i in range(4)}) == 1
    assert len({net.client(i).block(top)["header"]["state_root"] for i in range(4)}) == 1


def test_disk_full_halts_the_node_cleanly_and_loses_nothing_acknowledged(disk_net):
    net, data = disk_net
    stat = os.statvfs(data)
    free = stat.f_bavail * stat.f_frsize
    filler = os.path.join(data, "filler.bin")
    with open(filler, "wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * (1 << 20)
        remaining = free - FREE_AFTER_FILL_BYTES
        while remaining > 0:
            fh.write(chunk[:min(len(chunk), remaining)])
            remaining -= len(chunk)
    offset = _log_size(net, VICTIM)
    load = LoadGenerator(net, ["buyer-1", "buyer-2", "buyer-3"], net.keys["merchant-acme"].public_key, 20.0).start()
    try:
        code = _exit_code(net, VICTIM, HALT_LIMIT_S)
        assert code is not None, f"node{VICTIM} kept running on a full disk:\n{net.log_tail(VICTIM)}"
        time.sleep(2.0)  # the others keep committing and acknowledging meanwhile
    finally:
        acked = load.stop()
    log = _log_since(net, VICTIM, offset)
    assert code != 0, f"node{VICTIM} exited with 0 after a failed write"
    assert '"level": "critical"' in log or "CRITICAL" in log.upper(), log[-2000:]
    assert "node halted" in log and "free disk space" in log, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
    print(next(line for line in log.splitlines() if "node halted" in line))
    os.remove(filler)  # the operator frees space
    net.restart(VICTIM)
    _check_all_acked_commit_once(net, acked)


def test_store_read_only_at_restart_refuses_clearly_and_loses_nothing_acknowledged(disk_net):
    net, data = disk_net
    load = LoadGenerator(net, ["buyer-1", "buyer-2", "buyer-3"], net.keys["merchant-acme"].public_key, 20.0).start()
    bound = False
    try:
        time.sleep(1.5)
        net.kill(VICTIM)
        subprocess.run(["mount", "--bind", data, data], check=True)
        bound = True
        subprocess.run(["mount", "-o", "remount,bind,ro", data], check=True)
        offset = _log_size(net, VICTIM)
        net.restart(VICTIM)
        code = _exit_code(net, VICTIM, 60)
        time.sleep(1.0)
    finally:
        acked = load.stop()
        if bound:
            _umount(data)
    assert code is not None and code != 0, f"node{VICTIM} ran on a read-only store (exit {code})"
    message = _log_since(net, VICTIM, offset)
    assert "cannot open the store" in message and "Read-only file system" in message, message[-2000:]
    assert "Traceback" not in message, message[-3000:]
    print(message.strip().splitlines()[-1])
    net.restart(VICTIM)
    _check_all_acked_commit_once(net, acked)
