"""The index's SQL schema: the same tables and views in SQLite and PostgreSQL.

How it works: the DDL below is written in the SQL both databases accept (BIGINT and
TEXT columns, composite primary keys, window functions, CAST), so one text creates
the schema in either and the rows (node/indexer/rows.py) mean the same everywhere.
The tables follow CometBFT's psql sink: ``blocks``, ``tx_results``, ``events`` and
``attributes`` (an event's data dict flattened one level, with a JSON copy in
``events.data``), plus ``order_lines`` (the products of each placed order) and
``indexer_state``, the one row holding the indexed height, which every batch updates
in the same SQL transaction as its rows: that is what makes indexing exactly once.
Composite primary keys (height, tx_index, event_index) rather than serial ids keep the
rows identical across databases and make a duplicate write impossible.

The commerce views are built on the events the system contracts really emit
(contracts_vm/system/orders.sc.py, cases.sc.py, warranty.sc.py, tickets.sc.py; see
docs/commerce.md) and answer the after-sales questions of docs/analytics.md. Rates are
integer basis points so both databases answer the same numbers.
"""

from __future__ import annotations

#: Bumped when a table changes; a database indexed with another version is refused.
SCHEMA_VERSION = 1

COLUMNS: dict[str, tuple[str, ...]] = {
    "blocks": ("height", "hash", "time_ms", "proposer", "view", "tx_count", "state_root", "prev_hash"),
    "tx_results": ("height", "tx_index", "tx_id", "sender", "nonce", "contract", "method", "args", "success",
                   "status", "gas_limit", "gas_used", "fee", "error", "return_value"),
    "events": ("height", "tx_index", "event_index", "tx_id", "contract", "name", "data"),
    "attributes": ("height", "tx_index", "event_index", "key", "value"),
    "order_lines": ("order_id", "line", "height", "merchant", "product", "quantity", "unit_price", "price"),
}

#: Each table's primary key: the order rows are compared and paged in.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "blocks": ("height",),
    "tx_results": ("height", "tx_index"),
    "events": ("height", "tx_index", "event_index"),
    "attributes": ("height", "tx_index", "event_index", "key"),
    "order_lines": ("order_id", "line"),
}

TABLES = """
CREATE TABLE IF NOT EXISTS indexer_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    height BIGINT NOT NULL,
    last_hash TEXT,
    genesis_hash TEXT
);
CREATE TABLE IF NOT EXISTS blocks (
    height BIGINT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    time_ms BIGINT NOT NULL,
    proposer TEXT NOT NULL,
    view BIGINT NOT NULL,
    tx_count INTEGER NOT NULL,
    state_root TEXT NOT NULL,
    prev_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tx_results (
    height BIGINT NOT NULL REFERENCES blocks (height),
    tx_index INTEGER NOT NULL,
    tx_id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    nonce BIGINT NOT NULL,
    contract TEXT NOT NULL,
    method TEXT NOT NULL,
    args TEXT NOT NULL,
    success INTEGER NOT NULL,
    status INTEGER NOT NULL,
    gas_limit BIGINT NOT NULL,
    gas_used BIGINT NOT NULL,
    fee BIGINT NOT NULL,
    error TEXT,
    return_value TEXT NOT NULL,
    PRIMARY KEY (height, tx_index)
);
CREATE TABLE IF NOT EXISTS events (
    height BIGINT NOT NULL,
    tx_index INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    tx_id TEXT NOT NULL,
    contract TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (height, tx_index, event_index),
    FOREIGN KEY (height, tx_index) REFERENCES tx_results (height, tx_index)
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (contract, name, height);
CREATE INDEX IF NOT EXISTS events_by_tx ON events (tx_id);
CREATE TABLE IF NOT EXISTS attributes (
    height BIGINT NOT NULL,
    tx_index INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (height, tx_index, event_index, key),
    FOREIGN KEY (height, tx_index, event_index) REFERENCES events (height, tx_index, event_index)
);
CREATE INDEX IF NOT EXISTS attributes_by_value ON attributes (key, value, height, tx_index, event_index);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id BIGINT NOT NULL,
    line INTEGER NOT NULL,
    height BIGINT NOT NULL REFERENCES blocks (height),
    merchant TEXT,
    product TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    price BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE INDEX IF NOT EXISTS order_lines_by_product ON order_lines (product);
"""


def _attr(key: str, alias: str = "e") -> str:
    """The attribute ``key`` of the event row ``alias`` (a scalar subquery both databases run by primary key)."""
    return (f"(SELECT x.value FROM attributes x WHERE x.height = {alias}.height AND x.tx_index = {alias}.tx_index "
            f"AND x.event_index = {alias}.event_index AND x.key = '{key}')")


def _int_attr(key: str, alias: str = "e") -> str:
    return f"CAST({_attr(key, alias)} AS BIGINT)"


#: name -> SELECT of each commerce view, in creation order (later views read earlier ones).
VIEWS: dict[str, str] = {
    # every event of the orders contract that names an order, with its block time
    "order_events": f"""
SELECT e.height, e.tx_index, e.event_index, b.time_ms, e.name, {_int_attr('order')} AS order_id, e.data
FROM events e JOIN blocks b ON b.height = e.height
WHERE e.contract = 'orders' AND {_attr('order')} IS NOT NULL""",
    "orders_placed": f"""
SELECT {_int_attr('order')} AS order_id, {_attr('merchant')} AS merchant, t.sender AS buyer,
       {_int_attr('amount')} AS amount, {_attr('currency')} AS currency, {_int_attr('lines')} AS lines,
       e.height, b.time_ms, e.tx_id
FROM events e JOIN blocks b ON b.height = e.height JOIN tx_results t ON t.height = e.height AND t.tx_index = e.tx_index
WHERE e.contract = 'orders' AND e.name = 'OrderPlaced'""",
    # the state each order is in now: its last state-changing event (docs/commerce.md, the order table)
    "order_states": f"""
SELECT p.order_id, p.merchant, p.buyer, p.amount, p.currency, p.height AS placed_height, p.time_ms AS placed_ms,
       s.name AS last_event, s.height AS last_height, s.time_ms AS last_ms,
       CASE s.name WHEN 'OrderPlaced' THEN 'PLACED' WHEN 'OrderAccepted' THEN 'ACCEPTED'
            WHEN 'OrderRejected' THEN 'REJECTED' WHEN 'OrderCancelled' THEN 'CANCELLED'
            WHEN 'Shipped' THEN CASE WHEN s.partial = 'true' THEN 'PARTIALLY_SHIPPED' ELSE 'SHIPPED' END
            WHEN 'Delivered' THEN 'DELIVERED' WHEN 'ReceiptConfirmed' THEN 'COMPLETED' WHEN 'OrderClosed' THEN 'CLOSED'
            WHEN 'DisputeOpened' THEN 'DISPUTED' WHEN 'Ruling' THEN 'RESOLVED' END AS state
FROM orders_placed p JOIN (
    SELECT o.order_id, o.name, o.height, o.time_ms, {_attr('partial', 'o')} AS partial,
           ROW_NUMBER() OVER (PARTITION BY o.order_id ORDER BY o.height DESC, o.tx_index DESC, o.event_index DESC) AS rn
    FROM order_events o
    WHERE o.name IN ('OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderCancelled', 'Shipped', 'Delivered',
                     'ReceiptConfirmed', 'OrderClosed', 'DisputeOpened', 'Ruling')
) s ON s.order_id = p.order_id AND s.rn = 1""",
    "orders_by_state": """
SELECT state, COUNT(*) AS orders, SUM(amount) AS amount FROM order_states GROUP BY state""",
    # every refund paid out of an order's escrow (cases, cancellations, rulings), with its merchant
    "refunds": f"""
SELECT o.order_id, p.merchant, {_int_attr('amount', 'o')} AS amount, {_int_attr('cumulative', 'o')} AS cumulative,
       o.height, o.time_ms, o.time_ms - p.time_ms AS ms_since_placed
FROM order_events o JOIN orders_placed p ON p.order_id = o.order_id
WHERE o.name = 'Refunded'""",
    # returns and refund requests (cases contract), each with its order's merchant and the line's product
    "after_sales_cases": f"""
SELECT {_int_attr('case')} AS case_id, {_int_attr('order')} AS order_id, {_int_attr('line')} AS line,
       {_attr('kind')} AS kind, {_int_attr('quantity')} AS quantity, {_int_attr('amount')} AS amount,
       p.merchant, l.product, e.height AS opened_height, b.time_ms AS opened_ms,
       r.height AS refunded_height, r.time_ms AS refunded_ms, r.amount AS refunded_amount
FROM events e JOIN blocks b ON b.height = e.height
JOIN orders_placed p ON p.order_id = {_int_attr('order')}
LEFT JOIN order_lines l ON l.order_id = p.order_id AND l.line = {_int_attr('line')}
LEFT JOIN (
    SELECT {_int_attr('case', 'f')} AS case_id, f.height, fb.time_ms, {_int_attr('amount', 'f')} AS amount
    FROM events f JOIN blocks fb ON fb.height = f.height WHERE f.contract = 'cases' AND f.name = 'CaseRefunded'
) r ON r.case_id = {_int_attr('case')}
WHERE e.contract = 'cases' AND e.name = 'CaseOpened'""",
    "time_to_refund": """
SELECT case_id, order_id, merchant, product, kind, amount, refunded_amount, opened_ms, refunded_ms,
       (refunded_ms - opened_ms) / 1000 AS seconds_to_refund
FROM after_sales_cases WHERE refunded_ms IS NOT NULL""",
    "merchant_after_sales": """
SELECT p.merchant, COUNT(*) AS orders, SUM(p.amount) AS amount,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = p.order_id) THEN 1 ELSE 0 END) AS refunded_orders,
       COALESCE(SUM((SELECT SUM(r.amount) FROM refunds r WHERE r.order_id = p.order_id)), 0) AS refunded_amount,
       SUM((SELECT COUNT(*) FROM after_sales_cases c WHERE c.order_id = p.order_id AND c.kind = 'RETURN_REFUND'))
           AS return_cases,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = p.order_id) THEN 1 ELSE 0 END) * 10000
           / COUNT(*) AS refund_rate_bps,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM after_sales_cases c WHERE c.order_id = p.order_id
                             AND c.kind = 'RETURN_REFUND') THEN 1 ELSE 0 END) * 10000 / COUNT(*) AS return_rate_bps
FROM orders_placed p GROUP BY p.merchant""",
    "product_after_sales": """
SELECT l.merchant, l.product, COUNT(*) AS order_lines, SUM(l.quantity) AS units_sold, SUM(l.price) AS sales,
       SUM((SELECT COUNT(*) FROM after_sales_cases c WHERE c.order_id = l.order_id AND c.line = l.line
            AND c.kind = 'RETURN_REFUND')) AS return_cases,
       COALESCE(SUM((SELECT SUM(c.quantity) FROM after_sales_cases c WHERE c.order_id = l.order_id
                      AND c.line = l.line AND c.kind = 'RETURN_REFUND')), 0) AS units_returned,
       SUM((SELECT COUNT(*) FROM after_sales_cases c WHERE c.order_id = l.order_id AND c.line = l.line
            AND c.kind = 'REFUND_ONLY')) AS refund_cases,
       COALESCE(SUM((SELECT SUM(c.refunded_amount) FROM after_sales_cases c WHERE c.order_id = l.order_id
                      AND c.line = l.line)), 0) AS refunded_amount,
       CAST(COALESCE(SUM((SELECT SUM(c.quantity) FROM after_sales_cases c WHERE c.order_id = l.order_id
                      AND c.line = l.line AND c.kind = 'RETURN_REFUND')), 0) AS BIGINT) * 10000
           / CAST(SUM(l.quantity) AS BIGINT) AS return_rate_bps
FROM order_lines l GROUP BY l.merchant, l.product""",
    # promised times missed: shipped after ship-by, delivered after deliver-by, not-received cases, and tickets
    # escalated past a deadline (SlaBreached names it: ticket_first_response or ticket_resolution)
    "sla_breaches": f"""
SELECT 'ship_late' AS kind, s.order_id AS subject, p.merchant, a.due AS due_s, s.time_ms / 1000 AS at_s,
       s.time_ms / 1000 - a.due AS late_s, s.height
FROM order_events s JOIN orders_placed p ON p.order_id = s.order_id
JOIN (SELECT o.order_id, MAX({_int_attr('ship_by', 'o')}) AS due FROM order_events o
      WHERE o.name = 'OrderAccepted' GROUP BY o.order_id) a ON a.order_id = s.order_id
WHERE s.name = 'Shipped' AND s.time_ms / 1000 > a.due
UNION ALL
SELECT 'deliver_late', d.order_id, p.merchant, a.due, d.time_ms / 1000, d.time_ms / 1000 - a.due, d.height
FROM order_events d JOIN orders_placed p ON p.order_id = d.order_id
JOIN (SELECT o.order_id, MAX({_int_attr('deliver_by', 'o')}) AS due FROM order_events o
      WHERE o.name = 'Shipped' GROUP BY o.order_id) a ON a.order_id = d.order_id
WHERE d.name = 'Delivered' AND d.time_ms / 1000 > a.due
UNION ALL
SELECT 'not_received', c.order_id, c.merchant, NULL, c.opened_ms / 1000, NULL, c.opened_height
FROM after_sales_cases c WHERE c.kind = 'NOT_RECEIVED'
UNION ALL
SELECT 'ticket_' || {_attr('deadline')}, {_int_attr('ticket')}, NULL, NULL, b.time_ms / 1000, NULL, e.height
FROM events e JOIN blocks b ON b.height = e.height WHERE e.contract = 'tickets' AND e.name = 'SlaBreached'""",
    "warranty_units": f"""
SELECT {_attr('unit')} AS unit, {_attr('brand')} AS brand, {_attr('product')} AS product, e.height
FROM events e WHERE e.contract = 'warranty' AND e.name = 'UnitRegistered'""",
    "warranty_claims": f"""
SELECT {_int_attr('claim')} AS claim_id, u.unit, u.brand, u.product, e.height AS opened_height,
       (SELECT {_attr('accepted', 'd')} FROM events d WHERE d.contract = 'warranty' AND d.name = 'ClaimDecided'
        AND {_int_attr('claim', 'd')} = {_int_attr('claim')} ORDER BY d.height DESC, d.tx_index DESC LIMIT 1)
           AS accepted
FROM events e JOIN warranty_units u ON u.unit = {_attr('unit')}
WHERE e.contract = 'warranty' AND e.name = 'ClaimOpened'""",
    "warranty_claims_per_model": """
SELECT u.brand, u.product, COUNT(*) AS units,
       SUM((SELECT COUNT(*) FROM warranty_claims c WHERE c.unit = u.unit)) AS claims,
       SUM((SELECT COUNT(*) FROM warranty_claims c WHERE c.unit = u.unit AND c.accepted = 'true')) AS accepted_claims,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM warranty_claims c WHERE c.unit = u.unit) THEN 1 ELSE 0 END) * 10000
           / COUNT(*) AS claim_rate_bps
FROM warranty_units u GROUP BY u.brand, u.product""",
}


def statements(dialect: str) -> list[str]:
    """Every statement that creates the schema (tables, indexes, views), idempotent. ``dialect`` is
    "sqlite" or "postgresql": only the view statement differs (PostgreSQL has no CREATE VIEW IF NOT EXISTS)."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f'expected the dialect "sqlite" or "postgresql", found {dialect!r}')
    create = "CREATE VIEW IF NOT EXISTS" if dialect == "sqlite" else "CREATE OR REPLACE VIEW"
    out = [s.strip() for s in TABLES.split(";") if s.strip()]
    out += [f"{create} {name} AS {select.strip()}" for name, select in VIEWS.items()]
    return out
