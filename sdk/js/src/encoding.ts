/**
 * The canonical encoding (docs/protocol.md section 1): a restricted MessagePack in which
 * every value has exactly one encoding.
 *
 * Hand-written rather than built on a general MessagePack library: the canonical form
 * needs the shortest integer in the unsigned family for every non-negative value up to
 * 2^64 - 1 (a general library encodes BigInt as int64/uint64 always), bin for bytes,
 * map keys sorted by their UTF-8 bytes, and a decoder that refuses every other form.
 * The decoder parses with the limits and then re-encodes and compares, as the node does.
 */

import { compareBytes, equalBytes, fromUtf8, utf8 } from "./bytes.js";

/** A decoded canonical value. Integers are always bigint; maps are `Map`s with text keys. */
export type Value = bigint | Uint8Array | string | boolean | null | Value[] | ValueMap;
export type ValueMap = Map<string, Value>;

/**
 * What `encode` takes: a Value, or for convenience a safe-integer `number` (never a
 * fraction) and a plain object standing for a map.
 */
export type Encodable =
  | bigint
  | number
  | Uint8Array
  | string
  | boolean
  | null
  | readonly Encodable[]
  | ReadonlyMap<string, Encodable>
  | { readonly [key: string]: Encodable };

export const MIN_INT = -(2n ** 63n);
export const MAX_INT = 2n ** 64n - 1n;
export const MAX_ITEM_BYTES = 8 * 1024 * 1024;
export const MAX_CONTAINER_LEN = 100_000;
export const MAX_DEPTH = 32;
export const MAX_ENCODED_BYTES = 16 * 1024 * 1024;

export class EncodeError extends Error {
  override name = "EncodeError";
}

export class DecodeError extends Error {
  override name = "DecodeError";
}

class Writer {
  private buf = new Uint8Array(256);
  size = 0;

  private room(n: number): void {
    if (this.size + n > MAX_ENCODED_BYTES) throw new EncodeError(`encoding exceeds ${MAX_ENCODED_BYTES} bytes`);
    if (this.size + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.size + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.size));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.size++] = b;
  }

  bytes(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.size);
    this.size += data.length;
  }

  /** `code` then `value` as a big-endian unsigned integer of `width` bytes. */
  head(code: number, value: bigint | number, width: 1 | 2 | 4 | 8): void {
    this.byte(code);
    let v = BigInt(value);
    const out = new Uint8Array(width);
    for (let i = width - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.bytes(out);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.size);
  }
}

function writeInt(w: Writer, n: bigint): void {
  if (n < MIN_INT || n > MAX_INT) {
    throw new EncodeError(`integer ${n} outside the range [${MIN_INT}, ${MAX_INT}]`);
  }
  if (n >= 0n) {
    if (n <= 127n) w.byte(Number(n));
    else if (n <= 0xffn) w.head(0xcc, n, 1);
    else if (n <= 0xffffn) w.head(0xcd, n, 2);
    else if (n <= 0xffffffffn) w.head(0xce, n, 4);
    else w.head(0xcf, n, 8);
    return;
  }
  if (n >= -32n) w.byte(Number(n + 256n));
  else if (n >= -128n) w.head(0xd0, n + 0x100n, 1);
  else if (n >= -32768n) w.head(0xd1, n + 0x10000n, 2);
  else if (n >= -(2n ** 31n)) w.head(0xd2, n + 0x100000000n, 4);
  else w.head(0xd3, n + 2n ** 64n, 8);
}

function writeLength(w: Writer, n: number, fix: number | null, fixMax: number, c8: number | null, c16: number, c32: number): void {
  if (fix !== null && n <= fixMax) w.byte(fix + n);
  else if (c8 !== null && n <= 0xff) w.head(c8, n, 1);
  else if (n <= 0xffff) w.head(c16, n, 2);
  else w.head(c32, n, 4);
}

function isPlainObject(v: object): v is { readonly [key: string]: Encodable } {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function mapEntries(v: ReadonlyMap<string, Encodable> | { readonly [key: string]: Encodable }): [string, Encodable][] {
  if (v instanceof Map) {
    const out: [string, Encodable][] = [];
    for (const [k, x] of v as ReadonlyMap<unknown, Encodable>) {
      if (typeof k !== "string") throw new EncodeError(`map keys must be text strings, found ${typeof k}`);
      out.push([k, x]);
    }
    return out;
  }
  return Object.entries(v as { readonly [key: string]: Encodable });
}

function writeValue(w: Writer, v: Encodable, depth: number): void {
  if (depth > MAX_DEPTH) throw new EncodeError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (v === null) return w.byte(0xc0);
  switch (typeof v) {
    case "boolean":
      return w.byte(v ? 0xc3 : 0xc2);
    case "bigint":
      return writeInt(w, v);
    case "number":
      if (!Number.isSafeInteger(v)) throw new EncodeError(`numbers must be safe integers (use bigint), found ${v}`);
      return writeInt(w, BigInt(v));
    case "string": {
      const data = utf8(v);
      if (data.length > MAX_ITEM_BYTES) throw new EncodeError(`text string of ${data.length} UTF-8 bytes exceeds ${MAX_ITEM_BYTES}`);
      writeLength(w, data.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return w.bytes(data);
    }
    case "object":
      break;
    default:
      throw new EncodeError(`no canonical encoding for a ${typeof v}`);
  }
  if (v instanceof Uint8Array) {
    if (v.length > MAX_ITEM_BYTES) throw new EncodeError(`byte string of ${v.length} bytes exceeds ${MAX_ITEM_BYTES}`);
    writeLength(w, v.length, null, 0, 0xc4, 0xc5, 0xc6);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    const items = v as readonly Encodable[];
    if (items.length > MAX_CONTAINER_LEN) throw new EncodeError(`array of ${items.length} items exceeds ${MAX_CONTAINER_LEN}`);
    writeLength(w, items.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of items) writeValue(w, item, depth + 1);
    return;
  }
  if (v instanceof Map || isPlainObject(v)) {
    const entries = mapEntries(v as ReadonlyMap<string, Encodable>).map(([k, x]) => [utf8(k), k, x] as const);
    if (entries.length > MAX_CONTAINER_LEN) throw new EncodeError(`map of ${entries.length} entries exceeds ${MAX_CONTAINER_LEN}`);
    entries.sort((a, b) => compareBytes(a[0], b[0]));
    writeLength(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [key, text, item] of entries) {
      if (key.length > MAX_ITEM_BYTES) throw new EncodeError(`map key of ${key.length} UTF-8 bytes exceeds ${MAX_ITEM_BYTES}`);
      writeValue(w, text, depth + 1);
      writeValue(w, item, depth + 1);
    }
    return;
  }
  throw new EncodeError(`no canonical encoding for ${Object.prototype.toString.call(v)}`);
}

/** The canonical bytes of `value`; throws EncodeError when it has none. */
export function encode(value: Encodable): Uint8Array {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

class Reader {
  at = 0;
  constructor(readonly data: Uint8Array) {}

  need(n: number): void {
    if (this.at + n > this.data.length) throw new DecodeError(`truncated: ${n} more bytes needed at offset ${this.at}`);
  }

  byte(): number {
    this.need(1);
    return this.data[this.at++]!;
  }

  uint(width: number): bigint {
    this.need(width);
    let v = 0n;
    for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(this.data[this.at + i]!);
    this.at += width;
    return v;
  }

  take(n: number): Uint8Array {
    this.need(n);
    const out = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

function itemLength(n: bigint, what: string): number {
  if (n > BigInt(MAX_ITEM_BYTES)) throw new DecodeError(`${what} of ${n} bytes exceeds ${MAX_ITEM_BYTES}`);
  return Number(n);
}

function containerLength(r: Reader, n: bigint, what: string): number {
  if (n > BigInt(MAX_CONTAINER_LEN)) throw new DecodeError(`${what} of ${n} exceeds ${MAX_CONTAINER_LEN}`);
  // every item takes at least one byte: refuse a length the remaining input cannot hold
  if (n > BigInt(r.data.length - r.at)) throw new DecodeError(`truncated ${what}`);
  return Number(n);
}

function readValue(r: Reader, depth: number): Value {
  if (depth > MAX_DEPTH) throw new DecodeError(`value nested deeper than ${MAX_DEPTH} levels`);
  const c = r.byte();
  if (c <= 0x7f) return BigInt(c);
  if (c >= 0xe0) return BigInt(c) - 256n;
  if (c >= 0xa0 && c <= 0xbf) return readStr(r, c - 0xa0);
  if (c >= 0x90 && c <= 0x9f) return readArray(r, c - 0x90, depth);
  if (c >= 0x80 && c <= 0x8f) return readMap(r, c - 0x80, depth);
  switch (c) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(itemLength(r.uint(1), "byte string")).slice();
    case 0xc5: return r.take(itemLength(r.uint(2), "byte string")).slice();
    case 0xc6: return r.take(itemLength(r.uint(4), "byte string")).slice();
    case 0xcc: return r.uint(1);
    case 0xcd: return r.uint(2);
    case 0xce: return r.uint(4);
    case 0xcf: return r.uint(8);
    case 0xd0: return signed(r.uint(1), 8n);
    case 0xd1: return signed(r.uint(2), 16n);
    case 0xd2: return signed(r.uint(4), 32n);
    case 0xd3: return signed(r.uint(8), 64n);
    case 0xd9: return readStr(r, Number(r.uint(1)));
    case 0xda: return readStr(r, Number(r.uint(2)));
    case 0xdb: return readStr(r, itemLength(r.uint(4), "text string"));
    case 0xdc: return readArray(r, containerLength(r, r.uint(2), "array"), depth);
    case 0xdd: return readArray(r, containerLength(r, r.uint(4), "array"), depth);
    case 0xde: return readMap(r, containerLength(r, r.uint(2), "map"), depth);
    case 0xdf: return readMap(r, containerLength(r, r.uint(4), "map"), depth);
    default:
      throw new DecodeError(`type byte 0x${c.toString(16)} is not part of the canonical encoding`);
  }
}

function signed(u: bigint, bits: bigint): bigint {
  return u >= 1n << (bits - 1n) ? u - (1n << bits) : u;
}

function readStr(r: Reader, n: number): string {
  if (n > MAX_ITEM_BYTES) throw new DecodeError(`text string of ${n} bytes exceeds ${MAX_ITEM_BYTES}`);
  try {
    return fromUtf8(r.take(n));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError("text string is not valid UTF-8");
  }
}

function readArray(r: Reader, n: number, depth: number): Value[] {
  const out: Value[] = [];
  for (let i = 0; i < n; i++) out.push(readValue(r, depth + 1));
  return out;
}

function readMap(r: Reader, n: number, depth: number): ValueMap {
  const out: ValueMap = new Map();
  for (let i = 0; i < n; i++) {
    const key = readValue(r, depth + 1);
    if (typeof key !== "string") throw new DecodeError("map keys must be text strings");
    if (out.has(key)) throw new DecodeError(`map key ${JSON.stringify(key)} repeated`);
    out.set(key, readValue(r, depth + 1));
  }
  return out;
}

/**
 * The value of canonical bytes. Refuses (DecodeError) empty or truncated input, trailing
 * bytes, types outside the encoding, invalid UTF-8, non-shortest forms, unsorted or
 * repeated map keys and anything over a limit.
 */
export function decode(data: Uint8Array, maxSize: number = MAX_ENCODED_BYTES): Value {
  if (data.length === 0) throw new DecodeError("no value: empty input");
  if (data.length > Math.min(maxSize, MAX_ENCODED_BYTES)) throw new DecodeError(`${data.length} bytes exceeds the limit of ${Math.min(maxSize, MAX_ENCODED_BYTES)}`);
  const r = new Reader(data);
  const value = readValue(r, 0);
  if (r.at !== data.length) throw new DecodeError(`${data.length - r.at} bytes after the value`);
  let again: Uint8Array;
  try {
    again = encode(value);
  } catch (e) {
    throw new DecodeError(`not canonical: ${(e as Error).message}`);
  }
  if (!equalBytes(again, data)) throw new DecodeError("not canonical: a shorter form or another key order exists");
  return value;
}

