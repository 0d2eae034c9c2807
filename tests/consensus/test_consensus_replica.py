"""The replica core on its own: table, errors, bounds, garbage collection, restart."""

from __future__ import annotations

import ast
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import SigningKey, sha256
from ledger.merkle import EMPTY_ROOT
from ledger.types import PHASE_COMMIT, PHASE_PREPARE, ZERO_HASH, Block, BlockHeader, Vote

from consensus.messages import PrePrepare
from consensus.ready import ProtocolError, Record
from consensus.transitions import STARTUP_LISTEN_TICKS
from consensus.replica import (HEIGHT_WINDOW, MAX_BUFFERED_PER_PEER, NORMAL, TRANSITIONS, VIEW_CHANGE,
                               VIEW_TIMEOUT_TICKS, Replica)

CHAIN = "shopchain-test"
KEYS = [SigningKey.from_label(f"core-test-{i}") for i in range(4)]
VALS = [k.public_key for k in KEYS]
GENESIS = sha256(b"genesis")


class Accept:
    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.asked: list[int] = []

    def validate_block(self, block: Block) -> bool:
        self.asked.append(block.height)
        return self.answer


def replica(i: int = 1, records=(), validator=None) -> Replica:
    return Replica(chain_id=CHAIN, key=KEYS[i], validators=VALS, block_validator=validator or Accept(),
                   committed_hash=GENESIS, records=list(records))


def block(height: int = 1, view: int = 0, salt: int = 0, prev: bytes = GENESIS) -> Block:
    header = BlockHeader(CHAIN, height, prev, salt, VALS[view % 4], view, EMPTY_ROOT, ZERO_HASH, ZERO_HASH, ZERO_HASH, ZERO_HASH)
    return Block(header, (), None)


def drain(r: Replica) -> list:
    out = []
    while r.has_ready():
        rd = r.ready()
        out.append(rd)
        r.advance()
    return out


def sent(readies) -> list:
    return [m for rd in readies for _, m in rd.messages]


def test_transition_table_covers_every_mode_and_input():
    inputs = {kind for _, kind in TRANSITIONS}
    assert {(mode, kind) for mode in (NORMAL, VIEW_CHANGE) for kind in inputs} == set(TRANSITIONS)
    for handler in set(TRANSITIONS.values()) - {"defer"}:
        assert callable(getattr(Replica, handler))


def test_consensus_imports_only_ledger_and_no_io():
    forbidden = {"asyncio", "time", "random", "os", "socket", "plyvel", "aiohttp", "threading"}
    for path in pathlib.Path("consensus").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in forbidden, f"{path} imports {name}"
                assert top in {"ledger", "consensus", "__future__", "dataclasses", "typing", "collections"}, f"{path}: {name}"


def test_backup_prepares_a_valid_pre_prepare_and_asks_the_runtime_first_4_2():
    v = Accept()
    r = replica(1, validator=v)
    drain(r)
    r.step(PrePrepare.create(KEYS[0], CHAIN, 0, block()))
    out = sent(drain(r))
    assert v.asked == [1]
    assert [(m.phase, m.view, m.height) for m in out if isinstance(m, Vote)] == [(PHASE_PREPARE, 0, 1)]
    persisted = r.signed[(0, 1, PHASE_PREPARE)]
    assert persisted == block().block_hash


def test_signed_votes_are_in_persist_of_the_same_ready_as_the_send():
    r = replica(1)
    drain(r)
    r.step(PrePrepare.create(KEYS[0], CHAIN, 0, block()))
    rd = r.ready()
    assert any(rec.phase == PHASE_PREPARE for rec in rd.persist)
    assert any(isinstance(m, Vote) for _, m in rd.messages)


def test_invalid_block_is_dropped_and_counted():
    r = replica(1, validator=Accept(False))
    r.step(PrePrepare.create(KEYS[0], CHAIN, 0, block()))
    assert not [m for m in sent(drain(r)) if isinstance(m, Vote)]
    assert r.counters["dropped.invalid_block"] == 1


@pytest.mark.parametrize("case, reason", [
    ("not_primary", "dropped.pre_prepare_not_from_primary"),
    ("bad_signature", "dropped.bad_signature"),
    ("wrong_digest", "dropped.digest_mismatch"),
    ("wrong_parent", "dropped.block_not_on_chain"),
    ("second_digest", "dropped.equivocating_pre_prepare"),
])
def test_bad_pre_prepares_are_dropped_with_a_reason(case, reason):
    r = replica(1)
    good = PrePrepare.create(KEYS[0], CHAIN, 0, block())
    if case == "not_primary":
        msg = PrePrepare.create(KEYS[2], CHAIN, 0, block())
    elif case == "bad_signature":
        msg = PrePrepare(0, 1, good.digest, VALS[0], bytes(64), good.block)
    elif case == "wrong_digest":
        other = block(salt=7)
        msg = PrePrepare(0, 1, other.block_hash, VALS[0], PrePrepare.create(KEYS[0], CHAIN, 0, other).signature, good.block)
    elif case == "wrong_parent":
        msg = PrePrepare.create(KEYS[0], CHAIN, 0, block(prev=ZERO_HASH))
    else:
        r.step(good)
        msg = PrePrepare.create(KEYS[0], CHAIN, 0, block(salt=3))
    r.step(msg)
    assert r.counters.get(reason) == 1


def test_votes_from_outsiders_and_forged_votes_are_dropped():
    r = replica(1)
    outsider = Vote.create(SigningKey.from_label("outsider"), CHAIN, PHASE_COMMIT, 0, 1, block().block_hash)
    r.step(outsider)
    forged = Vote(PHASE_COMMIT, 0, 1, block().block_hash, VALS[2], bytes(64))
    r.step(forged)
    assert r.counters["dropped.not_member"] == 1 and r.counters["dropped.bad_signature"] == 1


def test_propose_without_a_request_is_a_protocol_error():
    r = replica(2)
    with pytest.raises(ProtocolError, match="none was requested"):
        r.propose(block(view=0))


def test_primary_asks_for_a_block_then_pre_prepares_it():
    r = replica(0)
    drain(r)
    for _ in range(STARTUP_LISTEN_TICKS):  # started without records: it listens first
        assert r.ready().propose_request is None
        r.tick()
    rd = r.ready()
    req = rd.propose_request
    assert (req.view, req.height, req.prev_hash, req.last_commit) == (0, 1, GENESIS, None)
    r.advance()
    with pytest.raises(ProtocolError, match="header rule"):
        r.propose(block(prev=ZERO_HASH))
    assert r.propose(block())
    pps = [m for m in sent(drain(r)) if isinstance(m, PrePrepare)]
    assert len(pps) == 1 and pps[0].block == block()


def test_future_messages_are_buffered_within_a_bound_per_peer():
    r = replica(1)
    for salt in range(MAX_BUFFERED_PER_PEER + 10):
        r.step(Vote.create(KEYS[2], CHAIN, PHASE_PREPARE, 0, 2, sha256(bytes([salt]))))
    assert len(r.buffer[VALS[2]]) == MAX_BUFFERED_PER_PEER
    assert r.counters["dropped.buffer_full"] == 10
    far = Vote.create(KEYS[2], CHAIN, PHASE_PREPARE, 0, 2 + HEIGHT_WINDOW, ZERO_HASH)
    r.step(far)
    assert r.counters["dropped.far_future"] == 1
    assert any(rd.fetch for rd in drain(r))  # and it noticed it is behind


def commit_height_one(r: Replica) -> Block:
    b = block()
    r.step(PrePrepare.create(KEYS[0], CHAIN, 0, b))
    for i in (2, 3):
        r.step(Vote.create(KEYS[i], CHAIN, PHASE_PREPARE, 0, 1, b.block_hash))
    for i in (0, 2):
        r.step(Vote.create(KEYS[i], CHAIN, PHASE_COMMIT, 0, 1, b.block_hash))
    return b


def test_commit_collects_2f_plus_1_and_garbage_collects_the_slot_4_3():
    r = replica(1)
    b = commit_height_one(r)
    readies = drain(r)
    committed = [c for rd in readies for c in rd.committed]
    assert len(committed) == 1 and committed[0][0] == b and len(committed[0][1].votes) == 3
    assert r.committed_height == 1 and r.blocks == {} and r.votes == {} and r.pre_prepares == {}
    assert all(key[1] > 1 for key in r.signed)


def test_restored_replica_never_signs_a_different_digest():
    r = replica(1)
    r.step(PrePrepare.create(KEYS[0], CHAIN, 0, block()))
    records: list[Record] = [rec for rd in drain(r) for rec in rd.persist]
    again = replica(1, records=records)
    resent = [m for m in sent(drain(again)) if isinstance(m, Vote)]
    assert [m.block_hash for m in resent] == [block().block_hash]  # re-sends what it signed
    again.step(PrePrepare.create(KEYS[0], CHAIN, 0, block(salt=9)))
    assert not [m for m in sent(drain(again)) if isinstance(m, Vote)]
    assert again.counters["refused.conflicting_signature"] == 1


def test_timeout_starts_a_view_change_and_the_view_is_persisted_4_4():
    r = replica(1)
    drain(r)
    for _ in range(STARTUP_LISTEN_TICKS + VIEW_TIMEOUT_TICKS):  # a fresh replica listens before it suspects
        r.tick()
    assert r.mode == VIEW_CHANGE and r.view == 1
    records = [rec for rd in drain(r) for rec in rd.persist]
    again = replica(1, records=records)
    assert again.view == 1 and again.mode == VIEW_CHANGE


def test_counters_are_a_plain_dict_for_metrics():
    r = replica(1)
    r.step(Vote(PHASE_COMMIT, 0, 1, ZERO_HASH, VALS[2], bytes(64)))
    assert isinstance(r.counters, dict) and all(isinstance(v, int) for v in r.counters.values())


def _message_pool() -> list:
    from tests.sim.cluster import Simulation
    from tests.sim.scenarios import Scenario, make_scenario
    import random
    sim = Simulation(3, 4, scenario=make_scenario(random.Random(3), 4, False))
    pool: list = []
    send_to = sim.network.send_to
    sim.network.send_to = lambda s, d, m: (pool.append(m), send_to(s, d, m))
    for _ in range(120):
        sim.tick_once()
    return sim, pool


SIM, POOL = _message_pool()


def _mangle(message, how: int):
    import dataclasses
    if how == 0 or not dataclasses.is_dataclass(message):
        return message
    fields = [f.name for f in dataclasses.fields(message)]
    name = fields[how % len(fields)]
    value = getattr(message, name)
    if isinstance(value, int):
        value = value + how
    elif isinstance(value, bytes):
        value = bytes(len(value))
    elif isinstance(value, tuple):
        value = value[:-1]
    else:
        value = None if value is not None else value
    try:
        return dataclasses.replace(message, **{name: value})
    except (TypeError, ValueError):
        return message


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.integers(0, 12), st.booleans()), max_size=60))
def test_network_input_never_raises(script):
    """Real messages of a simulated run, replayed in any order, some of them mangled."""
    r = Replica(chain_id=SIM.chain_id, key=SIM.keys[2], validators=SIM.validators, block_validator=Accept(),
                committed_hash=SIM.genesis_hash)
    for index, how, tick in script:
        r.step(_mangle(POOL[index], how), sender=SIM.validators[index % 4])
        if tick:
            r.tick()
        while r.has_ready():
            r.advance()
