/** Every vector of tests/vectors/protocol_{encoding,transactions,proofs}.json, accepted and rejected. */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  assembleSignedTx, bodyFromList, decode, DecodeError, decodeCertificate, decodeHeader, decodeReceipt, decodeSignedTx,
  DOMAIN_CONSENSUS, DOMAIN_HANDSHAKE, DOMAIN_TX, DOMAIN_VOTE, EMPTY_ROOT, encode, EncodeError, encodeBody, fromHex,
  KeySigner, merkleRoot, MAX_INT, MIN_INT, quorumSize, sha256, signingPayload, signTx, toHex, txId, txSigningPayload,
  utf8, validatorSetHash, verifyCertificate, verifyEd25519, verifyInclusion, verifySignedTx, verifyTrieProof, ValidationError,
  type Value,
} from "../src/index.js";
import { fieldList, readVector, sameValue, typed, type Typed } from "./vectors.js";

const hex = (b: Uint8Array): string => toHex(b);

interface EncodingVectors {
  limits: { MIN_INT: string; MAX_INT: string; MAX_DEPTH: number; MAX_ITEM_BYTES: number; MAX_CONTAINER_LEN: number; MAX_ENCODED_BYTES: number };
  accepted: { name: string; value: Typed; hex: string }[];
  rejected_decode: { name: string; hex: string; error: string }[];
  rejected_encode: { name: string; value: Typed; error: string }[];
}

test("encoding: limits, every accepted value both ways, every rejected input and value", () => {
  const v = readVector<EncodingVectors>("protocol_encoding.json");
  assert.equal(BigInt(v.limits.MIN_INT), MIN_INT);
  assert.equal(BigInt(v.limits.MAX_INT), MAX_INT);
  assert.ok(v.accepted.length >= 50);
  for (const c of v.accepted) {
    const value = typed(c.value);
    assert.equal(hex(encode(value)), c.hex, `encode ${c.name}`);
    assert.ok(sameValue(decode(fromHex(c.hex)), value), `decode ${c.name}`);
  }
  for (const c of v.rejected_decode) {
    assert.throws(() => decode(fromHex(c.hex)), DecodeError, `decode must refuse: ${c.name}`);
  }
  for (const c of v.rejected_encode) {
    assert.throws(() => encode(typed(c.value)), EncodeError, `encode must refuse: ${c.name}`);
  }
});

test("encoding: map keys sort by UTF-8 bytes, not by JavaScript's UTF-16 order; no floats; bool is not int", () => {
  const astral = "\u{10000}"; // f0 90 80 80, sorts after U+E000 (ee 80 80) by bytes, before it in UTF-16
  const pua = "\uE000";
  assert.ok(astral < pua); // what JavaScript's < says
  const bytes = encode(new Map<string, Value>([[astral, 1n], [pua, 2n]]));
  assert.equal(hex(bytes), "82" + "a3ee8080" + "02" + "a4f0908080" + "01");
  assert.equal(hex(encode({ b: 1, aa: 2 })), "82a2616102a16201");
  assert.throws(() => encode(1.5), EncodeError);
  assert.equal(hex(encode(true)), "c3");
  assert.equal(hex(encode(2n ** 64n - 1n)), "cfffffffffffffffff");
  assert.equal(hex(encode(-(2n ** 63n))), "d38000000000000000");
  assert.equal(hex(encode(new Uint8Array())), "c400");
  assert.throws(() => decode(fromHex("cb3ff0000000000000")), DecodeError); // float64
});

interface TxVectors {
  domains: { name: string; tag: string; tag_hex: string }[];
  transactions: {
    name: string; sender_seed: string; sender_public_key: string; body: [string, Typed][]; body_hex: string; tx_id: string;
    signing_payload_hex: string; signature: string; cosignatures: { seed: string; public_key: string; signature: string }[];
    signed_tag: string; signed_hex: string;
  }[];
  rejected: { name: string; hex: string; stage: "decode" | "verify"; error: string }[];
}

test("transactions: domains, bodies, ids, signing payloads, signatures and signed forms byte for byte", async () => {
  const v = readVector<TxVectors>("protocol_transactions.json");
  const domains = new Map(v.domains.map((d) => [d.name, d]));
  for (const [name, tag] of [["DOMAIN_TX", DOMAIN_TX], ["DOMAIN_VOTE", DOMAIN_VOTE], ["DOMAIN_CONSENSUS", DOMAIN_CONSENSUS], ["DOMAIN_HANDSHAKE", DOMAIN_HANDSHAKE]] as const) {
    assert.equal(domains.get(name)?.tag, tag);
    assert.equal(domains.get(name)?.tag_hex, hex(utf8(tag)));
  }
  assert.equal(v.transactions.length, 5);
  for (const t of v.transactions) {
    const signer = KeySigner.fromHex(t.sender_seed);
    assert.equal(hex(await signer.publicKey()), t.sender_public_key, t.name);
    const body = bodyFromList(fieldList(t.body));
    assert.equal(hex(encodeBody(body)), t.body_hex, t.name);
    assert.equal(hex(txId(body)), t.tx_id, t.name);
    assert.equal(hex(txSigningPayload(body)), t.signing_payload_hex, t.name);
    const cosigners = t.cosignatures.map((c) => KeySigner.fromHex(c.seed));
    const signed = await signTx(body, signer, cosigners);
    assert.equal(hex(signed.signature), t.signature, t.name);
    assert.equal(hex(signed.raw), t.signed_hex, t.name);
    for (const [i, c] of t.cosignatures.entries()) {
      assert.equal(hex(signed.cosignatures[i]![0]), c.public_key);
      assert.equal(hex(signed.cosignatures[i]![1]), c.signature);
    }
    // the offline path: payload to an external signer, then assemble
    const external = await signer.sign(txSigningPayload(body));
    const offline = assembleSignedTx(body, external, await Promise.all(cosigners.map(async (c) => [await c.publicKey(), await c.sign(txSigningPayload(body))] as [Uint8Array, Uint8Array])));
    assert.equal(hex(offline.raw), t.signed_hex);
    const decoded = decodeSignedTx(fromHex(t.signed_hex));
    assert.equal(hex(decoded.txId), t.tx_id);
    assert.equal(decoded.raw[0], t.signed_tag === "stx/1" ? 0x93 : 0x94);
    assert.equal(decoded.cosignatures.length, t.cosignatures.length);
    assert.ok(verifySignedTx(decoded), t.name);
  }
});

test("transactions: every rejected vector fails at its stage (decode before any signature, or verify)", () => {
  const v = readVector<TxVectors>("protocol_transactions.json");
  assert.ok(v.rejected.some((r) => r.stage === "verify") && v.rejected.some((r) => r.stage === "decode"));
  for (const r of v.rejected) {
    if (r.stage === "decode") {
      assert.throws(() => decodeSignedTx(fromHex(r.hex)), DecodeError, r.name);
    } else {
      const tx = decodeSignedTx(fromHex(r.hex));
      assert.equal(verifySignedTx(tx), false, r.name);
    }
  }
});

interface ProofVectors {
  merkle: { empty_root: string; trees: { size: number; leaves: string[]; root: string; proofs: { index: number; path: string[] }[] }[];
    rejected: { name: string; root: string; index: number; size: number; leaf: string; path: string[] }[] };
  receipts: { receipts: { index: number; fields: [string, Typed][]; hex: string; proof: string[] }[]; receipts_root: string };
  state: { entries: [string, string][]; state_root: string; empty_root: string;
    proofs: { key: string; value: string | null; what: string; proof: string; proof_value: Typed }[];
    rejected: { name: string; key: string; value: string | null; proof: string }[] };
  chain: {
    chain_id: string; validator_seeds: string[]; validators: string[]; validator_set_hash: string; validator_set_encoding_hex: string;
    quorum: number; header: { fields: [string, Typed][]; hex: string; block_hash: string };
    block: { hex: string; tx_root: string; tx_leaves: string[] };
    votes: { fields: [string, Typed][]; signed_body_hex: string; signing_payload_hex: string; signature: string; vote_hex: string }[];
    certificate: { hex: string; cert_hash: string; height: number; view: number; block_hash: string };
    rejected_certificates: { name: string; certificate_hex: string; error: string }[];
  };
  consensus: {
    pre_prepare: { fields: [string, Typed][]; signed_body_hex: string; signing_payload_hex: string; signature: string; message_hex_without_block: string };
    handshake_transcript: { fields: [string, Typed][]; hex: string; signing_payload_hex: string; signer: string; signature: string };
  };
}

const proofs = (): ProofVectors => readVector<ProofVectors>("protocol_proofs.json");

test("merkle: roots and every inclusion proof of every tree; every rejected proof fails", () => {
  const m = proofs().merkle;
  assert.equal(hex(merkleRoot([])), m.empty_root);
  for (const tree of m.trees) {
    const leaves = tree.leaves.map(fromHex);
    assert.equal(hex(merkleRoot(leaves)), tree.root, `root of ${tree.size}`);
    for (const p of tree.proofs) {
      assert.ok(verifyInclusion(fromHex(tree.root), p.index, tree.size, leaves[p.index]!, p.path.map(fromHex)), `leaf ${p.index} of ${tree.size}`);
    }
  }
  assert.ok(m.rejected.length >= 7);
  for (const r of m.rejected) {
    assert.equal(verifyInclusion(fromHex(r.root), r.index, r.size, fromHex(r.leaf), r.path.map(fromHex)), false, r.name);
  }
});

test("receipts: encodings, decoding and inclusion under the receipts root", () => {
  const r = proofs().receipts;
  for (const c of r.receipts) {
    assert.equal(hex(encode(fieldList(c.fields))), c.hex);
    const receipt = decodeReceipt(fromHex(c.hex));
    assert.ok(sameValue(receipt.txId, typed(c.fields[1]![1])));
    assert.ok(verifyInclusion(fromHex(r.receipts_root), c.index, r.receipts.length, fromHex(c.hex), c.proof.map(fromHex)));
    assert.equal(verifyInclusion(fromHex(r.receipts_root), c.index, r.receipts.length, fromHex(c.hex + "00"), c.proof.map(fromHex)), false);
  }
  assert.equal(hex(merkleRoot(r.receipts.map((c) => fromHex(c.hex)))), r.receipts_root);
});

test("state: the empty root, every presence and absence proof, every rejected proof", () => {
  const s = proofs().state;
  assert.equal(hex(EMPTY_ROOT), s.empty_root);
  assert.ok(verifyTrieProof(EMPTY_ROOT, fromHex("01"), null, encode([])));
  const root = fromHex(s.state_root);
  for (const p of s.proofs) {
    assert.equal(hex(encode(typed(p.proof_value))), p.proof, p.what);
    const value = p.value === null ? null : fromHex(p.value);
    assert.ok(verifyTrieProof(root, fromHex(p.key), value, fromHex(p.proof)), p.what);
    // the same proof never also shows the opposite
    const other = value === null ? utf8("something") : null;
    assert.equal(verifyTrieProof(root, fromHex(p.key), other, fromHex(p.proof)), false, `${p.what} (opposite claim)`);
  }
  for (const r of s.rejected) {
    assert.equal(verifyTrieProof(root, fromHex(r.key), r.value === null ? null : fromHex(r.value), fromHex(r.proof)), false, r.name);
  }
});

test("chain: validator set, header and block hash, tx root, votes, certificate and rejected certificates", async () => {
  const c = proofs().chain;
  const signers = c.validator_seeds.map((s) => KeySigner.fromHex(s));
  const keys = await Promise.all(signers.map((s) => s.publicKey()));
  assert.deepEqual(keys.map(hex), c.validators);
  assert.equal(hex(encode(["vset/1", keys])), c.validator_set_encoding_hex);
  assert.equal(hex(validatorSetHash(keys)), c.validator_set_hash);
  assert.equal(quorumSize(keys.length), c.quorum);
  assert.equal(hex(encode(fieldList(c.header.fields))), c.header.hex);
  assert.equal(hex(sha256(fromHex(c.header.hex))), c.header.block_hash);
  const header = decodeHeader(fromHex(c.header.hex));
  assert.equal(header.chainId, c.chain_id);
  assert.equal(hex(header.txRoot), c.block.tx_root);
  assert.equal(hex(merkleRoot(c.block.tx_leaves.map(fromHex))), c.block.tx_root);
  const block = decode(fromHex(c.block.hex)) as Value[];
  assert.equal(block[0], "blk/1");
  assert.equal(hex(encode(block[1]!)), c.header.hex);
  for (const leaf of c.block.tx_leaves) assert.ok(verifySignedTx(decodeSignedTx(fromHex(leaf))));
  for (const vote of c.votes) {
    const body = fieldList(vote.fields);
    assert.equal(hex(encode(body)), vote.signed_body_hex);
    assert.equal(hex(signingPayload(DOMAIN_VOTE, c.chain_id, encode(body))), vote.signing_payload_hex);
    const who = keys.findIndex((k) => hex(k) === hex(body[5] as Uint8Array));
    assert.equal(hex(signers[who]!.signSync(fromHex(vote.signing_payload_hex))), vote.signature);
    assert.equal(hex(encode([...body, fromHex(vote.signature)])), vote.vote_hex);
  }
  const cert = decodeCertificate(fromHex(c.certificate.hex));
  assert.equal(hex(sha256(fromHex(c.certificate.hex))), c.certificate.cert_hash);
  verifyCertificate(cert, keys, c.chain_id, BigInt(c.certificate.height), fromHex(c.certificate.block_hash));
  assert.throws(() => verifyCertificate(cert, keys, c.chain_id, BigInt(c.certificate.height) + 1n), ValidationError);
  assert.throws(() => verifyCertificate(cert, keys, "another-chain"), ValidationError);
  assert.equal(c.rejected_certificates.length, 7);
  for (const r of c.rejected_certificates) {
    assert.throws(() => verifyCertificate(decodeCertificate(fromHex(r.certificate_hex)), keys, c.chain_id, BigInt(c.certificate.height), fromHex(c.certificate.block_hash)), ValidationError, r.name);
  }
});

test("consensus: the PRE-PREPARE and the handshake transcript sign what the vectors say", async () => {
  const p = proofs();
  const seeds = new Map<string, KeySigner>();
  for (const s of p.chain.validator_seeds) {
    const k = KeySigner.fromHex(s);
    seeds.set(hex(await k.publicKey()), k);
  }
  const pp = p.consensus.pre_prepare;
  const ppBody = fieldList(pp.fields);
  assert.equal(hex(encode(ppBody)), pp.signed_body_hex);
  assert.equal(hex(signingPayload(DOMAIN_CONSENSUS, p.chain.chain_id, encode(ppBody))), pp.signing_payload_hex);
  assert.equal(hex(seeds.get(hex(ppBody[4] as Uint8Array))!.signSync(fromHex(pp.signing_payload_hex))), pp.signature);
  const msg = decode(fromHex(pp.message_hex_without_block)) as Value[];
  assert.equal(hex(msg[5] as Uint8Array), pp.signature);
  const hs = p.consensus.handshake_transcript;
  assert.equal(hex(encode(fieldList(hs.fields))), hs.hex);
  assert.equal(hex(signingPayload(DOMAIN_HANDSHAKE, p.chain.chain_id, fromHex(hs.hex))), hs.signing_payload_hex);
  assert.ok(verifyEd25519(fromHex(hs.signer), fromHex(hs.signing_payload_hex), fromHex(hs.signature)));
  assert.equal(hex(seeds.get(hs.signer)!.signSync(fromHex(hs.signing_payload_hex))), hs.signature);
});
