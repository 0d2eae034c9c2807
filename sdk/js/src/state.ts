/** State trie proofs (docs/protocol.md section 6) and contract storage keys. */

import { concat, equalBytes, toHex, utf8 } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { decode, encode, type Value } from "./encoding.js";

export const MAX_STATE_KEY_BYTES = 1024;
export const MAX_STATE_VALUE_BYTES = 1024 * 1024;
const MAX_PATH_NIBBLES = 2 * MAX_STATE_KEY_BYTES;
const MAX_PROOF_NODES = MAX_PATH_NIBBLES + 2;

/** Root of the trie with no keys: sha256(02 || "shopchain/state/empty/v1"). */
export const EMPTY_ROOT = sha256(concat(Uint8Array.of(2), utf8("shopchain/state/empty/v1")));

export function stateLeafHash(key: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(0, key.length >> 8, key.length & 0xff), key, valueHash));
}

function isHashSlot(v: Value | undefined): v is Uint8Array {
  return v instanceof Uint8Array && (v.length === 32 || v.length === 0);
}

function isBranch(node: Value): node is [bigint, string, Uint8Array, Uint8Array[], Uint8Array[]] {
  if (!Array.isArray(node) || node.length !== 5) return false;
  const [kind, path, here, children, leafKeys] = node;
  if (kind !== 1n || typeof path !== "string" || path.length > MAX_PATH_NIBBLES || !/^[0-9a-f]*$/.test(path)) return false;
  if (!isHashSlot(here)) return false;
  if (!Array.isArray(children) || children.length !== 16 || !children.every(isHashSlot)) return false;
  if (!Array.isArray(leafKeys) || leafKeys.length !== 16) return false;
  return leafKeys.every((k, i) => k instanceof Uint8Array && k.length <= MAX_STATE_KEY_BYTES && !(k.length > 0 && (children[i] as Uint8Array).length === 0));
}

function isProofLeaf(node: Value): node is [bigint, Uint8Array, Uint8Array] {
  if (!Array.isArray(node) || node.length !== 3) return false;
  const [kind, key, vh] = node;
  return kind === 0n && key instanceof Uint8Array && key.length >= 1 && key.length <= MAX_STATE_KEY_BYTES
    && vh instanceof Uint8Array && vh.length === 32;
}

/**
 * True iff `proof` (the decoded array, or its canonical encoding) shows that under `root`
 * `key` maps to `value` (`null`: that `key` is absent). Never throws.
 */
export function verifyTrieProof(root: Uint8Array, key: Uint8Array, value: Uint8Array | null, proof: Value | Uint8Array): boolean {
  try {
    return verifyTrie(root, key, value, proof);
  } catch {
    return false;
  }
}

function verifyTrie(root: Uint8Array, key: Uint8Array, value: Uint8Array | null, proofIn: Value | Uint8Array): boolean {
  if (root.length !== 32 || key.length < 1 || key.length > MAX_STATE_KEY_BYTES) return false;
  if (value !== null && value.length > MAX_STATE_VALUE_BYTES) return false;
  const proof = proofIn instanceof Uint8Array ? decode(proofIn) : proofIn;
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_NODES) return false;
  if (equalBytes(root, EMPTY_ROOT)) return proof.length === 0 && value === null;
  const nibbles = toHex(key);
  let depth = 0;
  let expected: Uint8Array = root;
  for (let i = 0; i < proof.length; i++) {
    const node = proof[i]!;
    const last = i === proof.length - 1;
    if (isProofLeaf(node)) {
      if (!last || !equalBytes(stateLeafHash(node[1], node[2]), expected)) return false;
      if (equalBytes(node[1], key)) return value !== null && equalBytes(sha256(value), node[2]);
      return value === null && toHex(node[1]).startsWith(nibbles.slice(0, depth));
    }
    if (!isBranch(node) || !equalBytes(sha256(concat(Uint8Array.of(1), encode(node))), expected)) return false;
    const path = node[1];
    if (!nibbles.startsWith(path, depth)) return last && value === null;
    depth += path.length;
    if (depth === nibbles.length) {
      expected = node[2];
    } else {
      expected = node[3][parseInt(nibbles[depth]!, 16)]!;
      depth += 1;
    }
    if (expected.length === 0) return last && value === null;
    if (last) return false;
  }
  return false;
}

/** A storage key part, as the VM's order-preserving key encoding writes it. */
export type KeyPart = { int: bigint | number } | { bytes: Uint8Array } | { str: string };

function escape(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (const b of data) {
    out.push(b);
    if (b === 0) out.push(0xff);
  }
  out.push(0, 1);
  return Uint8Array.from(out);
}

function keyPart(part: KeyPart): Uint8Array {
  if ("int" in part) {
    const n = BigInt(part.int);
    if (n < -(2n ** 63n) || n >= 2n ** 63n) throw new RangeError(`an int key part is a VM int (-2^63..2^63-1), found ${n}`);
    let v = n + 2n ** 63n;
    const out = new Uint8Array(9);
    out[0] = 2;
    for (let i = 8; i >= 1; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
    return out;
  }
  if ("bytes" in part) return concat(Uint8Array.of(3), escape(part.bytes));
  return concat(Uint8Array.of(4), escape(utf8(part.str)));
}

/**
 * The state key of one contract storage entry (`chain_getProof` proves it):
 * `c/<contract>/<variable>/` and the key parts, e.g. the ledger balance of an account is
 * `storageStateKey("ledger", "balances", { bytes: account })`. The parts must match the
 * variable's key types in the contract's ABI.
 */
export function storageStateKey(contract: string, variable: string, ...parts: KeyPart[]): Uint8Array {
  const key = concat(utf8(`c/${contract}/${variable}/`), ...parts.map(keyPart));
  if (key.length > MAX_STATE_KEY_BYTES) throw new RangeError(`state key of ${key.length} bytes exceeds ${MAX_STATE_KEY_BYTES}`);
  return key;
}
