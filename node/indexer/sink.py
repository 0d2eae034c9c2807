"""The indexer's sink interface, its SQLite implementation, and database URLs.

How it works: a sink stores rows of committed blocks (node/indexer/rows.py) in the
schema of node/indexer/schema.py. ``SqlSink`` holds everything the two databases
share: ``write(batch)`` builds the rows of up to ``MAX_BLOCKS_PER_TRANSACTION`` blocks
and stores them in ONE SQL transaction together with the new indexed height, after
checking that the batch continues the index (the next height, and the previous
block's hash), so a crash leaves either the whole batch or none of it and a restarted
indexer continues at ``height + 1``; the primary keys make a duplicate impossible
anyway. ``events_page`` answers chain_getEvents from the index over its own read
connection (so RPC reads never wait behind a write batch). Subclasses supply the
connection and the bulk insert: SQLite (stdlib sqlite3, WAL, the default) here,
PostgreSQL (psycopg 3, COPY) in node/indexer/pg.py. ``open_sink(url)`` picks one from
``sqlite:///path`` or ``postgresql://user@host:port/db``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from ledger.errors import ChainError
from ledger.types import Block, Receipt
from node.indexer import schema
from node.indexer.rows import TABLE_ORDER, Rows, block_rows
from node.rpc.views import hx

#: Most blocks written in one SQL transaction (a catch-up writes this many at a time,
#: so a lagging indexer's transactions, and what a crash can undo, stay bounded).
MAX_BLOCKS_PER_TRANSACTION = 200
#: Most event rows one events_page answer holds before it stops at the end of a block.
MAX_EVENTS_PER_PAGE = 500
#: Most data-field equalities one events_page filter may carry (each is one attribute join).
MAX_DATA_FILTERS = 16
#: How long an SQLite connection waits for another's lock before failing, in seconds.
SQLITE_BUSY_TIMEOUT_S = 30.0

BatchItem = tuple[Block, Sequence[Receipt]]


class IndexerError(ChainError):
    """The index cannot take this batch or this database; the message says what was expected."""


class Sink(Protocol):
    """Where the indexer writes; both implementations hold the same rows after the same chain."""

    dialect: str

    def open(self, chain_id: str, genesis_hash: str | None = None) -> int: ...
    def indexed_height(self) -> int: ...
    def write(self, batch: Sequence[BatchItem]) -> int: ...
    def rows(self, table: str) -> list[tuple]: ...
    def events_page(self, contract: str, names: Sequence[str], where: dict[str, str | None], start: int, end: int,
                    limit: int = MAX_EVENTS_PER_PAGE) -> tuple[list[tuple], int]: ...
    def close(self) -> None: ...


class SqlSink(ABC):
    """What both SQL sinks share: schema, state row, the exactly-once batch write, event pages."""

    dialect = ""
    param = "?"

    def __init__(self) -> None:
        self._conn: Any = None
        self._reader: Any = None
        self._read_lock = threading.Lock()
        self.chain_id: str | None = None

    # --- what a database supplies ------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection (autocommit off for writes is handled by ``_transaction``)."""

    @abstractmethod
    def _transaction(self, conn: Any) -> Any:
        """A context manager around one SQL transaction on ``conn`` (rolled back on error)."""

    @abstractmethod
    def _insert(self, cur: Any, table: str, rows: list[tuple]) -> None:
        """Store ``rows`` of ``table`` (columns in schema.COLUMNS order) in bulk."""

    def _lock_state(self) -> str:
        return ""

    # --- the interface -------------------------------------------------------------------

    def open(self, chain_id: str, genesis_hash: str | None = None) -> int:
        """Create the schema if missing and check the database indexes this chain (its id and, when known,
        its genesis hash: a devnet re-created under the same chain id is another chain); returns the height."""
        self._conn = self._connect()
        p = self.param
        with self._transaction(self._conn) as cur:
            for statement in schema.statements(self.dialect):
                cur.execute(statement)
            cur.execute("SELECT schema_version, chain_id, height, genesis_hash FROM indexer_state WHERE id = 1")
            row = cur.fetchone()
            if row is None:
                cur.execute(f"INSERT INTO indexer_state (id, schema_version, chain_id, height, last_hash, genesis_hash) "
                            f"VALUES (1, {p}, {p}, 0, NULL, {p})", (schema.SCHEMA_VERSION, chain_id, genesis_hash))
                row = (schema.SCHEMA_VERSION, chain_id, 0, genesis_hash)
            elif row[3] is None and genesis_hash is not None and row[1] == chain_id:
                cur.execute(f"UPDATE indexer_state SET genesis_hash = {p} WHERE id = 1", (genesis_hash,))
                row = (*row[:3], genesis_hash)
        version, indexed_chain, height, indexed_genesis = row
        if version != schema.SCHEMA_VERSION:
            raise IndexerError(f"the index database has schema version {version}; this shopchain writes version "
                               f"{schema.SCHEMA_VERSION}: index into a new database")
        if indexed_chain != chain_id:
            raise IndexerError(f"the index database holds chain {indexed_chain!r}, expected {chain_id!r}: "
                               f"give each chain its own database")
        if genesis_hash is not None and indexed_genesis not in (None, genesis_hash):
            raise IndexerError(f"the index database holds chain {chain_id!r} with genesis {indexed_genesis}, expected "
                               f"genesis {genesis_hash}: the chain was re-created; delete the index (or give it "
                               f"another database) and it is rebuilt from the block store")
        self.chain_id = chain_id
        return int(height)

    def indexed_height(self) -> int:
        return self._state()[0]

    def _state(self) -> tuple[int, str | None]:
        with self._read_lock:
            cur = self._read_conn().cursor()
            try:
                cur.execute("SELECT height, last_hash FROM indexer_state WHERE id = 1")
                row = cur.fetchone()
            finally:
                cur.close()
                self._end_read()
        if row is None:
            raise IndexerError("the index database has no indexer_state row: open() the sink first")
        return int(row[0]), row[1]

    def write(self, batch: Sequence[BatchItem]) -> int:
        """Store the rows of ``batch`` (consecutive blocks continuing the index) and the new indexed height
        in one SQL transaction. Returns the new indexed height."""
        if self._conn is None:
            raise IndexerError("the sink is not open: call open(chain_id) first")
        if not batch:
            return self.indexed_height()
        if len(batch) > MAX_BLOCKS_PER_TRANSACTION:
            raise IndexerError(f"a batch holds at most {MAX_BLOCKS_PER_TRANSACTION} blocks "
                               f"(MAX_BLOCKS_PER_TRANSACTION), found {len(batch)}")
        rows = Rows()
        previous: Block | None = None
        for block, receipts in batch:
            if previous is not None and (block.height != previous.height + 1 or
                                         block.header.prev_hash != previous.block_hash):
                raise IndexerError(f"a batch is a run of consecutive blocks: block {block.height} does not follow "
                                   f"block {previous.height}")
            if block.header.chain_id != self.chain_id:
                raise IndexerError(f"block {block.height} is of chain {block.header.chain_id!r}, the index holds "
                                   f"{self.chain_id!r}")
            rows.extend(block_rows(block, list(receipts)))
            previous = block
        first, last = batch[0][0], batch[-1][0]
        with self._transaction(self._conn) as cur:
            cur.execute(f"SELECT height, last_hash FROM indexer_state WHERE id = 1{self._lock_state()}")
            height, last_hash = cur.fetchone()
            if last_hash is not None and (first.height != height + 1 or hx(first.header.prev_hash) != last_hash):
                what = (f"height {height + 1}" if first.height != height + 1 else
                        f"a block whose previous hash is {last_hash} (block {first.height} names "
                        f"{hx(first.header.prev_hash)}: the database indexes another chain or fork)")
                raise IndexerError(f"the index is at height {height}: the next batch must start with {what}; "
                                   f"found a batch starting at height {first.height}")
            for table in TABLE_ORDER:
                found = getattr(rows, table)
                if found:
                    self._insert(cur, table, found)
            p = self.param
            cur.execute(f"UPDATE indexer_state SET height = {p}, last_hash = {p} WHERE id = 1",
                        (last.height, hx(last.block_hash)))
        return last.height

    def rows(self, table: str) -> list[tuple]:
        """Every row of ``table`` (or a view) in primary-key order: what the identical-rows test compares."""
        if table in schema.PRIMARY_KEYS:
            columns, order = schema.COLUMNS[table], schema.PRIMARY_KEYS[table]
        elif table in schema.VIEWS or table == "indexer_state":
            columns, order = ("*",), None
        else:
            raise IndexerError(f"expected a table or view of the index ({sorted(schema.COLUMNS)} or "
                               f"{sorted(schema.VIEWS)}), found {table!r}")
        query = f"SELECT {', '.join(columns)} FROM {table}"
        return self._read(query + (f" ORDER BY {', '.join(order)}" if order else ""), ())

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """A read-only query on the read connection (tests and tools; placeholders in this sink's style)."""
        return self._read(sql, params)

    def events_page(self, contract: str, names: Sequence[str], where: dict[str, str | None], start: int, end: int,
                    limit: int = MAX_EVENTS_PER_PAGE) -> tuple[list[tuple], int]:
        """Events of heights start..end matching the filter, in chain order, stopping at the end of the block
        that holds the ``limit``-th; returns (rows, the last height the page covers). Rows are
        (height, tx_index, event_index, tx_id, contract, name, data JSON). ``where`` pre-filters on
        attribute text (rows.attribute_text); the caller re-checks the exact JSON values."""
        if len(where) > MAX_DATA_FILTERS:
            raise IndexerError(f"at most {MAX_DATA_FILTERS} data fields per event filter (MAX_DATA_FILTERS), "
                               f"found {len(where)}")
        p = self.param
        joins, clauses, params = "", ["e.height >= " + p, "e.height <= " + p], [start, end]
        equalities = sorted((k, v) for k, v in where.items() if v is not None)
        if equalities:
            # the first equality drives the query from attributes_by_value (key, value, height, ...): a sparse
            # filter over years of events reads its matches only, not every event of the range
            key, value = equalities.pop(0)
            joins = (" JOIN attributes a0 ON a0.height = e.height AND a0.tx_index = e.tx_index "
                     f"AND a0.event_index = e.event_index AND a0.key = {p} AND a0.value = {p} "
                     f"AND a0.height >= {p} AND a0.height <= {p}")
            params = [key, value, start, end, *params]
        if contract:
            clauses.append("e.contract = " + p)
            params.append(contract)
        if names:
            clauses.append(f"e.name IN ({', '.join([p] * len(names))})")
            params.extend(sorted(names))
        nulls = sorted(k for k, v in where.items() if v is None)
        for key, value in [*equalities, *((k, None) for k in nulls)]:
            test = "a.value IS NULL" if value is None else "a.value = " + p
            clauses.append(f"EXISTS (SELECT 1 FROM attributes a WHERE a.height = e.height AND a.tx_index = e.tx_index "
                           f"AND a.event_index = e.event_index AND a.key = {p} AND {test})")
            params.extend([key] if value is None else [key, value])
        cond = " AND ".join(clauses)
        order = " ORDER BY e.height, e.tx_index, e.event_index"
        cut = self._read(f"SELECT e.height FROM events e{joins} WHERE {cond}{order} LIMIT 1 OFFSET {int(limit) - 1}",
                         params)
        last = end if not cut else int(cut[0][0])
        found = self._read(f"SELECT e.height, e.tx_index, e.event_index, e.tx_id, e.contract, e.name, e.data "
                           f"FROM events e{joins} WHERE {cond} AND e.height <= {p}{order}", [*params, last])
        return found, last

    def close(self) -> None:
        for conn in (self._conn, self._reader):
            if conn is not None:
                conn.close()
        self._conn = self._reader = None

    # --- reads -----------------------------------------------------------------------------

    def _read_conn(self) -> Any:
        if self._reader is None:
            self._reader = self._connect()
        return self._reader

    def _end_read(self) -> None:
        """Called after each read (PostgreSQL ends its implicit read transaction here)."""

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        with self._read_lock:
            cur = self._read_conn().cursor()
            try:
                cur.execute(sql, tuple(params))
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()
                self._end_read()


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Cursor:
        self.cur = self.conn.cursor()
        self.cur.execute("BEGIN IMMEDIATE")
        return self.cur

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            self.cur.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.cur.close()


class SqliteSink(SqlSink):
    """The embedded default: one file in the node home, WAL so RPC reads run beside the writer.

    synchronous=NORMAL: a killed process loses nothing committed; a power loss may lose the
    last batches (never half of one), which the indexer then writes again from the block store."""

    dialect = "sqlite"
    param = "?"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise IndexerError(f"sqlite index {path}: expected an existing directory {parent}, found none")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=SQLITE_BUSY_TIMEOUT_S)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _transaction(self, conn: sqlite3.Connection) -> _SqliteTransaction:
        return _SqliteTransaction(conn)

    def _insert(self, cur: sqlite3.Cursor, table: str, rows: list[tuple]) -> None:
        columns = schema.COLUMNS[table]
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)


#: The URL schemes open_sink takes.
URL_FORMS = "sqlite:///path/to/index.sqlite or postgresql://user@host:port/database"


def open_sink(url: str) -> SqlSink:
    """The sink a database URL names (not yet opened: call ``open(chain_id, genesis_hash)``)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path or parts.path == "/":
            raise IndexerError(f"index database URL: expected {URL_FORMS}, found {url!r} (a sqlite URL has three "
                               f"slashes and a file path: sqlite:////abs/path or sqlite:///relative/path)")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return SqliteSink(path)
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.path.strip("/"):
            raise IndexerError(f"index database URL: expected {URL_FORMS}, found {url!r} (no database name)")
        from node.indexer.pg import PostgresSink

        return PostgresSink(url)
    raise IndexerError(f"index database URL: expected {URL_FORMS}, found {url!r}")
