"""Snapshots and full verification on a real LevelDB home (no network: blocks are built here)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.output import EXIT_VERIFY
from devnet.genesis import create_devnet
from ledger.crypto import SigningKey
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV
from node.ops.config import load_config
from node.ops.home import init_home
from node.ops.snapshot import EXCLUDED_PREFIXES, SnapshotError, export_snapshot, import_snapshot, read_header
from node.ops.verify import verify_home
from tests.helpers import devnet_home_with_blocks

BLOCKS = 6


def data_dir(home: str) -> str:
    return load_config(home).path("node", "data_dir")


@pytest.fixture(scope="module")
def chain_home(tmp_path_factory):
    """A devnet node home whose store holds BLOCKS committed blocks with transfers."""
    root = str(tmp_path_factory.mktemp("snap") / "devnet")
    layout, home = devnet_home_with_blocks(root, "snapshot-test", BLOCKS, lambda height: height % 3)
    kv = LevelDBKV(data_dir(home))
    # A consensus record and a journaled tx: things a snapshot must never carry.
    kv.write([(schema.consensus_key(b"rec/" + bytes(8)), b"signed-by-node0"), (schema.mempool_key(b"\x07" * 32), b"x")])
    kv.close()
    return layout, home


def entries(path: str) -> dict[bytes, bytes]:
    kv = LevelDBKV(path, create=False)
    try:
        return dict(kv.iterate())
    finally:
        kv.close()


def fresh_home(layout, tmp_path) -> str:
    home = str(tmp_path / "new-member")
    init_home(home, layout.genesis, SigningKey.generate())
    return home


def test_export_import_round_trip_and_verify(chain_home, tmp_path):
    layout, home = chain_home
    out = str(tmp_path / "chain.snap")
    header = export_snapshot(home, out)
    assert header.height == BLOCKS and header.chain_id == layout.genesis.chain_id
    assert read_header(out)[0] == header
    new_home = fresh_home(layout, tmp_path)
    imported = import_snapshot(new_home, out)
    assert imported.height == BLOCKS
    source = {k: v for k, v in entries(data_dir(home)).items() if not k.startswith(EXCLUDED_PREFIXES)}
    copied = entries(data_dir(new_home))
    assert copied == source and len(copied) == header.entries
    assert not any(k.startswith(EXCLUDED_PREFIXES) for k in copied)
    report = verify_home(new_home)
    assert report.ok and report.checked == BLOCKS and report.txs == sum(h % 3 for h in range(1, BLOCKS + 1))


def test_import_refuses_wrong_genesis_damage_and_a_full_data_dir(chain_home, tmp_path):
    layout, home = chain_home
    out = str(tmp_path / "chain.snap")
    export_snapshot(home, out)
    other = create_devnet(str(tmp_path / "other"), validators=1, seed="another-network")
    with pytest.raises(SnapshotError, match="use a snapshot of this network"):
        import_snapshot(other.node_homes[0], out)
    damaged = str(tmp_path / "damaged.snap")
    raw = bytearray(open(out, "rb").read())
    raw[-10] ^= 0xFF
    open(damaged, "wb").write(bytes(raw))
    new_home = fresh_home(layout, tmp_path)
    with pytest.raises(SnapshotError, match="checksum mismatch"):
        import_snapshot(new_home, damaged)
    assert not os.listdir(data_dir(new_home))  # nothing was written
    with pytest.raises(SnapshotError, match="not a shopchain snapshot"):
        import_snapshot(new_home, str(layout.root) + "/genesis.json")
    import_snapshot(new_home, out)
    with pytest.raises(SnapshotError, match="already holds a store"):
        import_snapshot(new_home, out)
    with pytest.raises(SnapshotError, match="already exists"):
        export_snapshot(home, out)


def test_export_needs_the_node_stopped(chain_home, tmp_path):
    _layout, home = chain_home
    held = LevelDBKV(data_dir(home), create=False)  # stands in for the running node's lock
    try:
        with pytest.raises(SnapshotError, match="snapshots need the node stopped"):
            export_snapshot(home, str(tmp_path / "x.snap"))
    finally:
        held.close()


def test_verify_names_the_first_bad_height(chain_home, tmp_path):
    layout, home = chain_home
    broken = str(tmp_path / "broken")
    shutil.copytree(os.path.dirname(data_dir(home)), broken)
    kv = LevelDBKV(data_dir(broken), create=False)
    kv.write([(schema.receipts_key(4), kv.get(schema.receipts_key(1)))])  # receipts of another block
    kv.close()
    report = verify_home(broken)
    assert not report.ok and report.bad_height == 4 and report.checked == 3
    assert "receipts" in report.problem
    result = CliRunner().invoke(main, ["node", "verify", "--home", broken])
    assert result.exit_code == EXIT_VERIFY
    assert "height 4" in result.output and "receipts" in result.output
    good = CliRunner().invoke(main, ["node", "verify", "--home", home, "--json"])
    assert good.exit_code == 0 and json.loads(good.stdout)["checked_blocks"] == BLOCKS


def test_verify_catches_a_tampered_block(chain_home, tmp_path):
    _layout, home = chain_home
    broken = str(tmp_path / "tampered")
    shutil.copytree(os.path.dirname(data_dir(home)), broken)
    kv = LevelDBKV(data_dir(broken), create=False)
    block3 = kv.get(schema.block_key(3))
    kv.write([(schema.block_key(3), block3[:-1] + bytes([block3[-1] ^ 1]))])
    kv.close()
    report = verify_home(broken)
    assert report.bad_height == 3


def test_cli_export_and_import_with_json(chain_home, tmp_path):
    layout, home = chain_home
    out = str(tmp_path / "cli.snap")
    exported = CliRunner().invoke(main, ["node", "export", "--home", home, "-o", out, "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["height"] == BLOCKS
    new_home = fresh_home(layout, tmp_path)
    imported = CliRunner().invoke(main, ["node", "import", out, "--home", new_home])
    assert imported.exit_code == 0, imported.output
    assert f"imported height {BLOCKS}" in imported.stdout
    again = CliRunner().invoke(main, ["node", "import", out, "--home", new_home])
    assert again.exit_code != 0 and "already holds a store" in again.output
