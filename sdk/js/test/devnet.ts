/**
 * The SDK end to end against a running node (tests/integration/test_sdk_js.py runs it on the
 * shared devnet). Environment: SHOPCHAIN_RPC_URL, SHOPCHAIN_CHAIN_ID, SHOPCHAIN_SENDER_SEED
 * (hex), SHOPCHAIN_RECIPIENT (hex account id), SHOPCHAIN_AMOUNT, SHOPCHAIN_VALIDATORS (the
 * genesis validator keys, comma-separated hex). It proves the validator schedule from the
 * genesis set, builds, signs and submits a ledger.transfer (and re-submits the same bytes),
 * waits for the receipt over the websocket, verifies the receipt proof and state proofs of
 * the recipient's balance before and after offline, and prints one JSON line of what it saw.
 * Any failed check exits non-zero.
 */

import assert from "node:assert/strict";
import {
  Client, commerce, decode, decodeSignedTx, fromHex, KeySigner, storageStateKey, to0x, toHex, ValidationError,
  verifyReceipt, verifyStateProof,
} from "../src/index.js";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`set ${name}`);
  return v;
}

async function main(): Promise<void> {
  const chainId = env("SHOPCHAIN_CHAIN_ID");
  const client = new Client(env("SHOPCHAIN_RPC_URL"), { chainId });
  const signer = KeySigner.fromHex(env("SHOPCHAIN_SENDER_SEED"));
  const recipient = fromHex(env("SHOPCHAIN_RECIPIENT"));
  const amount = BigInt(env("SHOPCHAIN_AMOUNT"));
  const genesisKeys = env("SHOPCHAIN_VALIDATORS").split(",").map(fromHex);

  assert.equal((await client.status()).chain_id, chainId);
  const schedule = await client.provenValidators(genesisKeys);
  const balanceKey = storageStateKey("ledger", "balances", { bytes: recipient });
  const provenBalance = async (height: number): Promise<bigint> => {
    const { value } = await client.provenValue(balanceKey, schedule, height);
    const v = value === null ? 0n : decode(value);
    assert.equal(typeof v, "bigint");
    return v as bigint;
  };
  const viewed = await commerce.balanceOf(client, recipient);
  const startHeight = viewed.height;
  const before = await provenBalance(startHeight); // the proof agrees with the view at its height
  assert.equal(before, viewed.balance);

  const nonceBefore = BigInt((await client.account(await signer.publicKey())).nonce);
  const tx = await client.buildCall(signer, commerce.transfer(recipient, amount));
  assert.equal(tx.body.nonce, nonceBefore); // read from the chain, not assumed
  const txId = await client.submit(tx);
  assert.equal(txId, to0x(tx.txId));
  assert.equal(await client.submit(tx.raw), txId); // the same bytes again: the same transaction
  const receipt = await client.waitForReceipt(txId, 30_000);
  const waitMode = client.lastWaitMode;
  assert.equal(await client.submit(decodeSignedTx(tx.raw)), txId); // even once committed

  const proven = verifyReceipt(receipt, schedule, chainId, tx.txId);
  assert.equal(proven.status, 0, `receipt failed: ${proven.error}`);
  const transfer = proven.events.find((e) => e.contract === "ledger" && e.name === "Transfer");
  assert.ok(transfer, "the receipt has a ledger Transfer event");
  assert.equal(transfer.data.get("amount"), amount);
  assert.equal(toHex(transfer.data.get("to") as Uint8Array), toHex(recipient));

  // a tampered answer does not verify
  const tampered = { ...receipt, raw: receipt.raw.slice(0, -2) + (receipt.raw.endsWith("00") ? "01" : "00") };
  assert.throws(() => verifyReceipt(tampered, schedule, chainId), (e: unknown) => e instanceof ValidationError || (e as Error).name === "DecodeError");
  assert.throws(() => verifyReceipt(receipt, schedule, chainId + "-other"), ValidationError);

  const after = await provenBalance(receipt.height);
  const proofAnswer = await client.getProof(balanceKey, receipt.height);
  assert.throws(() => verifyStateProof({ ...proofAnswer, value: to0x(new Uint8Array([0x01])) }, schedule, chainId), ValidationError);

  process.stdout.write(JSON.stringify({
    tx_id: txId, height: receipt.height, index: receipt.index, wait_mode: waitMode, nonce: tx.body.nonce.toString(),
    balance_before: before.toString(), balance_after: after.toString(), start_height: startHeight,
    receipt_verified: true, gas_used: proven.gasUsed.toString(),
  }) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
