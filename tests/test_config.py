"""Node config: the rendered file loads back, every bad value names its key."""

from __future__ import annotations

import tomllib

import pytest

from node.config import DEFAULTS, ConfigError, load_config, parse_config, render_config


def test_rendered_config_documents_every_key_and_loads(tmp_path):
    text = render_config({("node", "moniker"): "v7", ("p2p", "listen"): "10.0.0.7:26600"})
    for key in DEFAULTS:
        assert key.doc in text
    (tmp_path / "config.toml").write_text(text)
    config = load_config(str(tmp_path))
    assert config.get("node", "moniker") == "v7"
    assert config.address("p2p") == ("10.0.0.7", 26600)
    assert config.path("node", "data_dir") == str(tmp_path / "data")
    assert config.get("consensus", "tick_ms") == 50


@pytest.mark.parametrize("doc,message", [
    ({"consensus": {"tick_ms": "fast"}}, "[consensus] tick_ms: expected an integer in 5..10000, found 'fast'"),
    ({"consensus": {"tick_ms": 1}}, "[consensus] tick_ms: expected an integer in 5..10000, found 1"),
    ({"consensus": {"tickms": 1}}, "[consensus] tickms: unknown key"),
    ({"consensu": {}}, "unknown section [consensu]"),
    ({"rpc": {"listen": "localhost"}}, "[rpc] listen: expected host:port"),
    ({"storage": {"sync": "yes"}}, "[storage] sync: expected true or false"),
    ({"log": {"level": "loud"}}, "[log] level: expected one of"),
    ({"rpc": {"cors_origins": "*"}}, "[rpc] cors_origins: expected a list of strings"),
    ({"p2p": {"tls": True}}, "[p2p] ca_cert: required when tls = true"),
    ({"consensus": {"empty_block_interval_ms": 1500}}, "[consensus] empty_block_interval_ms: expected at most half"),
])
def test_bad_values_name_the_key(doc, message):
    with pytest.raises(ConfigError) as info:
        parse_config("/home", doc)
    assert message in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="shopchain node init"):
        load_config(str(tmp_path))
    (tmp_path / "config.toml").write_text("[node\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(tmp_path))


def test_render_is_valid_toml_for_defaults():
    doc = tomllib.loads(render_config())
    assert doc["mempool"]["max_txs"] == 50_000
