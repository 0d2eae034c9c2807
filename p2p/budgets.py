"""Per-peer cost budgets, one per message class, checked before a frame is handled.

How this works: the transport asks the runtime's ``classify(frame)`` which class a frame
belongs to (consensus, catchup, gossip; a cheap peek at its first bytes, no decoding).
Each peer has, for each class, a message bucket and a handler-time bucket
(``limits.TokenBucket``). ``PeerBudgets.admit`` spends one message token and requires
the handler-time bucket to be out of debt; only then is the frame handed to the
runtime, and ``charge`` bills the seconds the handler really took (the event loop is
single-threaded, so handler time is exactly what this peer cost everyone else). A
refused frame costs one dictionary lookup and two bucket reads, so a flood of one class
is dropped at line rate while the other classes of the same peer, and every other
peer, keep their own budgets untouched.

Drops are themselves budgeted: an honest peer may touch the edge of a budget during a
burst, but a peer whose drops exceed ``budget_drop_burst`` (refilling at
``budget_drops_per_second``) is persistently over budget, and ``admit`` tells the
transport to disconnect and ban it. Bans grow on repeated offences (``ban_seconds``).
Handler-time drops never lead to a ban: they shed load that may be honest (a burst of
valid transactions to check), whereas message counts over budget are a choice of the
sender.

Everything takes the clock as a parameter so tests drive it deterministically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from p2p.limits import MESSAGE_CLASSES, Clock, TokenBucket, TransportLimits

#: Why a frame was dropped; these are the ``reason`` label values of the drop metric.
REASON_MESSAGES = "over_message_budget"
REASON_HANDLER_TIME = "over_handler_time_budget"


@dataclass(frozen=True)
class Verdict:
    """What to do with one frame: deliver it, or drop it (and maybe disconnect the peer)."""

    deliver: bool
    reason: str = ""
    disconnect: bool = False


DELIVER = Verdict(True)


class _ClassBudget:
    __slots__ = ("messages", "handler_seconds")

    def __init__(self, limits: TransportLimits, cls: str, clock: Clock) -> None:
        rate, burst, seconds_rate, seconds_burst = limits.class_budget(cls)
        self.messages = TokenBucket(rate, burst, clock)
        self.handler_seconds = TokenBucket(seconds_rate, seconds_burst, clock)


class PeerBudgets:
    """One peer's budgets for every message class, plus its drop allowance and ban history.

    Lives with the peer, not the connection: reconnecting does not refill anything.
    """

    __slots__ = ("limits", "_clock", "_classes", "drops", "offences", "dropped")

    def __init__(self, limits: TransportLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._classes = {cls: _ClassBudget(limits, cls, clock) for cls in MESSAGE_CLASSES}
        self.drops = TokenBucket(limits.budget_drops_per_second, limits.budget_drop_burst, clock)
        self.offences = 0
        #: (class, reason) -> frames dropped, for stats and tests.
        self.dropped: dict[tuple[str, str], int] = {}

    def admit(self, cls: str) -> Verdict:
        """Spend one message of ``cls`` if its budgets allow; else say why it is dropped."""
        budget = self._classes.get(cls)
        if budget is None:
            raise ValueError(f"message class must be one of {', '.join(MESSAGE_CLASSES)}, found {cls!r}")
        if not budget.handler_seconds.has_tokens():
            return self._drop(cls, REASON_HANDLER_TIME)
        if not budget.messages.take(1):
            return self._drop(cls, REASON_MESSAGES)
        return DELIVER

    def charge(self, cls: str, seconds: float) -> None:
        """Bill the handler time one delivered frame of ``cls`` took."""
        self._classes[cls].handler_seconds.charge(max(0.0, seconds))

    def note_drop(self, cls: str, reason: str) -> Verdict:
        """Count a drop decided elsewhere (e.g. the runtime's serving budget)."""
        return self._drop(cls, reason)

    def _drop(self, cls: str, reason: str) -> Verdict:
        key = (cls, reason)
        self.dropped[key] = self.dropped.get(key, 0) + 1
        if reason == REASON_HANDLER_TIME:
            # Shedding load, not misbehaviour: an honest peer forwarding a burst of valid
            # transactions can cost us more than its share; drop, but never ban for it.
            return Verdict(False, reason)
        return Verdict(False, reason, disconnect=not self.drops.take(1))

    def ban_seconds(self) -> float:
        """Length of the ban for one more offence: doubles per offence, capped."""
        self.offences += 1
        nominal = self.limits.flood_ban_seconds
        for _ in range(self.offences - 1):
            nominal *= 2
            if nominal >= self.limits.flood_ban_cap_seconds:
                break
        return min(nominal, self.limits.flood_ban_cap_seconds)

    def refill_drops(self) -> None:
        """After a ban the peer starts with a full drop allowance again."""
        self.drops = TokenBucket(self.limits.budget_drops_per_second, self.limits.budget_drop_burst, self._clock)
