/** The RFC 6962 Merkle tree of transactions and receipts (docs/protocol.md section 5). */

import { concat, equalBytes } from "./bytes.js";
import { sha256 } from "./crypto.js";

export const MAX_PROOF_HASHES = 64;

export function leafHash(d: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(0), d));
}

export function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(1), l, r));
}

/** MTH over `leaves` (sha256 of nothing for no leaves). */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array());
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

/** True iff `leaf` is item `index` of `size` items under `root` with sibling `path` (RFC 9162 2.1.3.2). */
export function verifyInclusion(root: Uint8Array, index: number, size: number, leaf: Uint8Array, path: readonly Uint8Array[]): boolean {
  if (path.length > MAX_PROOF_HASHES) return false;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (path.some((h) => h.length !== 32)) return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leafHash(leaf);
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(r, root);
}
