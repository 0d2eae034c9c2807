"""Node configuration: one documented TOML file per node home.

How it works: ``DEFAULTS`` is the single table of every key, its default, its type
and the sentence that documents it. ``render_config`` writes a config.toml from it
(each key preceded by its documentation, like CometBFT's config.toml), and
``load_config`` reads a file back with ``tomllib``, rejecting unknown keys, wrong
types and out-of-range values with a message that names the key
(``[consensus] tick_ms: expected an integer in 5..10000, found "fast"``).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.errors import ChainError
from ledger.types import MAX_BLOCK_BYTES, MAX_BLOCK_TXS
from node.core import chain, mempool, retention
from node.indexer import runner as indexer_runner
from node.indexer import sink as indexer_sink
from node.rpc import budget as rpc_budget
from node.rpc import server as rpc_server
from node.rpc.jsonrpc import MAX_BATCH_LEN, MAX_RESPONSE_BYTES
from node.statesync import wire as statesync_wire
from p2p import limits as p2p_limits


#: Environment variables ``SHOPCHAIN_<SECTION>_<KEY>`` override config.toml (``env_overrides``).
ENV_PREFIX = "SHOPCHAIN_"
#: How a boolean override may be written.
ENV_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class ConfigError(ChainError, ValueError):
    """The node's config.toml is invalid; the message names the key."""


#: The node's view timer in ticks: 40 x the default 50 ms tick = 2 s, what operators
#: run. ``consensus.VIEW_TIMEOUT_TICKS`` (20) is deliberately not this: it is the pure
#: replica's own default, which the simulator and consensus tests use; the node always
#: passes its configured value to the replica.
NODE_VIEW_TIMEOUT_TICKS = 40


def _ms(seconds: float) -> int:
    """A module's limit in seconds as the config's integer milliseconds (config keys are ints)."""
    return round(seconds * 1000)


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: Any
    doc: str
    low: int | None = None
    high: int | None = None


DEFAULTS: list[Key] = [
    Key("node", "moniker", "node", "A human name for this node, shown in logs and status."),
    Key("node", "key_file", "node_key.json", "The validator's ed25519 key file, relative to the home directory."),
    Key("node", "genesis_file", "genesis.json", "The genesis file, relative to the home directory."),
    Key("node", "data_dir", "data", "Directory of the LevelDB store, relative to the home directory."),
    Key("node", "observer", False, "Never sign anything, even once governance puts this node's key in the validator set (an auditor's or an application's node). A node whose key is not in the set follows without signing either way, and starts voting at the height its key is added unless this is true."),
    Key("p2p", "listen", "127.0.0.1:26600", "host:port the validator transport listens on (bind a real address for multi-host)."),
    Key("p2p", "tls", False, "Require mutual TLS between validators with certificates from the consortium CA."),
    Key("p2p", "ca_cert", "", "Consortium CA certificate (PEM), when tls = true."),
    Key("p2p", "cert", "", "This node's certificate (PEM) signed by the consortium CA, when tls = true."),
    Key("p2p", "cert_key", "", "This node's TLS private key (PEM), when tls = true."),
    Key("p2p", "pre_auth_timeout_ms", _ms(p2p_limits.PRE_AUTH_TIMEOUT_SECONDS), "A connection must prove a validator key in its upgrade request within this long of TCP accept (covers TLS and the HTTP upgrade), or it is cut.", 100, 60_000),
    Key("p2p", "handshake_timeout_ms", _ms(p2p_limits.HANDSHAKE_TIMEOUT_SECONDS), "The whole signed handshake must finish within this long of TCP accept (or of dialing).", 100, 120_000),
    Key("p2p", "connect_timeout_ms", _ms(p2p_limits.CONNECT_TIMEOUT_SECONDS), "Longest a dial may take to open TCP (and TLS) and upgrade to a websocket before it is retried.", 100, 60_000),
    Key("p2p", "redial_max_ms", _ms(p2p_limits.BACKOFF_CAP_SECONDS), "Longest wait between redials of a lost validator link (the wait doubles from a quarter second up to this, with jitter).", 250, 600_000),
    Key("p2p", "max_unauthenticated_connections", p2p_limits.MAX_UNAUTHENTICATED_CONNECTIONS, "Accepted connections not yet authenticated, all addresses together; beyond it the oldest is cut.", 1, 100_000),
    Key("p2p", "max_unauthenticated_per_address", p2p_limits.MAX_UNAUTHENTICATED_PER_ADDRESS, "The same per remote IP address (oldest cut first); at most max_unauthenticated_connections.", 1, 100_000),
    Key("p2p", "flood_ban_ms", _ms(p2p_limits.FLOOD_BAN_SECONDS), "How long a validator that flooded or stayed over a budget is refused; doubles per repeated offence up to 5 minutes.", 1, 3_600_000),
    Key("p2p", "consensus_messages_per_second", int(p2p_limits.CONSENSUS_MESSAGES_PER_SECOND), "Consensus messages (votes, proposals, view changes) accepted per second from one validator; bursts of twice this. More are dropped.", 10, 1_000_000),
    Key("p2p", "catchup_messages_per_second", int(p2p_limits.CATCHUP_MESSAGES_PER_SECOND), "Catch-up messages (block requests and answers) accepted per second from one validator; bursts of twice this.", 1, 100_000),
    Key("p2p", "gossip_messages_per_second", int(p2p_limits.GOSSIP_MESSAGES_PER_SECOND), "Transaction gossip batches accepted per second from one validator; bursts of twice this.", 1, 1_000_000),
    Key("p2p", "serve_bytes_per_second", int(p2p_limits.SERVE_BYTES_PER_SECOND), "Block bytes served to one catching-up validator per second (checked before each block is read); bursts of twice this.", 65_536, 1 << 34),
    Key("p2p", "serve_blocks_per_second", int(p2p_limits.SERVE_BLOCKS_PER_SECOND), "Blocks served to one catching-up validator per second; bursts of twice this.", 1, 1_000_000),
    Key("p2p", "peer_addresses", [], "Peers to connect to besides the validators, or dial addresses overriding theirs, as \"0x<public key hex>@host:port\": an observer lists the validators it follows, and a validator lists each observer it serves (only listed keys may connect)."),
    Key("statesync", "enable", False, "On a node whose store is empty: fetch a recent snapshot (the state at a certified height) from its peers instead of executing the chain from genesis, then block-sync the rest (docs/operator-guide.md, joining by state sync). Ignored once the store holds a chain."),
    Key("statesync", "snapshot_interval", statesync_wire.SNAPSHOT_INTERVAL, "This node offers newcomers the state at the latest height that is a multiple of this (every node of a network should use the same value, so newcomers fetch one snapshot from several peers).", 1, 100_000_000),
    Key("statesync", "discovery_timeout_ms", _ms(statesync_wire.DISCOVERY_TIMEOUT_S), "How long a newcomer collects snapshot offers from its connected peers before it picks the highest one that verifies.", 100, 600_000),
    Key("statesync", "request_timeout_ms", _ms(statesync_wire.REQUEST_TIMEOUT_S), "A request for state-trie nodes unanswered for this long is asked of another peer.", 100, 600_000),
    Key("rpc", "listen", "127.0.0.1:8545", "host:port of JSON-RPC (/rpc, /ws), metrics (/metrics), health (/healthz) and the explorer (/)."),
    Key("rpc", "cors_origins", [], "Origins allowed to call the RPC from a browser; empty means CORS is off."),
    Key("rpc", "max_body_bytes", rpc_server.MAX_BODY_BYTES, "Largest HTTP request body accepted.", 1024, 64 * 1024 * 1024),
    Key("rpc", "max_batch", MAX_BATCH_LEN, "Most requests in one JSON-RPC batch.", 1, 10_000),
    Key("rpc", "max_ws_connections", rpc_server.MAX_WS_CONNECTIONS, "Most concurrent websocket connections.", 1, 100_000),
    Key("rpc", "max_subscriptions", rpc_server.MAX_SUBSCRIPTIONS_PER_CONNECTION, "Most subscriptions per websocket connection.", 1, 10_000),
    Key("rpc", "max_connections", rpc_server.MAX_CONNECTIONS, "Most TCP connections (HTTP and websocket) the RPC port holds at once; more are answered 503 and closed.", 1, 100_000),
    Key("rpc", "max_connections_per_address", rpc_server.MAX_CONNECTIONS_PER_ADDRESS, "Most TCP connections from one remote address (local clients all share 127.0.0.1); more are answered 503 and closed.", 1, 100_000),
    Key("rpc", "header_timeout_ms", _ms(rpc_server.HEADER_TIMEOUT_SECONDS), "A client has this long to send a request's headers (from connecting, or from its first byte after an idle spell); slower ones (slowloris) get 408 and are closed.", 100, 600_000),
    Key("rpc", "body_timeout_ms", _ms(rpc_server.BODY_TIMEOUT_SECONDS), "A client has this long to send a request's body once its headers are in; slower ones get 408 and are closed.", 100, 600_000),
    Key("rpc", "idle_timeout_ms", _ms(rpc_server.IDLE_TIMEOUT_SECONDS), "A keep-alive connection with no request for this long is closed.", 100, 3_600_000),
    Key("rpc", "max_response_bytes", MAX_RESPONSE_BYTES, "Largest answer to one request or batch; a larger one is replaced by a LimitExceeded error asking for less.", 65_536, 1024**3),
    Key("rpc", "ws_outbound_buffer_bytes", rpc_server.WS_OUTBOUND_BUFFER_BYTES, "Bytes waiting to be sent to one websocket client (answers and notifications); a client that falls further behind is closed with 1008. At least max_response_bytes.", 65_536, 1024**3),
    Key("rpc", "ws_outbound_total_bytes", rpc_server.WS_OUTBOUND_TOTAL_BYTES, "Bytes waiting for all websocket clients together; the client whose output would pass it is closed with 1008. At least ws_outbound_buffer_bytes.", 65_536, 16 * 1024**3),
    Key("rpc", "call_work_budget_ms", _ms(rpc_budget.CALL_WORK_BUDGET_SECONDS), "Event-loop time one call may spend scanning blocks or running views; a longer scan answers LimitExceeded saying how far it got. Heavy work yields to the loop every 10 ms whatever this is.", 1, 60_000),
    Key("rpc", "batch_work_budget_ms", _ms(rpc_budget.BATCH_WORK_BUDGET_SECONDS), "Event-loop time all calls of one batch may spend together; calls left when it is spent answer LimitExceeded.", 1, 600_000),
    Key("consensus", "tick_ms", 50, "Length of one consensus tick in milliseconds.", 5, 10_000),
    Key("consensus", "view_timeout_ticks", NODE_VIEW_TIMEOUT_TICKS, "Ticks without progress before a view change (doubles on each failed view).", 4, 100_000),
    Key("consensus", "max_block_txs", chain.BLOCK_MAX_TXS, "Most transactions in one block. Under overload the primary proposes fewer: as many as its recent blocks say it executes in 1/16 of the view timeout (node/core/pacing.py), so big blocks never trigger view changes.", 1, MAX_BLOCK_TXS),
    Key("consensus", "max_block_bytes", chain.BLOCK_MAX_BYTES, "Largest encoded block.", 4096, MAX_BLOCK_BYTES),
    Key("consensus", "max_block_gas", chain.BLOCK_MAX_GAS, "Most gas all transactions of a block may use together.", 1000, 10**12),
    Key("consensus", "preview_proposals", True, "The primary announces a block's transactions before executing it, so backups execute it at the same time instead of after its PRE-PREPARE (validation is unchanged; off costs latency and throughput)."),
    Key("consensus", "batch_wait_ms", 20, "How long a primary whose pool was empty waits for more transactions before proposing; a backlog left after a commit is proposed at once.", 0, 10_000),
    Key("consensus", "empty_block_interval_ms", 1000, "Idle primaries propose an empty block after this long, so height-based deadlines move and the view timer stays quiet; at most half the view timeout (tick_ms x view_timeout_ticks).", 1, 3_600_000),
    Key("mempool", "max_txs", mempool.MAX_POOL_TXS, "Most pending transactions.", 1, 10_000_000),
    Key("mempool", "max_per_sender", mempool.MAX_PER_SENDER, "Most pending transactions of one sender.", 1, 1_000_000),
    Key("mempool", "nonce_window", mempool.NONCE_WINDOW, "How far ahead of a sender's next nonce a transaction may be.", 1, 1_000_000),
    Key("mempool", "max_queue_ms", mempool.MAX_QUEUE_MS, "Client submissions are refused as busy (with data.retry_after_ms) while the pending transactions would take longer than this to commit at the recent commit rate, so latency stays bounded past saturation (node/core/backpressure.py); 0 turns it off.", 0, 600_000),
    Key("mempool", "max_args_bytes", mempool.MAX_TX_ARGS_BYTES, "Largest encoded argument list of a transaction (governed code deploys excepted); a call with more is refused at admission (args_too_large).", 256, 64 * 1024),
    Key("storage", "retain_states", 0, "State versions kept: the head's and those of the heights just below it; older trie nodes are deleted (ledger/state_prune.py), and proofs or reads at a pruned height are refused naming the oldest height kept. The state-sync snapshot heights offered are kept too. 0 = archive (every state kept).", 0, 10**12),
    Key("storage", "sync", True, "fsync every block commit and every signed consensus record before it is sent. Turning it off loses the no-equivocation guarantee across power loss: only for throwaway test networks."),
    Key("storage", "retain_blocks", 0, f"Keep only the newest this many blocks (with their certificates, receipts and tx index entries); older ones are deleted a batch per commit (0 = keep every block: an archive node). At least {retention.MIN_RETAIN_BLOCKS} so lagging peers can catch up, and never below the second-latest state-sync snapshot height a newcomer may be fetching. Reads of a pruned height answer HeightPruned naming the oldest height held (docs/operator-guide.md, block retention).", 0, retention.MAX_RETAIN_BLOCKS),
    Key("indexer", "enabled", True, "Index committed blocks, transactions, receipts and events into SQL (docs/analytics.md) on a thread beside consensus; chain_getEvents and the explorer's timelines then read the index, so history is unbounded. The block store stays the source of truth: after a crash the index catches up from it."),
    Key("indexer", "db_url", "", "Where the index lives: empty is an SQLite file index.sqlite in the node home; else sqlite:///path (relative to the home) or postgresql://user@host:port/database."),
    Key("indexer", "batch_blocks", indexer_runner.IN_NODE_BATCH_BLOCKS, "Most blocks the indexer writes in one SQL transaction while it catches up.", 1, indexer_sink.MAX_BLOCKS_PER_TRANSACTION),
    Key("log", "level", "info", "Log level: debug, info, warning or error."),
    Key("log", "format", "json", "Log format: json (structured, one object per line) or text."),
]

LOG_LEVELS = ("debug", "info", "warning", "error")
#: Hex digits of a validator public key in ``[p2p] peer_addresses``.
PEER_KEY_HEX_DIGITS = 64
LOG_FORMATS = ("json", "text")
#: How an [indexer] db_url may start.
INDEX_URL_PREFIXES = ("sqlite:///", "postgresql://", "postgres://")


@dataclass(frozen=True)
class NodeConfig:
    home: str
    values: dict[tuple[str, str], Any]

    def get(self, section: str, name: str) -> Any:
        return self.values[(section, name)]

    def path(self, section: str, name: str) -> str:
        """A path value resolved against the home directory."""
        value = self.get(section, name)
        return value if os.path.isabs(value) else os.path.join(self.home, value)

    def address(self, section: str) -> tuple[str, int]:
        host, port = self.get(section, "listen").rsplit(":", 1)
        return host.strip("[]"), int(port)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot render {value!r} as TOML")


def render_config(overrides: dict[tuple[str, str], Any] | None = None) -> str:
    """A complete, documented config.toml."""
    overrides = overrides or {}
    lines = ["# shopchain node configuration. Every key is documented; all are optional.", ""]
    section = None
    for key in DEFAULTS:
        if key.section != section:
            section = key.section
            lines += ["", f"[{section}]"]
        lines.append(f"# {key.doc}")
        if key.low is not None:
            lines.append(f"# Range: {key.low}..{key.high}.")
        lines.append(f"{key.name} = {_toml_value(overrides.get((key.section, key.name), key.default))}")
    return "\n".join(lines) + "\n"


def _check(key: Key, value: Any) -> Any:
    where = f"[{key.section}] {key.name}"
    want = type(key.default)
    if want is bool:
        if type(value) is not bool:
            raise ConfigError(f"{where}: expected true or false, found {value!r}")
    elif want is int:
        if type(value) is not int or (key.low is not None and not key.low <= value <= key.high):
            raise ConfigError(f"{where}: expected an integer in {key.low}..{key.high}, found {value!r}")
    elif want is str:
        if type(value) is not str:
            raise ConfigError(f"{where}: expected a string, found {value!r}")
    elif want is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, found {value!r}")
    if key.name == "listen":
        _check_host_port(where, value)
    if (key.section, key.name) == ("p2p", "peer_addresses"):
        parse_peer_addresses(value)
    if (key.section, key.name) == ("storage", "retain_blocks") and 0 < value < retention.MIN_RETAIN_BLOCKS:
        raise ConfigError(f"{where}: expected 0 (keep every block) or at least {retention.MIN_RETAIN_BLOCKS} "
                          f"(lagging peers catch up from these blocks), found {value}")
    if (key.section, key.name) == ("log", "level") and value not in LOG_LEVELS:
        raise ConfigError(f"{where}: expected one of {list(LOG_LEVELS)}, found {value!r}")
    if (key.section, key.name) == ("indexer", "db_url") and value and not value.startswith(INDEX_URL_PREFIXES):
        raise ConfigError(f"{where}: expected empty, sqlite:///path or postgresql://user@host:port/database, "
                          f"found {value!r}")
    if (key.section, key.name) == ("log", "format") and value not in LOG_FORMATS:
        raise ConfigError(f"{where}: expected one of {list(LOG_FORMATS)}, found {value!r}")
    return value


def _check_host_port(where: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port with a port in 1..65535, found {value!r}")


def index_db_url(config: "NodeConfig") -> str:
    """``[indexer] db_url`` with the default and a relative SQLite path resolved against the home."""
    url = config.get("indexer", "db_url")
    if not url:
        return "sqlite:///" + os.path.join(os.path.abspath(config.home), "index.sqlite")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + os.path.join(os.path.abspath(config.home), url[len("sqlite:///"):])
    return url


def parse_peer_addresses(entries: list[str]) -> dict[bytes, str]:
    """``[p2p] peer_addresses`` as {validator public key: "host:port"}; ConfigError names a bad entry."""
    where = "[p2p] peer_addresses"
    result: dict[bytes, str] = {}
    for entry in entries:
        key_hex, sep, address = entry.partition("@")
        digits = key_hex[2:] if key_hex.startswith("0x") else ""
        if not sep or len(digits) != PEER_KEY_HEX_DIGITS or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ConfigError(f"{where}: expected \"0x<{PEER_KEY_HEX_DIGITS} hex digits of a validator public key>"
                              f"@host:port\", found {entry!r}")
        _check_host_port(f"{where} entry {entry!r}", address)
        public_key = bytes.fromhex(digits)
        if public_key in result:
            raise ConfigError(f"{where}: validator {key_hex} is listed twice; keep one address per validator")
        result[public_key] = address
    return result


def parse_config(home: str, doc: dict) -> NodeConfig:
    known = {(k.section, k.name): k for k in DEFAULTS}
    sections = {k.section for k in DEFAULTS}
    values = {(k.section, k.name): k.default for k in DEFAULTS}
    for section, table in doc.items():
        if section not in sections:
            raise ConfigError(f"unknown section [{section}]; expected one of {sorted(sections)}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        for name, value in table.items():
            key = known.get((section, name))
            if key is None:
                names = sorted(k.name for k in DEFAULTS if k.section == section)
                raise ConfigError(f"[{section}] {name}: unknown key; expected one of {names}")
            values[(section, name)] = _check(key, value)
    view_timeout_ms = values[("consensus", "tick_ms")] * values[("consensus", "view_timeout_ticks")]
    if values[("consensus", "empty_block_interval_ms")] * 2 > view_timeout_ms:
        raise ConfigError(f"[consensus] empty_block_interval_ms: expected at most half the view timeout "
                          f"({view_timeout_ms} ms = tick_ms x view_timeout_ticks), found "
                          f"{values[('consensus', 'empty_block_interval_ms')]}; an idle primary would be voted out")
    sizes = [values[("rpc", n)] for n in ("max_response_bytes", "ws_outbound_buffer_bytes", "ws_outbound_total_bytes")]
    if not sizes[0] <= sizes[1] <= sizes[2]:
        raise ConfigError(f"[rpc] ws_outbound_buffer_bytes: expected max_response_bytes <= ws_outbound_buffer_bytes "
                          f"<= ws_outbound_total_bytes (a websocket must hold one answer), found {sizes[0]}, "
                          f"{sizes[1]}, {sizes[2]}")
    if values[("p2p", "tls")]:
        for name in ("ca_cert", "cert", "cert_key"):
            if not values[("p2p", name)]:
                raise ConfigError(f"[p2p] {name}: required when tls = true, found an empty value")
    return NodeConfig(home, values)


def load_config(home: str, environ: Mapping[str, str] | None = None) -> NodeConfig:
    """config.toml of ``home``, then the ``SHOPCHAIN_<SECTION>_<KEY>`` variables of ``environ``
    (default: the process environment) over it, as containers and systemd units set them."""
    path = os.path.join(home, "config.toml")
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"no config.toml in {home}; create one with `shopchain node init --home {home}`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    overrides = env_overrides(os.environ if environ is None else environ)
    for (section, name), (_, value) in overrides.items():
        doc.setdefault(section, {})[name] = value
    try:
        return parse_config(home, doc)
    except ConfigError as exc:
        named = [var for (section, name), (var, _) in overrides.items() if f"[{section}] {name}" in str(exc)]
        if named:
            raise ConfigError(f"{exc} (set by the environment variable {named[0]})") from None
        raise


def env_name(key: Key) -> str:
    """The environment variable that overrides ``key``: SHOPCHAIN_RPC_LISTEN for [rpc] listen."""
    return f"{ENV_PREFIX}{key.section.upper()}_{key.name.upper()}"


def env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, Any]]:
    """{(section, name): (variable, value)} for every ``SHOPCHAIN_<SECTION>_<KEY>`` set in ``environ``.

    Text is read by the key's type: integers in decimal, booleans as true/false (or 1/0,
    yes/no), lists as a JSON array or comma-separated strings. Other SHOPCHAIN_ variables
    (the CLI's SHOPCHAIN_NODE, an application's own) are not config; ``unknown_env``
    lists those that look like a mistyped key, for ``shopchain node config check``.
    """
    by_var = {env_name(k): k for k in DEFAULTS}
    return {(by_var[var].section, by_var[var].name): (var, _env_value(by_var[var], var, environ[var]))
            for var in sorted(environ) if var in by_var}


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """SHOPCHAIN_<SECTION>_... variables that name a config section but none of its keys."""
    known = {env_name(k) for k in DEFAULTS}
    sections = {k.section.upper() + "_" for k in DEFAULTS}
    return sorted(var for var in environ if var.startswith(ENV_PREFIX) and var not in known
                  and any(var[len(ENV_PREFIX):].startswith(section) for section in sections))


def _env_value(key: Key, var: str, text: str) -> Any:
    want = type(key.default)
    if want is bool:
        lowered = text.strip().lower()
        if lowered not in ENV_BOOLEANS:
            raise ConfigError(f"{var}: expected true or false, found {text!r}")
        return ENV_BOOLEANS[lowered]
    if want is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(f"{var}: expected an integer, found {text!r}") from None
    if want is list:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except ValueError as exc:
                raise ConfigError(f"{var}: expected a JSON array of strings, found {text!r} ({exc})") from None
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return text


def rpc_limits(cfg: NodeConfig) -> rpc_server.RpcLimits:
    """The RPC server's limits from the ``[rpc]`` section (the others keep their defaults)."""
    rpc = {k: cfg.get("rpc", k) for k in ("max_body_bytes", "max_ws_connections", "max_response_bytes",
                                          "max_connections", "max_connections_per_address",
                                          "ws_outbound_buffer_bytes", "ws_outbound_total_bytes")}
    seconds = {f"{k}_seconds": cfg.get("rpc", f"{k}_ms") / 1000
               for k in ("header_timeout", "body_timeout", "idle_timeout", "call_work_budget", "batch_work_budget")}
    return rpc_server.RpcLimits(max_batch_len=cfg.get("rpc", "max_batch"),
                     max_subscriptions_per_connection=cfg.get("rpc", "max_subscriptions"), **rpc, **seconds)
