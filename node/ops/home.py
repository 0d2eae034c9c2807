"""A node's home directory: config.toml, the node key, genesis.json and the data dir.

How it works: ``init_home`` creates the layout once and refuses to overwrite an
existing key or a different genesis (losing a validator key, or mixing chains, is the
mistake this guards against). The node key file is JSON with the public key and the
32-byte seed, written with mode 0600, like CometBFT's priv_validator_key.json. It also
names the account's X25519 ``encryption_key`` (public), derived from the same seed
(ledger.privacy.encryption_key_from_seed), which the identity registry holds so that
others can seal personal data to the account.
"""

from __future__ import annotations

import json
import os
import shutil

from ledger.crypto import SigningKey
from ledger.errors import ChainError
from ledger.genesis import Genesis, load_genesis, save_genesis
from ledger.privacy import encryption_public_key
from node.ops.config import NodeConfig, load_config, render_config
from ledger.hexfmt import to_hex

KEY_FILE_MODE = 0o600


class HomeError(ChainError):
    """The node home is missing something or would be overwritten."""


def write_key_file(path: str, key: SigningKey) -> None:
    """Write a key file readable by its owner only (created with 0600 before any byte is written)."""
    if os.path.exists(path):
        raise HomeError(f"{path} already exists; refusing to overwrite a key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        json.dump({"type": "ed25519", "public_key": to_hex(key.public_key), "seed": to_hex(key.seed),
                   "encryption_key": to_hex(encryption_public_key(key.seed))}, fh, indent=2)
        fh.write("\n")


def read_key_file(path: str) -> SigningKey:
    try:
        with open(path) as fh:
            doc = json.load(fh)
        key = SigningKey(bytes.fromhex(doc["seed"][2:]))
    except FileNotFoundError:
        raise HomeError(f"key file {path} is missing; run `shopchain node init`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise HomeError(f"key file {path} is not a shopchain ed25519 key file: {exc}") from None
    if doc.get("public_key") != to_hex(key.public_key):
        raise HomeError(f"key file {path}: the public key does not match the seed")
    return key


def init_home(home: str, genesis: Genesis | str | None, key: SigningKey | None = None,
              overrides: dict[tuple[str, str], object] | None = None) -> NodeConfig:
    """Create a node home. ``genesis`` is a Genesis or the path of a genesis file to copy.

    ``genesis=None`` makes the config and the node key only: a member whose public key
    goes into a genesis still being assembled (``shopchain genesis add-validator
    --node-home``) adds the genesis later by calling this again with it.
    """
    os.makedirs(home, exist_ok=True)
    config_path = os.path.join(home, "config.toml")
    if not os.path.exists(config_path):
        with open(config_path, "w") as fh:
            fh.write(render_config(overrides))
    config = load_config(home)
    key_path = config.path("node", "key_file")
    if not os.path.exists(key_path):
        write_key_file(key_path, key or SigningKey.generate())
    if genesis is None:
        os.makedirs(config.path("node", "data_dir"), exist_ok=True)
        return config
    genesis_path = config.path("node", "genesis_file")
    incoming = genesis if isinstance(genesis, Genesis) else load_genesis(genesis)
    if os.path.exists(genesis_path):
        existing = load_genesis(genesis_path)
        if existing.genesis_hash != incoming.genesis_hash:
            raise HomeError(f"{genesis_path} holds another genesis ({existing.genesis_hash.hex()[:16]}); "
                            f"use a new home for a different network")
    elif isinstance(genesis, Genesis):
        save_genesis(genesis, genesis_path)
    else:
        shutil.copyfile(genesis, genesis_path)
    os.makedirs(config.path("node", "data_dir"), exist_ok=True)
    return config


def load_home(home: str) -> tuple[NodeConfig, SigningKey, Genesis]:
    """Everything a node needs to start, validated."""
    if not os.path.isdir(home):
        raise HomeError(f"node home {home} does not exist; create it with `shopchain node init --home {home}`")
    config = load_config(home)
    key = read_key_file(config.path("node", "key_file"))
    genesis_path = config.path("node", "genesis_file")
    if not os.path.exists(genesis_path):
        raise HomeError(f"{genesis_path} is missing: this home was made before its network's genesis; "
                        f"add it with `shopchain node init --home {home} --genesis genesis.json`")
    genesis = load_genesis(genesis_path)
    return config, key, genesis
