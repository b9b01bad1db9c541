"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, one JSON line each.

Progress goes to stderr; stdout holds only the metric lines, then (``--table``) nothing else:
the Markdown table goes to stderr too, or to ``--markdown FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from benchmarks import Metric, failed
from benchmarks.harness import log, raise_nofile, redis_version

#: name -> (module, the name of the metric reported if the module fails)
SUITES: dict[str, tuple[str, str, str]] = {
    "match": ("benchmarks.match_latency", "match_latency", "ms"),
    "throughput": ("benchmarks.queue_throughput", "queue_throughput", "offers/s"),
    "waiting_room": ("benchmarks.waiting_room", "waiting_room", "KiB"),
    "relay": ("benchmarks.relay", "relay", "ms"),
    "click_to_face": ("benchmarks.click_to_face", "click_to_face", "ms"),
    "media": ("benchmarks.media_load", "media_load", "% core"),
    "abuse": ("benchmarks.abuse", "abuse", "ms"),
    "precall": ("benchmarks.precall", "precall", "cpu s"),
    "scaling": ("benchmarks.scaling", "scaling", "ms"),
}


def machine() -> dict[str, str]:
    import aiohttp
    import aiortc

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import os

    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "python": platform.python_version(),
        "redis": redis_version(),
        "aiohttp": aiohttp.__version__,
        "aiortc": aiortc.__version__,
    }


def markdown(rows: list[Metric], info: dict[str, str], mode: str, seconds: float) -> str:
    def num(x: float | None) -> str:
        if x is None or x != x:
            return "-"
        return f"{x:g}"

    lines = [
        f"Mode: {mode}, {seconds:.0f} s. Machine: {info['cores']} cores ({info['cpu']}), "
        f"{info['memory']}; Python {info['python']}, Redis {info['redis']}, "
        f"aiohttp {info['aiohttp']}, aiortc {info['aiortc']}.",
        "",
        "| metric | value | unit | baseline | ratio | target | ok |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for m in rows:
        lines.append(
            f"| {m.name} | {num(m.value)} | {m.unit} | {num(m.baseline)} | {num(m.ratio)} "
            f"| {m.target} | {'yes' if m.ok else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


async def run_suite(name: str, quick: bool) -> list[Metric]:
    module_name, metric, unit = SUITES[name]
    run: Callable[[bool], Awaitable[list[Metric]]] = importlib.import_module(module_name).run
    started = time.monotonic()
    log(f"{name}: starting")
    try:
        rows = await run(quick)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        rows = [failed(metric, unit, "measured", f"{type(exc).__name__}: {exc}")]
    log(f"{name}: done in {time.monotonic() - started:.1f}s")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the desk against its limits (baselines measured in the same run).",
    )
    parser.add_argument("--quick", action="store_true", help="small loads, under 3 minutes")
    parser.add_argument(
        "--only", action="append", choices=sorted(SUITES), help="run only this suite (repeatable)"
    )
    parser.add_argument("--markdown", help="also write the result table (Markdown) to this file")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (not only on errors)"
    )
    args = parser.parse_args(argv)
    raise_nofile()
    names = args.only or list(SUITES)
    started = time.monotonic()
    rows: list[Metric] = []
    for name in names:
        for row in asyncio.run(run_suite(name, args.quick)):
            print(row.to_json(), flush=True)
            rows.append(row)
    seconds = time.monotonic() - started
    table = markdown(rows, machine(), "quick" if args.quick else "full", seconds)
    print(table, file=sys.stderr)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    log(f"all done in {seconds:.0f}s: {sum(r.ok for r in rows)}/{len(rows)} ok")
    errors = any(r.value != r.value for r in rows)  # NaN: a suite failed to measure
    return 1 if errors or (args.strict and not all(r.ok for r in rows)) else 0


if __name__ == "__main__":
    sys.exit(main())
