"""Queue configuration: a TOML file and ``humandesk queue ...`` commands, stored in Redis.

A file names its queues and their rules, in seconds::

    [queues.support]
    hours = "mon-fri 09:00-17:30; sat 10:00-14:00"   # empty or absent: always open
    timezone = "Europe/Berlin"
    offer_timeout = 20      # seconds an agent has to accept
    wrapup = 30             # wrap-up after each call
    escalation = 60         # level-2 agents are offered a visitor after this wait
    strategy = "longest-idle"   # or fewest-calls, round-robin, random
    max_wait = 600          # then overflow, or offer the callback form (default 900; 0 = no limit)
    overflow = "sales"
    sla = 20                # service-level threshold T
    priority = 0            # visitors' default priority, 0-9
    reject_delay = 5        # no offers for this long after a decline
    no_answer_delay = 5     # ... and after an offer timed out
    max_missed_offers = 3   # then the agent is put on Break

Every instance of a desk reads the same rules from Redis, so a change applies everywhere.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from humandesk.queue.client import RULE_RANGES, RULES, RuleError, check_rules
from humandesk.queue.keys import NAME_RE

#: Settings given in seconds, and the millisecond names the scripts use.
SECONDS = {
    "offer_timeout": "offer_timeout_ms",
    "wrapup": "wrapup_ms",
    "escalation": "escalation_ms",
    "max_wait": "max_wait_ms",
    "reject_delay": "reject_delay_ms",
    "no_answer_delay": "no_answer_delay_ms",
}
#: The other settings, under the names the scripts use (every rule is one or the other).
OTHER = tuple(name for name in RULES if name not in SECONDS.values())
#: A rule's name as a person writes it, by the name the scripts use.
USER_NAMES = {ms: key for key, ms in SECONDS.items()}


class QueueConfigError(ValueError):
    """A queue setting that cannot be used; the message names it."""


def parse_rules(
    name: str, settings: dict[str, Any], *, queues: Collection[str] | None = None
) -> dict[str, Any]:
    """Validated rules of one queue, in the form the scripts read (milliseconds).

    The rules' own checks (``check_rules`` beside RULES) decide what is in range;
    ``queues``, when given, are the desk's queues, which ``overflow`` must name one of."""
    if not NAME_RE.match(name):
        raise QueueConfigError(f"invalid queue name {name!r}")
    rules: dict[str, Any] = {}
    for key, value in settings.items():
        if key in SECONDS:
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise QueueConfigError(f"{name}.{key} must be a number of seconds, not {value!r}")
            rules[SECONDS[key]] = round(value * 1000)
        elif key in OTHER:
            rules[key] = value
        else:
            known = ", ".join([*SECONDS, *OTHER])
            raise QueueConfigError(f"unknown setting {name}.{key} (known: {known})")
    try:
        check_rules(rules, queue=name, queues=queues)
    except RuleError as exc:
        key = USER_NAMES.get(exc.rule, exc.rule)
        value = settings.get(key)
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        given = f", not {shown}" if key in settings and exc.rule in RULE_RANGES else ""
        raise QueueConfigError(f"{name}.{key} {exc.must}{given}") from None
    return rules


def load_file(path: Path) -> dict[str, dict[str, Any]]:
    """The validated rules of every queue in a TOML file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise QueueConfigError(f"cannot read {path}: {exc}") from None
    queues = data.get("queues")
    if queues is None and "brand" in data:
        return {}  # a file of the brand alone (server/brand.py reads it)
    if not isinstance(queues, dict) or not queues:
        raise QueueConfigError(f"{path} has no [queues.NAME] tables")
    result = {}
    for name, settings in queues.items():
        if not isinstance(settings, dict):
            raise QueueConfigError(f"[queues.{name}] must be a table")
        result[name] = parse_rules(name, settings)
    for name, rules in result.items():
        if rules.get("overflow") and rules["overflow"] not in result:
            raise QueueConfigError(f"{name}.overflow names an unknown queue {rules['overflow']!r}")
    return result


def describe(rules: dict[str, Any]) -> dict[str, Any]:
    """Rules as a person writes them (seconds), for `humandesk queue show`."""
    out: dict[str, Any] = {}
    for key, ms_key in SECONDS.items():
        if ms_key in rules:
            out[key] = rules[ms_key] / 1000
    for key in OTHER:
        if key in rules:
            out[key] = rules[key]
    return out
