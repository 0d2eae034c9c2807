/** Reading the shared vectors of tests/vectors (typed JSON values, docs/protocol.md "Test vectors"). */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex, type Value } from "../src/index.js";

/** tests/vectors of the repository (this file runs from sdk/js/dist/test), or $SHOPCHAIN_VECTORS. */
export const VECTORS = process.env.SHOPCHAIN_VECTORS ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "tests", "vectors");

export function readVector<T>(name: string): T {
  return JSON.parse(readFileSync(join(VECTORS, name), "utf8")) as T;
}

export type Typed =
  | { int: string } | { bytes: string } | { str: string } | { bool: boolean } | { nil: null }
  | { list: Typed[] } | { map: [string, Typed][] };

export function typed(t: Typed): Value {
  if ("int" in t) return BigInt(t.int);
  if ("bytes" in t) return fromHex(t.bytes);
  if ("str" in t) return t.str;
  if ("bool" in t) return t.bool;
  if ("nil" in t) return null;
  if ("list" in t) return t.list.map(typed);
  if ("map" in t) return new Map(t.map.map(([k, v]) => [k, typed(v)] as [string, Value]));
  throw new Error(`not a typed value: ${JSON.stringify(t)}`);
}

/** A structure's field list `[[name, typed], ...]` as the array of its values. */
export function fieldList(fields: [string, Typed][]): Value[] {
  return fields.map(([, v]) => typed(v));
}

/** Deep equality of canonical values (bytes by content, maps by entries). */
export function sameValue(a: Value, b: Value): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]!));
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k)!)) return false;
    return true;
  }
  return a === b;
}
