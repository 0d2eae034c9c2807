"""Persistent storage: the KVStore interface, its backends, the key schema and the block store."""
