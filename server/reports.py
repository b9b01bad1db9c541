"""Statistics and call records in the formats operators feed to other tools."""

from __future__ import annotations

import csv
import datetime as dt
import io
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from humandesk.queue.stats import QueueStats

CSV_COLUMNS = (
    "id",
    "queue",
    "agent",
    "agent_name",
    "visitor_name",
    "topic",
    "page",
    "priority",
    "joined",
    "answered",
    "ended",
    "waited_s",
    "talk_s",
    "wrapup_s",
    "transferred_from",
    "transferred_to",
    "notes",
    "disposition",
    "rating",
    "rating_comment",
    "chat",
)

#: Counts of today, per queue: (the name after humandesk_today_, its help text).
PROMETHEUS_COUNTS = (
    ("offered", "Visitors who joined the queue today"),
    ("answered", "Visitors whose call was answered today"),
    ("abandoned", "Visitors who left or whose resume window ran out today"),
    ("callbacks", "Callback requests made instead of waiting today"),
    ("answered_within", "Answered today within the queue's service-level threshold T"),
    ("abandoned_within", "Abandoned today within the queue's service-level threshold T"),
    ("offers_made", "Offers (reservations) made to agents today"),
    ("offers_declined", "Offers declined today"),
    ("offers_timed_out", "Offers that timed out today"),
)


def _iso(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _seconds(ms: Any) -> str:
    return f"{ms / 1000:.1f}" if isinstance(ms, int | float) else ""


# Where a spreadsheet may start a new cell inside ours: at the common separators (a file read
# with ";" in a ";" locale splits "x;=cmd|' /C calc'!A0" into two cells) and at line breaks.
# A part that starts, after spaces and quotes, with a formula character gets a "'" first.
_FORMULA_PART = re.compile(r"(^|[,;\t\r\n])(?=[ \"]*[=+\-@])")


def _cell(value: Any) -> str:
    """A CSV cell that no spreadsheet runs as a formula (CSV injection), whatever separator
    it reads the file with.

    NUL characters are dropped. The cell, and every part of it after a ``,``, ``;``, tab or
    line break, gets a ``'`` in front when it starts (after spaces or quotes) with ``=``,
    ``+``, ``-`` or ``@``; a cell that starts with a tab or a line break gets one too. The
    writer quotes every cell as well, so a reader that honours quotes splits none of them.
    """
    text = ("" if value is None else str(value)).replace("\0", "")
    text = _FORMULA_PART.sub(r"\1'", text)
    if text[:1] in ("\t", "\r", "\n"):
        text = "'" + text
    return text


def _transcript(lines: Any) -> str:
    """A call's chat as one cell: a line per message, "<ISO time> <from>: <text>"."""
    if not isinstance(lines, list):
        return ""
    return "\n".join(
        f"{_iso(line.get('at'))} {line.get('from', '')}: {line.get('text', '')}"
        for line in lines
        if isinstance(line, dict)
    )


def calls_to_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        row = {
            **r,
            "joined": _iso(r.get("joined")),
            "answered": _iso(r.get("answered")),
            "ended": _iso(r.get("ended")),
            "waited_s": _seconds(r.get("waited_ms")),
            "talk_s": _seconds(r.get("talk_ms")),
            "wrapup_s": _seconds(r.get("wrapup_ms")),
            "chat": _transcript(r.get("chat")),
        }
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


class _DeskCollector(Collector):
    """Today's numbers and the live state of every queue, as one scrape sees them."""

    def __init__(self, stats: dict[str, QueueStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats, queues = self.stats, sorted(self.stats)

        def gauge(name: str, text: str, value: Callable[[QueueStats], float | None]) -> Any:
            family = GaugeMetricFamily(f"humandesk_{name}", text, labels=["queue"])
            for q in queues:
                sample = value(stats[q])
                if sample is not None:
                    family.add_metric([q], sample)
            return family

        yield gauge("waiting", "Visitors waiting now", lambda s: s.waiting_now)
        yield gauge("longest_wait_seconds", "Longest current wait", lambda s: s.longest_wait_now_s)
        agents = GaugeMetricFamily(
            "humandesk_agents", "Agents serving the queue, by state", labels=["queue", "state"]
        )
        for q in queues:
            for state, count in sorted(stats[q].agents.items()):
                agents.add_metric([q, state], count)
        yield agents
        for field, text in PROMETHEUS_COUNTS:
            yield gauge(f"today_{field}", text, operator.attrgetter(field))
        yield gauge(
            "service_level_threshold_seconds",
            "The queue's service-level threshold T (its sla rule)",
            lambda s: s.threshold_s,
        )
        yield gauge(
            "today_service_level",
            "Answered within the queue's service-level threshold "
            "(humandesk_service_level_threshold_seconds) / answered, today",
            lambda s: s.service_level,
        )
        yield gauge(
            "today_average_handle_seconds",
            "Average talk plus wrap-up time, today",
            lambda s: s.avg_handle_s,
        )
        yield gauge(
            "today_average_wait_seconds",
            "Average wait of answered visitors, today",
            lambda s: s.avg_wait_s,
        )


#: The media type of prometheus_text() (the exposition format prometheus_client writes).
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def prometheus_text(stats: dict[str, QueueStats]) -> str:
    """The Prometheus text exposition format, written by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DeskCollector(stats))
    return generate_latest(registry).decode()
