"""The project's exception hierarchy.

Every error shopchain raises on purpose derives from ``ChainError`` so that callers
(RPC handlers, the CLI) can catch one type and turn it into a clear message. The
subclasses are few and mean something to the caller: bad bytes, a rule of the
chain broken, a storage problem, a corrupted store.
"""

from __future__ import annotations


class ChainError(Exception):
    """Root of every deliberate shopchain error."""


class EncodeError(ChainError, ValueError):
    """A value cannot be put into canonical form (wrong type, too large, too deep)."""


class DecodeError(ChainError, ValueError):
    """Bytes are not the canonical encoding of an accepted value."""


class ValidationError(ChainError, ValueError):
    """A well-formed value breaks a rule (bad signature, wrong chain id, bad quorum)."""


class StorageError(ChainError):
    """The key-value store failed or was used wrongly."""


class CorruptionError(StorageError):
    """The store's contents contradict themselves; carries the recovery command."""

    def __init__(self, problem: str, recovery: str = "shopchain node verify --home HOME") -> None:
        super().__init__(f"store is corrupted: {problem}. Recover with: {recovery}")
        self.problem = problem
        self.recovery = recovery


class GenesisError(ChainError, ValueError):
    """A genesis file is invalid; the message names the offending field."""


class InvariantError(ChainError):
    """A condition the code relies on does not hold: a bug or a damaged store, never bad input.

    Raised by explicit checks (not ``assert``, which ``python -O`` removes) where going on
    would write or sign something inconsistent; the node halts on it.
    """
