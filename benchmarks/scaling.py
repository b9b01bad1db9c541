"""Scaling: 1, 2 and 3 desk server processes on one Redis, and what one Redis primary carries.

For each process count N (one desk, one Redis, the visitors spread evenly over the N
processes as a proxy without sticky sessions spreads them):

* **waiting sockets held**: visitors waiting, per process, and each process's RSS;
* **position fan-out**: the head of the line leaves, and every waiting visitor on every
  process must hear their new place; the time until the last one did, the server CPU all
  processes spent per move, and the Redis CPU per move (each process re-reads the line
  from the first changed place, so Redis works once per process and move);
* **match latency**: agents spread over the processes go Available while the visitors
  wait and time their ``offer`` (then take a break, so the visitor returns to their place).

Then one Redis primary under the queue's own scripts at a fixed arrival rate (joins, each
matched to one of 200 agents who accept and hang up at once; the ``queue_throughput``
round): joins/s, matches/s and PUBLISHes/s served, and Redis's CPU share while it did. A
Redis runs commands on one core, so rate / CPU share is the rate at which that core would
be full: reported as a projection, next to the measured rate.

Every process of the benchmark shares the machine's cores: the load average before each
phase is printed, and docs/deploy.md says which figures are measured and which projected.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from benchmarks import Metric, harness
from benchmarks.queue_throughput import _raw_join_rate
from benchmarks.queue_throughput import _round as turnover_round
from benchmarks.waiting_room import Visitor, _deliveries, _logs, _split
from humandesk.queue.client import DeskQueue

CROWD_WORKERS = 3


@dataclass
class Load:
    visitors: int
    agents: int
    moves: int
    gap_s: float
    match_s: float
    turnover_rate: float
    turnover_s: float
    long_line: int
    idle_s: float  # a still line before the moves: what waiting alone costs


#: Moves are 1.4 s apart or more: the desk sends a line's positions at most once a second, so
#: a move closer behind the last one would be told together with it.
QUICK = Load(
    visitors=900,
    agents=30,
    moves=2,
    gap_s=1.4,
    match_s=3,
    turnover_rate=1500,
    turnover_s=2,
    long_line=20_000,
    idle_s=1.0,
)
FULL = Load(
    visitors=6000,
    agents=90,
    moves=6,
    gap_s=2.0,
    match_s=20,
    turnover_rate=2000,
    turnover_s=10,
    long_line=100_000,
    idle_s=5.0,
)
#: Each agent's pause between two rounds (Available, offer, Break): ~10 offers/s at 30 agents.
AGENT_PAUSE_S = (1.0, 5.0)


@dataclass
class Step:
    """The figures of one process count."""

    processes: int
    held: list[int]  # waiting sockets per process
    rss_mib: list[float]
    reach_all_ms: list[float]  # per move: until the last visitor heard of it
    reached: int
    expected: int
    server_cpu_ms_per_move: float  # all processes, less their idle share
    redis_cpu_ms_per_move: float  # the leave script and the processes' reads, less idle
    server_idle_share: float  # CPU seconds per second of all processes, line still
    redis_idle_share: float
    match_ms: list[float]
    match_errors: int
    load_before: float


def load_average() -> float:
    return os.getloadavg()[0]


async def _commandstats(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name: int(value.get("calls", 0)) for name, value in stats.items()}


async def _redis_cpu(redis: Redis) -> float:
    """Redis's own CPU seconds (INFO cpu, to the microsecond: /proc counts in 10 ms ticks)."""
    cpu = await redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _step(redis_url: str, n: int, load: Load) -> Step:
    desk = "sc" + uuid.uuid4().hex[:8]
    names = [f"a{i:03d}" for i in range(load.agents)]
    await harness.create_agents(redis_url, desk, {a: ["support"] for a in names}, {})
    load_before = load_average()
    with harness.desk_servers(redis_url, desk, count=n) as servers:
        async with (
            harness.workers("benchmarks.waiting_room", [{}] * CROWD_WORKERS) as crowd,
            harness.workers(
                "benchmarks.match_latency", [{"url": s.url, "desk": desk} for s in servers]
            ) as agent_workers,
        ):
            # Visitors: each crowd worker opens an equal share on every process, as a proxy
            # without sticky sessions spreads them.
            shares = [_split(count, n) for count in _split(load.visitors, CROWD_WORKERS)]
            held = [sum(share[j] for share in shares) for j in range(n)]

            async def open_share(k: int, worker: harness.Worker, share: list[int]) -> None:
                for j, count in enumerate(share):
                    await worker.call(
                        {
                            "cmd": "connect",
                            "url": servers[j].url + "/ws/visitor",
                            "origin": servers[j].url,
                            "count": count,
                            "join": True,
                            "prefix": f"c{k}-{j}-",
                        },
                        timeout=600,
                    )

            await asyncio.gather(
                *(
                    open_share(k, w, share)
                    for k, (w, share) in enumerate(zip(crowd, shares, strict=True))
                )
            )
            await asyncio.sleep(1.5)  # the joins' own fan-outs settle
            rss = [s.rss_kib() / 1024 for s in servers]
            harness.log(f"scaling n={n}: {load.visitors} waiting, {held} per process")

            # Position fan-out: the head leaves, everyone behind moves up. Nothing else
            # changes the line meanwhile, so the line after move k is the first one less
            # its first k+1 (no reads of the line by the benchmark in Redis's share).
            redis = Redis.from_url(redis_url)
            try:
                queue = DeskQueue(redis, desk)
                line = await queue.line_ids("support")
                await asyncio.gather(*(w.call({"cmd": "reset"}) for w in crowd))
                # Idle first: what the processes and Redis spend with the line still
                # (heartbeats, leases), to take out of the moves' share.
                cpu0 = sum(s.cpu_seconds() for s in servers)
                redis_cpu0 = await _redis_cpu(redis)
                t0 = harness.now()
                await asyncio.sleep(load.idle_s)
                idle_s = harness.now() - t0
                server_idle = (sum(s.cpu_seconds() for s in servers) - cpu0) / idle_s
                redis_idle = (await _redis_cpu(redis) - redis_cpu0) / idle_s
                starts: list[float] = []
                ranks: list[dict[str, int]] = []
                cpu0 = sum(s.cpu_seconds() for s in servers)
                redis_cpu0 = await _redis_cpu(redis)
                t0 = harness.now()
                for k in range(load.moves):
                    starts.append(harness.now())
                    await queue.leave(line[k], "left")
                    ranks.append({vid: i + 1 for i, vid in enumerate(line[k + 1 :])})
                    await asyncio.sleep(load.gap_s)
                end = harness.now()
                server_cpu = sum(s.cpu_seconds() for s in servers) - cpu0 - server_idle * (end - t0)
                redis_cpu = await _redis_cpu(redis) - redis_cpu0 - redis_idle * (end - t0)
            finally:
                await redis.aclose()
            visitors: list[Visitor] = await _logs(crowd)
            _delays, reach_all, reached, expected = _deliveries(visitors, starts, ranks, end)

            # Match latency: agents on every process, visitors waiting.
            groups: list[list[str]] = []
            first = 0
            for size in _split(load.agents, n):
                groups.append(names[first : first + size])
                first += size
            await asyncio.gather(
                *(
                    w.call({"cmd": "connect", "support": g, "sales": []})
                    for w, g in zip(agent_workers, groups, strict=True)
                )
            )
            results = await asyncio.gather(
                *(
                    w.call(
                        {
                            "cmd": "run",
                            "seconds": load.match_s,
                            "probes": 0,
                            "pause": AGENT_PAUSE_S,
                        },
                        timeout=300,
                    )
                    for w in agent_workers
                )
            )
            await asyncio.gather(*(w.call({"cmd": "close"}) for w in crowd))
    match_ms = [x * 1000 for r in results for x in r["available"]]
    return Step(
        processes=n,
        held=held,
        rss_mib=rss,
        reach_all_ms=[x * 1000 for x in reach_all],
        reached=reached,
        expected=expected,
        # The leave script itself is in Redis's share, not the servers'.
        server_cpu_ms_per_move=1000 * server_cpu / load.moves,
        redis_cpu_ms_per_move=1000 * redis_cpu / load.moves,
        server_idle_share=server_idle,
        redis_idle_share=redis_idle,
        match_ms=match_ms,
        match_errors=sum(int(r["errors"]) for r in results),
        load_before=load_before,
    )


@dataclass
class Primary:
    joins_per_s: float
    matches_per_s: float
    publishes_per_s: float
    scripts_per_s: float
    redis_busy: float
    backlog_growth: int
    errors: int
    load_before: float
    saturated_joins_per_s: float  # the join script pipelined as fast as one client sends
    saturated_redis_busy: float
    long_line: int
    line_read_ms: float  # Redis CPU for one read of the whole long line (a fan-out's read)
    bytes_per_visitor: float  # Redis memory per waiting visitor (used_memory)


async def _primary(redis_url: str, redis_pid: int, load: Load) -> Primary:
    load_before = load_average()
    redis = Redis.from_url(redis_url)
    try:
        before = await _commandstats(redis)
        result = await turnover_round(redis_url, redis_pid, load.turnover_rate, load.turnover_s)
        after = await _commandstats(redis)
    finally:
        await redis.aclose()
    # The round sends exactly rate x seconds visitors, and each is joined, offered,
    # accepted and ended: commands per visitor, times the visitors served per second.
    visitors = int(load.turnover_rate * load.turnover_s)

    def rate(name: str) -> float:
        return (after.get(name, 0) - before.get(name, 0)) / visitors * result.served_rate

    saturated, busy, line_read_ms, per_visitor = await _long_line(redis_url, load.long_line)
    return Primary(
        joins_per_s=result.arrival_rate,
        matches_per_s=result.served_rate,
        publishes_per_s=rate("cmdstat_publish") + rate("cmdstat_spublish"),
        scripts_per_s=rate("cmdstat_evalsha"),
        redis_busy=result.redis_busy,
        backlog_growth=result.growth,
        errors=result.errors,
        load_before=load_before,
        saturated_joins_per_s=saturated,
        saturated_redis_busy=busy,
        long_line=load.long_line,
        line_read_ms=line_read_ms,
        bytes_per_visitor=per_visitor,
    )


async def _long_line(redis_url: str, count: int) -> tuple[float, float, float, float]:
    """Fills a line of ``count`` with the join script, pipelined as fast as one client can
    (joins/s, Redis's CPU share meanwhile and its memory per visitor), then reads the whole
    line as a process does for a fan-out from the front: Redis CPU milliseconds per read."""
    desk = "sl" + uuid.uuid4().hex[:8]
    redis = Redis.from_url(redis_url)
    try:
        memory0 = int((await redis.info("memory"))["used_memory"])
        cpu0, t0 = await _redis_cpu(redis), harness.now()
        joins_per_s = await _raw_join_rate(redis_url, desk, count)
        busy = (await _redis_cpu(redis) - cpu0) / (harness.now() - t0)
        memory = int((await redis.info("memory"))["used_memory"]) - memory0
        queue = DeskQueue(redis, desk)
        reads = 10
        cpu0 = await _redis_cpu(redis)
        for _ in range(reads):
            assert len(await queue.line_ids("support")) == count
        line_read_ms = 1000 * (await _redis_cpu(redis) - cpu0) / reads
    finally:
        await redis.aclose()
    return joins_per_s, busy, line_read_ms, memory / count


def _step_metrics(step: Step, baseline_reach: float | None) -> list[Metric]:
    tag = f"[n={step.processes}]"
    complete = step.reached == step.expected and step.expected > 0
    reach = max(step.reach_all_ms) if step.reach_all_ms else float("nan")
    p50 = harness.pct(step.match_ms, 50)
    p99 = harness.pct(step.match_ms, 99)
    clean = step.match_errors == 0 and len(step.match_ms) >= 10
    return [
        Metric.make(
            f"scaling.waiting_per_process{tag}",
            max(step.held),
            "sockets",
            baseline=None,
            target=f"reported ({sum(step.held)} in all; RSS "
            + ", ".join(f"{r:.0f}" for r in step.rss_mib)
            + " MiB)",
            ok=True,
        ),
        Metric.make(
            f"scaling.fanout_reach_all{tag}",
            reach,
            "ms",
            baseline=baseline_reach,
            target="< 1000 ms, every visitor on every process reached",
            ok=complete and reach < 1000,
        ),
        Metric.make(
            f"scaling.fanout_server_cpu_per_move{tag}",
            step.server_cpu_ms_per_move,
            "ms",
            baseline=None,
            target=f"reported (all processes; Redis {step.redis_cpu_ms_per_move:.1f} ms/move)",
            ok=True,
        ),
        Metric.make(
            f"scaling.waiting_server_cpu{tag}",
            100 * step.server_idle_share,
            "% of a core",
            baseline=None,
            target="reported (all processes, line still; Redis "
            f"{100 * step.redis_idle_share:.1f}%)",
            ok=True,
        ),
        Metric.make(
            f"scaling.match_latency_p50{tag}",
            p50,
            "ms",
            baseline=None,
            target="reported",
            ok=clean,
        ),
        Metric.make(
            f"scaling.match_latency_p99{tag}",
            p99,
            "ms",
            baseline=None,
            target="< 10 ms",
            ok=clean and p99 < 10,
        ),
    ]


async def run(quick: bool) -> list[Metric]:
    load = QUICK if quick else FULL
    steps: list[Step] = []
    with harness.redis_server() as (redis_url, redis_proc):
        for n in (1, 2, 3):
            step = await _step(redis_url, n, load)
            harness.log(
                f"scaling n={n}: load average {step.load_before:.2f} before; held {step.held}, "
                f"RSS {[round(r) for r in step.rss_mib]} MiB; reach-all per move "
                f"{[round(x) for x in step.reach_all_ms]} ms ({step.reached}/{step.expected}); "
                f"server CPU {step.server_cpu_ms_per_move:.0f} ms/move, Redis "
                f"{step.redis_cpu_ms_per_move:.1f} ms/move (idle: servers "
                f"{100 * step.server_idle_share:.1f}%, Redis {100 * step.redis_idle_share:.1f}%"
                f" of a core); match p50 "
                f"{harness.pct(step.match_ms, 50):.2f} ms p99 {harness.pct(step.match_ms, 99):.2f}"
                f" ms over {len(step.match_ms)} offers, {step.match_errors} errors"
            )
            steps.append(step)
        primary = await _primary(redis_url, redis_proc.pid, load)
    harness.log(
        f"scaling: one Redis primary, load average {primary.load_before:.2f} before: "
        f"{primary.joins_per_s:.0f} joins/s, {primary.matches_per_s:.0f} matches/s, "
        f"{primary.publishes_per_s:.0f} publishes/s, {primary.scripts_per_s:.0f} scripts/s "
        f"at {100 * primary.redis_busy:.0f}% of a core (backlog growth "
        f"{primary.backlog_growth}, {primary.errors} errors); the join script pipelined: "
        f"{primary.saturated_joins_per_s:.0f} joins/s at {100 * primary.saturated_redis_busy:.0f}% "
        f"of a core; a line of {primary.long_line} read whole in "
        f"{primary.line_read_ms:.1f} ms of Redis CPU, {primary.bytes_per_visitor:.0f} bytes "
        "of Redis memory per visitor"
    )
    one = max(steps[0].reach_all_ms) if steps[0].reach_all_ms else None
    rows = [m for step in steps for m in _step_metrics(step, one)]
    busy = max(primary.redis_busy, 1e-9)
    served = (
        primary.matches_per_s >= 0.95 * primary.joins_per_s
        and primary.backlog_growth <= 100
        and primary.errors == 0
    )
    for name, value, unit in (
        ("joins", primary.joins_per_s, "joins/s"),
        ("matches", primary.matches_per_s, "matches/s"),
        ("publishes", primary.publishes_per_s, "publishes/s"),
    ):
        rows.append(
            Metric.make(
                f"scaling.redis_primary.{name}",
                value,
                unit,
                baseline=value / busy,
                ratio=primary.redis_busy,
                target="served, backlog flat (baseline: the rate at 100% of Redis's core)",
                ok=served,
            )
        )
    rows.append(
        Metric.make(
            "scaling.redis_primary.joins_saturated",
            primary.saturated_joins_per_s,
            "joins/s",
            baseline=primary.saturated_joins_per_s / max(primary.saturated_redis_busy, 1e-9),
            ratio=primary.saturated_redis_busy,
            target="reported (one pipelining client; baseline: at 100% of Redis's core)",
            ok=True,
        )
    )
    rows.append(
        Metric.make(
            f"scaling.redis_primary.line_read[n={primary.long_line}]",
            primary.line_read_ms,
            "ms",
            baseline=None,
            target="reported (Redis CPU per whole-line read: one per process and fan-out)",
            ok=True,
        )
    )
    rows.append(
        Metric.make(
            "scaling.redis_primary.memory_per_visitor",
            primary.bytes_per_visitor,
            "bytes",
            baseline=None,
            target="reported (used_memory per waiting visitor, long line)",
            ok=True,
        )
    )
    rows.append(
        Metric.make(
            "scaling.redis_primary.cpu_share",
            100 * primary.redis_busy,
            "% of a core",
            baseline=None,
            target=f"reported ({primary.scripts_per_s:.0f} scripts/s)",
            ok=True,
        )
    )
    return rows
