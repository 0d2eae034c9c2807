"""ledger: bytes, hashes, keys, types, Merkle proofs, state and storage.

The lowest layer of shopchain. Nothing here imports any other shopchain package.
"""

from ledger.errors import ChainError, CorruptionError, DecodeError, EncodeError, StorageError, ValidationError

__all__ = ["ChainError", "CorruptionError", "DecodeError", "EncodeError", "StorageError", "ValidationError"]
