"""``humandesk privacy`` (purge, erase) and ``humandesk audit``: personal data from the
command line. Every action is recorded in the audit log as ``cli:<os user>``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from dataclasses import replace
from typing import Any

from humandesk.queue.client import DeskQueue
from humandesk.queue.privacy import ErasureError, erase
from humandesk.server.audit import AuditAction, AuditLog, cli_actor, purge_and_record
from humandesk.server.config import Config
from humandesk.server.redis_connect import connect

COMMANDS = ("privacy", "audit")
DURATION_RE = re.compile(r"^(\d+)([smhd])$")
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Adds ``privacy`` and ``audit`` to the CLI's subcommands."""
    privacy = sub.add_parser(
        "privacy",
        help="delete old personal data, erase one visitor's",
        description="Call records, callback requests and event-log entries are deleted "
        "after HUMANDESK_RETENTION_DAYS (default 90) by the running server, once an hour; "
        "audit entries after HUMANDESK_AUDIT_RETENTION_DAYS (default 365).",
    )
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    purge = privacy_sub.add_parser(
        "purge", parents=[common], help="delete what is older than the retention period now"
    )
    purge.add_argument(
        "--days", type=int, help="retention period in days (HUMANDESK_RETENTION_DAYS; 0: keep)"
    )
    purge.add_argument(
        "--audit-days",
        type=int,
        help="audit-log retention in days (HUMANDESK_AUDIT_RETENTION_DAYS; 0: keep)",
    )
    erase_cmd = privacy_sub.add_parser(
        "erase",
        parents=[common],
        help="erase one visitor's personal data everywhere",
        description="Removes a visitor's place in line or call, call records (notes, "
        "rating and chat included), callback requests and event-log entries. Statistics keep "
        "counting them: the events are kept without any visitor, call or request id.",
    )
    erase_cmd.add_argument(
        "--visitor",
        action="append",
        default=[],
        metavar="ID",
        help="a visitor id (the `visitor_id` of `queued`; repeatable)",
    )
    erase_cmd.add_argument(
        "--contact",
        metavar="EMAIL_OR_PHONE",
        help="whoever left callback requests with this contact (e-mail without case, phone "
        "by its digits)",
    )
    erase_cmd.add_argument(
        "--call",
        action="append",
        default=[],
        metavar="ID",
        help="the visitor of this call (the `id` column of /api/calls.csv; repeatable)",
    )
    erase_cmd.add_argument("--json", action="store_true", help="print the counts as JSON")

    audit = sub.add_parser(
        "audit",
        parents=[common],
        help="list the audit log, newest first",
        description="Sign-ins, failed sign-ins, logouts, account changes, exports, erasures "
        "and purges: who, when, from where.",
    )
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="entries from then on: ISO 8601 (UTC unless it says), Unix ms, or a time ago "
        "such as 30m, 12h, 7d",
    )
    audit.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")


async def run(args: argparse.Namespace, config: Config) -> int:
    """Runs ``privacy ...`` or ``audit`` against ``config.redis_url``."""
    assert config.redis_url is not None
    redis = connect(config.redis_url, config.redis_mode, max_connections=4)
    try:
        desk = DeskQueue(redis, config.desk, config.queue)
        audit = AuditLog(redis, desk.keys, max_entries=config.audit_max_entries)
        if args.command == "audit":
            return await _list(args, audit, await desk.clock_ms())
        if args.privacy_command == "purge":
            return await _purge(args, config, desk, audit)
        return await _erase(args, desk, audit)
    finally:
        await redis.aclose()


async def _purge(args: argparse.Namespace, config: Config, desk: DeskQueue, audit: AuditLog) -> int:
    retention = config.retention()
    given = (("--days", "days", args.days), ("--audit-days", "audit_days", args.audit_days))
    for option, key, value in given:
        if value is None:
            continue
        try:
            retention = replace(retention, **{key: value})
        except ValueError as exc:
            print(f"humandesk: {option}: {exc}", file=sys.stderr)
            return 2
    result = await purge_and_record(desk, audit, retention, cli_actor())
    kept = f"{retention.days} days" if retention.days else "for ever"
    print(
        f"deleted {result.records} call records, {result.callbacks} callback requests, "
        f"{result.events + result.anonymous_events} event-log entries (kept: {kept}) and "
        f"{result.audit} audit entries"
    )
    return 0


async def _erase(args: argparse.Namespace, desk: DeskQueue, audit: AuditLog) -> int:
    visitors = [v.strip() for v in args.visitor if v.strip()]
    for call_id in args.call:
        record = await desk.call_record(call_id.strip())
        if record is None:
            print(f"humandesk: no call record {call_id!r}", file=sys.stderr)
            return 1
        visitors.append(str(record.get("visitor_id", "")))
    try:
        result = await erase(desk, visitor_ids=visitors, contact=args.contact or "")
    except ErasureError as exc:
        print(f"humandesk: {exc}", file=sys.stderr)
        return 2
    by = [
        kind
        for kind, given in (
            ("visitor", args.visitor),
            ("contact", args.contact),
            ("call", args.call),
        )
        if given
    ]
    counts = result.counts()
    # What was erased is not named here: the audit log would keep it.
    details = {k: str(v) for k, v in counts.items()}
    await audit.record(AuditAction.ERASE, cli_actor(), target=",".join(by), **details)
    if args.json:
        print(json.dumps(counts))
    elif not any(counts.values()):
        print("found nothing to erase")
    else:
        print(
            f"erased {len(result.visitors)} visitor(s): {result.live} taken out of a line or "
            f"call, {result.call_records} call records, {result.callbacks} callback requests, "
            f"{result.events} event-log entries (kept without ids for the statistics)"
        )
    return 0


def parse_since(text: str, now_ms: int) -> int:
    """``--since``: ISO 8601 (UTC unless it says), Unix ms, or a time ago (30m, 12h, 7d)."""
    text = text.strip()
    ago = DURATION_RE.match(text)
    if ago:
        return now_ms - int(ago.group(1)) * UNITS_S[ago.group(2)] * 1000
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give ISO 8601, Unix milliseconds or a time ago like 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


async def _list(args: argparse.Namespace, audit: AuditLog, now_ms: int) -> int:
    if args.limit < 1:
        print("humandesk: --limit must be 1 or more", file=sys.stderr)
        return 2
    try:
        since = None if args.since is None else parse_since(args.since, now_ms)
    except ValueError as exc:
        print(f"humandesk: {exc}", file=sys.stderr)
        return 2
    entries = await audit.entries(since_ms=since, limit=args.limit)
    for entry in entries:
        if args.json:
            print(json.dumps(entry.public()))
            continue
        details = " ".join(f"{k}={v}" for k, v in entry.details.items())
        print(
            f"{entry.time}  {entry.action:<16} {entry.actor or '-':<20} "
            f"{entry.target or '-':<16} {entry.address or '-':<15} {details}".rstrip()
        )
    if not entries and not args.json:
        print("no audit entries" + ("" if args.since is None else f" since {args.since}"))
    return 0
