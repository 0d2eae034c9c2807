/* shopchain explorer: a single page over this node's JSON-RPC (POST /rpc) and its
 * websocket (/ws, newBlocks subscription). Pages are chosen by the URL hash:
 *   #/                 latest blocks and transactions, updating live
 *   #/block/<h|hash>   a block, its transactions and its certificate's signers
 *   #/tx/<id>          a transaction with its receipt and events
 *   #/account/<key>    an account's on-chain facts
 *   #/order/<id>       order tracker: states, deadlines, timeline of events
 *   #/warranty/<unit>  warranty passport: owners, service history, claims, flags
 *   #/merchants        merchant ratings from verified reviews
 *   #/validators       the validator set in force, its schedule of changes, this node's links
 *   #/governance       governance settings and every proposal with its state and votes
 *   #/proposal/<id>    one proposal: its arguments, each vote, its execution and events
 * Everything shown is inserted as text (never HTML): chain data is untrusted input.
 */
"use strict";

/** Blocks listed on the front page. */
const LATEST_BLOCKS = 10;
/** Transactions listed on the front page. */
const LATEST_TXS = 15;
/** How far back the front page looks for transactions (blocks), in batches. */
const TX_LOOKBACK_BLOCKS = 500;
/** Requests in one JSON-RPC batch (the node's default limit is 100). */
const BATCH_SIZE = 100;
/** Block-scan pages of chain_getEvents one lookup may read (each covers up to 2,000 blocks not yet in the
 * node's SQL index). Pages the index answers (source "index") cover any range and are not counted here. */
const MAX_EVENT_PAGES = 25;
/** Index pages one lookup may read (each ends after about 500 events): a bound on a runaway loop only. */
const MAX_INDEX_PAGES = 2000;
/** Service records shown on a passport. */
const SERVICE_LOG_LIMIT = 100;
/** Wait before reconnecting the live websocket. */
const RECONNECT_MS = 2000;
/** Proposals one governance list_proposals call returns (the contract's MAX_LIST). */
const PROPOSALS_PER_CALL = 50;
/** Calls of list_proposals the governance page makes at most (so 1,000 proposals). */
const MAX_PROPOSAL_PAGES = 20;

const ORDER_PATH = ["PLACED", "ACCEPTED", "SHIPPED", "DELIVERED", "COMPLETED", "CLOSED"];
const ORDER_EVENT_STATE = {
  OrderPlaced: "PLACED", OrderAccepted: "ACCEPTED", Shipped: "SHIPPED", Delivered: "DELIVERED",
  ReceiptConfirmed: "COMPLETED", OrderClosed: "CLOSED", OrderRejected: "REJECTED", OrderCancelled: "CANCELLED",
  DisputeOpened: "DISPUTED", Ruling: "RESOLVED",
};
/** The deadline that matters in each state: [label, field of the order record]. */
const ORDER_DEADLINES = {
  PLACED: ["merchant must accept by", "accept_by"], ACCEPTED: ["must ship by", "ship_by"],
  PARTIALLY_SHIPPED: ["must be delivered by", "deliver_by"], SHIPPED: ["must be delivered by", "deliver_by"],
  DELIVERED: ["buyer confirms by (then automatic)", "confirm_by"], COMPLETED: ["return window closes after", "close_after"],
};
const SCORE_NAMES = ["overall", "quality", "description", "delivery", "service"];
const KEY_FIELDS = new Set(["sender", "to", "buyer", "merchant", "owner", "brand", "account", "carrier", "from",
  "by", "referrer", "center", "validator", "proposer", "issuer", "handler", "voter", "collector"]);
/** Event fields that hold validator keys (governance's ValidatorSetScheduled): shown by validator name. */
const VALIDATOR_FIELDS = new Set(["validators"]);
/** What each governance proposal kind's args are, in order (contracts_vm/system/governance.sc.py). */
const PROPOSAL_ARGS = {
  settings: ["contract", "changes"],
  admit_org: ["organisation", "admin keys"],
  remove_org: ["organisation"],
  role_policy: ["roles only the platform organisation may grant"],
  fees: ["gas price (minor units)", "byte price (minor units)", "fee collector"],
  add_validator: ["validator key", "name", "organisation", "p2p address", "rpc address"],
  currency: ["code", "name", "decimals", "issuer"],
  remove_validator: ["validator key"],
  rotate_validator: ["old validator key", "new validator key"],
};
/** The details a ProposalCreated event carries for a code proposal (the payload itself is not kept). */
const CODE_DETAILS = ["action", "contract", "code hash", "capabilities"];
const HEX32 = /^0x[0-9a-fA-F]{64}$/;

const state = { genesis: null, names: new Map(), directory: new Map(), head: 0, headMs: 0, currencies: new Map(), baseCurrency: "", ws: null, live: false, route: "",
  renderToken: 0, recent: [] };

// --- JSON-RPC ---------------------------------------------------------------------------

class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
  }
}

let rpcId = 0;

async function post(body) {
  const response = await fetch("/rpc", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return response.json();
}

async function rpc(method, ...params) {
  const reply = await post({ jsonrpc: "2.0", id: ++rpcId, method, params });
  if (reply.error) throw new RpcError(reply.error);
  return reply.result;
}

/** Many calls in batches; each answer is {result} or {error}, in call order. */
async function rpcBatch(calls) {
  const out = [];
  for (let i = 0; i < calls.length; i += BATCH_SIZE) {
    const chunk = calls.slice(i, i + BATCH_SIZE).map(([method, params]) => ({ jsonrpc: "2.0", id: ++rpcId, method, params }));
    const replies = await post(chunk);
    const byId = new Map((Array.isArray(replies) ? replies : [replies]).map((r) => [r.id, r]));
    for (const request of chunk) out.push(byId.get(request.id) || { error: { message: "no answer in the batch" } });
  }
  return out;
}

async function view(contract, method, ...args) {
  return (await rpc("chain_call", contract, method, args)).result;
}

/** Every matching event in [from, latest], page by page: the whole history the node's index holds
 * (one page per ~500 events), then at most MAX_EVENT_PAGES block-scan pages above the indexed height. */
async function scanEvents(contract, filters, from) {
  const events = [];
  let next = Math.max(1, from || 1);
  let scanPages = 0;
  let indexPages = 0;
  let indexed = null;
  let last = next - 1;
  while (next !== null && scanPages < MAX_EVENT_PAGES && indexPages < MAX_INDEX_PAGES) {
    const page = await rpc("chain_getEvents", contract, filters, next, "latest");
    events.push(...page.events);
    last = page.to_height;
    next = page.next_from;
    if (page.source === "index") {
      indexPages += 1;
      indexed = page.indexed_height;
    } else {
      scanPages += 1;
    }
  }
  return { events, from: Math.max(1, from || 1), to: last, complete: next === null, indexed };
}

// --- DOM helpers (text only) ------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function short(hex) {
  if (typeof hex !== "string" || hex.length <= 18) return hex;
  return hex.slice(0, 10) + "\u2026" + hex.slice(-6);
}

function link(href, text, title) {
  return el("a", { href, title }, text);
}

function hexLink(kind, hex) {
  return el("a", { href: `#/${kind}/${hex}`, title: hex, class: "mono" }, short(hex));
}

function keyLabel(key) {
  const known = state.names.get(key);
  return known ? `${short(key)} \u00b7 ${known}` : short(key);
}

function accountLink(key) {
  if (typeof key !== "string" || !HEX32.test(key)) return el("span", { class: "mono" }, String(key || "-"));
  return el("a", { href: `#/account/${key}`, title: key, class: "mono" }, keyLabel(key));
}

/** A block time as a date in the viewer's own time zone (the browser's), with the zone named. */
function timeText(ms) {
  if (!ms) return "-";
  return new Date(ms).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", second: "2-digit", timeZoneName: "short" });
}

/** A length of time in its two largest units: "13 days 23 hours", "5 minutes". */
function durationText(seconds) {
  let left = Math.abs(Math.round(seconds));
  const parts = [];
  for (const [name, size] of [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]]) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n) parts.push(`${n} ${name}${n === 1 ? "" : "s"}`);
  }
  return parts.slice(0, 2).join(" ") || "0 seconds";
}

/** A deadline (unix seconds of block time) with the time left, counted from the latest block's
 * certified time: the contracts compare deadlines with block timestamps, not with any clock. */
function deadlineText(unixS, passedNote) {
  if (!unixS) return "-";
  const left = unixS - Math.floor(state.headMs / 1000);
  return `${timeText(unixS * 1000)} (` + (left >= 0 ? `in ${durationText(left)})` : `passed ${durationText(left)} ago${passedNote ? "; " + passedNote : ""})`);
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

function kvTable(rows) {
  return el("table", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

/** A table; each cell is labelled with its column so a "stack" table can lay rows out as cards on a phone. */
function table(headers, rows, attrs, bodyId) {
  for (const row of rows) {
    if (!(row instanceof Element)) continue;
    Array.from(row.children).forEach((cell, i) => { if (headers[i] && !cell.hasAttribute("colspan")) cell.dataset.label = headers[i]; });
  }
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", { id: bodyId }, rows));
}

/** Event and record fields that hold money (integer minor units of a currency). */
const MONEY_FIELDS = new Set(["amount", "value", "payout", "fee", "holdback", "refunded", "cumulative", "to_buyer",
  "to_merchant", "commission", "discount", "price", "paid", "budget", "pair_cap", "min_spend", "supply", "escrowed",
  "balance", "unit_price"]);

/** Minor units as an amount of currency ``code`` (the base currency when absent), exactly: "1,234.50 USD". */
function moneyText(minor, code) {
  const cur = state.currencies.get(code || state.baseCurrency) || { code: code || "", decimals: 2 };
  const value = BigInt(minor);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const scale = 10n ** BigInt(cur.decimals);
  const whole = (abs / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = cur.decimals ? "." + (abs % scale).toString().padStart(cur.decimals, "0") : "";
  return `${negative ? "-" : ""}${whole}${frac}${cur.code ? " " + cur.code : ""}`;
}

/** A contract value for people: keys link to accounts, units to passports, orders to the tracker. */
function renderValue(value, field) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "null");
  if (typeof value === "string" && HEX32.test(value)) {
    if (field === "unit") return hexLink("warranty", value);
    if (VALIDATOR_FIELDS.has(field)) return validatorLabel(value);
    if (KEY_FIELDS.has(field)) return accountLink(value);
    return el("span", { class: "mono", title: value }, short(value));
  }
  if (typeof value === "string" && /^0x[0-9a-fA-F]{66,}$/.test(value)) {
    // Long bytes (a deploy payload): a fingerprint and the size, never kilobytes of hex.
    return el("span", { class: "mono", title: `${(value.length - 2) / 2} bytes` }, `${short(value)} (${(value.length - 2) / 2} bytes)`);
  }
  if (field === "order" && Number.isInteger(value)) return link(`#/order/${value}`, `order ${value}`);
  if (field === "proposal" && Number.isInteger(value)) return proposalLink(value);
  if (/_ms$/.test(field || "") && Number.isInteger(value) && value > 0) return el("span", { title: `${value} ms` }, timeText(value));
  if (Array.isArray(value)) {
    const parts = [];
    value.forEach((v, i) => { if (i) parts.push(", "); parts.push(renderValue(v, field)); });
    return el("span", {}, "[", parts, "]");
  }
  if (typeof value === "object") {
    const parts = [];
    Object.entries(value).forEach(([k, v], i) => { if (i) parts.push(", "); parts.push(`${k}: `, renderValue(v, k)); });
    return el("span", {}, "{", parts, "}");
  }
  return el("span", { class: typeof value === "string" ? "" : "mono" }, String(value));
}

/** An event's fields for people; ``contract`` lets governance ids link to their proposal. */
function eventData(data, contract) {
  if (!data || typeof data !== "object") return renderValue(data, "");
  const parts = [];
  Object.entries(data).forEach(([k, v], i) => {
    if (i) parts.push(" \u00b7 ");
    let shown;
    if (contract === "governance" && k === "id" && Number.isInteger(v)) shown = proposalLink(v);
    else if (contract === "governance" && k === "details" && Array.isArray(v)) shown = proposalArgsInline(data.kind, v);
    else if (MONEY_FIELDS.has(k) && Number.isInteger(v) && contract !== "loyalty") shown = el("span", { class: "money", title: `${v} minor units` }, moneyText(v, data.currency));
    else shown = renderValue(v, k);
    parts.push(el("span", { class: "muted" }, k + " "), shown);
  });
  return el("span", {}, parts);
}

function eventsTable(events, withTx) {
  return table(["height", "event", "data"].concat(withTx ? ["transaction"] : []), events.map((e) => el("tr", { "data-event": e.name },
    el("td", {}, link(`#/block/${e.height}`, String(e.height))),
    el("td", {}, `${e.contract}.${e.name}`),
    el("td", {}, eventData(e.data, e.contract)),
    withTx ? el("td", {}, hexLink("tx", e.tx_id)) : null)), { class: "stack" });
}

function timeline(events, describe) {
  if (!events.length) return el("p", { class: "muted" }, "No events found.");
  return el("ol", { class: "timeline" }, events.map((e) => el("li", { "data-event": e.name },
    el("div", {}, el("strong", {}, e.name), " ", describe ? describe(e) : eventData(e.data, e.contract)),
    el("div", { class: "when" }, "block ", link(`#/block/${e.height}`, String(e.height)), " \u00b7 tx ", hexLink("tx", e.tx_id)))));
}

function scanNote(scan) {
  const source = scan.indexed !== null ? ` (from the node's index up to block ${scan.indexed})` : "";
  const text = `Events read from block ${scan.from} to ${scan.to}${source}` +
    (scan.complete ? "." : ` (stopped after ${MAX_EVENT_PAGES} block-scan pages; newer events are not shown).`);
  return el("p", { class: "muted" }, text);
}

function setMain(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

function showError(err) {
  const message = err instanceof RpcError ? `${err.message} (code ${err.code})` : String(err && err.message || err);
  setMain(el("div", { class: "error", id: "page-error" }, message));
}

// --- genesis names and the live header -----------------------------------------------------

/** The chain's currencies (code -> decimals), for amounts shown in their own units. */
async function loadCurrencies() {
  try {
    const base = await view("ledger", "currency");
    state.baseCurrency = base.code;
    for (const code of await view("ledger", "currency_list")) {
      const c = code === base.code ? base : await view("ledger", "get_currency", code);
      state.currencies.set(code, { code, decimals: c.decimals });
    }
  } catch (err) {
    state.baseCurrency = "";   // a node without currencies: plain two-decimal amounts
  }
}

async function loadGenesis() {
  const g = await rpc("chain_getGenesis");
  state.genesis = g;
  const orgs = new Map(g.organisations.map((o) => [o.id, o.name]));
  for (const a of g.accounts) state.names.set(a.public_key, `${orgs.get(a.organisation) || a.organisation} (${a.roles.join(", ")})`);
  for (const v of g.validators) state.names.set(v.public_key, `validator ${v.name} (${orgs.get(v.organisation) || v.organisation})`);
  document.getElementById("chain-id").textContent = `chain ${g.chain_id}`;
}

function orgName(id) {
  const org = state.genesis && state.genesis.organisations.find((o) => o.id === id);
  return org ? org.name : id;
}

function validatorName(key) {
  const known = state.directory.get(key);
  if (known) return known.name;
  const v = state.genesis && state.genesis.validators.find((x) => x.public_key === key);
  return v ? v.name : short(key);
}

/** A validator key shown by name (with the key on hover). */
function validatorLabel(key) {
  return el("span", { title: key, class: state.directory.has(key) ? "" : "mono" }, validatorName(key));
}

function validatorOrg(key) {
  const known = state.directory.get(key);
  const v = known || (state.genesis && state.genesis.validators.find((x) => x.public_key === key));
  return v ? v.organisation : null;
}

/** The validator schedule (chain_getValidators) and every scheduled validator's directory entry
 * (governance.get_validator): validators added by governance are not in genesis. */
async function loadValidatorSets() {
  const sets = await rpc("chain_getValidators");
  const keys = new Set();
  for (const entry of sets.schedule) for (const k of entry.validators) keys.add(k);
  const missing = [...keys].filter((k) => !state.directory.has(k));
  const answers = missing.length ? await rpcBatch(missing.map((k) => ["chain_call", ["governance", "get_validator", [k]]])) : [];
  answers.forEach((a, i) => { if (a.result && a.result.result) state.directory.set(missing[i], a.result.result); });
  return sets;
}

/** The validator keys certifying ``height`` by the schedule (the last set starting at or below it). */
function setAt(sets, height) {
  let keys = [];
  for (const entry of sets.schedule) if (entry.from_height <= height) keys = entry.validators;
  return keys;
}

function setHead(height, timeMs) {
  if (height >= state.head && timeMs) state.headMs = timeMs;
  if (height > state.head) state.head = height;
  document.getElementById("head-height").textContent = String(state.head);
}

function setLive(on, text) {
  state.live = on;
  const node = document.getElementById("live-state");
  node.textContent = text;
  node.className = on ? "on" : "off";
}

function connectLive() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: "live", method: "chain_subscribe", params: ["newBlocks"] }));
  ws.onmessage = (message) => {
    let data;
    try { data = JSON.parse(message.data); } catch (e) { return; }
    if (data.id === "live" && data.result) setLive(true, "live");
    if (data.method === "chain_subscription") onNewBlock(data.params.result).catch(() => {});
  };
  ws.onclose = () => {
    setLive(false, "reconnecting...");
    setTimeout(connectLive, RECONNECT_MS);
  };
}

async function onNewBlock(block) {
  setHead(block.height, block.header ? block.header.timestamp_ms : block.timestamp_ms);
  // Remember the newest blocks: ones that arrive while the front page is still loading
  // are replayed onto it once it is drawn.
  if (!state.recent.some((b) => b.height === block.height)) state.recent.push(block);
  while (state.recent.length > LATEST_BLOCKS) state.recent.shift();
  const body = document.getElementById("latest-blocks-body");
  if (!body) return;
  if (body.querySelector(`tr[data-height="${block.height}"]`)) return;
  body.prepend(blockRow(block, true));
  while (body.children.length > LATEST_BLOCKS) body.lastChild.remove();
  if (block.tx_count > 0) {
    const full = await rpc("chain_getBlock", block.height, true);
    const txBody = document.getElementById("latest-txs-body");
    if (!txBody) return;
    const placeholder = txBody.querySelector("tr.empty");
    if (placeholder) placeholder.remove();
    for (const tx of full.txs.slice().reverse()) txBody.prepend(txRow(tx, block.height, true));
    while (txBody.children.length > LATEST_TXS) txBody.lastChild.remove();
  }
}

// --- pages ----------------------------------------------------------------------------------

function blockRow(block, fresh) {
  return el("tr", { "data-height": block.height, class: fresh ? "fresh" : null },
    el("td", {}, link(`#/block/${block.height}`, String(block.height))),
    el("td", {}, timeText(block.header.timestamp_ms)),
    el("td", {}, String(block.tx_count)),
    el("td", {}, validatorName(block.header.proposer)),
    el("td", {}, hexLink("block", block.hash)));
}

function txRow(tx, height, fresh) {
  return el("tr", { class: fresh ? "fresh" : null },
    el("td", {}, hexLink("tx", tx.id)),
    el("td", {}, `${tx.contract}.${tx.method}`),
    el("td", {}, accountLink(tx.sender)),
    el("td", {}, link(`#/block/${height}`, String(height))));
}

async function pageHome(token) {
  const status = await rpc("chain_status");
  setHead(status.height, status.latest_block_time_ms);
  const head = status.height;
  const heights = [];
  for (let h = head; h >= 1 && h > head - LATEST_BLOCKS; h--) heights.push(h);
  const blocks = (await rpcBatch(heights.map((h) => ["chain_getBlock", [h, false]]))).filter((r) => r.result).map((r) => r.result);
  const txs = [];
  for (let top = head; top >= 1 && top > head - TX_LOOKBACK_BLOCKS && txs.length < LATEST_TXS; top -= BATCH_SIZE) {
    const range = [];
    for (let h = top; h >= 1 && h > top - BATCH_SIZE; h--) range.push(h);
    const found = (await rpcBatch(range.map((h) => ["chain_getBlock", [h, false]]))).filter((r) => r.result && r.result.tx_count);
    const withTxs = found.slice(0, LATEST_TXS).map((r) => r.result.height);
    const full = await rpcBatch(withTxs.map((h) => ["chain_getBlock", [h, true]]));
    for (const r of full) if (r.result) for (const tx of r.result.txs.slice().reverse()) if (txs.length < LATEST_TXS) txs.push([tx, r.result.height]);
  }
  if (token !== state.renderToken) return;
  const top = blocks.length ? blocks[0].height : 0;
  const txRows = txs.length ? txs.map(([tx, h]) => txRow(tx, h, false))
    : [el("tr", { class: "empty" }, el("td", { colspan: 4, class: "muted" }, `No transactions in the last ${TX_LOOKBACK_BLOCKS} blocks.`))];
  setMain(
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Latest blocks"),
        table(["height", "time", "txs", "proposer", "hash"], blocks.map((b) => blockRow(b, false)), { id: "latest-blocks" }, "latest-blocks-body")),
      el("section", { class: "card" }, el("h2", {}, "Latest transactions"),
        table(["transaction", "call", "sender", "block"], txRows, { id: "latest-txs" }, "latest-txs-body"))),
    el("p", { class: "muted" }, `Node ${status.node} \u00b7 state root `, el("span", { class: "mono" }, short(status.state_root)),
      ` \u00b7 ${status.syncing ? "catching up" : "in sync"} \u00b7 mempool ${status.mempool_size}`));
  for (const block of state.recent.filter((b) => b.height > top).sort((a, b) => a.height - b.height)) await onNewBlock(block);
}

async function pageBlock(token, id) {
  const block = /^\d+$/.test(id) ? await rpc("chain_getBlock", Number(id), true) : await rpc("chain_getBlockByHash", id, true);
  const cert = await rpc("chain_getCertificate", block.height);
  const sets = await loadValidatorSets();
  if (token !== state.renderToken) return;
  const h = block.header;
  const signers = cert ? cert.signers : [];
  const total = setAt(sets, block.height).length || signers.length;
  setMain(
    el("h1", {}, `Block ${block.height}`),
    el("p", {}, block.height > 1 ? link(`#/block/${block.height - 1}`, "\u2190 previous") : null, " ",
      block.height < state.head ? link(`#/block/${block.height + 1}`, "next \u2192") : null),
    el("section", { class: "card" }, kvTable([
      ["hash", el("span", { class: "mono" }, block.hash)],
      ["time", timeText(h.timestamp_ms)],
      ["proposer", el("span", {}, validatorName(h.proposer), " ", el("span", { class: "mono muted" }, short(h.proposer)))],
      ["view", String(h.view)],
      ["previous block", h.prev_hash ? el("span", { class: "mono" }, h.prev_hash) : "-"],
      ["state root", el("span", { class: "mono" }, h.state_root)],
      ["transactions root", el("span", { class: "mono" }, h.tx_root)],
      ["receipts root", el("span", { class: "mono" }, h.receipts_root)],
      ["transactions", String(block.tx_count)],
    ])),
    el("section", { class: "card", id: "certificate" }, el("h2", {}, "Commit certificate"),
      cert ? el("p", {}, `Signed by ${signers.length} of ${total} validators in view ${cert.view}: `,
        el("span", { id: "signer-names" }, signers.map((s) => validatorName(s)).join(", ")))
        : el("p", { class: "muted" }, "No certificate stored for this block."),
      cert ? table(["validator", "organisation", "key"], signers.map((s) => {
        const org = validatorOrg(s);
        return el("tr", {}, el("td", {}, validatorName(s)), el("td", {}, org ? orgName(org) : "-"), el("td", { class: "mono" }, s));
      }), { class: "stack" }) : null),
    el("section", { class: "card" }, el("h2", {}, "Transactions"),
      block.txs.length ? table(["transaction", "call", "sender", "nonce"], block.txs.map((tx) => el("tr", {},
        el("td", {}, hexLink("tx", tx.id)), el("td", {}, `${tx.contract}.${tx.method}`),
        el("td", {}, accountLink(tx.sender)), el("td", {}, String(tx.nonce)))))
        : el("p", { class: "muted" }, "An empty block: its certified time moves deadlines on.")));
}

async function pageTx(token, id) {
  const tx = await rpc("chain_getTransaction", id);
  let receipt = null;
  if (tx.status === "committed") receipt = await rpc("chain_getReceipt", id);
  // Governance events name validators that may have joined after genesis: fetch their names.
  if (receipt && receipt.events.some((e) => e.contract === "governance")) await loadValidatorSets();
  if (token !== state.renderToken) return;
  const ok = receipt && receipt.status === "ok";
  const proposal = governanceProposalOf(tx, receipt);
  setMain(
    el("h1", {}, "Transaction"),
    el("section", { class: "card" }, kvTable([
      ["id", el("span", { class: "mono" }, tx.id)],
      ["status", receipt ? badge(ok ? "ok" : "failed", ok ? "ok" : "bad") : badge(tx.status, "warn")],
      ["block", tx.height ? link(`#/block/${tx.height}`, `${tx.height} (position ${tx.index})`) : "pending"],
      ["call", `${tx.contract}.${tx.method}`],
      proposal !== null ? ["proposal", el("span", { id: "tx-proposal" }, proposalLink(proposal))] : null,
      ["arguments", renderValue(tx.args, "")],
      ["sender", accountLink(tx.sender)],
      ["nonce", String(tx.nonce)],
      ["gas limit", String(tx.gas_limit)],
    ])),
    receipt ? el("section", { class: "card", id: "receipt" }, el("h2", {}, "Receipt"), kvTable([
      ["outcome", ok ? "committed and succeeded" : `committed, failed: ${receipt.error}`],
      ["gas used", String(receipt.gas_used)],
      ["return value", renderValue(receipt.return_value, tx.contract === "orders" && tx.method === "place" ? "order"
        : tx.contract === "governance" && tx.method === "propose" ? "proposal" : "")],
      ["proof", `Merkle path of ${receipt.proof.path.length} hashes to the receipts root of block ${receipt.height}, ` +
        `certified by ${receipt.proof.certificate ? receipt.proof.certificate.signers.length : 0} validator signatures`],
    ])) : null,
    receipt ? el("section", { class: "card", id: "events" }, el("h2", {}, "Events"),
      receipt.events.length ? eventsTable(receipt.events.map((e) => ({ ...e, height: receipt.height, tx_id: tx.id })), false)
        : el("p", { class: "muted" }, "This transaction emitted no events.")) : null);
}

async function pageAccount(token, key) {
  const info = await rpc("account_get", key);
  const balances = state.baseCurrency ? await view("ledger", "balances_of", key).catch(() => []) : [];
  let rating = null;
  let terms = null;
  if (info.roles.includes("MERCHANT")) {
    rating = await view("reviews", "merchant_rating", key);
    terms = await view("orders", "get_terms", key);
  }
  if (token !== state.renderToken) return;
  setMain(
    el("h1", {}, "Account"),
    el("section", { class: "card" }, kvTable([
      ["key", el("span", { class: "mono" }, info.address)],
      ["genesis member", state.names.get(key) || "registered after genesis, or unknown"],
      ["registered", info.registered ? "yes" : "no"],
      ["roles", info.roles.length ? info.roles.join(", ") : "none"],
      ["balance", el("span", { id: "account-balances" }, [moneyText(info.balance)].concat(
        balances.filter(([code]) => code !== state.baseCurrency).map(([code, v]) => moneyText(v, code))).join(" \u00b7 "))],
      ["next nonce", String(info.nonce)],
      ["pending transactions", String(info.pending_txs)],
    ])),
    rating ? el("section", { class: "card" }, el("h2", {}, "Merchant rating"), ratingView(rating)) : null,
    terms ? el("section", { class: "card" }, el("h2", {}, "Published terms"), kvTable(Object.entries(terms).map(([k, v]) => [k, renderValue(v, k)]))) : null);
}

function lookupForm(placeholder, pattern, route, value) {
  const input = el("input", { name: "q", placeholder, value: value || "", "aria-label": placeholder,
    on: { input: () => input.setCustomValidity("") } });
  return el("form", { class: "lookup", on: { submit: (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (pattern.test(q)) location.hash = `#/${route}/${q}`;
    else {
      input.setCustomValidity(`expected ${placeholder}`);
      input.reportValidity();
    }
  } } }, input, el("button", { type: "submit" }, "Look up"));
}

async function pageOrder(token, id) {
  const form = lookupForm("order id (a number)", /^\d+$/, "order", id);
  if (!id) return setMain(el("h1", {}, "Order tracker"), form, el("p", { class: "muted" }, "Enter an order id to see its states and events."));
  const order = await view("orders", "get_order", Number(id));
  if (!order) {
    if (token === state.renderToken) setMain(el("h1", {}, "Order tracker"), form, el("div", { class: "error" }, `No order ${id} on this chain.`));
    return;
  }
  const scan = await scanEvents("", { data: { order: Number(id) } }, order.placed_height);
  if (token !== state.renderToken) return;
  const reached = new Set(scan.events.map((e) => e.contract === "orders" && ORDER_EVENT_STATE[e.name]).filter(Boolean));
  const path = ORDER_PATH.includes(order.state) ? ORDER_PATH : ORDER_PATH.filter((s) => reached.has(s)).concat([order.state]);
  const steps = el("ol", { class: "steps", id: "order-steps" }, path.map((s) => el("li", {
    class: s === order.state ? "current" : reached.has(s) ? "done" : "" }, s)));
  const due = ORDER_DEADLINES[order.state];
  const deadlines = due && order[due[1]] ? [[due[0], deadlineText(order[due[1]], "anyone may poke the order")]] : [];
  setMain(
    el("h1", {}, `Order ${order.id} `, badge(order.state, ["CLOSED", "COMPLETED"].includes(order.state) ? "ok" : ["CANCELLED", "REJECTED", "DISPUTED"].includes(order.state) ? "bad" : "")),
    form, steps,
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Order"), kvTable([
        ["state", el("span", { id: "order-state" }, order.state)],
        ["merchant", accountLink(order.merchant)],
        ["buyer", accountLink(order.buyer)],
        ["carrier", order.carrier && order.carrier !== "0x" ? accountLink(order.carrier) : "not named yet"],
        ["lines", String(order.lines.length)],
        ["amount paid", moneyText(order.amount, order.currency)],
        ["refunded", moneyText(order.refunded, order.currency)],
        ["placed", el("span", {}, timeText(order.placed_at * 1000), " \u00b7 block ", link(`#/block/${order.placed_height}`, String(order.placed_height)))],
      ])),
      el("section", { class: "card" }, el("h2", {}, "Next deadline"),
        deadlines.length ? kvTable(deadlines) : el("p", { class: "muted" }, "No open deadline in this state."),
        el("p", { class: "muted" }, `Deadlines are in block time: the latest block, ${state.head}, is of ${timeText(state.headMs)}.`),
        el("p", { class: "muted" }, "Personal data (address, name) never touches the chain: the order holds only its hash (pii_root)."))),
    el("section", { class: "card", id: "order-lines" }, el("h2", {}, "Lines"),
      table(["#", "product", "qty", "unit price", "paid", "refunded", "returned", "terms"], order.lines.map((l, i) => el("tr", {},
        el("td", {}, String(i)), el("td", {}, el("span", { class: "mono", title: l.product }, short(l.product))),
        el("td", {}, String(l.quantity)), el("td", {}, moneyText(l.unit_price, order.currency)),
        el("td", {}, moneyText(l.amount, order.currency)), el("td", {}, moneyText(l.refunded, order.currency)),
        el("td", {}, String(l.returned)),
        el("td", {}, el("span", { class: "mono", title: l.terms_hash }, short(l.terms_hash)))))),
      el("p", { class: "muted" }, "A voucher's discount is shared over the lines in proportion to their prices, so the lines' paid amounts add up to the order's.")),
    el("section", { class: "card", id: "order-timeline" }, el("h2", {}, "Timeline"), timeline(scan.events, (e) => el("span", {},
      el("span", { class: "muted" }, e.contract + " \u00b7 "), eventData(e.data, e.contract))), scanNote(scan)));
}

async function pageWarranty(token, unit) {
  const form = lookupForm("unit id (0x + 64 hex digits)", HEX32, "warranty", unit);
  if (!unit) return setMain(el("h1", {}, "Warranty passport"), form, el("p", { class: "muted" }, "A unit id is the hash of the brand and serial number, computed off chain; the serial itself is never on chain."));
  const passport = await view("warranty", "get_passport", unit);
  if (!passport) {
    if (token === state.renderToken) setMain(el("h1", {}, "Warranty passport"), form, el("div", { class: "error" }, `No passport for unit ${unit}.`));
    return;
  }
  const [covered, recalled, log] = await Promise.all([view("warranty", "under_warranty", unit),
    view("warranty", "is_recalled", unit), view("warranty", "service_log", unit, SERVICE_LOG_LIMIT)]);
  const contested = log.length ? await rpcBatch(log.map((r) => ["chain_call", ["warranty", "is_contested", [unit, r.seq]]])) : [];
  let from = 1;
  if (passport.activated && passport.order) from = (await view("orders", "get_order", passport.order)).placed_height;
  const scan = await scanEvents("warranty", { data: { unit } }, from);
  const owners = [];
  for (const e of scan.events) {
    if (e.name === "WarrantyActivated") {
      const order = await view("orders", "get_order", e.data.order);
      owners.push({ owner: order.buyer, height: e.height, how: `bought (order ${e.data.order})`, tx: e.tx_id });
    } else if (e.name === "Transferred") {
      owners.push({ owner: e.data.to, height: e.height, how: "transfer claimed with a one-time code", tx: e.tx_id });
    }
  }
  const claimIds = scan.events.filter((e) => e.name === "ClaimOpened").map((e) => e.data.claim);
  const claims = claimIds.length ? (await rpcBatch(claimIds.map((c) => ["chain_call", ["warranty", "get_claim", [c]]]))).map((r) => r.result && r.result.result) : [];
  if (token !== state.renderToken) return;
  const flags = passport.flags.slice();
  if (recalled) flags.push("RECALLED");
  if (passport.void) flags.push("VOID");
  setMain(
    el("h1", {}, "Warranty passport ", covered ? badge("under warranty", "ok") : badge("not under warranty", "warn")),
    form,
    el("div", { class: "grid" },
      el("section", { class: "card", id: "passport" }, el("h2", {}, "Unit"), kvTable([
        ["unit", el("span", { class: "mono" }, unit)],
        ["brand", accountLink(passport.brand)],
        ["product", el("span", { class: "mono", title: passport.product }, short(passport.product))],
        ["current owner", passport.activated ? accountLink(passport.owner) : "not activated yet"],
        ["order", passport.order ? link(`#/order/${passport.order}`, `order ${passport.order}, line ${passport.line}`) : "-"],
        ["warranty ends", passport.warranty_end ? deadlineText(passport.warranty_end) : "-"],
        ["flags", el("span", { id: "passport-flags" }, flags.length ? flags.map((f) => badge(f, "bad")) : "none")],
        ["transfer on offer", passport.offer_expiry ? `until ${deadlineText(passport.offer_expiry)}` : "no"],
      ])),
      el("section", { class: "card", id: "owners" }, el("h2", {}, "Owner history"),
        owners.length ? table(["from block", "owner", "how"], owners.map((o) => el("tr", {},
          el("td", {}, link(`#/block/${o.height}`, String(o.height))), el("td", {}, el("span", { class: "mono", title: o.owner }, short(o.owner))), el("td", {}, o.how))))
          : el("p", { class: "muted" }, "No owner yet."),
        el("p", { class: "muted" }, "Owners appear as key fingerprints only; names and addresses are never on chain."))),
    el("section", { class: "card", id: "service-history" }, el("h2", {}, "Service history"),
      log.length ? el("ol", { class: "timeline" }, log.map((r, i) => el("li", {},
        el("div", {}, el("strong", {}, `#${r.seq} ${r.kind}`), r.amends ? ` (amends #${r.amends})` : "",
          r.under_warranty ? " \u00b7 under warranty" : "",
          contested[i] && contested[i].result && contested[i].result.result ? [" ", badge("contested by owner", "warn")] : null),
        el("div", { class: "when" }, "block ", link(`#/block/${r.height}`, String(r.height)), " \u00b7 by ", accountLink(r.by),
          " \u00b7 record hash ", el("span", { class: "mono", title: r.data_hash }, short(r.data_hash))))))
        : el("p", { class: "muted" }, "No service recorded.")),
    el("section", { class: "card", id: "claims" }, el("h2", {}, "Warranty claims"),
      claims.length ? table(["claim", "state", "remedy", "reply by"], claims.filter(Boolean).map((c) => el("tr", {},
        el("td", {}, String(c.id)), el("td", {}, badge(c.state, c.state === "REJECTED" ? "bad" : c.state === "FULFILLED" || c.state === "CLOSED" ? "ok" : "")),
        el("td", {}, c.remedy || "-"), el("td", {}, deadlineText(c.reply_by)))))
        : el("p", { class: "muted" }, "No claims.")),
    el("section", { class: "card" }, el("h2", {}, "Passport events"), timeline(scan.events), scanNote(scan)));
}

function stars(avg) {
  const full = Math.round(avg);
  return el("span", { class: "stars", title: avg.toFixed(2) }, "\u2605".repeat(full) + "\u2606".repeat(5 - full));
}

function ratingView(rating) {
  if (!rating.count) return el("p", { class: "muted" }, "No reviews yet.");
  return kvTable(SCORE_NAMES.map((name, i) => {
    const avg = rating.sums[i] / rating.count;
    return [name, el("span", {}, stars(avg), ` ${avg.toFixed(2)} / 5`)];
  }).concat([["verified reviews", String(rating.count)]]));
}

async function pageMerchants(token) {
  const merchants = state.genesis.accounts.filter((a) => a.roles.includes("MERCHANT"));
  const answers = await rpcBatch(merchants.map((m) => ["chain_call", ["reviews", "merchant_rating", [m.public_key]]]));
  if (token !== state.renderToken) return;
  const orgs = new Map(state.genesis.organisations.map((o) => [o.id, o.name]));
  setMain(
    el("h1", {}, "Merchant ratings"),
    el("p", { class: "muted" }, "Only verified buyers can review: each review is signed by a key committed when the order was placed, and only for a completed order. Averages count live, visible reviews."),
    lookupForm("merchant key (0x + 64 hex digits)", HEX32, "account", ""),
    el("section", { class: "card" }, table(["merchant", "reviews", "overall"].concat(SCORE_NAMES.slice(1)),
      merchants.map((m, i) => {
        const r = answers[i].result ? answers[i].result.result : { count: 0, sums: [0, 0, 0, 0, 0] };
        const avg = (k) => (r.count ? (r.sums[k] / r.count).toFixed(2) : "-");
        return el("tr", { "data-merchant": m.public_key },
          el("td", {}, link(`#/account/${m.public_key}`, orgs.get(m.organisation) || m.organisation)),
          el("td", {}, String(r.count)),
          el("td", {}, r.count ? [stars(r.sums[0] / r.count), " " + avg(0)] : "no reviews"),
          SCORE_NAMES.slice(1).map((_, k) => el("td", {}, avg(k + 1))));
      }), { id: "merchant-ratings" })));
}

// --- validators and governance ------------------------------------------------------------

function orgLabel(id) {
  const name = orgName(id);
  return name === id ? String(id) : `${name} (${id})`;
}

/** A validator key in full, with its name and organisation when the directory knows it. */
function validatorKey(key) {
  const d = state.directory.get(key);
  return el("span", {}, el("span", { class: "mono" }, key), d ? ` (${d.name}, ${orgName(d.organisation)})` : "");
}

/** What one scheduled set changes from the one before: added, removed, or replaced in place (a rotation). */
function setChange(before, after) {
  if (!before) return el("span", { class: "muted" }, "genesis set");
  const added = after.filter((k) => !before.includes(k));
  const removed = before.filter((k) => !after.includes(k));
  const parts = [];
  for (const k of added) {
    const at = after.indexOf(k);
    if (before[at] !== undefined && removed.includes(before[at]) && !after.includes(before[at])) {
      parts.push(el("span", {}, "rotated ", validatorLabel(before[at]), " \u2192 ", validatorLabel(k)));
      removed.splice(removed.indexOf(before[at]), 1);
    } else parts.push(el("span", {}, "added ", validatorLabel(k)));
  }
  for (const k of removed) parts.push(el("span", {}, "removed ", validatorLabel(k)));
  if (!parts.length) return el("span", { class: "muted" }, "same members");
  return el("span", {}, parts.map((p, i) => [i ? "; " : "", p]));
}

async function pageValidators(token) {
  const [consensus, peers, status, sets] = await Promise.all([rpc("consensus_status"), rpc("net_peers"),
    rpc("chain_status"), loadValidatorSets()]);
  if (token !== state.renderToken) return;
  setHead(status.height, status.latest_block_time_ms);
  const connected = new Map(peers.map((p) => [p.public_key, p.connected]));
  const next = sets.height + 1;
  const linkOf = (key) => (key === status.validator ? "this node" : connected.has(key)
    ? (connected.get(key) ? badge("connected", "ok") : badge("down", "bad")) : "-");
  const current = sets.validators.map((key) => {
    const d = state.directory.get(key) || {};
    return el("tr", { "data-key": key }, el("td", {}, validatorName(key)), el("td", {}, d.organisation ? orgName(d.organisation) : "-"),
      el("td", { class: "mono" }, d.p2p_address || "-"), el("td", { class: "mono", title: key }, short(key)), el("td", {}, linkOf(key)));
  });
  const entries = sets.schedule;
  const schedule = entries.map((entry, i) => {
    const following = entries[i + 1];
    let when;
    if (entry.from_height > next) when = badge(`upcoming: in ${entry.from_height - sets.height} blocks`, "warn");
    else if (following && following.from_height <= next) when = badge(`past: blocks ${entry.from_height}..${following.from_height - 1}`);
    else when = badge("in force", "ok");
    const proof = entry.proof ? `header ${entry.proof.height}, ${entry.proof.certificate.signers.length} signatures`
      : entry.from_height <= 1 ? "genesis" : "not reached yet";
    return el("tr", { "data-from": entry.from_height },
      el("td", {}, entry.from_height <= sets.height ? link(`#/block/${entry.from_height}`, String(entry.from_height)) : String(entry.from_height)),
      el("td", {}, entry.validators.map((k, j) => [j ? ", " : "", validatorLabel(k)])),
      el("td", {}, setChange(i ? entries[i - 1].validators : null, entry.validators)),
      el("td", {}, when), el("td", {}, proof));
  });
  setMain(
    el("h1", {}, "Validators"),
    el("p", {}, `View ${consensus.view}, primary ${consensus.primary_name || short(consensus.primary)}; a block needs ${consensus.quorum} of ${consensus.validators} signatures. ` +
      (consensus.voting ? "This node is a validator." : "This node is an observer: it verifies every certificate and never votes.")),
    el("section", { class: "card", id: "validator-set" }, el("h2", {}, `Set in force from block ${next}`),
      table(["name", "organisation", "p2p address", "key", "link from this node"], current, { class: "stack" })),
    el("section", { class: "card", id: "validator-schedule" }, el("h2", {}, "Schedule of changes"),
      table(["from block", "validators", "change", "status", "proof"], schedule, { class: "stack" }),
      el("p", { class: "muted" }, "Validators are added, removed and rotated by ", link("#/governance", "governance proposals"),
        "; the activation height is fixed when the proposal executes, the same on every node. The certified header before each " +
        "change names the new set's hash, so a light client follows the sets from genesis (RPC chain_getValidators).")));
}

/** How many proposals there are (ids run 0 .. count - 1). */
async function proposalCount() {
  return Number(await view("governance", "proposal_count"));
}

/** The newest proposals (at most MAX_PROPOSAL_PAGES pages of list_proposals), oldest first. */
async function loadProposals() {
  const total = await proposalCount();
  const first = Math.max(0, total - MAX_PROPOSAL_PAGES * PROPOSALS_PER_CALL);
  const pages = [];
  for (let from = first; from < total; from += PROPOSALS_PER_CALL) pages.push(["chain_call", ["governance", "list_proposals", [from, PROPOSALS_PER_CALL]]]);
  const proposals = [];
  for (const answer of await rpcBatch(pages)) {
    if (answer.error) throw new RpcError(answer.error);
    proposals.push(...answer.result.result);
  }
  return { proposals, total, complete: first === 0 };
}

/** Where a proposal stands at block time ``nowMs`` (the head block's time): the contract marks
 * an expiry only when someone next touches it, so the page works it out from the deadlines. */
function proposalStatus(p, nowMs) {
  if (p.state === "open") {
    return nowMs >= p.voting_ends_ms
      ? { label: "expired", kind: "bad", note: `voting ended ${timeText(p.voting_ends_ms)} without enough votes` }
      : { label: "open", kind: "", note: `voting until ${timeText(p.voting_ends_ms)}` };
  }
  if (p.state === "passed") {
    if (nowMs >= p.execute_by_ms) return { label: "expired", kind: "bad", note: `passed but not executed by ${timeText(p.execute_by_ms)}` };
    if (nowMs < p.executable_ms) return { label: "passed-waiting-timelock", kind: "warn", note: `executable from ${timeText(p.executable_ms)}` };
    return { label: "passed-executable", kind: "warn", note: `anyone may execute it until ${timeText(p.execute_by_ms)}` };
  }
  if (p.state === "executed") return { label: "executed", kind: "ok", note: `at block ${p.executed_height}` };
  if (p.state === "cancelled") return { label: "cancelled", kind: "", note: "withdrawn by its proposer before any vote" };
  if (p.state === "expired") return { label: "expired", kind: "bad", note: "ran out of time" };
  return { label: p.state, kind: "", note: "" };
}

function proposalLink(id) {
  return link(`#/proposal/${id}`, `proposal ${id}`);
}

function votesText(p, required) {
  return `${p.yes.length} for \u00b7 ${p.no.length} against \u00b7 ${required} needed`;
}

function executeText(p, status) {
  if (p.state === "executed") return `executed at block ${p.executed_height}`;
  if (p.state === "passed") return timeText(p.executable_ms);
  if (status.label === "open") return "after it passes and the timelock";
  return "-";
}

/** One argument of a proposal, shown by what it means for its kind. */
function argValue(kind, i, v) {
  if (v === undefined) return el("span", { class: "muted" }, "missing");
  if (kind === "settings" && i === 1 && v && typeof v === "object") return kvTable(Object.entries(v).map(([k, x]) => [k, renderValue(x, k)]));
  if (kind === "admit_org" && i === 1 && Array.isArray(v)) return el("span", {}, v.map((k, j) => [j ? ", " : "", accountLink(k)]));
  if (((kind === "admit_org" || kind === "remove_org") && i === 0) || (kind === "add_validator" && i === 2)) return orgLabel(v);
  if (kind === "role_policy" && Array.isArray(v)) return v.length ? v.join(", ") : "none";
  if (kind === "fees" && i === 2) return accountLink(v);
  if (kind.endsWith("_validator") && typeof v === "string" && HEX32.test(v)) return validatorKey(v);
  return renderValue(v, "");
}

/** The rows of "what this proposal does": named arguments, or the code summary voters were shown. */
function proposalArgRows(p) {
  if (p.kind === "code") {
    const c = p.code;
    if (!c) return [["code", el("span", { class: "muted" }, "no code summary stored")]];
    const methods = (c.abi && Array.isArray(c.abi.methods) ? c.abi.methods : []).map((m) => m.name);
    return [["action", String(c.action)], ["contract", String(c.name)],
      ["code hash", el("span", { class: "mono", id: "proposal-code-hash" }, c.code_hash)],
      ["payload hash", el("span", { class: "mono" }, c.payload_hash)], ["code size", `${c.code_bytes} bytes`],
      ["capabilities", c.capabilities.length ? c.capabilities.join(", ") : "none"],
      ["methods", methods.length ? methods.join(", ") : "-"],
      ["to execute", "the executor supplies the deploy payload again; the contract refuses one whose hashes differ"]];
  }
  const names = PROPOSAL_ARGS[p.kind];
  if (!names) return [["arguments", renderValue(p.args, "")]];
  return names.map((name, i) => [name, argValue(p.kind, i, p.args[i])]);
}

/** A ProposalCreated event's details inline: the same names as the proposal page. */
function proposalArgsInline(kind, details) {
  const names = kind === "code" ? CODE_DETAILS : PROPOSAL_ARGS[kind];
  if (!names) return renderValue(details, "");
  const parts = [];
  names.forEach((name, i) => {
    if (i) parts.push(", ");
    const v = details[i];
    const shown = kind === "code" ? renderValue(v, "") : kind.endsWith("_validator") && typeof v === "string" && HEX32.test(v)
      ? el("span", { class: "mono", title: v }, short(v) + (state.directory.has(v) ? ` (${validatorName(v)})` : "")) : argValue(kind, i, v);
    parts.push(el("span", { class: "muted" }, name + ": "), shown);
  });
  return el("span", {}, "{", parts, "}");
}

/** The proposal a governance transaction is about (its id argument, or what propose returned), else null. */
function governanceProposalOf(tx, receipt) {
  if (tx.contract !== "governance") return null;
  if (tx.method === "propose") return receipt && Number.isInteger(receipt.return_value) ? receipt.return_value : null;
  if (["vote", "execute", "expire", "cancel"].includes(tx.method) && Number.isInteger(tx.args[0])) return tx.args[0];
  return null;
}

async function pageGovernance(token) {
  const [status, settings, required, list] = await Promise.all([rpc("chain_status"), view("governance", "get_settings"),
    view("governance", "required_votes"), loadProposals()]);
  if (token !== state.renderToken) return;
  setHead(status.height, status.latest_block_time_ms);
  const now = status.latest_block_time_ms;
  const rows = list.proposals.slice().reverse().map((p) => {
    const st = proposalStatus(p, now);
    return el("tr", { "data-proposal": p.id, "data-state": st.label },
      el("td", {}, link(`#/proposal/${p.id}`, String(p.id))), el("td", {}, p.kind), el("td", {}, orgName(p.proposer_org)),
      el("td", {}, p.description || el("span", { class: "muted" }, "no description")),
      el("td", {}, badge(st.label, st.kind)), el("td", {}, votesText(p, required)), el("td", {}, executeText(p, st)),
      el("td", {}, p.code ? el("span", { class: "mono", title: p.code.code_hash }, short(p.code.code_hash)) : "-"));
  });
  setMain(
    el("h1", {}, "Governance"),
    el("p", { class: "muted" }, "Member organisations vote, through their admin keys, on every change no single key may make: " +
      "contract code, settings, fees, membership, role policy and validators. What passes runs after the timelock, carried out by the contract itself."),
    el("section", { class: "card", id: "governance-settings" }, el("h2", {}, "Rules"), kvTable([
      ["threshold", `${settings.threshold_num}/${settings.threshold_den} of the active organisations (${required} yes votes now)`],
      ["timelock", `${settings.timelock_s} s of block time between passing and execution`],
      ["voting period", `${settings.voting_period_s} s to pass, then as long again to execute`],
      ["validator changes", `take effect ${settings.activation_delay} blocks after execution`],
    ])),
    el("section", { class: "card", id: "proposals" }, el("h2", {}, `Proposals (${list.total})`),
      rows.length ? table(["id", "kind", "proposer", "description", "state", "votes", "can execute", "code hash"], rows,
        { class: "stack", id: "proposal-list" })
        : el("p", { class: "muted" }, "No proposals yet."),
      list.complete ? null : el("p", { class: "muted" }, `Showing the newest ${list.proposals.length} of ${list.total} proposals; ` +
        "older ones open by id below."),
      list.complete ? null : lookupForm("proposal id (a number)", /^\d+$/, "proposal", ""),
      el("p", { class: "muted" }, `States are as of block ${status.height} (${timeText(now)}).`)));
}

async function pageProposal(token, id) {
  const form = lookupForm("proposal id (a number)", /^\d+$/, "proposal", id);
  if (!id) return setMain(el("h1", {}, "Proposal"), form, el("p", { class: "muted" }, "Enter a proposal id, or see ", link("#/governance", "every proposal"), "."));
  // Ids are contract integers; one too long for JavaScript's numbers cannot name a proposal.
  const p = Number.isSafeInteger(Number(id)) ? await view("governance", "get_proposal", Number(id)) : null;
  if (!p) {
    const total = await proposalCount();
    if (token !== state.renderToken) return;
    const known = total ? `This chain has ${total} proposals, numbered 0 to ${total - 1}.` : "This chain has no proposals yet.";
    return setMain(el("h1", {}, "Proposal"), form, el("div", { class: "error", id: "proposal-missing" }, `No proposal ${id} on this chain. ${known}`),
      el("p", {}, link("#/governance", "All proposals")));
  }
  const [status, required, scan] = await Promise.all([rpc("chain_status"), view("governance", "required_votes"),
    scanEvents("governance", { data: { id: p.id } }, p.created_height), loadValidatorSets()]);
  setHead(status.height, status.latest_block_time_ms);
  const executed = scan.events.find((e) => e.name === "ProposalExecuted");
  let effects = [];
  if (executed) {
    const receipt = await rpc("chain_getReceipt", executed.tx_id);
    effects = receipt.events.filter((e) => !(e.contract === "governance" && e.name === "ProposalExecuted"))
      .map((e) => ({ ...e, height: receipt.height, tx_id: executed.tx_id }));
  }
  if (token !== state.renderToken) return;
  const st = proposalStatus(p, status.latest_block_time_ms);
  const votes = scan.events.filter((e) => e.name === "Voted");
  const scheduled = effects.find((e) => e.contract === "governance" && e.name === "ValidatorSetScheduled");
  const created = scan.events.find((e) => e.name === "ProposalCreated");
  const activation = scheduled ? scheduled.data.activation_height : null;
  setMain(
    el("h1", {}, `Proposal ${p.id} `, badge(st.label, st.kind)),
    form,
    el("div", { class: "grid" },
      el("section", { class: "card", id: "proposal-summary" }, el("h2", {}, p.kind), kvTable([
        ["state", el("span", { id: "proposal-state" }, st.label, st.note ? el("span", { class: "muted" }, ` \u00b7 ${st.note}`) : null)],
        ["description", p.description || el("span", { class: "muted" }, "none")],
        ["proposer", el("span", {}, orgLabel(p.proposer_org), " \u00b7 ", accountLink(p.proposer))],
        ["proposed at", el("span", {}, link(`#/block/${p.created_height}`, `block ${p.created_height}`), ` \u00b7 ${timeText(p.created_ms)}`,
          created ? [" \u00b7 tx ", hexLink("tx", created.tx_id)] : null)],
        ["votes", el("span", { id: "proposal-votes-count" }, votesText(p, required))],
        ["voting ends", timeText(p.voting_ends_ms)],
        p.passed_ms ? ["passed", timeText(p.passed_ms)] : null,
        p.executable_ms ? ["can execute", `from ${timeText(p.executable_ms)} until ${timeText(p.execute_by_ms)}`] : null,
      ])),
      el("section", { class: "card", id: "proposal-args" }, el("h2", {}, "What it does"), kvTable(proposalArgRows(p)))),
    el("section", { class: "card", id: "proposal-votes" }, el("h2", {}, "Votes"),
      votes.length ? table(["organisation", "vote", "tally after", "block", "voter", "transaction"], votes.map((e) => el("tr", { "data-org": e.data.org },
        el("td", {}, orgLabel(e.data.org)), el("td", {}, e.data.yes ? badge("yes", "ok") : badge("no", "bad")),
        el("td", {}, `${e.data.yes_votes} of ${e.data.required} yes`), el("td", {}, link(`#/block/${e.height}`, String(e.height))),
        el("td", {}, accountLink(e.data.voter)), el("td", {}, hexLink("tx", e.tx_id)))), { class: "stack" })
        : el("p", { class: "muted" }, p.yes.length + p.no.length ? `Votes recorded: for ${p.yes.join(", ") || "none"}; against ${p.no.join(", ") || "none"} (their events are outside the scanned blocks).` : "No votes yet.")),
    el("section", { class: "card", id: "proposal-execution" }, el("h2", {}, "Execution"),
      executed ? kvTable([
        ["block", link(`#/block/${executed.height}`, String(executed.height))],
        ["transaction", hexLink("tx", executed.tx_id)],
        activation !== null ? ["validator set from", el("span", { id: "proposal-activation" }, `block ${activation}`,
          activation > status.height ? ` (in ${activation - status.height} blocks)` : " (in force since then)")] : null,
        activation !== null ? ["new set", el("span", {}, scheduled.data.validators.map((k, j) => [j ? ", " : "", validatorLabel(k)]), " \u00b7 ",
          link("#/validators", "schedule"))] : null,
        ["effects", effects.length ? eventsTable(effects, false) : el("span", { class: "muted" }, "no further events")],
      ]) : el("p", { class: "muted" }, st.label === "passed-waiting-timelock" ? `Not yet: the timelock ends ${timeText(p.executable_ms)}.`
        : st.label === "passed-executable" ? "Passed and out of its timelock: anyone may execute it now." : "Not executed.")),
    el("section", { class: "card", id: "proposal-events" }, el("h2", {}, "Events"), timeline(scan.events), scanNote(scan)));
}

// --- search and routing ----------------------------------------------------------------------

async function search(query) {
  const q = query.trim();
  if (/^\d+$/.test(q)) { location.hash = `#/block/${q}`; return; }
  if (!HEX32.test(q)) { showError(new Error(`Search expects a block height or a 0x-prefixed 32-byte id, found "${q.slice(0, 80)}"`)); return; }
  const [tx, block] = await rpcBatch([["chain_getTransaction", [q]], ["chain_getBlockByHash", [q, false]]]);
  if (tx.result) location.hash = `#/tx/${q}`;
  else if (block.result) location.hash = `#/block/${q}`;
  else location.hash = `#/account/${q}`;
}

const ROUTES = [
  [/^#?\/?$/, pageHome],
  [/^#\/block\/(\d+|0x[0-9a-fA-F]{64})$/, pageBlock],
  [/^#\/tx\/(0x[0-9a-fA-F]{64})$/, pageTx],
  [/^#\/account\/(0x[0-9a-fA-F]{64})$/, pageAccount],
  [/^#\/order(?:\/(\d+))?$/, pageOrder],
  [/^#\/warranty(?:\/(0x[0-9a-fA-F]{64}))?$/, pageWarranty],
  [/^#\/merchants$/, pageMerchants],
  [/^#\/validators$/, pageValidators],
  [/^#\/governance$/, pageGovernance],
  [/^#\/proposal(?:\/(\d+))?$/, pageProposal],
];

async function render() {
  const hash = location.hash || "#/";
  const token = ++state.renderToken;
  state.route = hash;
  for (const [pattern, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      try {
        await page(token, ...match.slice(1));
      } catch (err) {
        if (token === state.renderToken) showError(err);
      }
      document.body.dataset.page = page.name;
      document.body.dataset.ready = String(token);
      return;
    }
  }
  showError(new Error(`No page at ${hash}; try the links above.`));
}

async function start() {
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    search(document.getElementById("search-input").value).catch(showError);
  });
  window.addEventListener("hashchange", render);
  try {
    await loadGenesis();
    await loadCurrencies();
  } catch (err) {
    showError(err);
    return;
  }
  connectLive();
  await render();
}

start();
