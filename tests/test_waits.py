"""The expected wait is honest: an M/M/c line driven through the real desk.

Visitors arrive at random (Poisson) and agents talk for random times (exponential) in
simulated time: every script runs on the real Redis with an explicit ``now_ms``, so hours of
a busy line take seconds. Each visitor's first estimate is worked out as the desk does for
its ``queued`` (0 when the join itself offered them; else the wait model on the queue's
snapshot, with the handle time the desk learned from the calls so far), and set against the
wait that followed (join to the agent's accept). The mean estimate must be within 25 % of the
mean wait at 70 % and at 90 % utilisation (queue/waits.py).
"""

from __future__ import annotations

import heapq
import random

import pytest

from humandesk.queue.client import AgentInfo, DeskQueue, NewVisitor
from humandesk.queue.waits import estimate_wait_seconds

from helpers import T0

AGENTS = 5
HANDLE_S = 120.0
HOUR_MS = 3_600_000


async def drive(
    desk: DeskQueue, utilisation: float, visitors: int, seed: int
) -> tuple[float, float]:
    """Runs the line; returns (mean first estimate, mean wait), in seconds."""
    rng = random.Random(seed)
    arrivals_per_s = utilisation * AGENTS / HANDLE_S
    # No lease, offer or wrap-up gets in the way of the model: the line alone.
    await desk.set_queue_rules(
        "support",
        {"wrapup_ms": 0, "offer_timeout_ms": 100 * HOUR_MS, "max_wait_ms": 0},
    )
    now = T0
    for i in range(AGENTS):
        agent = AgentInfo(f"a{i}", f"Agent {i}", ["support"])
        await desk.set_agent_status(agent, "available", now_ms=now)
    events: list[tuple[int, int, str, str]] = []  # (time, seq, kind, call id)
    seq = 0

    def at(when: int, kind: str, call_id: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, kind, call_id))

    joined: dict[str, int] = {}
    estimate: dict[str, float] = {}
    waited: dict[str, float] = {}
    agent_of: dict[str, str] = {}  # call id -> agent

    async def accept_offers(now: int) -> None:
        for name, record in (await desk.agents()).items():
            if record.get("state") == "offered" and record.get("offer"):
                call_id = await desk.accept(name, str(record["offer"]), now_ms=now)
                call = await desk.call(call_id)
                assert call is not None
                visitor = str(call["visitor"])
                waited[visitor] = (now - joined[visitor]) / 1000
                agent_of[call_id] = name
                talk_ms = max(1, round(rng.expovariate(1 / HANDLE_S) * 1000))
                at(now + talk_ms, "end", call_id)

    at(now + round(rng.expovariate(arrivals_per_s) * 1000), "arrive")
    arrived = 0
    while events:
        now, _seq, kind, call_id = heapq.heappop(events)
        if kind == "arrive":
            vid = f"v{arrived}"
            arrived += 1
            joined[vid] = now
            result = await desk.join(NewVisitor(vid, "support", vid), now_ms=now)
            if result.offered:
                estimate[vid] = 0.0
            else:
                eta = estimate_wait_seconds(result.position, await desk.snapshot("support"))
                assert eta is not None  # five agents serve the queue
                estimate[vid] = float(eta)
            if arrived < visitors:
                at(now + round(rng.expovariate(arrivals_per_s) * 1000), "arrive")
        else:
            await desk.end_call(call_id, "agent", agent_of.pop(call_id), now_ms=now)
        await accept_offers(now)
    assert len(waited) == visitors
    # The first tenth warms the line up (and the learned handle time): left out.
    counted = [f"v{i}" for i in range(visitors // 10, visitors)]
    return (
        sum(estimate[v] for v in counted) / len(counted),
        sum(waited[v] for v in counted) / len(counted),
    )


@pytest.mark.parametrize(("utilisation", "seed"), [(0.7, 7), (0.9, 9)])
async def test_the_first_estimate_is_within_a_quarter_of_the_wait(
    desk: DeskQueue, utilisation: float, seed: int
) -> None:
    mean_estimate, mean_wait = await drive(desk, utilisation, visitors=2500, seed=seed)
    ratio = mean_estimate / mean_wait
    print(
        f"M/M/{AGENTS} at {utilisation:.0%}: mean first estimate {mean_estimate:.1f} s, "
        f"mean wait {mean_wait:.1f} s, ratio {ratio:.2f}"
    )
    assert 0.75 <= ratio <= 1.25
