"""Node config: the rendered file loads back, every bad value names its key."""

from __future__ import annotations

import tomllib

import pytest

from node.ops.config import DEFAULTS, ConfigError, load_config, parse_config, render_config


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


def _module_limits():
    """Each config key whose default is a module's limit, with that limit in config units.

    The module constant is the one definition; a literal typed into DEFAULTS next to it
    would drift (view_timeout_ticks and VIEW_TIMEOUT_TICKS once did), so this table
    names the constant each key must equal.
    """
    from node.core import chain, mempool
    from node.rpc import budget as rpc_budget
    from node.rpc import jsonrpc
    from node.rpc import server as rpc_server
    from node.ops.config import NODE_VIEW_TIMEOUT_TICKS
    from p2p import limits as p2p

    def ms(seconds):
        return round(seconds * 1000)

    return {
        ("p2p", "pre_auth_timeout_ms"): ms(p2p.PRE_AUTH_TIMEOUT_SECONDS),
        ("p2p", "handshake_timeout_ms"): ms(p2p.HANDSHAKE_TIMEOUT_SECONDS),
        ("p2p", "connect_timeout_ms"): ms(p2p.CONNECT_TIMEOUT_SECONDS),
        ("p2p", "redial_max_ms"): ms(p2p.BACKOFF_CAP_SECONDS),
        ("p2p", "max_unauthenticated_connections"): p2p.MAX_UNAUTHENTICATED_CONNECTIONS,
        ("p2p", "max_unauthenticated_per_address"): p2p.MAX_UNAUTHENTICATED_PER_ADDRESS,
        ("p2p", "flood_ban_ms"): ms(p2p.FLOOD_BAN_SECONDS),
        ("p2p", "consensus_messages_per_second"): p2p.CONSENSUS_MESSAGES_PER_SECOND,
        ("p2p", "catchup_messages_per_second"): p2p.CATCHUP_MESSAGES_PER_SECOND,
        ("p2p", "gossip_messages_per_second"): p2p.GOSSIP_MESSAGES_PER_SECOND,
        ("p2p", "serve_bytes_per_second"): p2p.SERVE_BYTES_PER_SECOND,
        ("p2p", "serve_blocks_per_second"): p2p.SERVE_BLOCKS_PER_SECOND,
        ("rpc", "max_body_bytes"): rpc_server.MAX_BODY_BYTES,
        ("rpc", "max_batch"): jsonrpc.MAX_BATCH_LEN,
        ("rpc", "max_ws_connections"): rpc_server.MAX_WS_CONNECTIONS,
        ("rpc", "max_subscriptions"): rpc_server.MAX_SUBSCRIPTIONS_PER_CONNECTION,
        ("rpc", "max_connections"): rpc_server.MAX_CONNECTIONS,
        ("rpc", "max_connections_per_address"): rpc_server.MAX_CONNECTIONS_PER_ADDRESS,
        ("rpc", "header_timeout_ms"): ms(rpc_server.HEADER_TIMEOUT_SECONDS),
        ("rpc", "body_timeout_ms"): ms(rpc_server.BODY_TIMEOUT_SECONDS),
        ("rpc", "idle_timeout_ms"): ms(rpc_server.IDLE_TIMEOUT_SECONDS),
        ("rpc", "max_response_bytes"): jsonrpc.MAX_RESPONSE_BYTES,
        ("rpc", "ws_outbound_buffer_bytes"): rpc_server.WS_OUTBOUND_BUFFER_BYTES,
        ("rpc", "ws_outbound_total_bytes"): rpc_server.WS_OUTBOUND_TOTAL_BYTES,
        ("rpc", "call_work_budget_ms"): ms(rpc_budget.CALL_WORK_BUDGET_SECONDS),
        ("rpc", "batch_work_budget_ms"): ms(rpc_budget.BATCH_WORK_BUDGET_SECONDS),
        ("consensus", "view_timeout_ticks"): NODE_VIEW_TIMEOUT_TICKS,
        ("consensus", "max_block_txs"): chain.BLOCK_MAX_TXS,
        ("consensus", "max_block_bytes"): chain.BLOCK_MAX_BYTES,
        ("consensus", "max_block_gas"): chain.BLOCK_MAX_GAS,
        ("mempool", "max_txs"): mempool.MAX_POOL_TXS,
        ("mempool", "max_per_sender"): mempool.MAX_PER_SENDER,
        ("mempool", "nonce_window"): mempool.NONCE_WINDOW,
        ("mempool", "max_args_bytes"): mempool.MAX_TX_ARGS_BYTES,
    }


def test_config_defaults_are_the_module_limits():
    """A default that differs from the constant its module enforces is a second definition."""
    defaults = {(k.section, k.name): k for k in DEFAULTS}
    for where, constant in _module_limits().items():
        key = defaults[where]
        assert key.default == constant, f"[{where[0]}] {where[1]} = {key.default}, its module says {constant}"
        assert type(key.default) is int, where
        assert key.low <= key.default <= key.high, where


def test_module_limits_that_the_node_does_not_configure_agree_with_config():
    """Where a module's own dataclass default stands for a config key, it is the same constant."""
    from node.core.mempool import MempoolLimits

    values = parse_config("/home", {}).values
    limits = MempoolLimits()
    for name in ("max_txs", "max_per_sender", "nonce_window", "max_args_bytes"):
        assert getattr(limits, name) == values[("mempool", name)], name
    from ledger.types import MAX_BLOCK_BYTES, MAX_BLOCK_TXS
    from node.core.chain import BlockLimits

    block = BlockLimits()
    assert (block.max_txs, block.max_bytes, block.max_gas) == tuple(
        values[("consensus", n)] for n in ("max_block_txs", "max_block_bytes", "max_block_gas"))
    keys = {(k.section, k.name): k for k in DEFAULTS}
    assert keys[("consensus", "max_block_txs")].high == MAX_BLOCK_TXS  # the protocol cap bounds the config
    assert keys[("consensus", "max_block_bytes")].high == MAX_BLOCK_BYTES


def _home(tmp_path) -> str:
    (tmp_path / "config.toml").write_text(render_config({("consensus", "tick_ms"): 60}))
    return str(tmp_path)


def test_environment_variables_override_the_file_by_type(tmp_path):
    env = {"SHOPCHAIN_RPC_LISTEN": "0.0.0.0:9545", "SHOPCHAIN_CONSENSUS_TICK_MS": " 70 ",
           "SHOPCHAIN_P2P_TLS": "false", "SHOPCHAIN_RPC_CORS_ORIGINS": "https://shop.example, https://admin.example",
           "SHOPCHAIN_NODE": "http://127.0.0.1:8545", "PATH": "/usr/bin"}  # the CLI's own variable is not config
    cfg = load_config(_home(tmp_path), env)
    assert cfg.get("rpc", "listen") == "0.0.0.0:9545" and cfg.get("consensus", "tick_ms") == 70
    assert cfg.get("p2p", "tls") is False
    assert cfg.get("rpc", "cors_origins") == ["https://shop.example", "https://admin.example"]
    assert load_config(_home(tmp_path), {"SHOPCHAIN_RPC_CORS_ORIGINS": '["https://a.example"]'}).get(
        "rpc", "cors_origins") == ["https://a.example"]
    assert load_config(_home(tmp_path), {}).get("consensus", "tick_ms") == 60  # the file's value without one


@pytest.mark.parametrize("env, message", [
    ({"SHOPCHAIN_CONSENSUS_TICK_MS": "fast"}, "SHOPCHAIN_CONSENSUS_TICK_MS: expected an integer, found 'fast'"),
    ({"SHOPCHAIN_P2P_TLS": "maybe"}, "SHOPCHAIN_P2P_TLS: expected true or false, found 'maybe'"),
    ({"SHOPCHAIN_CONSENSUS_TICK_MS": "1"},
     "[consensus] tick_ms: expected an integer in 5..10000, found 1 (set by the environment variable "
     "SHOPCHAIN_CONSENSUS_TICK_MS)"),
    ({"SHOPCHAIN_RPC_LISTEN": "nowhere"}, "(set by the environment variable SHOPCHAIN_RPC_LISTEN)"),
])
def test_a_bad_override_names_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigError) as info:
        load_config(_home(tmp_path), env)
    assert message in str(info.value)


def test_config_check_reports_overrides_and_variables_that_look_mistyped(tmp_path):
    import json as jsonlib

    from click.testing import CliRunner

    from cli.main import main

    home = _home(tmp_path)
    env = {"SHOPCHAIN_RPC_LISTEN": "127.0.0.1:9999", "SHOPCHAIN_RPC_LISTN": "127.0.0.1:9998"}
    result = CliRunner().invoke(main, ["node", "config", "check", "--home", home, "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = jsonlib.loads(result.output)
    assert {"key": "[rpc] listen", "value": "127.0.0.1:9999", "from": "SHOPCHAIN_RPC_LISTEN"} in report["changed"]
    assert {"key": "[consensus] tick_ms", "value": 60, "from": "config.toml"} in report["changed"]
    assert report["ignored_environment"] == ["SHOPCHAIN_RPC_LISTN"]
    bad = CliRunner().invoke(main, ["node", "config", "check", "--home", home], env={"SHOPCHAIN_P2P_TLS": "maybe"})
    assert bad.exit_code == 1 and "SHOPCHAIN_P2P_TLS: expected true or false" in bad.output
