"""Work budgets for RPC calls: heavy work runs in short slices and within a budget.

Why: the node's consensus, its peers and every RPC client share one event loop. A legal
but heavy request (a batch of a hundred ``chain_getEvents`` over full blocks) used to
hold that loop for 2-4 s, so ``chain_status`` took seconds and the view timer fired.

How it works: the dispatcher gives every request body (one call or a whole batch) one
``WorkBudget``, reachable by handlers as ``ctx.work``. A handler that loops over blocks
calls ``await ctx.work.checkpoint()`` between units of work; a checkpoint

- charges the time since the previous one to the call and to the body,
- raises ``WorkBudgetExceeded`` (a JSON-RPC LimitExceeded error) once the call has used
  ``call_seconds`` or the body ``batch_seconds`` of work, and
- yields to the event loop (``asyncio.sleep(0)``) once ``slice_seconds`` have passed since
  the last yield, so nothing else waits longer than about one slice plus one unit.

The dispatcher charges the whole handler time of every call to the body's budget, runs a
batch's calls one after the other with a yield point between them, and answers calls
left when the batch budget is spent with the same error. Methods marked ``heavy`` also
queue for one of ``max_concurrent_heavy`` lanes (``WorkLanes``), so however many clients
send heavy work, at most that many slices are ready to run between two loop iterations
and a light call such as ``chain_status`` waits for a few slices, never for all of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

#: Longest stretch (s) heavy work holds the event loop before it yields.
WORK_SLICE_SECONDS = 0.01
#: Work (s) one call may do: a longer scan answers LimitExceeded saying how to narrow it.
CALL_WORK_BUDGET_SECONDS = 0.25
#: Work (s) all calls of one request body (a batch) may do together.
BATCH_WORK_BUDGET_SECONDS = 1.0
#: Heavy calls (scans, contract views) running at once on the whole server; the others queue.
MAX_CONCURRENT_HEAVY_CALLS = 2


@dataclass
class WorkStats:
    """What the budgets of one dispatcher have seen (read by metrics and tests)."""

    #: Longest time between two yields of any budget: how long heavy work held the loop.
    max_hold_seconds: float = 0.0
    yields: int = 0
    exceeded: int = 0


class WorkBudgetExceeded(Exception):
    """A call or a batch used its work budget; ``to_rpc_error`` words it for the client.

    Not an RpcError itself so that a handler can catch it and add what it had done
    (e.g. the heights it scanned) before answering.
    """

    def __init__(self, scope: str, limit_seconds: float, spent_seconds: float) -> None:
        self.scope = scope  # "call" or "batch"
        self.limit_name = "call_work_budget_ms" if scope == "call" else "batch_work_budget_ms"
        self.limit_ms = round(limit_seconds * 1000)
        self.spent_ms = round(spent_seconds * 1000)
        super().__init__(f"{scope} work budget of {self.limit_ms} ms exceeded ({self.spent_ms} ms)")

    def data(self, **extra: Any) -> dict[str, Any]:
        return {"limit": self.limit_name, "max": self.limit_ms, "found": self.spent_ms, **extra}

    def default_message(self, method: str) -> str:
        if self.scope == "batch":
            return (f"{method} was not run: earlier calls of this batch used its work budget of "
                    f"{self.limit_ms} ms ({self.spent_ms} ms); send fewer heavy calls per batch")
        return (f"{method} used its work budget of {self.limit_ms} ms ({self.spent_ms} ms); "
                "ask for less (a narrower height range, a contract or event-name filter)")


class WorkBudget:
    """The work budget of one request body; see the module docstring."""

    def __init__(self, call_seconds: float, batch_seconds: float, slice_seconds: float,
                 stats: WorkStats | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.call_seconds, self.batch_seconds, self.slice_seconds = call_seconds, batch_seconds, slice_seconds
        self.stats = stats if stats is not None else WorkStats()
        self._clock = clock
        self.batch_spent = 0.0
        self.call_spent = 0.0
        self._mark = self._last_yield = clock()

    def begin_call(self) -> None:
        """Start charging a call; raises WorkBudgetExceeded when the batch has nothing left."""
        if self.batch_spent >= self.batch_seconds:
            self.stats.exceeded += 1
            raise WorkBudgetExceeded("batch", self.batch_seconds, self.batch_spent)
        self.call_spent = 0.0
        self._mark = self._clock()

    def end_call(self) -> None:
        """Charge the rest of the call (work done after its last checkpoint)."""
        self._charge(self._clock())

    def _charge(self, now: float) -> None:
        spent = now - self._mark
        self._mark = now
        self.call_spent += spent
        self.batch_spent += spent

    async def checkpoint(self) -> None:
        """Between two units of a heavy loop: charge, enforce the budgets, yield when due."""
        now = self._clock()
        self._charge(now)
        if self.call_spent > self.call_seconds:
            self.stats.exceeded += 1
            raise WorkBudgetExceeded("call", self.call_seconds, self.call_spent)
        if self.batch_spent > self.batch_seconds:
            self.stats.exceeded += 1
            raise WorkBudgetExceeded("batch", self.batch_seconds, self.batch_spent)
        await self.pause(now)

    def resumed(self) -> None:
        """After the caller waited outside this budget (e.g. for a lane): nothing was held."""
        self._mark = self._last_yield = self._clock()

    async def pause(self, now: float | None = None) -> None:
        """Yield to the event loop if this body has held it for a slice; not charged."""
        now = self._clock() if now is None else now
        held = now - self._last_yield
        if held < self.slice_seconds:
            return
        if held > self.stats.max_hold_seconds:
            self.stats.max_hold_seconds = held
        self.stats.yields += 1
        await asyncio.sleep(0)
        self._mark = self._last_yield = self._clock()


class WorkLanes:
    """At most ``size`` heavy calls run at once; the rest wait their turn (FIFO)."""

    def __init__(self, size: int = MAX_CONCURRENT_HEAVY_CALLS) -> None:
        self.size = size
        self._semaphore: asyncio.Semaphore | None = None

    def lane(self) -> asyncio.Semaphore:
        # Made on first use, inside the running loop the server serves on.
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.size)
        return self._semaphore
