/**
 * Hashes, keys, signers and strict ed25519 verification (docs/protocol.md section 2).
 *
 * Verification agrees with libsodium's crypto_sign_open, which the node uses: it refuses
 * a non-canonical S (S >= L), a public key that is not a canonical encoding, a public key
 * or R of small order (libsodium's list, sign bit ignored), and any R that is not the
 * canonical encoding of [S]B - [k]A (so a non-canonical R never verifies). It is written
 * here on @noble/ed25519's point arithmetic rather than with its `verify`, whose rules
 * differ (ZIP-215, or RFC 8032 without the small-order checks).
 */

import * as ed from "@noble/ed25519";
import { sha256 as nobleSha256, sha512 } from "@noble/hashes/sha2.js";
import { concat, fromHex, utf8 } from "./bytes.js";

ed.hashes.sha512 = sha512;

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const SEED_BYTES = 32;

export const DOMAIN_TX = "shopchain/tx/v1";
export const DOMAIN_VOTE = "shopchain/vote/v1";
export const DOMAIN_CONSENSUS = "shopchain/consensus/v1";
export const DOMAIN_HANDSHAKE = "shopchain/p2p-handshake/v1";

/** The group order L. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/**
 * Anything that signs: a key in memory (`KeySigner`), a hardware wallet, a remote signing
 * service. It is handed the full signing payload (domain, chain id, body) and returns a
 * 64-byte ed25519 signature of exactly those bytes.
 */
export interface Signer {
  publicKey(): Promise<Uint8Array>;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A Signer holding a 32-byte ed25519 seed (RFC 8032 private key) in memory. */
export class KeySigner implements Signer {
  readonly #seed: Uint8Array;
  readonly #publicKey: Uint8Array;

  constructor(seed: Uint8Array) {
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
      throw new TypeError(`an ed25519 seed is ${SEED_BYTES} bytes`);
    }
    this.#seed = seed.slice();
    this.#publicKey = ed.getPublicKey(this.#seed);
  }

  static fromHex(seedHex: string): KeySigner {
    return new KeySigner(fromHex(seedHex));
  }

  /** A new random key (crypto.getRandomValues). */
  static generate(): KeySigner {
    return new KeySigner(crypto.getRandomValues(new Uint8Array(SEED_BYTES)));
  }

  /** The public key, synchronously (also what `publicKey()` resolves to). */
  get publicKeyBytes(): Uint8Array {
    return this.#publicKey.slice();
  }

  async publicKey(): Promise<Uint8Array> {
    return this.#publicKey.slice();
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return ed.sign(message, this.#seed);
  }

  /** The signature of `message`, synchronously (deterministic, RFC 8032). */
  signSync(message: Uint8Array): Uint8Array {
    return ed.sign(message, this.#seed);
  }
}

/** `domain || u8(len(utf8(chain_id))) || utf8(chain_id) || payload`; the chain id is 1..64 UTF-8 bytes. */
export function signingPayload(domain: string, chainId: string, payload: Uint8Array): Uint8Array {
  const cid = utf8(chainId);
  if (cid.length < 1 || cid.length > 64) throw new RangeError(`chain id must be 1..64 UTF-8 bytes, found ${cid.length}`);
  return concat(utf8(domain), Uint8Array.of(cid.length), cid, payload);
}

// libsodium ge25519_has_small_order: these encodings, compared with the sign bit cleared.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(fromHex);

function hasSmallOrder(p: Uint8Array): boolean {
  return SMALL_ORDER.some((bad) => {
    for (let i = 0; i < 31; i++) if (p[i] !== bad[i]) return false;
    return (p[31]! & 0x7f) === bad[31];
  });
}

/** y < p for a point encoding (the sign bit aside): libsodium ge25519_is_canonical. */
function isCanonicalPoint(p: Uint8Array): boolean {
  const y = leInt(p) & ((1n << 255n) - 1n);
  return y < 2n ** 255n - 19n;
}

function leInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** Strict ed25519 verification, as the node's libsodium crypto_sign_open decides. Never throws. */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
    const rBytes = signature.subarray(0, 32);
    const s = leInt(signature.subarray(32, 64));
    if (s >= L || hasSmallOrder(rBytes)) return false;
    if (!isCanonicalPoint(publicKey) || hasSmallOrder(publicKey)) return false;
    const a = ed.Point.fromBytes(publicKey, false);
    const k = leInt(sha512(concat(rBytes, publicKey, message))) % L;
    const check = ed.Point.BASE.multiply(s, false).subtract(a.multiply(k, false));
    const encoded = check.toBytes();
    for (let i = 0; i < 32; i++) if (encoded[i] !== rBytes[i]) return false;
    return true;
  } catch {
    return false;
  }
}

/** Verify `signature` over `signingPayload(domain, chainId, payload)`. */
export function verifySigned(domain: string, chainId: string, publicKey: Uint8Array, payload: Uint8Array, signature: Uint8Array): boolean {
  let message: Uint8Array;
  try {
    message = signingPayload(domain, chainId, payload);
  } catch {
    return false;
  }
  return verifyEd25519(publicKey, message, signature);
}
