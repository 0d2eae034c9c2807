/** The client's submit and wait logic against a scripted node (no network). */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, commerce, decodeSignedTx, fromHex, KeySigner, RpcError, SubmitUncertain, toHex, verifySignedTx, type Json } from "../src/index.js";

type Answer = { result: Json } | { error: { code: number; message: string; data?: Json } } | { http: number } | "unreachable";

/** A fetch that answers each JSON-RPC method from a script and records every request. */
function scripted(script: Record<string, Answer[]>) {
  const calls: { method: string; params: Json[] }[] = [];
  const fake = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = JSON.parse(String(init?.body)) as { id: number; method: string; params: Json[] };
    calls.push({ method: req.method, params: req.params });
    const queue = script[req.method];
    const answer = queue && queue.length > 1 ? queue.shift()! : queue?.[0];
    if (answer === undefined) throw new Error(`unscripted ${req.method}`);
    if (answer === "unreachable") throw new TypeError("fetch failed");
    if ("http" in answer) return new Response("busy", { status: answer.http });
    return new Response(JSON.stringify({ jsonrpc: "2.0", id: req.id, ...answer }), { status: 200 });
  };
  return { calls, fetch: fake as typeof fetch };
}

const buyer = KeySigner.fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const merchant = fromHex("a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0");
const base = { chain_status: [{ result: { chain_id: "shopchain-test", height: 5 } }], account_get: [{ result: { nonce: 7, balance: 100, registered: true } }] };
const noSleep = async (): Promise<void> => undefined;

test("build signs a ledger.transfer with the account's nonce, then counts nonces locally", async () => {
  const node = scripted(base);
  const client = new Client("http://node", { fetch: node.fetch, sleep: noSleep });
  const first = await client.buildCall(buyer, commerce.transfer(merchant, 1000n));
  const second = await client.buildCall(buyer, commerce.transfer(merchant, 5));
  assert.equal(first.body.nonce, 7n);
  assert.equal(second.body.nonce, 8n);
  assert.equal(first.body.chainId, "shopchain-test");
  assert.equal(first.body.contract, "ledger");
  assert.equal(first.body.method, "transfer");
  assert.deepEqual(first.body.args, [merchant, 1000n]);
  assert.ok(verifySignedTx(decodeSignedTx(first.raw)));
  assert.equal(node.calls.filter((c) => c.method === "account_get").length, 1);
  assert.throws(() => commerce.transfer(merchant, 0), RangeError);
  assert.throws(() => commerce.transfer(merchant.subarray(1), 1), TypeError);
});

test("submit re-sends the same bytes after a lost answer and settles a duplicate refusal by the id", async () => {
  const node = scripted({
    ...base,
    chain_sendRawTransaction: ["unreachable", { error: { code: -32000, message: "duplicate", data: { type: "MempoolError", reason: "duplicate" } } }],
    chain_getTransaction: [{ result: { status: "pending" } }],
  });
  const client = new Client("http://node", { fetch: node.fetch, sleep: noSleep });
  const tx = await client.build(buyer, "ledger", "transfer", [merchant, 1n]);
  const id = await client.submit(tx);
  assert.equal(id, "0x" + toHex(tx.txId));
  const sends = node.calls.filter((c) => c.method === "chain_sendRawTransaction");
  assert.equal(sends.length, 2);
  assert.deepEqual(sends[0]!.params, ["0x" + toHex(tx.raw)]);
  assert.deepEqual(sends[1]!.params, sends[0]!.params); // never a new signature
  assert.deepEqual(node.calls.find((c) => c.method === "chain_getTransaction")!.params, [id]);
});

test("a nonce_too_low refusal for another transaction raises and makes the next build re-read the nonce", async () => {
  const node = scripted({
    ...base,
    chain_sendRawTransaction: [{ error: { code: -32000, message: "nonce too low", data: { type: "MempoolError", reason: "nonce_too_low" } } }],
    chain_getTransaction: [{ error: { code: -32004, message: "not found" } }],
  });
  const client = new Client("http://node", { fetch: node.fetch, sleep: noSleep });
  await assert.rejects(client.send(buyer, "ledger", "transfer", [merchant, 1n]), (e: unknown) => e instanceof RpcError && e.reason === "nonce_too_low");
  await client.build(buyer, "ledger", "transfer", [merchant, 1n]);
  assert.equal(node.calls.filter((c) => c.method === "account_get").length, 2);
});

test("a node that stays busy gives SubmitUncertain carrying the signed bytes, after five sends of them", async () => {
  const node = scripted({ ...base, chain_sendRawTransaction: [{ http: 503 }] });
  const client = new Client("http://node", { fetch: node.fetch, sleep: noSleep });
  const tx = await client.build(buyer, "ledger", "transfer", [merchant, 1n]);
  await assert.rejects(client.submit(tx.raw), (e: unknown) => e instanceof SubmitUncertain && toHex(e.raw) === toHex(tx.raw) && e.last.code === 503);
  assert.equal(node.calls.filter((c) => c.method === "chain_sendRawTransaction").length, 5);
});

test("a definite refusal is not retried", async () => {
  const node = scripted({ ...base, chain_sendRawTransaction: [{ error: { code: -32000, message: "bad arguments", data: { reason: "bad_arguments" } } }] });
  const client = new Client("http://node", { fetch: node.fetch, sleep: noSleep });
  await assert.rejects(client.send(buyer, "ledger", "transfer", [merchant]), (e: unknown) => e instanceof RpcError && e.reason === "bad_arguments");
  assert.equal(node.calls.filter((c) => c.method === "chain_sendRawTransaction").length, 1);
});

test("without a websocket, waitForReceipt polls until the receipt is committed, and times out otherwise", async () => {
  const receipt = { tx_id: "0x" + "ab".repeat(32), status: "ok" } as unknown as Json;
  const node = scripted({ chain_getReceipt: [{ error: { code: -32004, message: "pending", data: { status: "pending" } } }, { result: receipt }] });
  const client = new Client("http://node", { fetch: node.fetch, websocket: false, sleep: noSleep });
  assert.equal((await client.waitForReceipt("0x" + "ab".repeat(32), 5000)).status, "ok");
  assert.equal(client.lastWaitMode, "polling");
  assert.equal(node.calls.length, 2);
  const never = scripted({ chain_getReceipt: [{ error: { code: -32004, message: "unknown", data: { status: "unknown" } } }] });
  const slow = new Client("http://node", { fetch: never.fetch, websocket: false, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
  await assert.rejects(slow.waitForReceipt("0x" + "cd".repeat(32), 300), (e: unknown) => e instanceof Error && e.name === "TimeoutError");
});

test("the websocket wait falls back to polling when nothing listens at /ws", async () => {
  const receipt = { tx_id: "0x" + "ab".repeat(32), status: "ok" } as unknown as Json;
  const node = scripted({ chain_getReceipt: [{ result: receipt }] });
  // port 9 (discard) on loopback: the connection is refused at once
  const client = new Client("http://127.0.0.1:9", { fetch: node.fetch, sleep: noSleep });
  assert.equal((await client.waitForReceipt("0x" + "ab".repeat(32), 5000)).status, "ok");
  assert.equal(client.lastWaitMode, "polling");
});

test("a busy refusal is retried with the same bytes after the wait the node asks for, capped", async () => {
  const busy = (ms: number): Answer => ({ error: { code: -32000, message: "busy", data: { type: "MempoolError", reason: "busy", retry_after_ms: ms } } });
  const node = scripted({ ...base, chain_sendRawTransaction: [busy(900), busy(60_000), { result: "0xid" }] });
  const pauses: number[] = [];
  const client = new Client("http://node", { fetch: node.fetch, sleep: async (ms) => { pauses.push(ms); } });
  const tx = await client.build(buyer, "ledger", "transfer", [merchant, 1n]);
  assert.equal(await client.submit(tx), "0xid");
  assert.deepEqual(pauses, [900, 2000]);
  const sends = node.calls.filter((c) => c.method === "chain_sendRawTransaction");
  assert.equal(sends.length, 3);
  assert.ok(sends.every((c) => c.params[0] === "0x" + toHex(tx.raw)));
});
