/**
 * A JSON-RPC client for one node (docs/rpc.md), mirroring the Python client (node/client.py):
 * it signs each transaction once and submits its bytes idempotently by transaction id
 * (a lost answer or a busy node re-sends the same bytes; a `duplicate` or `nonce_too_low`
 * refusal is settled by asking `chain_getTransaction` for the id), and waits for receipts
 * over the websocket subscription to new blocks, polling when no websocket can be used.
 */

import WebSocket from "ws";
import { fromHex, to0x } from "./bytes.js";
import type { Signer } from "./crypto.js";
import type { Encodable } from "./encoding.js";
import { signTx, unsignedTx, decodeSignedTx, ValidationError, type SignedTx } from "./tx.js";
import type { ProofAnswer, ReceiptAnswer, TrustedValidators, ValidatorsAnswer } from "./chain.js";
import { verifyStateProof, verifyValidatorSets, ValidatorSchedule } from "./chain.js";

export const DEFAULT_GAS = 2_000_000n;
export const DEFAULT_WAIT_MS = 30_000;
export const POLL_INTERVAL_MS = 200;
export const SUBMIT_ATTEMPTS = 5;
const SUBMIT_BACKOFF_MS = 250;
const SUBMIT_BACKOFF_CAP_MS = 2000;
export const NOT_FOUND = -32004;
/** The code of a request that got no answer (refused connection, reset, timeout). */
export const UNREACHABLE = -1;
const RETRY_HTTP_STATUSES = new Set([408, 429, 502, 503, 504]);
const RETRY_REASONS = new Set(["mempool_full", "sender_full", "busy"]);
const MAYBE_OURS_REASONS = new Set(["duplicate", "nonce_too_low"]);

/** A JSON value as the node answers it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON-RPC error answer (or, code -1 or an HTTP status, no answer). */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(readonly code: number, readonly rpcMessage: string, readonly data: Json | undefined = undefined) {
    super(`${rpcMessage} (code ${code})`);
  }

  /** The mempool's refusal code (`error.data.reason`), if any. */
  get reason(): string | undefined {
    const d = this.data;
    return d !== null && typeof d === "object" && !Array.isArray(d) && typeof d.reason === "string" ? d.reason : undefined;
  }

  /** True when the same request may simply be sent again (nothing was decided). */
  get retryable(): boolean {
    return this.code === UNREACHABLE || RETRY_HTTP_STATUSES.has(this.code) || RETRY_REASONS.has(this.reason ?? "");
  }
}

/** The wait a busy node asked for (`data.retry_after_ms`), within the back-off cap; 0 if none. */
function retryAfterMs(error: RpcError): number {
  const data = error.data;
  const hint = data !== null && typeof data === "object" && !Array.isArray(data) ? data["retry_after_ms"] : undefined;
  return typeof hint === "number" && hint > 0 ? Math.min(hint, SUBMIT_BACKOFF_CAP_MS) : 0;
}

/** A transaction committed with a failed receipt. */
export class TxFailed extends Error {
  override name = "TxFailed";
  constructor(readonly receipt: ReceiptAnswer) {
    super(`transaction ${receipt.tx_id} failed: ${receipt.error}`);
  }
}

/** The submission's outcome is unknown: resend `raw` (`client.submit(raw)`) or wait for `txId`; never sign again. */
export class SubmitUncertain extends Error {
  override name = "SubmitUncertain";
  constructor(readonly txId: string, readonly raw: Uint8Array, readonly last: RpcError) {
    super(`transaction ${txId} may or may not have been admitted after ${SUBMIT_ATTEMPTS} attempts (last: ${last.message}); resend the same bytes or wait for its id, do not sign it again`);
  }
}

export interface ClientOptions {
  chainId?: string;
  /** Timeout of one HTTP request. */
  timeoutMs?: number;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
  /** Set false to poll for receipts instead of using the websocket. */
  websocket?: boolean;
  sleep?: (ms: number) => Promise<void>;
}

export interface SendOptions {
  gas?: bigint | number;
  /** Sign with this nonce instead of the account's next (no local nonce is used up). */
  nonce?: bigint | number;
}

/** A contract argument as JSON-RPC carries it (chain_call): bytes as 0x-hex, big integers as strings. */
export function jsonArg(v: Encodable): Json {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return to0x(v);
  if (Array.isArray(v)) return (v as readonly Encodable[]).map(jsonArg);
  const out: { [key: string]: Json } = {};
  const entries = v instanceof Map ? [...(v as ReadonlyMap<string, Encodable>)] : Object.entries(v as { [key: string]: Encodable });
  for (const [k, x] of entries) out[k] = jsonArg(x);
  return out;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Client {
  readonly url: string;
  private cachedChainId: string | undefined;
  private readonly nonces = new Map<string, bigint>();
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;
  private readonly useWebsocket: boolean;
  private readonly sleep: (ms: number) => Promise<void>;
  private nextId = 1;

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.cachedChainId = options.chainId;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? fetch;
    this.useWebsocket = options.websocket ?? true;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** One JSON-RPC request; throws RpcError. */
  async request<T = Json>(method: string, ...params: Json[]): Promise<T> {
    const body = JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method, params });
    let response: Response;
    try {
      response = await this.fetchFn(this.url + "/rpc", {
        method: "POST", body, headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new RpcError(UNREACHABLE, `cannot reach ${this.url}: ${(e as Error).message}`);
    }
    const text = await response.text().catch(() => "");
    let reply: { result?: T; error?: { code?: number; message?: string; data?: Json } } | undefined;
    try {
      reply = JSON.parse(text) as typeof reply;
    } catch {
      reply = undefined;
    }
    if (reply && typeof reply === "object" && reply.error && typeof reply.error === "object") {
      throw new RpcError(reply.error.code ?? 0, reply.error.message ?? "", reply.error.data);
    }
    if (!response.ok || !reply || !("result" in reply)) {
      throw new RpcError(response.ok ? 0 : response.status, `HTTP ${response.status} from ${this.url}: ${text.slice(0, 300)}`);
    }
    return reply.result as T;
  }

  // --- reads --------------------------------------------------------------------------

  async status(): Promise<{ chain_id: string; height: number } & { [key: string]: Json }> {
    const answer = await this.request<{ chain_id: string; height: number } & { [key: string]: Json }>("chain_status");
    this.cachedChainId ??= answer.chain_id;
    return answer;
  }

  async chainId(): Promise<string> {
    return this.cachedChainId ?? (await this.status()).chain_id;
  }

  /** `account_get` by account id or signing key: nonce (next), roles, balance, registered. */
  async account(address: Uint8Array): Promise<{ nonce: number | string; balance: Json; registered: boolean } & { [key: string]: Json }> {
    return this.request("account_get", to0x(address));
  }

  /**
   * A read-only contract view (`chain_call`); the answer's `result` as JSON (bytes 0x-hex).
   * Nodes run views on the latest state only; prove older state with `provenValue`.
   */
  async call(contract: string, method: string, args: readonly Encodable[] = [], height: number | "latest" = "latest"): Promise<Json> {
    return (await this.view(contract, method, args, height)).result;
  }

  /** `chain_call` with the height it ran at and the gas it used. */
  async view(contract: string, method: string, args: readonly Encodable[] = [], height: number | "latest" = "latest"): Promise<{ height: number; result: Json; gas_used: number }> {
    return this.request<{ height: number; result: Json; gas_used: number }>("chain_call", contract, method, args.map(jsonArg), height);
  }

  async getReceipt(txId: string): Promise<ReceiptAnswer> {
    return this.request<ReceiptAnswer>("chain_getReceipt", txId);
  }

  /** The receipt, or null while it is not committed. */
  async tryReceipt(txId: string): Promise<ReceiptAnswer | null> {
    try {
      return await this.getReceipt(txId);
    } catch (e) {
      if (e instanceof RpcError && e.code === NOT_FOUND) return null;
      throw e;
    }
  }

  /** `chain_getTransaction` (status pending or committed), null when the node knows no such id. */
  async getTransaction(txId: string): Promise<({ status: "pending" | "committed" } & { [key: string]: Json }) | null> {
    try {
      return await this.request("chain_getTransaction", txId);
    } catch (e) {
      if (e instanceof RpcError && e.code === NOT_FOUND) return null;
      throw e;
    }
  }

  async getProof(key: Uint8Array, height: number | "latest" = "latest"): Promise<ProofAnswer> {
    return this.request<ProofAnswer>("chain_getProof", to0x(key), height);
  }

  async getValidators(): Promise<ValidatorsAnswer> {
    return this.request<ValidatorsAnswer>("chain_getValidators");
  }

  async getGenesis(): Promise<{ chain_id: string; validators: { public_key: string }[] } & { [key: string]: Json }> {
    return this.request("chain_getGenesis");
  }

  /** The validator schedule proven from `genesisKeys` (which you must already trust). */
  async provenValidators(genesisKeys: readonly Uint8Array[]): Promise<ValidatorSchedule> {
    return verifyValidatorSets(await this.getValidators(), genesisKeys, await this.chainId());
  }

  /** The state value at `key` after block `height` (default: the head), proven offline. */
  async provenValue(key: Uint8Array, validators: TrustedValidators, height?: number): Promise<{ height: number; value: Uint8Array | null }> {
    const h = height ?? (await this.status()).height;
    const answer = await this.getProof(key, h);
    const value = verifyStateProof(answer, validators, await this.chainId(), key); // the key asked for, not the node's
    if (answer.height !== h) throw new ValidationError(`asked for the state at height ${h}, the node proved height ${answer.height}`);
    return { height: answer.height, value };
  }

  // --- writes -------------------------------------------------------------------------

  /** The sender's next nonce: read from the chain once, then counted locally. */
  async nextNonce(sender: Uint8Array): Promise<bigint> {
    const k = to0x(sender);
    const known = this.nonces.get(k);
    if (known !== undefined) return known;
    const n = BigInt((await this.account(sender)).nonce);
    this.nonces.set(k, n);
    return n;
  }

  /** Build and sign a call (consuming a local nonce unless `options.nonce` is given). */
  async build(signer: Signer, contract: string, method: string, args: readonly Encodable[], options: SendOptions = {}): Promise<SignedTx> {
    const sender = await signer.publicKey();
    const chainId = await this.chainId();
    const nonce = options.nonce !== undefined ? BigInt(options.nonce) : await this.nextNonce(sender);
    const body = unsignedTx({ chainId, sender, nonce, contract, method, args, gasLimit: options.gas ?? DEFAULT_GAS });
    const tx = await signTx(body, signer);
    if (options.nonce === undefined) this.nonces.set(to0x(sender), nonce + 1n);
    return tx;
  }

  /** One `chain_sendRawTransaction`, no retry. */
  async sendRaw(raw: Uint8Array): Promise<string> {
    return this.request<string>("chain_sendRawTransaction", to0x(raw));
  }

  /**
   * Send signed bytes until the node has them; returns the id. Never signs anything, so
   * calling it again with the same bytes is safe (idempotent by transaction id).
   * Throws RpcError on a definite refusal, SubmitUncertain when it cannot tell.
   */
  async submit(signed: SignedTx | Uint8Array): Promise<string> {
    const tx = signed instanceof Uint8Array ? decodeSignedTx(signed) : signed;
    const txId = to0x(tx.txId);
    let delay = SUBMIT_BACKOFF_MS;
    for (let attempt = 1; ; attempt++) {
      let last: RpcError;
      try {
        return await this.sendRaw(tx.raw);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        last = e;
      }
      if (MAYBE_OURS_REASONS.has(last.reason ?? "")) {
        let found: ({ status: string } & { [key: string]: Json }) | null | undefined;
        try {
          found = await this.getTransaction(txId);
        } catch (lookup) {
          if (!(lookup instanceof RpcError) || !lookup.retryable) throw lookup;
          last = lookup; // could not tell whose it is: send again
        }
        if (found !== undefined) {
          if (found !== null) return txId;
          this.nonces.delete(to0x(tx.body.sender));
          throw last; // the refusal was about another transaction with this nonce
        }
      } else if (!last.retryable) {
        this.nonces.delete(to0x(tx.body.sender));
        throw last;
      }
      if (attempt >= SUBMIT_ATTEMPTS) throw new SubmitUncertain(txId, tx.raw, last);
      await this.sleep(Math.max(delay, retryAfterMs(last)));
      delay = Math.min(delay * 2, SUBMIT_BACKOFF_CAP_MS);
    }
  }

  /** Sign once and submit; returns the transaction id once the node has it. */
  async send(signer: Signer, contract: string, method: string, args: readonly Encodable[], options: SendOptions = {}): Promise<string> {
    return this.submit(await this.build(signer, contract, method, args, options));
  }

  /**
   * The committed receipt of `txId`, woken by the websocket's new-block notifications
   * (subscribed first, then checked, so a block committed in between is not missed);
   * polls when the websocket cannot be used. Throws an Error named TimeoutError in time.
   */
  async waitForReceipt(txId: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<ReceiptAnswer> {
    const deadline = Date.now() + timeoutMs;
    if (this.useWebsocket) {
      try {
        return await this.waitOverWebsocket(txId, deadline);
      } catch (e) {
        if (!(e instanceof WebsocketUnavailable)) throw e;
      }
    }
    return this.waitPolling(txId, deadline);
  }

  /** How the last `waitForReceipt` was woken: "websocket" or "polling" (for tests and logs). */
  lastWaitMode: "websocket" | "polling" | undefined;

  private async waitPolling(txId: string, deadline: number): Promise<ReceiptAnswer> {
    this.lastWaitMode = "polling";
    for (;;) {
      const receipt = await this.tryReceipt(txId);
      if (receipt !== null) return receipt;
      if (Date.now() >= deadline) throw timeoutError(txId);
      await this.sleep(POLL_INTERVAL_MS);
    }
  }

  private waitOverWebsocket(txId: string, deadline: number): Promise<ReceiptAnswer> {
    const wsUrl = this.url.replace(/^http/, "ws") + "/ws";
    return new Promise<ReceiptAnswer>((resolve, reject) => {
      let settled = false;
      let subscribed = false;
      const ws = new WebSocket(wsUrl);
      const finish = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on("error", () => undefined);
        ws.close();
        outcome();
      };
      const timer = setTimeout(() => finish(() => reject(timeoutError(txId))), Math.max(0, deadline - Date.now()));
      const check = (): void => {
        this.tryReceipt(txId).then(
          (r) => { if (r !== null) finish(() => { this.lastWaitMode = "websocket"; resolve(r); }); },
          (e: unknown) => finish(() => reject(e)),
        );
      };
      ws.on("open", () => {
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "chain_subscribe", params: ["newBlocks"] }));
      });
      ws.on("message", (data: WebSocket.RawData) => {
        let msg: { id?: number; result?: Json; error?: { code?: number; message?: string; data?: Json }; method?: string; params?: { result?: { txs?: Json[] } } };
        try {
          msg = JSON.parse(data.toString()) as typeof msg;
        } catch {
          return;
        }
        if (msg.error) {
          const err = new RpcError(msg.error.code ?? 0, msg.error.message ?? "", msg.error.data);
          finish(() => reject(subscribed ? err : new WebsocketUnavailable(err.message)));
        } else if (msg.id === 1 && !subscribed) {
          subscribed = true;
          check(); // subscribed first, then checked
        } else if (msg.method === "chain_subscription") {
          const txs = msg.params?.result?.txs ?? [];
          if (txs.some((t) => typeof t === "string" && t.toLowerCase() === txId.toLowerCase())) check();
        }
      });
      ws.on("error", (e: Error) => finish(() => reject(new WebsocketUnavailable(e.message))));
      ws.on("close", () => finish(() => reject(new WebsocketUnavailable("websocket closed"))));
    }).catch(async (e: unknown) => {
      // a websocket that failed before the deadline: poll for the rest of the time
      if (e instanceof WebsocketUnavailable && Date.now() < deadline) throw e;
      throw e instanceof WebsocketUnavailable ? timeoutError(txId) : e;
    });
  }

  /** `build` for a typed commerce call (src/commerce.ts). */
  async buildCall(signer: Signer, call: { contract: string; method: string; args: readonly Encodable[] }, options: SendOptions = {}): Promise<SignedTx> {
    return this.build(signer, call.contract, call.method, call.args, options);
  }

  /** `transact` for a typed commerce call (src/commerce.ts). */
  async transactCall(signer: Signer, call: { contract: string; method: string; args: readonly Encodable[] },
    options: SendOptions & { timeoutMs?: number } = {}): Promise<ReceiptAnswer> {
    return this.transact(signer, call.contract, call.method, call.args, options);
  }

  /** Send, wait, and throw TxFailed if the receipt failed. Returns the receipt. */
  async transact(signer: Signer, contract: string, method: string, args: readonly Encodable[],
    options: SendOptions & { timeoutMs?: number } = {}): Promise<ReceiptAnswer> {
    const txId = await this.send(signer, contract, method, args, options);
    const receipt = await this.waitForReceipt(txId, options.timeoutMs ?? DEFAULT_WAIT_MS);
    if (receipt.status !== "ok") throw new TxFailed(receipt);
    return receipt;
  }
}

class WebsocketUnavailable extends Error {
  override name = "WebsocketUnavailable";
}

function timeoutError(txId: string): Error {
  const e = new Error(`transaction ${txId} was not committed in time`);
  e.name = "TimeoutError";
  return e;
}

/** Bytes from a JSON-RPC 0x-hex field (null stays null). */
export function unhex(text: string | null): Uint8Array | null {
  return text === null ? null : fromHex(text);
}
