/* shopchain explorer: a single page over this node's JSON-RPC (POST /rpc) and its
 * websocket (/ws, newBlocks subscription). Pages are chosen by the URL hash:
 *   #/                 latest blocks and transactions, updating live
 *   #/block/<h|hash>   a block, its transactions and its certificate's signers
 *   #/tx/<id>          a transaction with its receipt and events
 *   #/account/<key>    an account's on-chain facts
 *   #/order/<id>       order tracker: states, deadlines, timeline of events
 *   #/warranty/<unit>  warranty passport: owners, service history, claims, flags
 *   #/merchants        merchant ratings from verified reviews
 *   #/validators       the consortium's validators and this node's view of them
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
/** Pages of chain_getEvents one lookup may read (each covers up to 2,000 blocks). */
const MAX_EVENT_PAGES = 25;
/** Service records shown on a passport. */
const SERVICE_LOG_LIMIT = 100;
/** Wait before reconnecting the live websocket. */
const RECONNECT_MS = 2000;

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
  "by", "referrer", "center", "validator", "proposer", "issuer", "handler"]);
const HEX32 = /^0x[0-9a-fA-F]{64}$/;

const state = { genesis: null, names: new Map(), head: 0, ws: null, live: false, route: "", renderToken: 0, recent: [] };

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

/** Every matching event in [from, latest], page by page, at most MAX_EVENT_PAGES pages. */
async function scanEvents(contract, filters, from) {
  const events = [];
  let next = Math.max(1, from || 1);
  let pages = 0;
  let last = next - 1;
  while (next !== null && pages < MAX_EVENT_PAGES) {
    const page = await rpc("chain_getEvents", contract, filters, next, "latest");
    events.push(...page.events);
    last = page.to_height;
    next = page.next_from;
    pages += 1;
  }
  return { events, from: Math.max(1, from || 1), to: last, complete: next === null };
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
  for (const child of children.flat()) {
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

function timeText(ms) {
  if (!ms) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

function kvTable(rows) {
  return el("table", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

function table(headers, rows, attrs, bodyId) {
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", { id: bodyId }, rows));
}

/** A contract value for people: keys link to accounts, units to passports, orders to the tracker. */
function renderValue(value, field) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "null");
  if (typeof value === "string" && HEX32.test(value)) {
    if (field === "unit") return hexLink("warranty", value);
    if (KEY_FIELDS.has(field)) return accountLink(value);
    return el("span", { class: "mono", title: value }, short(value));
  }
  if (field === "order" && Number.isInteger(value)) return link(`#/order/${value}`, `order ${value}`);
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

function eventData(data) {
  if (!data || typeof data !== "object") return renderValue(data, "");
  const parts = [];
  Object.entries(data).forEach(([k, v], i) => { if (i) parts.push(" \u00b7 "); parts.push(el("span", { class: "muted" }, k + " "), renderValue(v, k)); });
  return el("span", {}, parts);
}

function eventsTable(events, withTx) {
  return table(["height", "event", "data"].concat(withTx ? ["transaction"] : []), events.map((e) => el("tr", {},
    el("td", {}, link(`#/block/${e.height}`, String(e.height))),
    el("td", {}, `${e.contract}.${e.name}`),
    el("td", {}, eventData(e.data)),
    withTx ? el("td", {}, hexLink("tx", e.tx_id)) : null)));
}

function timeline(events, describe) {
  if (!events.length) return el("p", { class: "muted" }, "No events found.");
  return el("ol", { class: "timeline" }, events.map((e) => el("li", { "data-event": e.name },
    el("div", {}, el("strong", {}, e.name), " ", describe ? describe(e) : eventData(e.data)),
    el("div", { class: "when" }, "block ", link(`#/block/${e.height}`, String(e.height)), " \u00b7 tx ", hexLink("tx", e.tx_id)))));
}

function scanNote(scan) {
  const text = `Events scanned from block ${scan.from} to ${scan.to}` +
    (scan.complete ? "." : ` (stopped after ${MAX_EVENT_PAGES} pages; older or newer events are not shown).`);
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
  const v = state.genesis && state.genesis.validators.find((x) => x.public_key === key);
  return v ? v.name : short(key);
}

function setHead(height) {
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
  setHead(block.height);
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
  setHead(status.height);
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
  if (token !== state.renderToken) return;
  const h = block.header;
  const signers = cert ? cert.signers : [];
  const total = state.genesis ? state.genesis.validators.length : signers.length;
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
        const v = state.genesis && state.genesis.validators.find((x) => x.public_key === s);
        return el("tr", {}, el("td", {}, v ? v.name : "unknown"), el("td", {}, v ? orgName(v.organisation) : "-"), el("td", { class: "mono" }, s));
      })) : null),
    el("section", { class: "card" }, el("h2", {}, "Transactions"),
      block.txs.length ? table(["transaction", "call", "sender", "nonce"], block.txs.map((tx) => el("tr", {},
        el("td", {}, hexLink("tx", tx.id)), el("td", {}, `${tx.contract}.${tx.method}`),
        el("td", {}, accountLink(tx.sender)), el("td", {}, String(tx.nonce)))))
        : el("p", { class: "muted" }, "An empty block: it moves height-based deadlines on.")));
}

async function pageTx(token, id) {
  const tx = await rpc("chain_getTransaction", id);
  let receipt = null;
  if (tx.status === "committed") receipt = await rpc("chain_getReceipt", id);
  if (token !== state.renderToken) return;
  const ok = receipt && receipt.status === "ok";
  setMain(
    el("h1", {}, "Transaction"),
    el("section", { class: "card" }, kvTable([
      ["id", el("span", { class: "mono" }, tx.id)],
      ["status", receipt ? badge(ok ? "ok" : "failed", ok ? "ok" : "bad") : badge(tx.status, "warn")],
      ["block", tx.height ? link(`#/block/${tx.height}`, `${tx.height} (position ${tx.index})`) : "pending"],
      ["call", `${tx.contract}.${tx.method}`],
      ["arguments", renderValue(tx.args, "")],
      ["sender", accountLink(tx.sender)],
      ["nonce", String(tx.nonce)],
      ["gas limit", String(tx.gas_limit)],
    ])),
    receipt ? el("section", { class: "card", id: "receipt" }, el("h2", {}, "Receipt"), kvTable([
      ["outcome", ok ? "committed and succeeded" : `committed, failed: ${receipt.error}`],
      ["gas used", String(receipt.gas_used)],
      ["return value", renderValue(receipt.return_value, tx.contract === "orders" && tx.method === "place" ? "order" : "")],
      ["proof", `Merkle path of ${receipt.proof.path.length} hashes to the receipts root of block ${receipt.height}, ` +
        `certified by ${receipt.proof.certificate ? receipt.proof.certificate.signers.length : 0} validator signatures`],
    ])) : null,
    receipt ? el("section", { class: "card", id: "events" }, el("h2", {}, "Events"),
      receipt.events.length ? eventsTable(receipt.events.map((e) => ({ ...e, height: receipt.height, tx_id: tx.id })), false)
        : el("p", { class: "muted" }, "This transaction emitted no events.")) : null);
}

async function pageAccount(token, key) {
  const info = await rpc("account_get", key);
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
      ["balance (minor units)", String(info.balance)],
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
  const scan = await scanEvents("", { data: { order: Number(id) } }, order.placed_at);
  if (token !== state.renderToken) return;
  const reached = new Set(scan.events.map((e) => e.contract === "orders" && ORDER_EVENT_STATE[e.name]).filter(Boolean));
  const path = ORDER_PATH.includes(order.state) ? ORDER_PATH : ORDER_PATH.filter((s) => reached.has(s)).concat([order.state]);
  const steps = el("ol", { class: "steps", id: "order-steps" }, path.map((s) => el("li", {
    class: s === order.state ? "current" : reached.has(s) ? "done" : "" }, s)));
  const due = ORDER_DEADLINES[order.state];
  const deadlines = due && order[due[1]] ? [[due[0], `block ${order[due[1]]}` +
    (order[due[1]] > state.head ? ` (in ${order[due[1]] - state.head} blocks)` : " (passed: anyone may poke the order)")]] : [];
  setMain(
    el("h1", {}, `Order ${order.id} `, badge(order.state, ["CLOSED", "COMPLETED"].includes(order.state) ? "ok" : ["CANCELLED", "REJECTED", "DISPUTED"].includes(order.state) ? "bad" : "")),
    form, steps,
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Order"), kvTable([
        ["state", el("span", { id: "order-state" }, order.state)],
        ["merchant", accountLink(order.merchant)],
        ["buyer", accountLink(order.buyer)],
        ["carrier", order.carrier && order.carrier !== "0x" ? accountLink(order.carrier) : "not named yet"],
        ["product", el("span", { class: "mono", title: order.product }, short(order.product))],
        ["quantity", String(order.quantity)],
        ["amount paid (minor units)", String(order.amount)],
        ["refunded", String(order.refunded)],
        ["placed at block", link(`#/block/${order.placed_at}`, String(order.placed_at))],
      ])),
      el("section", { class: "card" }, el("h2", {}, "Next deadline"),
        deadlines.length ? kvTable(deadlines) : el("p", { class: "muted" }, "No open deadline in this state."),
        el("p", { class: "muted" }, `Deadlines are block heights; the chain is at block ${state.head}.`),
        el("p", { class: "muted" }, "Personal data (address, name) never touches the chain: the order holds only its hash (pii_root)."))),
    el("section", { class: "card", id: "order-timeline" }, el("h2", {}, "Timeline"), timeline(scan.events, (e) => el("span", {},
      el("span", { class: "muted" }, e.contract + " \u00b7 "), eventData(e.data))), scanNote(scan)));
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
  if (passport.activated && passport.order) from = (await view("orders", "get_order", passport.order)).placed_at;
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
        ["order", passport.order ? link(`#/order/${passport.order}`, `order ${passport.order}`) : "-"],
        ["warranty ends", passport.warranty_end ? `block ${passport.warranty_end}` : "-"],
        ["flags", el("span", { id: "passport-flags" }, flags.length ? flags.map((f) => badge(f, "bad")) : "none")],
        ["transfer on offer", passport.offer_expiry ? `until block ${passport.offer_expiry}` : "no"],
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
        el("td", {}, c.remedy || "-"), el("td", {}, `block ${c.reply_by}`))))
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

async function pageValidators(token) {
  const [consensus, peers] = await Promise.all([rpc("consensus_status"), rpc("net_peers")]);
  if (token !== state.renderToken) return;
  const connected = new Map(peers.map((p) => [p.public_key, p.connected]));
  setMain(
    el("h1", {}, "Validators"),
    el("p", {}, `View ${consensus.view}, primary ${consensus.primary_name || short(consensus.primary)}; a block needs ${consensus.quorum} of ${consensus.validators} signatures.`),
    el("section", { class: "card" }, table(["name", "organisation", "p2p address", "key", "link from this node"],
      state.genesis.validators.map((v) => el("tr", {}, el("td", {}, v.name), el("td", {}, orgName(v.organisation)),
        el("td", { class: "mono" }, v.p2p_address), el("td", { class: "mono", title: v.public_key }, short(v.public_key)),
        el("td", {}, connected.has(v.public_key) ? (connected.get(v.public_key) ? badge("connected", "ok") : badge("down", "bad")) : "this node"))))));
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
  } catch (err) {
    showError(err);
    return;
  }
  connectLive();
  await render();
}

start();
