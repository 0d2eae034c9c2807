"""The event indexer: committed blocks, transactions, receipts and events in SQL.

rows.py turns a block into rows, schema.py holds the tables and commerce views,
sink.py the sink interface with SQLite (the default) and pg.py PostgreSQL, runner.py
feeds a sink from the node's block store (in the node, on a thread) or from a remote
node over JSON-RPC (``shopchain indexer run``). docs/analytics.md documents the schema.
"""
