/**
 * Transactions (docs/protocol.md section 3): the `tx/1` body, its id and signing payload,
 * the signed `stx/1` and co-signed `cstx/1` forms, and their strict decoding.
 *
 * Offline signing: `unsignedTx(...)` builds the body; hand `txSigningPayload(body)` to any
 * Signer (a hardware wallet, another process), then `assembleSignedTx(body, signature)`.
 * `signTx(body, signer)` does the three steps when the signer is at hand.
 */

import { codePoints, compareBytes, equalBytes, to0x } from "./bytes.js";
import { DOMAIN_TX, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, sha256, signingPayload, verifySigned, type Signer } from "./crypto.js";
import { decode, encode, DecodeError, type Encodable, type Value } from "./encoding.js";

export const TAG_TX = "tx/1";
export const TAG_SIGNED_TX = "stx/1";
export const TAG_COSIGNED_TX = "cstx/1";
export const MAX_TX_BYTES = 65536;
export const MAX_COSIGNATURES = 8;
export const MAX_NAME_CHARS = 64;
export const MIN_TX_GAS = 200n;
export const MAX_TX_GAS = 10_000_000n;
const U64_MAX = 2n ** 64n - 1n;

export interface TxBody {
  chainId: string;
  sender: Uint8Array;
  nonce: bigint;
  contract: string;
  method: string;
  args: Value[];
  gasLimit: bigint;
}

export interface SignedTx {
  body: TxBody;
  signature: Uint8Array;
  /** [key, signature] pairs, ascending by key; empty for `stx/1`. */
  cosignatures: [Uint8Array, Uint8Array][];
  /** The canonical encoding: what `chain_sendRawTransaction` takes. */
  raw: Uint8Array;
  txId: Uint8Array;
}

export class ValidationError extends Error {
  override name = "ValidationError";
}

/** A body from call parameters; `args` may use safe-integer numbers, converted to bigint. */
export function unsignedTx(p: {
  chainId: string; sender: Uint8Array; nonce: bigint | number; contract: string; method: string;
  args: readonly Encodable[]; gasLimit: bigint | number;
}): TxBody {
  const args = decode(encode(p.args)) as Value[]; // canonical values, numbers turned into bigint
  const body: TxBody = {
    chainId: p.chainId, sender: p.sender.slice(), nonce: BigInt(p.nonce), contract: p.contract, method: p.method,
    args, gasLimit: BigInt(p.gasLimit),
  };
  return bodyFromList(bodyToList(body)); // the same checks a node applies when decoding
}

export function bodyToList(b: TxBody): Value[] {
  return [TAG_TX, b.chainId, b.sender, b.nonce, b.contract, b.method, b.args, b.gasLimit];
}

export function encodeBody(b: TxBody): Uint8Array {
  return encode(bodyToList(b));
}

/** sha256 of the body's encoding: 32 bytes (signatures are not part of it). */
export function txId(b: TxBody): Uint8Array {
  return sha256(encodeBody(b));
}

/** The bytes the sender (and every co-signer) signs. */
export function txSigningPayload(b: TxBody): Uint8Array {
  return signingPayload(DOMAIN_TX, b.chainId, encodeBody(b));
}

/** The signed transaction from a body and signatures made elsewhere (an offline signer). */
export function assembleSignedTx(b: TxBody, signature: Uint8Array, cosignatures: [Uint8Array, Uint8Array][] = []): SignedTx {
  const sorted = [...cosignatures].sort((x, y) => compareBytes(x[0], y[0]));
  const list: Value[] = sorted.length
    ? [TAG_COSIGNED_TX, bodyToList(b), signature, sorted.map(([k, s]) => [k, s])]
    : [TAG_SIGNED_TX, bodyToList(b), signature];
  return decodeSignedTx(encode(list)); // refuses what a node would refuse to decode
}

/** Sign `body` with `signer` (whose key must be the body's sender) and any co-signers. */
export async function signTx(b: TxBody, signer: Signer, cosigners: Signer[] = []): Promise<SignedTx> {
  const key = await signer.publicKey();
  if (!equalBytes(key, b.sender)) throw new ValidationError("the signer's key is not the transaction's sender");
  const payload = txSigningPayload(b);
  const signature = await signer.sign(payload);
  const cos: [Uint8Array, Uint8Array][] = [];
  for (const c of cosigners) cos.push([await c.publicKey(), await c.sign(payload)]);
  return assembleSignedTx(b, signature, cos);
}

function fail(what: string): never {
  throw new DecodeError(what);
}

export function isList(v: Value): v is Value[] {
  return Array.isArray(v);
}

export function fields(v: Value, tag: string, count: number, what: string): Value[] {
  if (!isList(v)) fail(`${what}: expected an array`);
  if (v.length === 0 || v[0] !== tag) fail(`${what}: tag must be ${tag}`);
  if (v.length !== count) fail(`${what}: ${tag} has exactly ${count} fields, found ${v.length}`);
  return v;
}

export function bytesField(v: Value | undefined, size: number | null, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what}: expected bytes`);
  if (size !== null && v.length !== size) fail(`${what}: expected ${size} bytes, found ${v.length}`);
  return v;
}

export function intField(v: Value | undefined, what: string, low = 0n, high = U64_MAX): bigint {
  if (typeof v !== "bigint") fail(`${what}: expected an integer, found ${v === null ? "nil" : typeof v}`);
  if (v < low || v > high) fail(`${what}: expected ${low}..${high}, found ${v}`);
  return v;
}

export function strField(v: Value | undefined, what: string, maxChars = MAX_NAME_CHARS): string {
  if (typeof v !== "string") fail(`${what}: expected a string`);
  const n = codePoints(v);
  if (n < 1 || n > maxChars) fail(`${what}: expected 1..${maxChars} characters, found ${n}`);
  return v;
}

export function bodyFromList(v: Value): TxBody {
  const f = fields(v, TAG_TX, 8, "transaction body");
  const args = f[6]!;
  if (!isList(args)) fail("transaction args: expected an array");
  return {
    chainId: strField(f[1], "transaction chain_id"),
    sender: bytesField(f[2], PUBLIC_KEY_BYTES, "transaction sender"),
    nonce: intField(f[3], "transaction nonce"),
    contract: strField(f[4], "transaction contract"),
    method: strField(f[5], "transaction method"),
    args,
    gasLimit: intField(f[7], "transaction gas_limit", 1n),
  };
}

/** Decode signed-transaction bytes as a node does (size, canonical form, every field rule). */
export function decodeSignedTx(raw: Uint8Array): SignedTx {
  if (raw.length > MAX_TX_BYTES) fail(`signed transaction: ${raw.length} bytes exceeds ${MAX_TX_BYTES}`);
  const v = decode(raw, MAX_TX_BYTES);
  if (!isList(v) || v.length === 0) fail("signed transaction: expected an array");
  let body: TxBody;
  let signature: Uint8Array;
  const cosignatures: [Uint8Array, Uint8Array][] = [];
  if (v[0] === TAG_COSIGNED_TX) {
    const f = fields(v, TAG_COSIGNED_TX, 4, "co-signed transaction");
    body = bodyFromList(f[1]!);
    signature = bytesField(f[2], SIGNATURE_BYTES, "transaction signature");
    const pairs = f[3]!;
    if (!isList(pairs) || pairs.length < 1 || pairs.length > MAX_COSIGNATURES) {
      fail(`transaction cosignatures: expected an array of 1..${MAX_COSIGNATURES} [key, signature] pairs`);
    }
    pairs.forEach((pair, i) => {
      if (!isList(pair) || pair.length !== 2) fail(`transaction cosignature ${i}: expected [key, signature]`);
      const key = bytesField(pair[0], PUBLIC_KEY_BYTES, `transaction cosignature ${i} key`);
      const sig = bytesField(pair[1], SIGNATURE_BYTES, `transaction cosignature ${i} signature`);
      if (equalBytes(key, body.sender)) fail(`transaction cosignature ${i}: the sender may not co-sign`);
      const prev = cosignatures[cosignatures.length - 1];
      if (prev && compareBytes(key, prev[0]) <= 0) fail(`transaction cosignature ${i}: keys must be strictly ascending`);
      cosignatures.push([key, sig]);
    });
  } else if (v[0] === TAG_SIGNED_TX) {
    const f = fields(v, TAG_SIGNED_TX, 3, "signed transaction");
    body = bodyFromList(f[1]!);
    signature = bytesField(f[2], SIGNATURE_BYTES, "transaction signature");
  } else {
    fail("signed transaction: tag must be stx/1 or cstx/1");
  }
  return { body, signature, cosignatures, raw: raw.slice(), txId: txId(body) };
}

/** Whether the sender signature and every co-signature verify (strict ed25519). */
export function verifySignedTx(tx: SignedTx): boolean {
  const bodyRaw = encodeBody(tx.body);
  if (!verifySigned(DOMAIN_TX, tx.body.chainId, tx.body.sender, bodyRaw, tx.signature)) return false;
  return tx.cosignatures.every(([k, s]) => verifySigned(DOMAIN_TX, tx.body.chainId, k, bodyRaw, s));
}

/** `"0x"` + hex of the id, as JSON-RPC names transactions. */
export function txIdHex(tx: SignedTx): string {
  return to0x(tx.txId);
}
