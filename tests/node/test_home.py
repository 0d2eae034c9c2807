"""Node homes: layout, key file permissions, refusal to overwrite keys or mix genesis files."""

from __future__ import annotations

import os
import stat

import pytest

from ledger.crypto import SigningKey
from ledger.genesis import parse_genesis
from node.ops.home import HomeError, init_home, load_home, read_key_file, write_key_file
from tests.ledger.test_genesis import sample


def test_init_then_load(tmp_path):
    key = SigningKey.from_label("v0")
    genesis = parse_genesis(sample())
    init_home(str(tmp_path / "h"), genesis, key, {("node", "moniker"): "v0"})
    config, loaded_key, loaded_genesis = load_home(str(tmp_path / "h"))
    assert loaded_key.public_key == key.public_key
    assert loaded_genesis.genesis_hash == genesis.genesis_hash
    assert config.get("node", "moniker") == "v0"
    mode = stat.S_IMODE(os.stat(tmp_path / "h" / "node_key.json").st_mode)
    assert mode == 0o600
    # Re-running init keeps the key and accepts the same genesis.
    init_home(str(tmp_path / "h"), genesis)
    assert load_home(str(tmp_path / "h"))[1].public_key == key.public_key


def test_refuses_other_genesis_and_key_overwrite(tmp_path):
    init_home(str(tmp_path), parse_genesis(sample()))
    other = sample()
    other["chain_id"] = "another-chain"
    with pytest.raises(HomeError, match="another genesis"):
        init_home(str(tmp_path), parse_genesis(other))
    with pytest.raises(HomeError, match="refusing to overwrite"):
        write_key_file(str(tmp_path / "node_key.json"), SigningKey.generate())


def test_bad_key_files(tmp_path):
    with pytest.raises(HomeError, match="missing"):
        read_key_file(str(tmp_path / "nope.json"))
    (tmp_path / "k.json").write_text('{"seed": "0x1234"}')
    with pytest.raises(HomeError, match="not a shopchain ed25519 key file"):
        read_key_file(str(tmp_path / "k.json"))
    with pytest.raises(HomeError, match="does not exist"):
        load_home(str(tmp_path / "missing-home"))
