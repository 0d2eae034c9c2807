/**
 * verifyReceipt, verifyStateProof and verifyValidatorSets on JSON-RPC-shaped answers built
 * from protocol_proofs.json (its header certifies its receipts root and state root), and
 * the ways a node could lie that each must catch.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Client, fromHex, KeySigner, to0x, toHex, ValidationError, ValidatorSchedule, verifyReceipt, verifyStateProof, verifyValidatorSets,
  type ProofAnswer, type ReceiptAnswer, type ValidatorsAnswer,
} from "../src/index.js";
import { readVector } from "./vectors.js";

interface V {
  receipts: { receipts: { index: number; hex: string; proof: string[]; fields: [string, { bytes?: string }][] }[] };
  state: { proofs: { key: string; value: string | null; proof: string }[] };
  chain: { chain_id: string; validators: string[]; header: { hex: string; block_hash: string }; certificate: { hex: string; height: number; view: number; block_hash: string } };
}

const v = readVector<V>("protocol_proofs.json");
const chainId = v.chain.chain_id;
const keys = v.chain.validators.map(fromHex);
const cert = { height: v.chain.certificate.height, view: v.chain.certificate.view, block_hash: "0x" + v.chain.certificate.block_hash, raw: "0x" + v.chain.certificate.hex };

function receiptAnswer(i: number): ReceiptAnswer {
  const r = v.receipts.receipts[i]!;
  return {
    tx_id: "0x" + r.fields[1]![1].bytes!, height: 2, index: r.index, status: "ok", gas_used: 0, fee: 0, return_value: null, error: null,
    events: [], raw: "0x" + r.hex, block_hash: "0x" + v.chain.header.block_hash,
    proof: { header: {}, header_raw: "0x" + v.chain.header.hex, receipts_size: v.receipts.receipts.length, path: r.proof.map((p) => "0x" + p), certificate: cert },
  };
}

function proofAnswer(i: number): ProofAnswer {
  const p = v.state.proofs[i]!;
  return {
    key: "0x" + p.key, value: p.value === null ? null : "0x" + p.value, height: 2, state_root: "0x" + toHex(stateRoot()),
    proof: "0x" + p.proof, header: {}, header_raw: "0x" + v.chain.header.hex, certificate: cert,
  };
}

function stateRoot(): Uint8Array {
  return fromHex(readVector<{ state: { state_root: string } }>("protocol_proofs.json").state.state_root);
}

test("verifyReceipt: every receipt of the certified block proves; each lie is caught", () => {
  for (let i = 0; i < v.receipts.receipts.length; i++) {
    const a = receiptAnswer(i);
    assert.equal(to0x(verifyReceipt(a, keys, chainId).txId), a.tx_id);
    const status = (v.receipts.receipts[i]!.fields[2]![1] as unknown as { int: string }).int;
    assert.equal(verifyReceipt(a, ValidatorSchedule.fixed(keys), chainId, a.tx_id).status, Number(status));
  }
  const a = receiptAnswer(0);
  const other = receiptAnswer(1);
  assert.throws(() => verifyReceipt(a, keys, "another-chain"), ValidationError); // header of another chain
  assert.throws(() => verifyReceipt(a, keys.slice(1), chainId), ValidationError); // not the trusted set
  assert.throws(() => verifyReceipt(a, keys, chainId, other.tx_id), ValidationError); // asked for another tx
  assert.throws(() => verifyReceipt({ ...a, index: 1 }, keys, chainId), ValidationError); // wrong leaf position
  assert.throws(() => verifyReceipt({ ...a, height: 3 }, keys, chainId), ValidationError); // a height the header does not have
  assert.throws(() => verifyReceipt({ ...a, raw: other.raw }, keys, chainId), ValidationError); // another receipt
  assert.throws(() => verifyReceipt({ ...a, proof: { ...a.proof, certificate: null } }, keys, chainId), ValidationError);
  // a certificate signed by keys outside the set (a node's own quorum) does not count
  const strangers = [1, 2, 3, 4].map((n) => KeySigner.fromHex(n.toString(16).padStart(2, "0").repeat(32)).publicKeyBytes);
  assert.throws(() => verifyReceipt(a, strangers, chainId), ValidationError);
  // a header changed by one byte no longer matches its certificate
  const h = fromHex(a.proof.header_raw);
  h[h.length - 1] = h[h.length - 1]! ^ 1;
  assert.throws(() => verifyReceipt({ ...a, proof: { ...a.proof, header_raw: to0x(h) } }, keys, chainId), ValidationError);
});

test("verifyStateProof: presence and absence under the certified root; a swapped value or root is caught", () => {
  for (let i = 0; i < v.state.proofs.length; i++) {
    const a = proofAnswer(i);
    const got = verifyStateProof(a, keys, chainId, fromHex(a.key));
    assert.equal(got === null ? null : to0x(got), a.value);
  }
  const present = proofAnswer(v.state.proofs.findIndex((p) => p.value !== null));
  const absent = proofAnswer(v.state.proofs.findIndex((p) => p.value === null));
  assert.throws(() => verifyStateProof({ ...present, value: "0x00" }, keys, chainId), ValidationError);
  assert.throws(() => verifyStateProof({ ...present, value: null }, keys, chainId), ValidationError);
  assert.throws(() => verifyStateProof({ ...absent, value: "0x01" }, keys, chainId), ValidationError);
  assert.throws(() => verifyStateProof({ ...present, state_root: "0x" + "00".repeat(32) }, keys, chainId), ValidationError);
  assert.throws(() => verifyStateProof(present, keys, chainId, fromHex("ffff")), ValidationError); // proof of another key
  assert.throws(() => verifyStateProof({ ...present, height: 1 }, keys, chainId), ValidationError); // another height
  assert.throws(() => verifyStateProof({ ...present, header_raw: null, certificate: null }, keys, chainId), ValidationError);
});

test("verifyValidatorSets: a change is proven by the certified header naming it; false claims are refused", () => {
  const set = v.chain.validators.map((k) => "0x" + k);
  const answer = (claimed: string[], proofHeight = 2): ValidatorsAnswer => ({
    height: 5, validators: claimed,
    schedule: [
      { from_height: 1, validators: set, set_hash: "", proof: null },
      { from_height: 3, validators: claimed, set_hash: "", proof: { height: proofHeight, header_raw: "0x" + v.chain.header.hex, certificate: cert } },
    ],
  });
  // header 2 names the same set as the next one: a proven (no-op) change from height 3
  const schedule = verifyValidatorSets(answer(set), keys, chainId);
  assert.deepEqual(schedule.at(3n).map(toHex), v.chain.validators);
  assert.equal(schedule.entries.length, 2);
  assert.throws(() => verifyValidatorSets(answer(set.slice(0, 3)), keys, chainId), ValidationError); // header names another set
  assert.throws(() => verifyValidatorSets(answer(set, 1), keys, chainId), ValidationError); // proof of the wrong height
  assert.throws(() => verifyValidatorSets(answer(set), keys.slice().reverse(), chainId), ValidationError); // not our genesis
  const unproven = answer(set);
  unproven.schedule[1]!.proof = null;
  assert.equal(verifyValidatorSets(unproven, keys, chainId).entries.length, 1); // not proven yet: left out
});

test("Client.provenValue refuses a node that proves another key or another height than asked", async () => {
  const a = proofAnswer(0);
  const fake = (async () => new Response(JSON.stringify({ jsonrpc: "2.0", id: 1, result: a }))) as unknown as typeof fetch;
  const client = new Client("http://node", { chainId, fetch: fake });
  const got = await client.provenValue(fromHex(a.key), keys, 2);
  assert.equal(got.value === null ? null : to0x(got.value), a.value);
  await assert.rejects(client.provenValue(fromHex("ffffff"), keys, 2), ValidationError);
  await assert.rejects(client.provenValue(fromHex(a.key), keys, 3), ValidationError);
});
