"""Business hours of a queue, in the queue's own time zone.

A schedule is written the way people write opening hours::

    "mon-fri 09:00-17:30; sat 10:00-14:00"

Days are ``mon`` .. ``sun``, single or as a range; each day may have several intervals
(``mon 09:00-12:00,13:00-17:00``); ``24h`` means the whole day; an interval may run past
midnight (``fri 22:00-02:00`` is open until 2 a.m. on Saturday). An empty schedule means
always open.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class HoursError(ValueError):
    """A schedule that cannot be read; the message says where."""


def _minutes(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise HoursError(f"not a time of day: {text!r} (use HH:MM)")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 24 * 60:
        raise HoursError(f"not a time of day: {text!r}")
    return minutes


@dataclass(frozen=True)
class Schedule:
    """Weekly opening intervals, in minutes from midnight, per weekday (0 = Monday)."""

    timezone: str = "UTC"
    intervals: tuple[tuple[tuple[int, int], ...], ...] = field(
        default_factory=lambda: tuple(() for _ in DAYS)
    )
    always_open: bool = True

    @classmethod
    def parse(cls, spec: str, timezone: str = "UTC") -> Schedule:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise HoursError(f"unknown time zone {timezone!r}") from None
        spec = spec.strip()
        if not spec:
            return cls(timezone=timezone)
        days: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for part in spec.split(";"):
            part = part.strip().lower()
            if not part:
                continue
            try:
                day_text, times_text = part.split(None, 1)
            except ValueError:
                raise HoursError(f"expected 'DAYS HH:MM-HH:MM' in {part!r}") from None
            for day in _days(day_text):
                for interval in times_text.split(","):
                    interval = interval.strip()
                    if interval == "24h":
                        days[day].append((0, 24 * 60))
                        continue
                    try:
                        start_text, end_text = interval.split("-")
                    except ValueError:
                        raise HoursError(f"expected HH:MM-HH:MM, got {interval!r}") from None
                    start, end = _minutes(start_text), _minutes(end_text)
                    if end > start:
                        days[day].append((start, end))
                    elif end < start:  # past midnight
                        days[day].append((start, 24 * 60))
                        days[(day + 1) % 7].append((0, end))
                    else:
                        raise HoursError(f"empty interval {interval!r}")
        return cls(
            timezone=timezone,
            intervals=tuple(tuple(sorted(d)) for d in days),
            always_open=False,
        )

    def is_open(self, when: dt.datetime) -> bool:
        """Whether the queue is open at ``when`` (an aware datetime)."""
        if self.always_open:
            return True
        local = when.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.intervals[local.weekday()])

    def next_opening(self, when: dt.datetime) -> dt.datetime | None:
        """The next time the queue opens after ``when`` (None if it never does)."""
        if self.always_open:
            return when
        zone = ZoneInfo(self.timezone)
        local = when.astimezone(zone)
        for offset in range(8):
            day = (local + dt.timedelta(days=offset)).date()
            for start, _end in self.intervals[day.weekday()]:
                opening = dt.datetime.combine(day, dt.time(0), zone) + dt.timedelta(minutes=start)
                if opening > local:
                    return opening
        return None


def _days(text: str) -> list[int]:
    result: list[int] = []
    for piece in text.split(","):
        if "-" in piece:
            first, last = piece.split("-", 1)
            a, b = _day(first), _day(last)
            result.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            result.append(_day(piece))
    return result


def _day(text: str) -> int:
    try:
        return DAYS.index(text.strip()[:3])
    except ValueError:
        raise HoursError(f"not a day: {text!r} (use mon..sun)") from None
