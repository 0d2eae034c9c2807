/**
 * The README's examples, compiled with the rest (npm run build) so they cannot drift from
 * the API; `main` runs them against a node: `node dist/test/example.js <rpc-url> <seed-hex> <merchant-hex>`.
 */

import { assembleSignedTx, Client, commerce, decode, fromHex, KeySigner, storageStateKey, txSigningPayload, unsignedTx, verifyReceipt, type Signer } from "../src/index.js";

export async function quickExample(url: string, buyerSeed: string, merchantHex: string): Promise<void> {
  const client = new Client(url);
  const buyer = KeySigner.fromHex(buyerSeed);
  const merchant = fromHex(merchantHex);
  const genesisKeys = (await client.getGenesis()).validators.map((v) => fromHex(v.public_key));
  const validators = await client.provenValidators(genesisKeys);
  const receipt = await client.transactCall(buyer, commerce.transfer(merchant, 1_000n));
  const proven = verifyReceipt(receipt, validators, await client.chainId());
  console.log(proven.status, proven.events);
  const { value } = await client.provenValue(storageStateKey("ledger", "balances", { bytes: merchant }), validators);
  console.log("merchant balance", value === null ? 0n : decode(value));
}

export async function offlineExample(client: Client, wallet: Signer, chainId: string, nonce: bigint): Promise<string> {
  const sender = await wallet.publicKey();
  const body = unsignedTx({ chainId, sender, nonce, contract: "orders", method: "confirm", args: [7n], gasLimit: 200_000n });
  const signature = await wallet.sign(txSigningPayload(body));
  const tx = assembleSignedTx(body, signature);
  return client.submit(tx);
}

const [url, seed, merchant] = process.argv.slice(2);
if (url && seed && merchant && process.argv[1]?.endsWith("example.js")) {
  quickExample(url, seed, merchant).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
