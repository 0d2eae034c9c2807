import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHex, KeySigner, verifyEd25519 } from "../src/index.js";
import { readVector } from "./vectors.js";

interface WycheproofCase { tcId: number; comment: string; msg: string; sig: string; result: string }
interface Wycheproof { testGroups: { publicKey: { pk: string }; tests: WycheproofCase[] }[] }
interface SpeccheckCase { message: string; pub_key: string; signature: string }

test("Wycheproof ed25519: the verifier agrees with the node on every case", () => {
  const suite = readVector<Wycheproof>("wycheproof_ed25519_test.json");
  let count = 0;
  for (const group of suite.testGroups) {
    const pk = fromHex(group.publicKey.pk);
    for (const c of group.tests) {
      const got = verifyEd25519(pk, fromHex(c.msg), fromHex(c.sig));
      assert.equal(got, c.result === "valid", `tcId ${c.tcId}: ${c.comment}`);
      count++;
    }
  }
  assert.equal(count, 151);
});

test("speccheck: of the twelve edge cases only case 3 verifies (strict, cofactorless, small order refused)", () => {
  const cases = readVector<SpeccheckCase[]>("ed25519_speccheck_cases.json");
  assert.equal(cases.length, 12);
  const accepted = cases.flatMap((c, i) => (verifyEd25519(fromHex(c.pub_key), fromHex(c.message), fromHex(c.signature)) ? [i] : []));
  assert.deepEqual(accepted, [3]);
});

test("RFC 8032 test 1: the seed gives the key and the signature, S + L and the identity key are refused", async () => {
  const key = KeySigner.fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  assert.equal(Buffer.from(await key.publicKey()).toString("hex"), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const sig = await key.sign(new Uint8Array());
  assert.equal(Buffer.from(sig).toString("hex"), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  assert.ok(verifyEd25519(await key.publicKey(), new Uint8Array(), sig));
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += 2n ** 252n + 27742317777372353535851937790883648493n;
  const forged = sig.slice();
  for (let i = 32; i < 64; i++) { forged[i] = Number(s & 0xffn); s >>= 8n; }
  assert.equal(verifyEd25519(await key.publicKey(), new Uint8Array(), forged), false);
  const identity = new Uint8Array(32); identity[0] = 1;
  const sigId = new Uint8Array(64); sigId.set(identity);
  assert.equal(verifyEd25519(identity, Buffer.from("msg"), sigId), false);
});
