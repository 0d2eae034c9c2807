/**
 * Typed helpers for the commerce system contracts (docs/commerce.md): each write helper
 * returns the `ContractCall` to hand to `Client.transactCall` / `Client.buildCall` (or to
 * `unsignedTx` for offline signing), with arguments in the types the contract's ABI takes;
 * each read helper asks `chain_call`. The set: ledger.transfer and ledger.balance_of;
 * orders.accept, ship, deliver, confirm, reject, cancel; orders.get_order, order_count
 * and orders_of_buyer. Parties are named by account id (the key an account registered with).
 */

import type { Client, Json } from "./client.js";
import type { Encodable } from "./encoding.js";

export interface ContractCall {
  contract: string;
  method: string;
  args: Encodable[];
}

function bytes32(v: Uint8Array, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) throw new TypeError(`${what} is 32 bytes`);
  return v;
}

function vmInt(v: bigint | number, what: string, min = -(2n ** 63n)): bigint {
  const n = BigInt(v);
  if (n < min || n >= 2n ** 63n) throw new RangeError(`${what} must be ${min}..2^63-1, found ${n}`);
  return n;
}

/** ledger.transfer(to, amount): `amount` in minor units (> 0), `to` an active account id. */
export function transfer(to: Uint8Array, amount: bigint | number): ContractCall {
  return { contract: "ledger", method: "transfer", args: [bytes32(to, "to"), vmInt(amount, "amount", 1n)] };
}

/** orders.accept(order_id, carrier, label_hash): by the order's merchant. */
export function acceptOrder(orderId: bigint | number, carrier: Uint8Array, labelHash: Uint8Array): ContractCall {
  return { contract: "orders", method: "accept", args: [vmInt(orderId, "order_id", 0n), bytes32(carrier, "carrier"), bytes32(labelHash, "label_hash")] };
}

/** orders.ship(order_id, tracking, partial): by the merchant or carrier. */
export function shipOrder(orderId: bigint | number, tracking: Uint8Array, partial = false): ContractCall {
  return { contract: "orders", method: "ship", args: [vmInt(orderId, "order_id", 0n), tracking, partial] };
}

/** orders.deliver(order_id, pod_hash): by the carrier, with the proof-of-delivery hash. */
export function deliverOrder(orderId: bigint | number, podHash: Uint8Array): ContractCall {
  return { contract: "orders", method: "deliver", args: [vmInt(orderId, "order_id", 0n), bytes32(podHash, "pod_hash")] };
}

/** orders.confirm(order_id): the buyer confirms receipt, releasing the escrow. */
export function confirmOrder(orderId: bigint | number): ContractCall {
  return { contract: "orders", method: "confirm", args: [vmInt(orderId, "order_id", 0n)] };
}

/** orders.reject(order_id): the merchant declines a placed order (the buyer is refunded). */
export function rejectOrder(orderId: bigint | number): ContractCall {
  return { contract: "orders", method: "reject", args: [vmInt(orderId, "order_id", 0n)] };
}

/** orders.cancel(order_id). */
export function cancelOrder(orderId: bigint | number): ContractCall {
  return { contract: "orders", method: "cancel", args: [vmInt(orderId, "order_id", 0n)] };
}

/** ledger.balance_of(account) in minor units at the head, with the height it was read at. */
export async function balanceOf(client: Client, account: Uint8Array): Promise<{ height: number; balance: bigint }> {
  const answer = await client.view("ledger", "balance_of", [bytes32(account, "account")]);
  return { height: answer.height, balance: toBigInt(answer.result) };
}

/** orders.get_order(order_id): the order record as JSON (bytes 0x-hex), or null. */
export async function getOrder(client: Client, orderId: bigint | number): Promise<Json> {
  return client.call("orders", "get_order", [vmInt(orderId, "order_id", 0n)]);
}

/** orders.order_count(): the next order id. */
export async function orderCount(client: Client): Promise<bigint> {
  return toBigInt(await client.call("orders", "order_count", []));
}

/** orders.orders_of_buyer(buyer, limit): the buyer's order ids. */
export async function ordersOfBuyer(client: Client, buyer: Uint8Array, limit = 100): Promise<bigint[]> {
  const ids = await client.call("orders", "orders_of_buyer", [bytes32(buyer, "buyer"), vmInt(limit, "limit", 1n)]);
  if (!Array.isArray(ids)) throw new TypeError("orders_of_buyer answered a non-list");
  return ids.map(toBigInt);
}

/** A JSON integer (a number, or a decimal string beyond 2^53) as bigint. */
export function toBigInt(v: Json): bigint {
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  throw new TypeError(`expected an integer, found ${JSON.stringify(v)}`);
}
