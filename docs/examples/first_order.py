"""Your first order on a shopchain devnet: terms, order, shipping, delivery, confirmation.

Run it against `shopchain devnet up` (default home ~/.shopchain/devnet):

    python3 docs/examples/first_order.py
    python3 docs/examples/first_order.py --rpc http://127.0.0.1:8545 --keys ~/.shopchain/devnet/keys

It prints each step with its block height and, at the end, the explorer page that
tracks the order. Every call is a signed transaction sent with node.client.
"""

from __future__ import annotations

import argparse
import os

from contracts_vm.system import DAY
from ledger.crypto import sha256
from node.client import Client
from node.ops.home import read_key_file


def h(text: str) -> bytes:
    """Personal data stays off chain: the chain only ever sees hashes of it."""
    return sha256(text.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="a node's JSON-RPC address")
    parser.add_argument("--keys", default=os.path.expanduser("~/.shopchain/devnet/keys"), help="the devnet's key directory")
    args = parser.parse_args()
    key = lambda name: read_key_file(os.path.join(args.keys, f"{name}.json"))  # noqa: E731
    merchant, buyer, carrier, arbiter = key("merchant-acme"), key("buyer-1"), key("carrier"), key("arbiter")
    client = Client(args.rpc)

    # The merchant publishes terms: accept within 2 days, ship within 3, 5 days transit,
    # 7 days to confirm, 14-day returns, 10% restocking fee, 1-year warranty, an arbiter.
    # Periods are seconds of block time.
    r = client.transact(merchant, "orders", "set_terms", 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 1000, 365 * DAY,
                        arbiter.public_key)
    print(f"terms published        block {r['height']}")
    terms_hash = bytes.fromhex(client.call("orders", "terms_hash_of", merchant.public_key)[2:])

    # The buyer's cart: one tent for 249.00 and two tent pegs sets at 4.50 (minor units), each line
    # [product, quantity, unit price, terms hash]; the total (258.00) is locked in escrow.
    cart = [[h("sku: ultralight tent"), 1, 24_900, terms_hash], [h("sku: tent pegs, set of 8"), 2, 450, terms_hash]]
    r = client.transact(buyer, "orders", "place", merchant.public_key, cart,
                        h("ship to: (the buyer's address, kept off chain)"), h("order details"),
                        h("review key"), b"", b"", b"")
    order_id = r["return_value"]
    print(f"order {order_id} placed         block {r['height']}  tx {r['tx_id']}")
    r = client.transact(merchant, "orders", "accept", order_id, carrier.public_key, h("shipping label"))
    print(f"accepted               block {r['height']}")
    r = client.transact(carrier, "orders", "ship", order_id, h("tracking number"), False)
    print(f"shipped                block {r['height']}")
    r = client.transact(carrier, "orders", "deliver", order_id, h("proof of delivery"))
    print(f"delivered              block {r['height']}")
    r = client.transact(buyer, "orders", "confirm", order_id)
    print(f"confirmed by the buyer block {r['height']}")

    order = client.call("orders", "get_order", order_id)
    print(f"order {order_id} is {order['state']}; the merchant's balance is now "
          f"{client.call('ledger', 'balance_of', merchant.public_key)}")
    print(f"track it in the explorer: {args.rpc}/#/order/{order_id}")


if __name__ == "__main__":
    main()
