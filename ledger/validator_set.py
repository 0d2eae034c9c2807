"""Which validators certify which height: the validator schedule.

How it works: a ``ValidatorSchedule`` is an ascending list of (from height, ordered
public keys); the set in force at height h is the entry with the largest from height
<= h. The first entry starts at height 1 (the genesis set). Order matters: the primary
of view v at height h is ``at(h)[v mod n]``.

A change decided in the block at height h (governance executes it there) takes effect
at a height of at least h + ``MIN_ACTIVATION_DELAY``. So the set of height h + 1 is
already fixed once block h - 1 is committed, and every header can carry the hash of
the next height's set (``BlockHeader.next_validator_set_hash``), which the current
set certifies: a light client walks from the genesis set to any height, one
certificate and one header at a time, and the consensus core knows the set of the
height it works on before it starts it. The schedule itself lives in chain state
(the governance contract writes it), so it is covered by the state root.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.crypto import PUBLIC_KEY_BYTES
from ledger.errors import ValidationError
from ledger.types import MAX_VALIDATORS, validator_set_hash, verify_certificate

#: A change decided at height h is in force from h + this at the earliest: the set of
#: h + 1 must be known when h is proposed (its hash is in header h).
MIN_ACTIVATION_DELAY = 2
#: Most entries a schedule holds (one per change: years of monthly changes fit many times).
MAX_SCHEDULE_ENTRIES = 10_000


def check_set(keys: Sequence[bytes], what: str = "validator set") -> tuple[bytes, ...]:
    """The keys as a tuple, or ValidationError saying what is wrong with the set."""
    keys = tuple(keys)
    if not 1 <= len(keys) <= MAX_VALIDATORS:
        raise ValidationError(f"{what}: expected 1..{MAX_VALIDATORS} validators, found {len(keys)}")
    for i, key in enumerate(keys):
        if type(key) is not bytes or len(key) != PUBLIC_KEY_BYTES:
            raise ValidationError(f"{what}[{i}]: expected a {PUBLIC_KEY_BYTES}-byte public key, found {key!r:.40}")
    if len(set(keys)) != len(keys):
        raise ValidationError(f"{what}: a key is listed twice")
    return keys


@dataclass(frozen=True)
class ValidatorSchedule:
    """(from height, keys) entries, ascending; callable as ``schedule(height) -> keys``."""

    entries: tuple[tuple[int, tuple[bytes, ...]], ...]

    def __post_init__(self) -> None:
        if not self.entries or self.entries[0][0] != 1:
            raise ValidationError("validator schedule: the first entry must start at height 1 (the genesis set)")
        if len(self.entries) > MAX_SCHEDULE_ENTRIES:
            raise ValidationError(f"validator schedule: at most {MAX_SCHEDULE_ENTRIES} entries, found {len(self.entries)}")
        previous = 0
        for start, keys in self.entries:
            if type(start) is not int or start <= previous:
                raise ValidationError(f"validator schedule: heights must ascend from 1, found {start} after {previous}")
            check_set(keys, f"validator set from height {start}")
            previous = start
        object.__setattr__(self, "_starts", [start for start, _ in self.entries])

    @classmethod
    def fixed(cls, keys: Iterable[bytes]) -> "ValidatorSchedule":
        """One set for every height (a chain that never changes its validators)."""
        return cls(((1, tuple(keys)),))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, Sequence[bytes]]]) -> "ValidatorSchedule":
        return cls(tuple((start, tuple(keys)) for start, keys in pairs))

    def at(self, height: int) -> tuple[bytes, ...]:
        """The ordered keys that certify ``height`` (heights below 1 get the genesis set)."""
        index = bisect_right(self._starts, height) - 1
        return self.entries[max(index, 0)][1]

    __call__ = at

    def hash_at(self, height: int) -> bytes:
        return validator_set_hash(list(self.at(height)))

    def then(self, from_height: int, keys: Sequence[bytes]) -> "ValidatorSchedule":
        """This schedule with ``keys`` in force from ``from_height`` (after every entry so far)."""
        return ValidatorSchedule(self.entries + ((from_height, check_set(keys)),))

    def changes(self) -> list[int]:
        """Heights at which the set changes (the genesis set's height 1 excluded)."""
        return self._starts[1:]

    def ever(self) -> frozenset[bytes]:
        """Every key that is or was or will be a validator in this schedule."""
        return frozenset(k for _, keys in self.entries for k in keys)


def as_schedule(validators: "ValidatorSchedule | Sequence[bytes]") -> ValidatorSchedule:
    """A schedule from either a schedule or one fixed list of keys."""
    return validators if isinstance(validators, ValidatorSchedule) else ValidatorSchedule.fixed(validators)


def check_header_sets(header, cert, schedule: ValidatorSchedule, chain_id: str, verify=None) -> None:
    """One step of the walk from genesis: ``header`` names the sets of ``schedule`` and ``cert`` is
    a quorum of the set of its height. ValidationError otherwise.

    Done for heights 1, 2, ... in order with the genesis set as the schedule's first entry,
    this proves every set: the set of h + 1 hashes to what header h says, and header h is
    certified by the set of h, already proven. A schedule read from untrusted state is
    therefore as good as a trusted one once the walk passes.
    """
    height = header.height
    if header.validator_set_hash != schedule.hash_at(height):
        raise ValidationError(f"header {height} names validator set {header.validator_set_hash.hex()[:16]}, "
                              f"the schedule's set of that height hashes to {schedule.hash_at(height).hex()[:16]}")
    if header.next_validator_set_hash != schedule.hash_at(height + 1):
        raise ValidationError(f"header {height} names next validator set {header.next_validator_set_hash.hex()[:16]}, "
                              f"the schedule's set of height {height + 1} hashes to "
                              f"{schedule.hash_at(height + 1).hex()[:16]}")
    kwargs = {} if verify is None else {"verify": verify}
    verify_certificate(cert, list(schedule.at(height)), chain_id, height, header.block_hash, **kwargs)
