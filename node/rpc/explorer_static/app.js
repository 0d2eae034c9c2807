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
 *   #/hash/<0x..>      what a 32-byte id names (transaction, block, passport or account), or says it names nothing
 * Before the first page is drawn the page loads genesis, the currencies and the chain's head, so a
 * deep link opened in a fresh tab sees the same chain as one reached by clicking. Amounts are
 * integer minor units on chain and are shown in their currency's major units (the raw value in the
 * title). When the node cannot be reached the page says so and retries until it answers.
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
/** Wait before drawing the page again after the node could not be reached. */
const RETRY_MS = 3000;
/** JSON-RPC error code of a missing block, transaction or receipt (node/rpc/jsonrpc.py NOT_FOUND). */
const NOT_FOUND = -32004;
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
  renderToken: 0, recent: [], booted: false, unreachable: false, retryTimer: null, abis: new Map(), unitNames: new Map() };

// --- JSON-RPC ---------------------------------------------------------------------------

class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
  }
}

/** The node did not answer at all (down, restarting, or the network is gone): worth retrying. */
class NodeUnreachable extends Error {
  constructor(detail) {
    super(`Cannot reach the node at ${location.origin}; it may be down or restarting \u2014 retrying every ${RETRY_MS / 1000} s. (${detail})`);
  }
}

let rpcId = 0;

async function post(body) {
  let response;
  try {
    response = await fetch("/rpc", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (err) {
    // fetch rejects only when no HTTP answer came back: the browser's own words ("Failed to fetch") say nothing useful.
    throw new NodeUnreachable("no answer to POST /rpc");
  }
  // A proxy in front of a stopped node answers 502/503/504 with an HTML page, not JSON-RPC.
  if (response.status >= 502 && response.status <= 504) throw new NodeUnreachable(`POST /rpc answered HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (err) {
    throw new Error(`POST /rpc answered HTTP ${response.status} with a body that is not JSON-RPC; expected a JSON object`);
  }
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

/** A long id in full, wrapping anywhere, with a button that copies it (the id, not the page's text around it). */
function copyable(hex, id) {
  const button = el("button", { type: "button", class: "copy", title: "copy the full value", "aria-label": "copy" }, "copy");
  button.addEventListener("click", () => {
    const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(hex).then(done, () => {});
    else {
      // Plain http on another host has no clipboard API: select the value so the viewer copies it.
      const range = document.createRange();
      range.selectNodeContents(value);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
  });
  const value = el("span", { class: "mono", id }, hex);
  return el("span", { class: "copyable" }, value, " ", button);
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
  // In a scrolling box of its own: a table wider than a phone scrolls inside it, never the whole page.
  return el("div", { class: "table-box" },
    el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", { id: bodyId }, rows)));
}

/** Event and record fields that hold money (integer minor units of a currency). */
const MONEY_FIELDS = new Set(["amount", "value", "payout", "fee", "holdback", "refunded", "cumulative", "to_buyer",
  "to_merchant", "commission", "discount", "price", "paid", "budget", "pair_cap", "min_spend", "supply", "escrowed",
  "balance", "unit_price"]);

/** Minor units as an amount of currency ``code`` (the base currency when absent), exactly: "1,234.50 USD".
 * A currency this page does not know (none loaded) keeps the ledger's default of two decimals. */
function moneyText(minor, code) {
  const cur = state.currencies.get(code || state.baseCurrency) || { code: code || state.baseCurrency || "", decimals: 2 };
  const value = BigInt(minor);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const scale = 10n ** BigInt(cur.decimals);
  const whole = (abs / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = cur.decimals ? "." + (abs % scale).toString().padStart(cur.decimals, "0") : "";
  return `${negative ? "-" : ""}${whole}${frac}${cur.code ? " " + cur.code : ""}`;
}

/** An amount for people (major units) with the raw integer on hover: what the chain stores. */
function money(minor, code) {
  if (minor === null || minor === undefined || minor === "") return el("span", { class: "muted" }, "-");
  const cur = code || state.baseCurrency;
  return el("span", { class: "money", title: `${minor} minor units${cur ? " of " + cur : ""}`, "data-minor": String(minor) }, moneyText(minor, code));
}

/** Whether ``field`` of ``contract`` holds money: loyalty's amounts are points, not currency. */
function isMoney(field, value, contract) {
  return MONEY_FIELDS.has(field) && Number.isInteger(value) && contract !== "loyalty";
}

/** The lines argument of orders.place / place_in: [product, quantity, unit price, terms hash] each. */
function orderLines(lines, currency) {
  return el("ol", { class: "plain" }, lines.map((l) => Array.isArray(l) && l.length >= 3
    ? el("li", {}, renderValue(l[0], ""), ` \u00d7 ${l[1]} at `, money(l[2], currency), l.length > 3 ? [" \u00b7 terms ", renderValue(l[3], "")] : null)
    : el("li", {}, renderValue(l, ""))));
}

/** A contract value for people: keys link to accounts, units to passports, orders to the tracker,
 * amounts (by field name) in major units of ``currency``. ``contract`` says whose value it is. */
function renderValue(value, field, contract, currency) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "null");
  if (isMoney(field, value, contract)) return money(value, currency);
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
    value.forEach((v, i) => { if (i) parts.push(", "); parts.push(renderValue(v, field, contract, currency)); });
    return el("span", {}, "[", parts, "]");
  }
  if (typeof value === "object") {
    const parts = [];
    const code = typeof value.currency === "string" && value.currency ? value.currency : currency;
    Object.entries(value).forEach(([k, v], i) => { if (i) parts.push(", "); parts.push(`${k}: `, renderValue(v, k, contract, code)); });
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
    else shown = renderValue(v, k, contract, data.currency);
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

/** Replace the page's content. Absent parts (null, false: a section a page leaves out) are skipped, as el()
 * skips them: replaceChildren would insert them as the text "null". */
function setMain(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function showError(err) {
  if (err instanceof NodeUnreachable) {
    // Draw the same route again in a while: the page comes back by itself once the node answers.
    setReachable(false);
    setMain(el("div", { class: "error", id: "node-unreachable", role: "status" }, err.message));
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(render, RETRY_MS);
    return;
  }
  const message = err instanceof RpcError ? `${err.message} (code ${err.code})` : String(err && err.message || err);
  setMain(el("div", { class: "error", id: "page-error" }, message));
}

function setReachable(on) {
  state.unreachable = !on;
  if (!on) setLive(false, "node unreachable");
  else if (!state.live && state.ws && state.ws.readyState === WebSocket.OPEN) setLive(true, "live");
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
    if (err instanceof NodeUnreachable) throw err;
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

/** The chain's head from chain_status, for pages whose text depends on it (deadlines, "next" links). */
async function refreshHead() {
  const status = await rpc("chain_status");
  setHead(status.height, status.latest_block_time_ms);
  return status;
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
    if (data.id === "live" && data.result) {
      setLive(true, "live");
      // The node is back: redraw at once rather than at the next retry.
      if (state.unreachable) render();
    }
    if (data.method === "chain_subscription") onNewBlock(data.params.result).catch(() => {});
  };
  ws.onclose = () => {
    setLive(false, state.unreachable ? "node unreachable" : "reconnecting...");
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
    const receipts = await receiptsOf(full.txs);
    if (!document.getElementById("latest-txs-body")) return;
    const placeholder = txBody.querySelector("tr.empty");
    if (placeholder) placeholder.remove();
    full.txs.forEach((tx, i) => { if (!txBody.querySelector(`tr[data-tx="${tx.id}"]`)) txBody.prepend(txRow(tx, block.height, true, receipts[i])); });
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

/** Receipts of ``txs`` (in order; null where the node has none), one batch: a committed transaction may
 * still have failed (its contract refused it), and lists must say so, not only the transaction's page. */
async function receiptsOf(txs) {
  if (!txs.length) return [];
  return (await rpcBatch(txs.map((tx) => ["chain_getReceipt", [tx.id]]))).map((r) => r.result || null);
}

/** The outcome of a committed transaction: "ok", or "failed" with the contract's reason beside it. */
function outcome(receipt) {
  if (!receipt) return badge("no receipt", "warn");
  if (receipt.status === "ok") return badge("ok", "ok");
  return el("span", { class: "tx-failed" }, badge("failed", "bad"), " ", el("span", { class: "reason" }, receipt.error || "no reason given"));
}

function txRow(tx, height, fresh, receipt) {
  const failed = receipt && receipt.status !== "ok";
  return el("tr", { class: [fresh ? "fresh" : "", failed ? "failed" : ""].join(" ").trim() || null, "data-tx": tx.id,
    "data-status": receipt ? receipt.status : null },
    el("td", {}, hexLink("tx", tx.id)),
    el("td", {}, `${tx.contract}.${tx.method}`),
    el("td", {}, outcome(receipt)),
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
  const receipts = await receiptsOf(txs.map(([tx]) => tx));
  if (token !== state.renderToken) return;
  const top = blocks.length ? blocks[0].height : 0;
  const txRows = txs.length ? txs.map(([tx, h], i) => txRow(tx, h, false, receipts[i]))
    : [el("tr", { class: "empty" }, el("td", { colspan: 5, class: "muted" }, `No transactions in the last ${TX_LOOKBACK_BLOCKS} blocks.`))];
  setMain(
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Latest blocks"),
        table(["height", "time", "txs", "proposer", "hash"], blocks.map((b) => blockRow(b, false)), { id: "latest-blocks" }, "latest-blocks-body")),
      el("section", { class: "card" }, el("h2", {}, "Latest transactions"),
        table(["transaction", "call", "outcome", "sender", "block"], txRows, { id: "latest-txs", class: "stack" }, "latest-txs-body"))),
    el("p", { class: "muted" }, `Node ${status.node} \u00b7 state root `, el("span", { class: "mono" }, short(status.state_root)),
      ` \u00b7 ${status.syncing ? "catching up" : "in sync"} \u00b7 mempool ${status.mempool_size}`));
  for (const block of state.recent.filter((b) => b.height > top).sort((a, b) => a.height - b.height)) await onNewBlock(block);
}

/** ``promise``'s value, or null when the node says the thing does not exist (any other failure is thrown). */
async function orMissing(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof RpcError && err.code === NOT_FOUND) return null;
    throw err;
  }
}

async function pageBlock(token, id) {
  const byHeight = /^\d+$/.test(id);
  const block = await orMissing(byHeight ? rpc("chain_getBlock", Number(id), true) : rpc("chain_getBlockByHash", id, true));
  if (!block) {
    const status = await refreshHead();
    if (token !== state.renderToken) return;
    return notFound("Block", byHeight ? `No block ${id} on this chain: it is at block ${status.height}.`
      : `No block with hash ${id} on this chain (searched up to block ${status.height}).`);
  }
  const [cert, sets, receipts] = await Promise.all([rpc("chain_getCertificate", block.height), loadValidatorSets(), receiptsOf(block.txs)]);
  if (token !== state.renderToken) return;
  const h = block.header;
  const signers = cert ? cert.signers : [];
  const total = setAt(sets, block.height).length || signers.length;
  setMain(
    el("h1", {}, `Block ${block.height}`),
    el("p", {}, block.height > 1 ? link(`#/block/${block.height - 1}`, "\u2190 previous") : null, " ",
      block.height < state.head ? link(`#/block/${block.height + 1}`, "next \u2192") : null),
    el("section", { class: "card" }, kvTable([
      ["hash", copyable(block.hash, "block-hash")],
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
        return el("tr", {}, el("td", {}, validatorName(s)), el("td", {}, org ? orgName(org) : "-"), el("td", { class: "mono", title: s }, short(s)));
      }), { class: "stack" }) : null),
    el("section", { class: "card" }, el("h2", {}, "Transactions"),
      block.txs.length ? table(["transaction", "call", "outcome", "sender", "nonce"], block.txs.map((tx, i) => el("tr", {
        "data-tx": tx.id, "data-status": receipts[i] ? receipts[i].status : null, class: receipts[i] && receipts[i].status !== "ok" ? "failed" : null },
        el("td", {}, hexLink("tx", tx.id)), el("td", {}, `${tx.contract}.${tx.method}`), el("td", {}, outcome(receipts[i])),
        el("td", {}, accountLink(tx.sender)), el("td", {}, String(tx.nonce)))), { class: "stack", id: "block-txs" })
        : el("p", { class: "muted" }, "An empty block: its certified time moves deadlines on.")));
}

/** The argument names of ``contract``'s methods (chain_getContract's ABI), cached per contract; null if unknown. */
async function abiOf(contract) {
  if (!state.abis.has(contract)) {
    let methods = null;
    try {
      const info = await rpc("chain_getContract", contract);
      methods = new Map(((info.abi && info.abi.methods) || []).map((m) => [m.name, (m.args || []).map((a) => a[0])]));
    } catch (err) {
      if (err instanceof NodeUnreachable) throw err;
    }
    state.abis.set(contract, methods);
  }
  return state.abis.get(contract);
}

/** A call's arguments by name, amounts in major units (their currency: a ``currency`` argument, else the base one). */
function argsView(tx, names) {
  if (!names || names.length !== tx.args.length) return renderValue(tx.args, "", tx.contract);
  const code = names.includes("currency") && typeof tx.args[names.indexOf("currency")] === "string"
    ? tx.args[names.indexOf("currency")] || undefined : undefined;
  return kvTable(names.map((name, i) => [name, tx.contract === "orders" && name === "lines" && Array.isArray(tx.args[i])
    ? orderLines(tx.args[i], code) : renderValue(tx.args[i], name, tx.contract, code)]));
}

async function pageTx(token, id) {
  const tx = await orMissing(rpc("chain_getTransaction", id));
  if (!tx) {
    const status = await refreshHead();
    if (token !== state.renderToken) return;
    return notFound("Transaction", `No transaction with id ${id} on this chain or in this node's mempool (searched up to block ${status.height}).`);
  }
  let receipt = null;
  if (tx.status === "committed") receipt = await rpc("chain_getReceipt", id);
  // Governance events name validators that may have joined after genesis: fetch their names.
  if (receipt && receipt.events.some((e) => e.contract === "governance")) await loadValidatorSets();
  const abi = await abiOf(tx.contract);
  if (token !== state.renderToken) return;
  const ok = receipt && receipt.status === "ok";
  const proposal = governanceProposalOf(tx, receipt);
  setMain(
    el("h1", {}, "Transaction ", receipt ? (ok ? badge("succeeded", "ok") : badge("failed", "bad")) : badge(tx.status, "warn")),
    receipt && !ok ? el("div", { class: "error", id: "tx-failure" }, `This transaction was committed but failed: ${receipt.error || "no reason given"}. ` +
      "Its state changes were undone; the sender still paid the fee.") : null,
    el("section", { class: "card" }, kvTable([
      ["id", copyable(tx.id, "tx-id")],
      ["status", el("span", { id: "tx-status" }, receipt ? outcome(receipt) : badge(tx.status, "warn"))],
      ["block", tx.height ? link(`#/block/${tx.height}`, `${tx.height} (position ${tx.index})`) : "pending"],
      ["call", `${tx.contract}.${tx.method}`],
      proposal !== null ? ["proposal", el("span", { id: "tx-proposal" }, proposalLink(proposal))] : null,
      ["arguments", argsView(tx, abi && abi.get(tx.method))],
      ["sender", accountLink(tx.sender)],
      ["nonce", String(tx.nonce)],
      ["gas limit", String(tx.gas_limit)],
    ])),
    receipt ? el("section", { class: "card", id: "receipt" }, el("h2", {}, "Receipt"), kvTable([
      ["outcome", ok ? "committed and succeeded" : `committed, failed: ${receipt.error}`],
      ["gas used", String(receipt.gas_used)],
      ["fee", el("span", { id: "tx-fee" }, money(receipt.fee))],
      ["return value", renderValue(receipt.return_value, tx.contract === "orders" && tx.method.startsWith("place") ? "order"
        : tx.contract === "governance" && tx.method === "propose" ? "proposal" : "", tx.contract)],
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
      ["key", copyable(info.address, "account-key")],
      ["genesis member", state.names.get(key) || "registered after genesis, or unknown"],
      ["registered", info.registered ? "yes" : "no"],
      ["roles", info.roles.length ? info.roles.join(", ") : "none"],
      ["balance", el("span", { id: "account-balances" }, [money(info.balance)].concat(
        balances.filter(([code]) => code !== state.baseCurrency).map(([code, v]) => money(v, code))).map((m, i) => [i ? " \u00b7 " : "", m]))],
      ["next nonce", String(info.nonce)],
      ["pending transactions", String(info.pending_txs)],
    ])),
    rating ? el("section", { class: "card" }, el("h2", {}, "Merchant rating"), ratingView(rating)) : null,
    terms ? el("section", { class: "card" }, el("h2", {}, "Published terms"), kvTable(Object.entries(terms).map(([k, v]) => [k, renderValue(v, k, "orders")]))) : null);
}

/** A small form that opens ``#/<route>/<value>``; ``convert`` turns what was typed into the route's form. */
function lookupForm(placeholder, pattern, route, value, convert) {
  const input = el("input", { name: "q", placeholder, value: value || "", "aria-label": placeholder,
    on: { input: () => input.setCustomValidity("") } });
  return el("form", { class: "lookup", on: { submit: (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (pattern.test(q)) location.hash = `#/${route}/${convert ? convert(q) : q}`;
    else {
      input.setCustomValidity(`expected ${placeholder}`);
      input.reportValidity();
    }
  } } }, input, el("button", { type: "submit" }, "Look up"));
}

async function pageOrder(token, id) {
  const form = lookupForm("order id (a number)", /^\d+$/, "order", id);
  if (!id) return setMain(el("h1", {}, "Order tracker"), form, el("p", { class: "muted" }, "Enter an order id to see its states and events."));
  // The head comes with the order: its deadlines are counted from the latest block's time.
  const [order] = await Promise.all([view("orders", "get_order", Number(id)), refreshHead()]);
  if (!order) {
    if (token === state.renderToken) setMain(el("h1", {}, "Order tracker"), form, el("div", { class: "error", id: "not-found" },
      `No order ${id} on this chain (it is at block ${state.head}).`));
    return;
  }
  const [scan, escrow] = await Promise.all([scanEvents("", { data: { order: Number(id) } }, order.placed_height),
    (order.currency && order.currency !== state.baseCurrency ? view("ledger", "escrow_in", order.currency, "orders", `o${order.id}`)
      : view("ledger", "escrow_of", "orders", `o${order.id}`)).catch((err) => { if (err instanceof NodeUnreachable) throw err; return null; })]);
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
        ["amount paid", el("span", { id: "order-amount" }, money(order.amount, order.currency))],
        order.discount ? ["discount", money(order.discount, order.currency)] : null,
        ["refunded", money(order.refunded, order.currency)],
        ["platform fee", money(order.fee_paid, order.currency)],
        ["in escrow", el("span", { id: "order-escrow" }, escrow === null ? "-" : money(escrow, order.currency))],
        ["placed", el("span", {}, timeText(order.placed_at * 1000), " \u00b7 block ", link(`#/block/${order.placed_height}`, String(order.placed_height)))],
      ])),
      el("section", { class: "card" }, el("h2", {}, "Next deadline"),
        deadlines.length ? kvTable(deadlines) : el("p", { class: "muted" }, "No open deadline in this state."),
        el("p", { class: "muted" }, `Deadlines are in block time: the latest block, ${state.head}, is of ${timeText(state.headMs)}.`),
        el("p", { class: "muted" }, "Personal data (address, name) never touches the chain: the order holds only its hash (pii_root)."))),
    el("section", { class: "card", id: "order-lines" }, el("h2", {}, "Lines"),
      table(["#", "product", "qty", "unit price", "paid", "refunded", "returned", "terms"], order.lines.map((l, i) => el("tr", {},
        el("td", {}, String(i)), el("td", {}, el("span", { class: "mono", title: l.product }, short(l.product))),
        el("td", {}, String(l.quantity)), el("td", {}, money(l.unit_price, order.currency)),
        el("td", {}, money(l.amount, order.currency)), el("td", {}, money(l.refunded, order.currency)),
        el("td", {}, String(l.returned)),
        el("td", {}, el("span", { class: "mono", title: l.terms_hash }, short(l.terms_hash))))), { class: "stack" }),
      el("p", { class: "muted" }, "A voucher's discount is shared over the lines in proportion to their prices, so the lines' paid amounts add up to the order's.")),
    el("section", { class: "card", id: "order-timeline" }, el("h2", {}, "Timeline"), timeline(scan.events, (e) => el("span", {},
      el("span", { class: "muted" }, e.contract + " \u00b7 "), eventData(e.data, e.contract))), scanNote(scan)));
}

async function pageWarranty(token, unit) {
  const form = lookupForm("unit id (0x + 64 hex) or brand:serial", { test: (q) => HEX32.test(q) || SERIAL.test(q) }, "warranty", unit,
    (q) => (SERIAL.test(q) ? unitIdOf(q) : q));
  const about = el("p", { class: "muted" }, "A unit id is the SHA-256 of the unit's brand:serial (e.g. acme:SN-0001), computed off chain " +
    "(here, in your browser); the serial itself is never on chain.");
  if (!unit) return setMain(el("h1", {}, "Warranty passport"), form, about);
  const serial = state.unitNames.get(unit.toLowerCase());
  const [passport] = await Promise.all([view("warranty", "get_passport", unit), refreshHead()]);
  if (!passport) {
    if (token === state.renderToken) setMain(el("h1", {}, "Warranty passport"), form, el("div", { class: "error", id: "not-found" },
      serial ? `No passport for ${serial} (unit id ${unit}): its brand has not registered that serial.` : `No passport for unit ${unit}.`), about);
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
        ["unit", copyable(unit, "passport-unit")],
        serial ? ["serial", el("span", { id: "passport-serial" }, serial)] : null,
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
          el("td", {}, link(`#/block/${o.height}`, String(o.height))), el("td", {}, el("span", { class: "mono", title: o.owner }, short(o.owner))), el("td", {}, o.how))), { class: "stack" })
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
        el("td", {}, c.remedy || "-"), el("td", {}, deadlineText(c.reply_by)))), { class: "stack" })
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
      }), { id: "merchant-ratings", class: "stack" })));
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

const SHA256_K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

/** SHA-256 of ``text`` (UTF-8), as 0x-hex. Written out here because the browser's crypto.subtle exists
 * only on https or localhost, and a node is often browsed over plain http on its LAN address. */
function sha256Hex(text) {
  const data = new TextEncoder().encode(text);
  const bitLength = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const hash = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = hash;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    [a, b, c, d, e, f, g, hh].forEach((x, i) => { hash[i] = (hash[i] + x) >>> 0; });
  }
  return "0x" + Array.from(hash, (x) => x.toString(16).padStart(8, "0")).join("");
}

/** "brand:serial" (not 0x-hex): how a unit is named before it is hashed. */
const SERIAL = /^(?!0x)[^\s:][^:]*:\S.*$/;

/** The unit id of "brand:serial": SHA-256 of the text, as the CLI computes it (cli/output.py parse_commitment,
 * "acme:SN-0001"); the warranty contract only ever sees the hash, so the serial never reaches the chain. */
function unitIdOf(serial) {
  const id = sha256Hex(serial);
  state.unitNames.set(id, serial);
  return id;
}

async function search(query) {
  const q = query.trim();
  if (/^\d+$/.test(q)) { location.hash = `#/block/${q}`; return; }
  if (SERIAL.test(q)) { location.hash = `#/warranty/${unitIdOf(q)}`; return; }
  if (!HEX32.test(q)) {
    showError(new Error(`Search expects a block height, a 0x-prefixed 32-byte id or a unit's brand:serial, found "${q.slice(0, 80)}"`));
    return;
  }
  location.hash = `#/hash/${q.toLowerCase()}`;
}

/** What a 32-byte id names: a transaction, a block, a warranty passport or a known account, asked in one batch. */
async function pageHash(token, hex) {
  const [tx, block, passport, account] = await rpcBatch([["chain_getTransaction", [hex]], ["chain_getBlockByHash", [hex, false]],
    ["chain_call", ["warranty", "get_passport", [hex]]], ["account_get", [hex]]]);
  if (token !== state.renderToken) return;
  const a = account.result;
  const target = tx.result ? "tx" : block.result ? "block" : passport.result && passport.result.result ? "warranty"
    : a && (a.registered || a.roles.length || a.nonce || (a.balance && a.balance !== 0) || state.names.has(hex)) ? "account" : null;
  // replace: Back from the page found goes to where the search was made, not to this lookup.
  if (target) { location.replace(`#/${target}/${hex}`); return; }
  const failed = [tx, block].find((r) => r.error && r.error.code !== NOT_FOUND);
  if (failed) throw new RpcError(failed.error);
  notFound("Search", `No block, transaction, warranty passport or account with hash ${hex} on this chain (searched up to block ${state.head}).`);
}

/** A plain "nothing here" page (not an error: the id is well formed, the chain just has no such thing). */
function notFound(title, text) {
  setMain(el("h1", {}, title), el("div", { class: "error", id: "not-found" }, text),
    el("p", { class: "muted" }, "Search takes a block height or hash, a transaction id, an account key, a unit id or a unit's brand:serial."));
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
  [/^#\/hash\/(0x[0-9a-fA-F]{64})$/, pageHash],
];

/** What every page relies on, loaded once before the first page is drawn: names from genesis, the
 * currencies' decimals and the chain's head (pages compare deadlines with the head block's time). */
async function boot() {
  await loadGenesis();
  await loadCurrencies();
  await refreshHead();
  state.booted = true;
}

async function render() {
  const hash = location.hash || "#/";
  const token = ++state.renderToken;
  state.route = hash;
  clearTimeout(state.retryTimer);
  const route = ROUTES.find(([pattern]) => pattern.test(hash));
  try {
    if (!state.booted) await boot();
    if (!route) throw new Error(`No page at ${hash}; try the links above.`);
    await route[1](token, ...hash.match(route[0]).slice(1));
    if (token === state.renderToken) setReachable(true);
  } catch (err) {
    if (token === state.renderToken) showError(err);
  }
  if (token !== state.renderToken) return;
  document.body.dataset.page = route && !state.unreachable ? route[1].name : "error";
  document.body.dataset.ready = String(token);
}

async function start() {
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    search(document.getElementById("search-input").value).catch(showError);
  });
  window.addEventListener("hashchange", render);
  connectLive();
  await render();
}

start();
