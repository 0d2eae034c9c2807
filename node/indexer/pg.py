"""The PostgreSQL sink: the scale-out choice for analytics over years of data.

How it works: psycopg 3 (its binary extra bundles libpq). Connections run in autocommit
mode and each write batch opens one explicit transaction (``conn.transaction()``):
the state row is read ``FOR UPDATE`` (two indexers pointed at one database serialise
instead of interleaving), each table's rows are loaded with one ``COPY ... FROM STDIN``
(far fewer round trips than INSERTs), and the indexed height is updated before the
COMMIT, so a batch is stored whole or not at all. Everything else (schema, checks,
event pages) is node/indexer/sink.py's ``SqlSink``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from node.indexer import schema
from node.indexer.sink import IndexerError, SqlSink

#: Seconds a connection attempt to the PostgreSQL server may take.
CONNECT_TIMEOUT_S = 10


class PostgresSink(SqlSink):
    dialect = "postgresql"
    param = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise IndexerError(f"a postgresql:// index needs psycopg 3 (pip install 'psycopg[binary]'): {exc}") from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            where = self.url.split("@")[-1]
            raise IndexerError(f"cannot connect to the PostgreSQL index at {where}: {str(exc).strip()}") from None

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[Any]:
        with conn.transaction():
            with conn.cursor() as cur:
                yield cur

    def _lock_state(self) -> str:
        return " FOR UPDATE"

    def _insert(self, cur: Any, table: str, rows: list[tuple]) -> None:
        columns = ", ".join(schema.COLUMNS[table])
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
