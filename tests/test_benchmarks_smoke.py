"""The benchmark command runs end to end on its smallest metric and prints well-formed JSON.

Only the shape is checked: timings are the benchmark's business (benchmarks/README.md), never
a test's.
"""

from __future__ import annotations

import json
import subprocess

from conftest import PYTHON, REPO, python_env

# The shape every printed metric has (benchmarks/__init__.py, Metric).
METRIC_KEYS = ("name", "value", "unit", "baseline", "ratio", "target", "ok")


def test_relay_benchmark_prints_one_json_object_per_metric() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "benchmarks", "--quick", "--only", "relay"],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [row["name"] for row in rows] == ["relay.p50", "relay.p99"], result.stdout
    for row in rows:
        assert tuple(row) == METRIC_KEYS
        assert isinstance(row["value"], float) and row["value"] > 0
        assert isinstance(row["baseline"], float) and row["baseline"] > 0
        assert isinstance(row["ratio"], float)
        assert isinstance(row["target"], str) and isinstance(row["ok"], bool)
        assert row["unit"] == "ms"
    assert "| relay.p99 |" in result.stderr  # the Markdown table
