"""Queue statistics, as contact centres define them, from the event log and live state.

For an interval and a service-level threshold *T* (the queue's ``sla`` rule, default 20 s,
unless one *T* is asked for all queues), per queue:

- ``offered``: visitors who joined the queue; ``answered``: offers accepted;
  ``abandoned``: visitors who left or whose resume window ran out while waiting
  (a callback request is counted as ``callbacks``, not as abandoned);
- ``answered_within`` / ``abandoned_within``: those with a wait of at most *T*;
- ``service_level`` SL = answered within T / answered;
  ``service_level_2`` SL2 = (answered within T + abandoned within T) / (answered + abandoned);
- ``avg_wait_s`` and ``longest_wait_s`` over answered visitors;
- ``avg_talk_s``, ``avg_wrapup_s`` and ``avg_handle_s`` (talk + wrap-up) over ended calls;
- reservations: ``offers_made``, ``offers_accepted``, ``offers_declined``, ``offers_timed_out``.

Live, per queue: ``waiting_now``, ``longest_wait_now_s`` and agents by state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from humandesk.queue.client import DeskQueue, QueueConfig
from humandesk.queue.privacy import anonymous_event

DEFAULT_THRESHOLD_S = float(QueueConfig.sla)


@dataclass
class QueueStats:
    queue: str
    threshold_s: float = DEFAULT_THRESHOLD_S
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    callbacks: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    service_level: float | None = None
    service_level_2: float | None = None
    avg_wait_s: float | None = None
    longest_wait_s: float | None = None
    avg_talk_s: float | None = None
    avg_wrapup_s: float | None = None
    avg_handle_s: float | None = None
    offers_made: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    offers_timed_out: int = 0
    transferred_out: int = 0
    waiting_now: int = 0
    longest_wait_now_s: float = 0.0
    agents: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def summarise(
    events: list[dict[str, str]], queues: list[str], threshold_s: float | Mapping[str, float]
) -> dict[str, QueueStats]:
    """Interval statistics from the events of the interval (pure; see the module doc).

    ``threshold_s``: one *T* for every queue, or each queue's own (default 20 s)."""
    if isinstance(threshold_s, Mapping):
        thresholds = {q: float(threshold_s.get(q, DEFAULT_THRESHOLD_S)) for q in queues}
    else:
        thresholds = dict.fromkeys(queues, float(threshold_s))
    stats = {q: QueueStats(queue=q, threshold_s=thresholds[q]) for q in queues}
    waits: dict[str, list[float]] = {q: [] for q in queues}
    talks: dict[str, list[float]] = {q: [] for q in queues}
    wrapups: dict[str, list[float]] = {q: [] for q in queues}
    for event in events:
        s = stats.get(event.get("queue", ""))
        if s is None:
            continue
        kind = event["event"]
        if kind == "joined":
            s.offered += 1
        elif kind == "accepted":
            s.answered += 1
            s.offers_accepted += 1
            waited = float(event.get("waited_ms", 0))
            waits[s.queue].append(waited / 1000)
            if waited <= s.threshold_s * 1000:
                s.answered_within += 1
        elif kind == "abandoned":
            if event.get("reason") == "callback":
                s.callbacks += 1
                continue
            s.abandoned += 1
            if float(event.get("waited_ms", 0)) <= s.threshold_s * 1000:
                s.abandoned_within += 1
        elif kind == "offered":
            s.offers_made += 1
        elif kind == "declined":
            s.offers_declined += 1
        elif kind == "timed_out":
            s.offers_timed_out += 1
        elif kind == "ended":
            talks[s.queue].append(float(event.get("talk_ms", 0)) / 1000)
        elif kind == "wrapup_ended":
            wrapups[s.queue].append(float(event.get("wrapup_ms", 0)) / 1000)
        elif kind == "transferred":
            s.transferred_out += 1
    for q, s in stats.items():
        s.service_level = _ratio(s.answered_within, s.answered)
        s.service_level_2 = _ratio(s.answered_within + s.abandoned_within, s.answered + s.abandoned)
        s.avg_wait_s = _mean(waits[q])
        s.longest_wait_s = round(max(waits[q]), 3) if waits[q] else None
        s.avg_talk_s = _mean(talks[q])
        s.avg_wrapup_s = _mean(wrapups[q])
        if s.avg_talk_s is not None:
            s.avg_handle_s = round(s.avg_talk_s + (s.avg_wrapup_s or 0.0), 3)
    return stats


#: Events read per round trip while walking the log back from its newest entry.
PAGE = 1000
#: How far before ``since`` the walk goes on, in case the clock stepped back (NTP).
CLOCK_SLACK_MS = 60_000


async def events_between(desk: DeskQueue, since_ms: int, until_ms: int) -> list[dict[str, str]]:
    """Events whose timestamp falls in [since_ms, until_ms], oldest first.

    The log is read backwards from its newest entry, a page at a time, until it reaches
    events older than ``since_ms``: the cost follows the interval asked for (today's
    events), not the length of the log (up to 100,000 entries). Events older than the
    retention period are gone (queue/privacy.py), so an interval reaching further back counts
    only what is left; the anonymised events of erased visitors are read too, so erasing
    someone does not change the numbers.
    """
    result: list[dict[str, str]] = []
    newest = "+"
    while True:
        rows = await desk.events_before(newest, PAGE)
        for _id, event in rows:
            if since_ms <= int(event.get("ts", 0)) <= until_ms:
                result.append(event)
        if len(rows) < PAGE:
            break
        oldest_id, oldest = rows[-1]
        if int(oldest.get("ts", 0)) < since_ms - CLOCK_SLACK_MS:
            break
        newest = "(" + oldest_id
    result.reverse()
    erased = await desk.anonymous_events(since_ms, until_ms)
    if erased:
        result.extend(anonymous_event(member) for member in erased)
        result.sort(key=lambda event: float(event.get("ts", 0) or 0))  # stable: log order kept
    return result


async def queue_stats(
    desk: DeskQueue, since_ms: int, until_ms: int, threshold_s: float | None, now_ms: int
) -> dict[str, QueueStats]:
    """Interval statistics plus the live state of every queue of the desk.

    ``threshold_s``: one *T* for all queues; None: each queue's ``sla`` rule."""
    queues = await desk.queue_names(refresh=True)
    thresholds: float | dict[str, float] = (
        threshold_s
        if threshold_s is not None
        else {q: float((await desk.queue_rules(q)).get("sla", DEFAULT_THRESHOLD_S)) for q in queues}
    )
    stats = summarise(await events_between(desk, since_ms, until_ms), queues, thresholds)
    agents = list((await desk.agents()).values())
    visitors = await desk.visitors()
    for q, s in stats.items():
        line = [v for v in visitors if v.get("queue") == q and v.get("state") == "waiting"]
        s.waiting_now = len(line)
        if line:
            s.longest_wait_now_s = round((now_ms - min(v["joined"] for v in line)) / 1000, 3)
        s.agents = dict(Counter(a["state"] for a in agents if q in a.get("queues", [])))
    return stats
