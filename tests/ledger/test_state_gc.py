"""The cycle collector around a commit: off during it, on after it, and nothing cyclic is lost for good."""

from __future__ import annotations

import gc
import weakref

from ledger import state_trie
from ledger.state_trie import PROMOTE_YOUNG_OBJECTS, PROMOTIONS_PER_FULL_COLLECTION, paused_cycle_collector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_big_commit_promotes_its_objects_and_cyclic_garbage_is_still_collected() -> None:
    assert gc.isenabled()
    with paused_cycle_collector():
        assert not gc.isenabled()
        kept = [[i] for i in range(PROMOTE_YOUNG_OBJECTS + 1000)]  # a commit's surviving objects
        garbage = Cycle()
        alive = weakref.ref(garbage)
        del garbage
    assert gc.isenabled()
    assert gc.get_count()[0] < PROMOTE_YOUNG_OBJECTS  # promoted, not left for a young collection to walk
    assert alive() is not None  # cyclic garbage waits for a full collection...
    gc.collect()
    assert alive() is None  # ...which finds it
    assert len(kept) > PROMOTE_YOUNG_OBJECTS


def test_promotions_are_followed_by_a_full_collection_every_so_often(monkeypatch) -> None:
    monkeypatch.setattr(state_trie, "_promotions", 0)
    alive = None
    for round_ in range(PROMOTIONS_PER_FULL_COLLECTION):
        with paused_cycle_collector():
            kept = [[i] for i in range(PROMOTE_YOUNG_OBJECTS + 1000)]
            if round_ == 0:
                garbage = Cycle()  # promoted with the rest at the end of this first commit
                alive = weakref.ref(garbage)
                del garbage
        del kept
        assert state_trie._promotions == (round_ + 1) % PROMOTIONS_PER_FULL_COLLECTION
    assert alive is not None and alive() is None
