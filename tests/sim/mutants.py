"""Deliberately planted bugs that the simulator's checkers must catch.

How it works: each mutant is a one-method subclass of the real ``Replica`` (or a
runtime flag), so the production core carries no mutation switches. A mutant maps to
(replica class, forget persisted records on restart).
"""

from __future__ import annotations

from consensus.messages import PreparedCert
from consensus.replica import Replica
from ledger.types import Block, quorum_size


class Quorum2f(Replica):
    """Commits with 2f COMMITs instead of 2f+1 (paper §4.2 needs 2f+1)."""

    def commit_quorum(self) -> int:
        return self.quorum - 1


class NoPreparedCarry(Replica):
    """VIEW-CHANGE leaves out its prepared certificates (paper §4.4's P component)."""

    def view_change_prepared(self) -> tuple[tuple[PreparedCert, ...], tuple[Block, ...]]:
        return (), ()


class GenesisSetForever(Replica):
    """Ignores validator-set changes: quorums, primaries and members stay the genesis set's."""

    def _enter_height(self) -> None:
        self.validators = list(self.sets(1))
        self.members = set(self.validators)
        self.n = len(self.validators)
        self.quorum = quorum_size(self.n)


MUTANTS: dict[str, tuple[type[Replica], bool]] = {
    "quorum_2f": (Quorum2f, False),
    "no_prepared_carry": (NoPreparedCarry, False),
    "forget_votes": (Replica, True),  # restart without the persisted records
}

#: Mutants only a run with validator-set changes (``--reconfig``) can catch.
RECONFIG_MUTANTS: dict[str, tuple[type[Replica], bool]] = {
    "genesis_set_forever": (GenesisSetForever, False),
}
