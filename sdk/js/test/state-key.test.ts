/** storageStateKey against keys computed by the Python client (node.client.storage_state_key). */

import { test } from "node:test";
import assert from "node:assert/strict";
import { storageStateKey, toHex } from "../src/index.js";

test("storage state keys match the node's order-preserving key encoding", () => {
  // storage_state_key('ledger', 'balances', ['bytes'], bytes([0, 1, 2, 0, 255])): 00 is escaped as 00 ff, the part ends 00 01
  assert.equal(toHex(storageStateKey("ledger", "balances", { bytes: Uint8Array.of(0, 1, 2, 0, 255) })),
    "632f6c65646765722f62616c616e6365732f0300ff010200ffff0001");
  assert.equal(toHex(storageStateKey("orders", "orders", { int: 7 })), "632f6f72646572732f6f72646572732f028000000000000007");
  assert.equal(toHex(storageStateKey("orders", "orders", { int: -2n })), "632f6f72646572732f6f72646572732f027ffffffffffffffe");
  assert.equal(toHex(storageStateKey("orders", "terms_names", { bytes: Uint8Array.of(9, 9) }, { str: "caf\u00e9" })),
    "632f6f72646572732f7465726d735f6e616d65732f030909000104636166c3a90001");
  assert.equal(toHex(storageStateKey("orders", "next_id")), "632f6f72646572732f6e6578745f69642f");
  assert.throws(() => storageStateKey("orders", "orders", { int: 2n ** 63n }), RangeError);
});
