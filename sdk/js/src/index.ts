/** shopchain TypeScript SDK: see README.md. */
export * from "./bytes.js";
export * from "./encoding.js";
export * from "./crypto.js";
export * from "./tx.js";
export * from "./merkle.js";
export * from "./state.js";
export * from "./chain.js";
export * from "./client.js";
export * as commerce from "./commerce.js";
export type { ContractCall } from "./commerce.js";
