"""Devnet genesis: a demo consortium with every role, its keys and node homes.

How it works: ``create_devnet`` makes a directory with a genesis naming six demo
organisations (a platform, two merchants, a carrier, a service centre, an arbiter),
N validators spread over them, and one demo account per role (plus three buyers with
balances). It sets a small fee schedule (``DEVNET_GAS_PRICE``, ``DEVNET_BYTE_PRICE``:
fees are part of what a developer should see) paid to the treasury, and gives every
demo account at least ``FEE_FUNDING`` so that each role can transact. Every key is
written to ``keys/<name>.json`` (0600) so that a developer can sign with it at once;
every demo account is registered with the X25519 encryption key derived from its seed
(ledger.privacy.encryption_public_key), so sealed delivery details reach it; node homes are made under ``nodes/node<i>`` with ports
counted up from the base ports. Demo keys are for local networks only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from ledger.crypto import SigningKey
from ledger.genesis import Genesis, GenesisAccount, GenesisFees, Organisation, ValidatorInfo, save_genesis
from node.ops.home import init_home, write_key_file
from ledger.hexfmt import to_hex
from ledger.privacy import encryption_public_key

DEFAULT_VALIDATORS = 4
MAX_DEVNET_VALIDATORS = 32
DEFAULT_P2P_PORT = 26600
DEFAULT_RPC_PORT = 8545
DEVNET_CHAIN_ID = "shopchain-devnet"
BUYER_BALANCE = 1_000_000_00       # 1,000,000.00 in minor units
MERCHANT_BALANCE = 50_000_00       # funds the merchant bond
#: Opening balance of every demo account that has no other: 10,000.00 covers 100 pending
#: transactions at the largest gas limit (10 M gas reserves 100.00) and about 5,000 transfers.
FEE_FUNDING = 10_000_00
#: Devnet prices: 1 minor unit per 1,000 gas and per byte (a transfer costs 1.90: 1,188 gas, 188 bytes).
DEVNET_GAS_PRICE = 1
DEVNET_BYTE_PRICE = 1
#: Who receives devnet fees.
FEE_COLLECTOR = "treasury"
#: Most extra funded buyer accounts a devnet may be created with (load tests).
MAX_EXTRA_BUYERS = 4096

ORGANISATIONS = [
    ("platform", "Demo Marketplace Platform"),
    ("acme", "Acme Outdoor Gear (merchant)"),
    ("globex", "Globex Electronics (merchant)"),
    ("swiftship", "SwiftShip Logistics (carrier)"),
    ("fixit", "FixIt Service Centre"),
    ("fairplay", "FairPlay Arbitration"),
]

# (account name, organisation, roles, balance)
DEMO_ACCOUNTS = [
    ("platform-admin", "platform", ["PLATFORM"], FEE_FUNDING),
    ("treasury", "platform", ["TREASURY"], FEE_FUNDING),
    ("issuer", "platform", ["ISSUER"], FEE_FUNDING),
    ("auditor", "platform", ["AUDITOR"], FEE_FUNDING),
    # merchants issue their own loyalty points and vouchers (ISSUER)
    ("merchant-acme", "acme", ["MERCHANT", "ISSUER"], MERCHANT_BALANCE),
    ("merchant-globex", "globex", ["MERCHANT", "ISSUER"], MERCHANT_BALANCE),
    ("carrier", "swiftship", ["CARRIER"], FEE_FUNDING),
    ("service-center", "fixit", ["SERVICE_CENTER"], FEE_FUNDING),
    ("arbiter", "fairplay", ["ARBITER"], FEE_FUNDING),
    ("buyer-1", "platform", ["BUYER"], BUYER_BALANCE),
    ("buyer-2", "platform", ["BUYER"], BUYER_BALANCE),
    ("buyer-3", "platform", ["BUYER"], BUYER_BALANCE),
]

CONTRACT_SETTINGS = {
    "orders": {"fee_bps": 250, "holdback_bps": 1000},
    # a local network: a minute of timelock and an hour to vote, so a developer sees a proposal through
    "governance": {"timelock_s": 60, "voting_period_s": 3_600},
}


@dataclass(frozen=True)
class DevnetLayout:
    root: str
    genesis: Genesis
    node_homes: list[str]
    rpc_urls: list[str]
    keys_dir: str


#: Who administers each demo organisation.
ADMINS = {"platform": "platform-admin", "acme": "merchant-acme", "globex": "merchant-globex",
          "swiftship": "carrier", "fixit": "service-center", "fairplay": "arbiter"}


@dataclass(frozen=True)
class Endpoint:
    """Where validator i is reached (in genesis) and what its node binds to."""

    p2p_address: str
    rpc_address: str
    rpc_listen: str


def _key(label_seed: str | None, name: str) -> SigningKey:
    return SigningKey.from_label(f"{label_seed}/{name}") if label_seed is not None else SigningKey.generate()


def write_consortium(root: str, chain_id: str, endpoints: list[Endpoint], seed: str | None,
                     accounts: list[tuple[str, str, list[str], int]], keys_note: str,
                     config_overrides: dict[tuple[str, str], object] | None = None,
                     contract_settings: dict[str, dict] | None = None) -> DevnetLayout:
    """Keys, genesis and one node home per endpoint for the demo consortium (local or multi-host).

    ``contract_settings`` overrides settings per contract on top of ``CONTRACT_SETTINGS``
    (e.g. a test's shorter governance timelock)."""
    os.makedirs(root, exist_ok=True)
    if os.path.exists(os.path.join(root, "genesis.json")):
        raise FileExistsError(f"{root} already holds a network; start it, or remove it first")
    keys_dir = os.path.join(root, "keys")
    os.makedirs(keys_dir, exist_ok=True)
    account_keys = {name: _key(seed, name) for name, *_ in accounts}
    for name, key in account_keys.items():
        write_key_file(os.path.join(keys_dir, f"{name}.json"), key)
    orgs = tuple(Organisation(oid, name, (account_keys[ADMINS[oid]].public_key,)) for oid, name in ORGANISATIONS)
    node_keys = [_key(seed, f"node{i}") for i in range(len(endpoints))]
    infos = tuple(ValidatorInfo(f"node{i}", ORGANISATIONS[i % len(ORGANISATIONS)][0], node_keys[i].public_key,
                                e.p2p_address, e.rpc_address) for i, e in enumerate(endpoints))
    genesis_accounts = tuple(GenesisAccount(account_keys[name].public_key, org, tuple(sorted(roles)), balance,
                                            encryption_public_key(account_keys[name].seed))
                             for name, org, roles, balance in accounts)
    genesis_time = 0 if seed is not None else int(time.time() * 1000)
    fees = GenesisFees(DEVNET_GAS_PRICE, DEVNET_BYTE_PRICE, account_keys[FEE_COLLECTOR].public_key)
    settings = {name: {**CONTRACT_SETTINGS.get(name, {}), **(contract_settings or {}).get(name, {})}
                for name in {*CONTRACT_SETTINGS, *(contract_settings or {})}}
    genesis = Genesis(chain_id, genesis_time, orgs, infos, genesis_accounts, settings, fees)
    save_genesis(genesis, os.path.join(root, "genesis.json"))
    homes = []
    for i, (info, endpoint) in enumerate(zip(infos, endpoints)):
        home = os.path.join(root, "nodes", info.name)
        overrides = {("node", "moniker"): info.name, ("p2p", "listen"): info.p2p_address,
                     ("rpc", "listen"): endpoint.rpc_listen, **(config_overrides or {})}
        init_home(home, genesis, node_keys[i], overrides)
        homes.append(home)
    with open(os.path.join(keys_dir, "README.txt"), "w") as fh:
        fh.write(keys_note + "\n")
        json.dump({name: to_hex(k.public_key) for name, k in account_keys.items()}, fh, indent=2)
        fh.write("\n")
    return DevnetLayout(root, genesis, homes, [f"http://{v.rpc_address}" for v in infos], keys_dir)


def create_devnet(root: str, validators: int = DEFAULT_VALIDATORS, p2p_port: int = DEFAULT_P2P_PORT,
                  rpc_port: int = DEFAULT_RPC_PORT, host: str = "127.0.0.1", seed: str | None = None,
                  config_overrides: dict[tuple[str, str], object] | None = None,
                  extra_buyers: int = 0, contract_settings: dict[str, dict] | None = None) -> DevnetLayout:
    """Write a complete devnet under ``root``. ``seed`` makes every key deterministic (tests).

    ``extra_buyers`` adds funded BUYER accounts ``client-<i>`` (load tests need many
    senders: one sender's nonces order its transactions).
    """
    if not 1 <= validators <= MAX_DEVNET_VALIDATORS:
        raise ValueError(f"validators must be 1..{MAX_DEVNET_VALIDATORS}, found {validators}")
    if not 0 <= extra_buyers <= MAX_EXTRA_BUYERS:
        raise ValueError(f"extra_buyers must be 0..{MAX_EXTRA_BUYERS}, found {extra_buyers}")
    accounts = DEMO_ACCOUNTS + [(f"client-{i}", "platform", ["BUYER"], BUYER_BALANCE) for i in range(extra_buyers)]
    endpoints = [Endpoint(f"{host}:{p2p_port + i}", f"{host}:{rpc_port + i}", f"{host}:{rpc_port + i}")
                 for i in range(validators)]
    return write_consortium(root, DEVNET_CHAIN_ID, endpoints, seed, accounts,
                            "Demo account keys of this devnet (ed25519 seeds, for local testing only).",
                            config_overrides, contract_settings)
