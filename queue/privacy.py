"""Personal data: deleting it after the retention period, and erasing one visitor's.

What the desk keeps about visitors: the live entry while they wait or talk (name, topic,
page), a call record per answered call (name, topic, page, the agent's notes and
disposition, the visitor's rating and comment), callback requests (name, contact, note) and
the event log, whose entries name visitors, calls and callback requests by their random ids
only. :func:`purge` deletes records, requests and events older than the retention period;
:func:`erase` removes everything of one visitor at once.

Both work in bounded steps (a script or a page of a few hundred entries at a time), so a
desk with months of data is never held up for long. Statistics are computed from the event
log: an erased visitor's events leave the log but an anonymised copy of each (no visitor,
call, offer or callback id) is kept in ``anonymous_events`` for the same period, so the
numbers of past days do not change when someone's data is erased.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from humandesk.queue.client import SCRIPTS_DIR, DeskQueue, QueueError, _text
from humandesk.queue.connection import RedisClient, publish, publish_command

DAY_MS = 86_400_000
DEFAULT_RETENTION_DAYS = 90
DEFAULT_AUDIT_RETENTION_DAYS = 365
#: Entries a purge run or an erasure page handles at most (call records, scanned callback
#: requests, stream entries).
BATCH = 200
#: Event-log entries read per page while an erasure looks for a visitor's events.
EVENT_PAGE = 1000
#: Fields of an event that identify a visitor, directly or through their call, offer or
#: callback request; an erased visitor's events are kept without them.
IDENTIFYING_FIELDS = ("visitor", "call", "offer", "callback")
PARTS = ("records", "callbacks", "events", "anonymous_events", "audit")


@dataclass(frozen=True)
class Retention:
    """How long personal data is kept, in days (0: for ever)."""

    days: int = DEFAULT_RETENTION_DAYS  # call records, callback requests, events
    audit_days: int = DEFAULT_AUDIT_RETENTION_DAYS  # the audit log

    def __post_init__(self) -> None:
        if self.days < 0 or self.audit_days < 0:
            raise ValueError("retention periods are 0 (keep for ever) or a number of days")


@dataclass(frozen=True)
class PurgeResult:
    """How many entries one :func:`purge` deleted, by kind."""

    records: int = 0
    callbacks: int = 0
    events: int = 0
    anonymous_events: int = 0
    audit: int = 0
    runs: int = 0  # scripts run

    @property
    def total(self) -> int:
        return self.records + self.callbacks + self.events + self.anonymous_events + self.audit

    def counts(self) -> dict[str, int]:
        return {part: int(getattr(self, part)) for part in PARTS}


def purge_keys(desk: DeskQueue) -> list[str]:
    """The ``KEYS`` of ``purge.lua``, in its order."""
    k = desk.keys
    return [
        k.call_records,
        k.records_by_time,
        k.callbacks,
        k.callbacks_open,
        k.events,
        k.anonymous_events,
        k.audit,
    ]


async def purge(
    desk: DeskQueue, retention: Retention, *, now_ms: int | None = None, batch: int = BATCH
) -> PurgeResult:
    """Deletes what is older than the retention period: call records (by the time the call
    was answered), callback requests (by the time they were made, open ones too), event-log
    entries and their anonymised copies, and audit entries (by their own period).

    Runs ``purge.lua`` until nothing is left to delete, each run touching at most ``batch``
    entries of each kind. ``now_ms``: the time to count back from (default: Redis's clock).
    """
    now = await desk.clock_ms() if now_ms is None else now_ms
    parts = set()
    if retention.days:
        parts |= {"records", "callbacks", "events", "anonymous_events"}
    if retention.audit_days:
        parts.add("audit")
    script = desk.redis.register_script((SCRIPTS_DIR / "purge.lua").read_text())
    totals = dict.fromkeys(PARTS, 0)
    cursor, runs = "0", 0
    while parts:
        payload = {
            "parts": sorted(parts),
            "cutoff": now - retention.days * DAY_MS,
            "audit_cutoff": now - retention.audit_days * DAY_MS,
            "batch": batch,
            "cursor": cursor,
            "channel": desk.keys.callbacks_channel,
            "publish": publish_command(desk.redis),
        }
        raw = await script(keys=purge_keys(desk), args=[json.dumps(payload)])
        runs += 1
        reply = json.loads(_text(raw))
        for part in list(parts):
            totals[part] += int(reply[part])
            if not reply["more"][part]:
                parts.discard(part)
        cursor = str(reply["cursor"])
    return PurgeResult(**totals, runs=runs)


# Erasure ------------------------------------------------------------------------------------


class ErasureError(ValueError):
    """An erasure was asked for in a way that cannot work (the message says why)."""


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase` removed."""

    visitors: list[str] = field(default_factory=list)  # the visitor ids whose data went
    live: int = 0  # entries taken out of a line or a call
    call_records: int = 0
    callbacks: int = 0
    events: int = 0  # event-log entries (kept anonymised for the statistics)

    def counts(self) -> dict[str, int]:
        return {
            "visitors": len(self.visitors),
            "live": self.live,
            "call_records": self.call_records,
            "callbacks": self.callbacks,
            "events": self.events,
        }


def contact_key(contact: str) -> str:
    """How contacts are compared: e-mail addresses without case, anything else (a phone
    number) by its digits alone, so "+49 (30) 123-45" and "+49 30 12345" match."""
    text = contact.strip().lower()
    if "@" in text:
        return text
    return "".join(ch for ch in text if ch.isdigit())


async def erase(
    desk: DeskQueue,
    *,
    visitor_ids: Iterable[str] = (),
    contact: str = "",
    batch: int = BATCH,
) -> ErasureResult:
    """Removes the personal data of the visitors ``visitor_ids`` and of whoever left a
    callback request with ``contact``.

    - a visitor waiting or in a call leaves through the queue's ``leave`` script (their
      place is given up, an offer withdrawn, a call ended), which logs it as usual;
    - their call records and callback requests are deleted (open requests vanish from the
      consoles' list);
    - every event-log entry that names them, their calls or their callback requests is
      deleted from the log; a copy without those ids goes to ``anonymous_events``, which the
      statistics read too, so the counts of past intervals stay as they were.

    Each step reads and deletes a page at a time, so Redis is never held for long.
    """
    wanted = {v for v in visitor_ids if v}
    key = contact_key(contact) if contact else ""
    if contact and not key:
        raise ErasureError("the contact has no e-mail address or phone digits to match")
    if not wanted and not key:
        raise ErasureError("name a visitor id or a contact")
    k = desk.keys

    callbacks: dict[str, str | None] = {}  # id -> its queue while open, else None
    async for cb_id, cb in _scan_json(desk.redis, k.callbacks, batch):
        linked = str(cb.get("visitor_id") or "")
        if (key and contact_key(str(cb.get("contact", ""))) == key) or linked in wanted:
            callbacks[cb_id] = str(cb.get("queue", "")) if cb.get("state") == "open" else None
            if linked:
                wanted.add(linked)

    live = 0
    for vid in sorted(wanted):
        if await desk.visitor(vid) is None:
            continue
        try:
            await desk.leave(vid, "erased")
            live += 1
        except QueueError as exc:
            if exc.code != "unknown_visitor":  # gone meanwhile: nothing left to take out
                raise

    calls: set[str] = set()
    async for call_id, record in _scan_json(desk.redis, k.call_records, batch):
        if str(record.get("visitor_id", "")) in wanted:
            calls.add(call_id)
    for chunk in _chunks(sorted(calls), batch):
        pipe = desk.redis.pipeline(transaction=True)
        pipe.hdel(k.call_records, *chunk)
        pipe.zrem(k.records_by_time, *chunk)
        await pipe.execute()

    for chunk in _chunks(sorted(callbacks), batch):
        pipe = desk.redis.pipeline(transaction=True)
        pipe.hdel(k.callbacks, *chunk)
        pipe.zrem(k.callbacks_open, *chunk)
        await pipe.execute()
    for cb_id, queue in callbacks.items():
        if queue is not None:  # consoles drop it as they drop a closed one
            message = {"type": "callback_closed", "id": cb_id, "queue": queue}
            await publish(desk.redis, k.callbacks_channel, json.dumps(message))

    events = await _erase_events(desk, wanted, calls, set(callbacks))
    return ErasureResult(
        visitors=sorted(wanted),
        live=live,
        call_records=len(calls),
        callbacks=len(callbacks),
        events=events,
    )


async def _erase_events(
    desk: DeskQueue, visitors: set[str], calls: set[str], callbacks: set[str]
) -> int:
    """Moves the events naming these visitors, calls or callback requests out of the log,
    keeping an anonymised copy of each; returns how many."""
    key = desk.keys.events
    erased = 0
    start = "-"
    while True:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await desk.redis.xrange(  # type: ignore[assignment]
            key, min=start, max="+", count=EVENT_PAGE
        )
        matched: list[str] = []
        copies: dict[str, float] = {}
        for raw_id, raw_fields in rows:
            fields = {_text(f): _text(v) for f, v in raw_fields.items()}
            if (
                fields.get("visitor") in visitors
                or fields.get("call") in calls
                or fields.get("callback") in callbacks
            ):
                entry_id = _text(raw_id)
                matched.append(entry_id)
                copy = {f: v for f, v in fields.items() if f not in IDENTIFYING_FIELDS}
                copy["n"] = entry_id  # keeps two equal events two members of the set
                copies[json.dumps(copy, sort_keys=True)] = float(fields.get("ts", 0) or 0)
        if matched:
            pipe = desk.redis.pipeline(transaction=True)
            pipe.xdel(key, *matched)
            pipe.zadd(desk.keys.anonymous_events, copies)
            await pipe.execute()
            erased += len(matched)
        if len(rows) < EVENT_PAGE:
            return erased
        start = "(" + _text(rows[-1][0])


def anonymous_event(member: bytes | str) -> dict[str, str]:
    """An event as the statistics read it, from a member of ``anonymous_events``."""
    event = {str(k): str(v) for k, v in json.loads(_text(member)).items()}
    event.pop("n", None)
    return event


async def _scan_json(
    redis: RedisClient, key: str, count: int
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(field, decoded JSON object) of a hash, a page of about ``count`` at a time."""
    cursor = 0
    while True:
        cursor, page = await redis.hscan(key, cursor, count=count)
        assert isinstance(page, dict)
        for name, raw in page.items():
            try:
                value = json.loads(_text(raw))
            except ValueError:
                continue
            if isinstance(value, dict):
                yield _text(name), value
        if cursor == 0:
            return


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
