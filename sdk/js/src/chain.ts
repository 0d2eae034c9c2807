/**
 * Headers, receipts, validator sets, commit certificates (docs/protocol.md sections 4 and 7)
 * and the offline checks of what a node answers (section 8): `verifyReceipt`,
 * `verifyStateProof`, `verifyValidatorSets`. They trust nothing but the validator keys
 * given (the genesis set, or a schedule proven from it) and the chain id.
 */

import { equalBytes, fromHex, toHex } from "./bytes.js";
import { DOMAIN_VOTE, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, sha256, verifySigned } from "./crypto.js";
import { decode, encode, type Value, type ValueMap } from "./encoding.js";
import { verifyInclusion } from "./merkle.js";
import { verifyTrieProof } from "./state.js";
import { bytesField, fields, intField, isList, strField, ValidationError } from "./tx.js";
import { DecodeError } from "./encoding.js";

const MAX_BLOCK_BYTES = 16 * 1024 * 1024;
export const MAX_VALIDATORS = 256;
export const MAX_RECEIPT_EVENTS = 256;
const HASH = 32;

export interface BlockHeader {
  chainId: string; height: bigint; prevHash: Uint8Array; timestampMs: bigint; proposer: Uint8Array; view: bigint;
  txRoot: Uint8Array; receiptsRoot: Uint8Array; stateRoot: Uint8Array; validatorSetHash: Uint8Array;
  lastCommitHash: Uint8Array; nextValidatorSetHash: Uint8Array;
}

export function decodeHeader(raw: Uint8Array): BlockHeader {
  const f = fields(decode(raw, MAX_BLOCK_BYTES), "hdr/2", 13, "block header");
  return {
    chainId: strField(f[1], "header chain_id"), height: intField(f[2], "header height"),
    prevHash: bytesField(f[3], HASH, "header prev_hash"), timestampMs: intField(f[4], "header timestamp_ms"),
    proposer: bytesField(f[5], PUBLIC_KEY_BYTES, "header proposer"), view: intField(f[6], "header view"),
    txRoot: bytesField(f[7], HASH, "header tx_root"), receiptsRoot: bytesField(f[8], HASH, "header receipts_root"),
    stateRoot: bytesField(f[9], HASH, "header state_root"), validatorSetHash: bytesField(f[10], HASH, "header validator_set_hash"),
    lastCommitHash: bytesField(f[11], HASH, "header last_commit_hash"),
    nextValidatorSetHash: bytesField(f[12], HASH, "header next_validator_set_hash"),
  };
}

export interface ChainEvent { contract: string; name: string; data: ValueMap }

export interface Receipt {
  txId: Uint8Array;
  /** 0 ok, 1 failed */
  status: 0 | 1;
  gasUsed: bigint;
  returnValue: Value;
  error: string | null;
  events: ChainEvent[];
  /** minor units; 0 for rcpt/1 */
  fee: bigint;
}

export function decodeReceipt(raw: Uint8Array): Receipt {
  const v = decode(raw, MAX_BLOCK_BYTES);
  let f: Value[];
  let fee = 0n;
  if (isList(v) && v[0] === "rcpt/2") {
    f = fields(v, "rcpt/2", 8, "receipt");
    fee = intField(f[7], "receipt fee", 1n);
  } else {
    f = fields(v, "rcpt/1", 7, "receipt");
  }
  const error = f[5]!;
  if (error !== null && typeof error !== "string") throw new DecodeError("receipt error: expected a string or nil");
  const events = f[6]!;
  if (!isList(events) || events.length > MAX_RECEIPT_EVENTS) throw new DecodeError(`receipt events: expected an array of at most ${MAX_RECEIPT_EVENTS}`);
  return {
    txId: bytesField(f[1], HASH, "receipt tx_id"),
    status: Number(intField(f[2], "receipt status", 0n, 1n)) as 0 | 1,
    gasUsed: intField(f[3], "receipt gas_used"),
    returnValue: f[4]!, error,
    events: events.map((e) => {
      const ef = fields(e, "evt/1", 4, "event");
      const data = ef[3]!;
      if (!(data instanceof Map)) throw new DecodeError("event data: expected a map");
      return { contract: strField(ef[1], "event contract"), name: strField(ef[2], "event name"), data };
    }),
    fee,
  };
}

export interface CommitCertificate {
  height: bigint; view: bigint; blockHash: Uint8Array; votes: [Uint8Array, Uint8Array][];
}

export function decodeCertificate(raw: Uint8Array): CommitCertificate {
  const f = fields(decode(raw, MAX_BLOCK_BYTES), "cert/1", 5, "certificate");
  const height = intField(f[1], "certificate height");
  const view = intField(f[2], "certificate view");
  const blockHash = bytesField(f[3], HASH, "certificate block_hash");
  const pairs = f[4]!;
  if (!isList(pairs) || pairs.length > MAX_VALIDATORS) throw new DecodeError(`certificate votes: expected an array of at most ${MAX_VALIDATORS}`);
  const votes = pairs.map((pair, i): [Uint8Array, Uint8Array] => {
    if (!isList(pair) || pair.length !== 2) throw new DecodeError(`certificate vote ${i}: expected [validator, signature]`);
    return [bytesField(pair[0], PUBLIC_KEY_BYTES, `certificate vote ${i} validator`), bytesField(pair[1], SIGNATURE_BYTES, `certificate vote ${i} signature`)];
  });
  return { height, view, blockHash, votes };
}

export function quorumSize(n: number): number {
  return Math.floor((2 * n) / 3) + 1;
}

/** sha256(enc(["vset/1", keys])): order matters. */
export function validatorSetHash(keys: readonly Uint8Array[]): Uint8Array {
  return sha256(encode(["vset/1", [...keys]]));
}

/** The COMMIT vote body a certificate pair stands for. */
export function commitVoteBody(height: bigint, view: bigint, blockHash: Uint8Array, validator: Uint8Array): Uint8Array {
  return encode(["vote/1", 2n, view, height, blockHash, validator]);
}

/** Throws ValidationError unless `cert` certifies (`height`, `blockHash`) for the set `validators`. */
export function verifyCertificate(cert: CommitCertificate, validators: readonly Uint8Array[], chainId: string,
  height?: bigint, blockHash?: Uint8Array): void {
  if (height !== undefined && cert.height !== height) throw new ValidationError(`certificate is for height ${cert.height}, expected ${height}`);
  if (blockHash !== undefined && !equalBytes(cert.blockHash, blockHash)) throw new ValidationError("certificate is for another block");
  const members = new Set(validators.map(toHex));
  const seen = new Set<string>();
  for (const [key, sig] of cert.votes) {
    const k = toHex(key);
    if (!members.has(k)) throw new ValidationError(`certificate vote from ${k.slice(0, 16)}, which is not in the validator set`);
    if (seen.has(k)) throw new ValidationError(`certificate counts validator ${k.slice(0, 16)} twice`);
    seen.add(k);
    if (!verifySigned(DOMAIN_VOTE, chainId, key, commitVoteBody(cert.height, cert.view, cert.blockHash, key), sig)) {
      throw new ValidationError(`certificate vote from ${k.slice(0, 16)} has an invalid signature`);
    }
  }
  const need = quorumSize(validators.length);
  if (seen.size < need) throw new ValidationError(`certificate has ${seen.size} distinct votes, a quorum of ${need} of ${validators.length} is needed`);
}

/** Which validator set certifies which heights: the genesis set, then each proven change. */
export class ValidatorSchedule {
  private constructor(readonly entries: readonly { fromHeight: bigint; keys: readonly Uint8Array[] }[]) {}

  static fixed(keys: readonly Uint8Array[]): ValidatorSchedule {
    return new ValidatorSchedule([{ fromHeight: 1n, keys: [...keys] }]);
  }

  withChange(fromHeight: bigint, keys: readonly Uint8Array[]): ValidatorSchedule {
    const last = this.entries[this.entries.length - 1]!;
    if (fromHeight <= last.fromHeight) throw new ValidationError("validator set changes must be in height order");
    return new ValidatorSchedule([...this.entries, { fromHeight, keys: [...keys] }]);
  }

  at(height: bigint): readonly Uint8Array[] {
    let keys = this.entries[0]!.keys;
    for (const e of this.entries) if (e.fromHeight <= height) keys = e.keys;
    return keys;
  }
}

/** The validator keys trusted for a proof: a proven schedule or one key list. */
export type TrustedValidators = ValidatorSchedule | readonly Uint8Array[];

// --- JSON-RPC answers (the fields the checks read) -----------------------------------

export interface CertificateJson { height: number; view: number; block_hash: string; signers?: string[]; raw: string }

export interface ReceiptAnswer {
  tx_id: string; height: number; index: number; status: "ok" | "failed"; gas_used: number | string;
  fee?: number | string; return_value: unknown; error: string | null; events: unknown[];
  raw: string; block_hash: string;
  proof: { header: unknown; header_raw: string; receipts_size: number; path: string[]; certificate: CertificateJson | null };
}

export interface ProofAnswer {
  key: string; value: string | null; height: number; state_root: string; proof: string;
  header: unknown; header_raw: string | null; certificate: CertificateJson | null;
}

export interface ValidatorsAnswer {
  height: number; validators: string[];
  schedule: { from_height: number; validators: string[]; set_hash: string;
    proof: { height: number; header_raw: string; certificate: CertificateJson | null } | null }[];
}

function checkHeaderAndCert(headerRaw: string | null, cert: CertificateJson | null, validators: TrustedValidators, chainId: string): BlockHeader {
  if (headerRaw === null) throw new ValidationError("the proof carries no header (height 0, the genesis state, is not certified)");
  const raw = fromHex(headerRaw);
  const header = decodeHeader(raw);
  if (header.chainId !== chainId) throw new ValidationError(`header is for chain ${JSON.stringify(header.chainId)}, expected ${JSON.stringify(chainId)}`);
  if (cert === null) throw new ValidationError("the proof carries no certificate");
  const keys = validators instanceof ValidatorSchedule ? validators.at(header.height) : validators;
  if (!equalBytes(header.validatorSetHash, validatorSetHash(keys))) {
    throw new ValidationError(`header ${header.height} names a validator set that is not the one trusted for that height`);
  }
  verifyCertificate(decodeCertificate(fromHex(cert.raw)), keys, chainId, header.height, sha256(raw));
  return header;
}

/**
 * Check a `chain_getReceipt` answer offline: the header is certified by the trusted set,
 * and `raw` is leaf `index` of the header's receipts root. Returns the proven receipt
 * (trust it, not the JSON fields beside it). `expectedTxId` defaults to the answer's.
 */
export function verifyReceipt(answer: ReceiptAnswer, validators: TrustedValidators, chainId: string, expectedTxId?: Uint8Array | string): Receipt {
  const header = checkHeaderAndCert(answer.proof.header_raw, answer.proof.certificate, validators, chainId);
  if (BigInt(answer.height) !== header.height) throw new ValidationError(`the answer says height ${answer.height}, its certified header is ${header.height}`);
  const raw = fromHex(answer.raw);
  const path = answer.proof.path.map(fromHex);
  if (!verifyInclusion(header.receiptsRoot, answer.index, answer.proof.receipts_size, raw, path)) {
    throw new ValidationError("the receipt is not in the certified block's receipts");
  }
  const proven = decodeReceipt(raw);
  const want = expectedTxId === undefined ? fromHex(answer.tx_id) : typeof expectedTxId === "string" ? fromHex(expectedTxId) : expectedTxId;
  if (!equalBytes(proven.txId, want)) throw new ValidationError("the proven receipt is for another transaction");
  return proven;
}

/**
 * Check a `chain_getProof` answer offline; returns the proven value (`null`: proven absent).
 * Pass `expectedKey` (the key you asked for): otherwise a node could prove another key.
 */
export function verifyStateProof(answer: ProofAnswer, validators: TrustedValidators, chainId: string, expectedKey?: Uint8Array): Uint8Array | null {
  const header = checkHeaderAndCert(answer.header_raw, answer.certificate, validators, chainId);
  if (BigInt(answer.height) !== header.height) throw new ValidationError(`the answer says height ${answer.height}, its certified header is ${header.height}`);
  const root = fromHex(answer.state_root);
  if (!equalBytes(root, header.stateRoot)) throw new ValidationError("the proof's state root is not the certified header's");
  const key = fromHex(answer.key);
  if (expectedKey !== undefined && !equalBytes(key, expectedKey)) throw new ValidationError("the proof is for another key");
  const value = answer.value === null ? null : fromHex(answer.value);
  if (!verifyTrieProof(root, key, value, fromHex(answer.proof))) throw new ValidationError("the state proof does not verify against the certified root");
  return value;
}

/**
 * Check a `chain_getValidators` answer from the genesis set: each change is proven by the
 * certified header before it naming the new set as its next. Returns the proven schedule
 * (changes without a proof yet are left out).
 */
export function verifyValidatorSets(answer: ValidatorsAnswer, genesisKeys: readonly Uint8Array[], chainId: string): ValidatorSchedule {
  const entries = answer.schedule;
  const first = entries[0];
  if (!first || first.from_height !== 1 || first.validators.length !== genesisKeys.length
    || !first.validators.every((k, i) => equalBytes(fromHex(k), genesisKeys[i]!))) {
    throw new ValidationError("the schedule does not start with the genesis set at height 1");
  }
  let schedule = ValidatorSchedule.fixed(genesisKeys);
  for (const entry of entries.slice(1)) {
    const start = BigInt(entry.from_height);
    const keys = entry.validators.map(fromHex);
    if (entry.proof === null) break;
    if (BigInt(entry.proof.height) !== start - 1n) throw new ValidationError(`the change at height ${start} is proven by header ${entry.proof.height}, expected ${start - 1n}`);
    const header = checkHeaderAndCert(entry.proof.header_raw, entry.proof.certificate, schedule, chainId);
    if (header.height !== start - 1n || !equalBytes(header.nextValidatorSetHash, validatorSetHash(keys))) {
      throw new ValidationError(`certified header ${header.height} does not name the set claimed from height ${start}`);
    }
    schedule = schedule.withChange(start, keys);
  }
  return schedule;
}
